/**
 * A run's PNGs of one kind (z-only images, a seed's samples) as one batch at size × size: each file resized into its
 * place as it is read, on several threads where there are many (PNG decoding is JavaScript, the resize the engine's,
 * resizeRgbNative: 60 files of 512 px at 425 in 7.6 ms each on one core, 5.8 ms on two threads, against 16.3 and
 * 11.8 ms with the TypeScript resize).
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

import { CancelledError, ShapeError } from '../errors.js';
import { packageRoot } from '../native/binding.js';
import { readPng } from '../sd/png.js';
import type { RgbImages } from '../sd/tensor.js';
import type { PngAnswer, PngTask } from './pngThread.js';
import { resizeRgbNative } from './resizeNative.js';

/** Files read at a time on this thread (their reads and inflation overlap; their pixels are held only that long). */
const PNG_WINDOW = 8;
/** Files per thread below which another thread is not worth its start (~40 ms each). */
const FILES_PER_THREAD = 32;
/** The most threads readPngsAt starts. */
export const MAX_PNG_THREADS = 16;

/** Threads for `files` files: one per core up to MAX_PNG_THREADS, one per FILES_PER_THREAD files; 1 reads here. */
export function pngThreads(files: number): number {
  return Math.max(1, Math.min(availableParallelism(), MAX_PNG_THREADS, Math.floor(files / FILES_PER_THREAD)));
}

/**
 * PNG files of one size as one batch at size × size: the batch at its size and a few images are held, not every file
 * at its own (NSD's 1,000 samples at 512 px are 786 MB decoded). The first bad file in order is the one named, whatever
 * read failed first; a file of another size than the first is refused, naming it (a run's images of one kind are all
 * one size). `threads` (default pngThreads) above 1 reads on that many worker threads. An aborted `signal` stops the
 * reads between files: a CancelledError.
 */
export async function readPngsAt(files: string[], size: number, options: { threads?: number; signal?: AbortSignal } = {}): Promise<RgbImages> {
  const { threads = pngThreads(files.length), signal } = options;
  // (checked between files: a cancelled run stops within a file's read on each thread, ~15 ms)
  const checkAbort = () => {
    if (signal?.aborted) throw new CancelledError('reading images: cancelled', { cause: signal.reason });
  };
  const n = size * size * 3;
  const data = new Uint8Array(files.length * n);
  // width and height of each file as read (-1: not read)
  const dims = new Int32Array(files.length * 2).fill(-1);
  const place = (i: number, width: number, height: number, pixels: Uint8Array) => {
    dims[2 * i] = width;
    dims[2 * i + 1] = height;
    data.set(pixels, i * n);
  };
  const readHere = async (i: number) => {
    const img = await readPng(files[i]);
    place(i, img.width, img.height, resizeRgbNative({ data: img.data, width: img.width, height: img.height }, size).data);
  };
  if (threads <= 1) {
    for (let i0 = 0; i0 < files.length; i0 += PNG_WINDOW) {
      checkAbort();
      const window = Array.from({ length: Math.min(PNG_WINDOW, files.length - i0) }, (_, j) => i0 + j);
      // (in order: a file of another size before a file that cannot be read is the one named)
      const settled = await Promise.allSettled(window.map(readHere));
      for (const [j, r] of settled.entries()) {
        if (r.status === 'rejected') throw r.reason;
        checkSizes(files, dims, i0 + j, i0 + j + 1);
      }
    }
  } else {
    for (let from = 0; from < files.length; ) {
      const failed = await readInThreads(files, size, Math.min(threads, files.length - from), place, from, signal);
      checkAbort();
      if (failed === files.length) break;
      // (a file a thread could not read is read here, for readPng's own error, every file before it read; read
      // after all, the threads go on after it)
      checkSizes(files, dims, from, failed);
      await readHere(failed);
      from = failed + 1;
    }
    checkSizes(files, dims, 1, files.length);
  }
  return { data, count: files.length, height: size, width: size };
}

/** The sizes of files [from, upTo) against the first file's: a ShapeError naming the first that differs. */
function checkSizes(files: string[], dims: Int32Array, from: number, upTo: number): void {
  for (let i = Math.max(1, from); i < upTo; i++) {
    if (dims[2 * i] !== dims[0] || dims[2 * i + 1] !== dims[1]) {
      throw new ShapeError(`${files[i]}: ${dims[2 * i]}×${dims[2 * i + 1]} pixels, where ${files[0]} and the run's other images of its kind are ${dims[0]}×${dims[1]}`);
    }
  }
}

/** The compiled thread (dist/io/pngThread.js), also when this module runs from the TypeScript sources or a bundle. */
function threadPath(): string {
  const here = join(dirname(fileURLToPath(import.meta.url)), 'pngThread.js');
  return existsSync(here) ? here : join(packageRoot, 'dist', 'io', 'pngThread.js');
}

/**
 * Reads the files from `from` on `threads` worker threads, each taking the next file in order as it finishes one,
 * and places each. Returns the index of the first file a thread could not read (files.length: none); no file after
 * it is started, nor any once `signal` is aborted.
 */
async function readInThreads(
  files: string[],
  size: number,
  threads: number,
  place: (i: number, width: number, height: number, pixels: Uint8Array) => void,
  from: number,
  signal: AbortSignal | undefined,
): Promise<number> {
  let next = from;
  let failed = files.length;
  const workers = Array.from({ length: threads }, () => new Worker(threadPath()));
  const ask = (w: Worker, task: PngTask) =>
    new Promise<PngAnswer>((resolve, reject) => {
      const onError = (e: Error) => {
        w.off('message', onMessage);
        reject(e);
      };
      const onMessage = (a: PngAnswer) => {
        w.off('error', onError);
        resolve(a);
      };
      w.once('message', onMessage);
      w.once('error', onError);
      w.postMessage(task);
    });
  try {
    await Promise.all(
      workers.map(async (w) => {
        while (next < Math.min(failed, files.length) && !signal?.aborted) {
          const i = next++;
          const a = await ask(w, { file: files[i], size });
          if ('failed' in a) failed = Math.min(failed, i);
          else place(i, a.width, a.height, a.data);
        }
      }),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return failed;
}
