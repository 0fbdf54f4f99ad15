/**
 * Ridge predict off the event loop: a few worker threads, each running the engine's predict. A model's arrays
 * are copied once into shared memory when it is registered, and every thread reads them in place; a request
 * moves X to a thread and the predictions back. Callers bound the concurrency (WorkQueue) to the pool's size, so
 * a request always finds an idle thread.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

import type { Matrix } from '../../matrix.js';
import { packageRoot } from '../../native/binding.js';
import { fromNative } from '../../native/nativeError.js';
import type { RidgeModel } from '../../ridge/RidgeModel.js';

export interface SharedRidge {
  coef: Float32Array;
  intercept: Float32Array;
  xMean: Float32Array;
  xScale: Float32Array;
  features: number;
  targets: number;
}

export type PoolMessage =
  | { type: 'model'; key: string; model: SharedRidge }
  | { type: 'drop'; key: string }
  | { type: 'predict'; id: number; key: string; x: Float32Array; rows: number; cols: number };

type Reply = { id: number; y: Float32Array } | { id: number; error: { name: string; message: string; code?: string } };

function shared(a: Float32Array): Float32Array {
  const s = new Float32Array(new SharedArrayBuffer(a.byteLength));
  s.set(a);
  return s;
}

/** The compiled worker (dist/server/models/predictWorker.js), also when this module runs from the TypeScript sources. */
function workerPath(): string {
  const here = join(dirname(fileURLToPath(import.meta.url)), 'predictWorker.js');
  return existsSync(here) ? here : join(packageRoot, 'dist', 'server', 'models', 'predictWorker.js');
}

interface Thread {
  worker: Worker;
  pending: Map<number, { resolve: (m: Matrix) => void; reject: (e: Error) => void; rows: number; targets: number }>;
}

export class PredictPool {
  private readonly models = new Map<string, SharedRidge>();
  private readonly threads: Thread[] = [];
  private readonly idle: Thread[] = [];
  private nextId = 1;

  constructor(readonly size: number) {}

  /** Makes `model` available to every thread under `key` (one copy, in shared memory). */
  register(key: string, model: RidgeModel): void {
    const s: SharedRidge = {
      coef: shared(model.coef.data),
      intercept: shared(model.intercept),
      xMean: shared(model.xMean),
      xScale: shared(model.xScale),
      features: model.nFeatures,
      targets: model.nTargets,
    };
    this.models.set(key, s);
    for (const t of this.threads) t.worker.postMessage({ type: 'model', key, model: s } satisfies PoolMessage);
  }

  unregister(key: string): void {
    this.models.delete(key);
    for (const t of this.threads) t.worker.postMessage({ type: 'drop', key } satisfies PoolMessage);
  }

  /** Predictions of the model registered as `key` for X (rows × features). */
  predict(key: string, x: Matrix): Promise<Matrix> {
    const model = this.models.get(key);
    if (!model) return Promise.reject(new Error(`model ${key} is not registered`));
    const thread = this.idle.pop() ?? this.spawn();
    const id = this.nextId++;
    return new Promise<Matrix>((resolve, reject) => {
      thread.pending.set(id, { resolve, reject, rows: x.rows, targets: model.targets });
      thread.worker.postMessage({ type: 'predict', id, key, x: x.data, rows: x.rows, cols: x.cols } satisfies PoolMessage);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
    this.threads.length = 0;
    this.idle.length = 0;
  }

  private spawn(): Thread {
    if (this.threads.length >= this.size) throw new Error(`PredictPool: all ${this.size} threads are busy (the caller must bound concurrency)`);
    const worker = new Worker(workerPath());
    worker.unref();
    const thread: Thread = { worker, pending: new Map() };
    worker.on('message', (r: Reply) => {
      const p = thread.pending.get(r.id);
      if (!p) return;
      thread.pending.delete(r.id);
      this.idle.push(thread);
      if ('error' in r) {
        const e = Object.assign(new Error(r.error.message), { name: r.error.name, code: r.error.code });
        p.reject(fromNative(e));
      } else p.resolve({ data: r.y, rows: p.rows, cols: p.targets });
    });
    worker.on('error', (e) => {
      for (const p of thread.pending.values()) p.reject(e);
      thread.pending.clear();
      this.threads.splice(this.threads.indexOf(thread), 1);
      const i = this.idle.indexOf(thread);
      if (i >= 0) this.idle.splice(i, 1);
    });
    for (const [key, model] of this.models) worker.postMessage({ type: 'model', key, model } satisfies PoolMessage);
    this.threads.push(thread);
    return thread;
  }
}
