/**
 * An engine job waiting for its BLAS turn (native/core/include/brainlatent/blas_turn.h) stops at its abort: the job
 * kit makes the job's cancel flag its thread's CancelScope for the whole run. Only a fit set one before, so a
 * predictAsync waiting behind other calls noticed its abort once its turn came, after the call ahead of it ended and
 * its own GEMM ran. Here a worker thread's synchronous sgemmGflops holds the turn for one long GEMM; a predictAsync
 * queues behind it, is aborted, and rejects before that GEMM ends.
 */
import { Worker } from 'node:worker_threads';

import { expect, it } from 'vitest';

import { CancelledError } from '../../ts/errors.js';
import type { Matrix } from '../../ts/matrix.js';
import { addonPath, binding } from '../../ts/native/binding.js';
import { RidgeCV } from '../../ts/ridge/RidgeCV.js';

let s = 5;
const rand = (): number => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5;
const matrix = (rows: number, cols: number): Matrix => ({ data: Float32Array.from({ length: rows * cols }, rand), rows, cols });

/** Resolves once `pred` holds, polling every few milliseconds (waits on the engine's progress; asserts no timing). */
async function until(pred: () => boolean): Promise<void> {
  while (!pred()) await new Promise((r) => setTimeout(r, 2));
}

it('a predictAsync aborted while it waits for a BLAS turn rejects before the call holding the turn ends', async () => {
  const engine = binding();
  if (engine.blasTurns().blasThreads < 2) return; // (BLAS single-threaded: no turns are taken)
  const model = await new RidgeCV({ alphas: [1, 10] }).fit(matrix(300, 1000), matrix(300, 500));
  // (3 GFLOP: waiting for its turn and then computing, it settled after the worker's message, had it not been cancelled)
  const x = matrix(3000, 1000);
  const events: string[] = [];
  const taken = engine.blasTurns().taken;
  // (one GEMM of 5000³, seconds on two cores and a fraction of one on sixteen; the turn is free, so it takes it)
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const engine = require(workerData);
     parentPort.once('message', () => { engine.sgemmGflops(5000, 1); parentPort.postMessage('done'); });`,
    { eval: true, workerData: addonPath() },
  );
  const sgemmDone = new Promise<void>((resolve, reject) => {
    worker.once('message', () => {
      events.push('sgemm done');
      resolve();
    });
    worker.once('error', reject);
  });
  worker.postMessage('go');
  await until(() => engine.blasTurns().taken > taken || events.length > 0);
  const controller = new AbortController();
  let message = '';
  const predicted = model.predictAsync(x, { signal: controller.signal }).then(
    () => events.push('predict resolved'),
    (e: unknown) => {
      message = (e as Error).message;
      events.push(e instanceof CancelledError ? 'predict cancelled' : `predict failed: ${String(e)}`);
    },
  );
  // (the prediction's first GEMM waits behind the worker's: the only other caller)
  await until(() => engine.blasTurns().waiting === 1 || events.length > 0);
  expect(events).toEqual([]);
  controller.abort();
  await Promise.all([predicted, sgemmDone]);
  await worker.terminate();
  expect(events).toEqual(['predict cancelled', 'sgemm done']);
  // (the job's scope, while it waited; not the prediction's own check after a GEMM: 'ridge predict cancelled after …')
  expect(message).toBe('ridgePredict cancelled');
}, 120_000);
