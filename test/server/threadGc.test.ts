/**
 * threadGc (ts/server/models/threadGc.ts): every predict thread gets its `gc` though threads start together. V8's
 * --expose-gc is the process's flag: switched off again by a thread that had its `gc`, it left another thread that had
 * just switched it on with a context without one ("gc is not defined": ci-s47a's PredictPool models test).
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

import { expect, it } from 'vitest';

import { packageRoot } from '../../ts/native/binding.js';

it('threads that start at once, each asking for its gc 200 times, all get a gc that collects', async () => {
  const url = pathToFileURL(join(packageRoot, 'dist', 'server', 'models', 'threadGc.js')).href;
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.url).then(({ threadGc }) => {
      Atomics.wait(new Int32Array(workerData.start), 0, 0);
      let gc;
      for (let i = 0; i < 200; i++) gc = threadGc();
      gc();
      parentPort.postMessage(typeof gc);
    });`;
  const answers: string[] = [];
  for (let round = 0; round < 4; round++) {
    const start = new SharedArrayBuffer(4);
    const workers = Array.from({ length: 8 }, () => new Worker(code, { eval: true, workerData: { url, start } }));
    const ended = workers.map(
      (w) =>
        new Promise<void>((resolve) => {
          w.once('message', (m: string) => answers.push(m));
          w.once('error', (e: Error) => answers.push(e.message));
          w.once('exit', () => resolve());
        }),
    );
    await Promise.all(workers.map((w) => new Promise((r) => w.once('online', r))));
    // every thread has imported the module before any asks (they wait on the start word)
    await new Promise((r) => setTimeout(r, 300));
    Atomics.store(new Int32Array(start), 0, 1);
    Atomics.notify(new Int32Array(start), 0);
    await Promise.all(ended);
  }
  expect(answers).toEqual(Array(32).fill('function'));
});
