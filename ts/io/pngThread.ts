/**
 * A thread of readPngsAt's (ts/io/pngReads.ts): reads a PNG, resizes it (in the engine, which the thread loads), and
 * moves the pixels back. A file it cannot read is answered `failed`: the caller reads that one again itself, for
 * readPng's own error.
 */
import { parentPort } from 'node:worker_threads';

import { readPng } from '../sd/png.js';
import { resizeRgbNative } from './resizeNative.js';

export interface PngTask {
  file: string;
  size: number;
}
export type PngAnswer = { width: number; height: number; data: Uint8Array } | { failed: true };

parentPort!.on('message', (task: PngTask) => {
  readPng(task.file).then(
    (img) => {
      const out = resizeRgbNative({ data: img.data, width: img.width, height: img.height }, task.size);
      const answer: PngAnswer = { width: img.width, height: img.height, data: out.data };
      parentPort!.postMessage(answer, [out.data.buffer as ArrayBuffer]);
    },
    () => parentPort!.postMessage({ failed: true } satisfies PngAnswer),
  );
});
