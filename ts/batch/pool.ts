/**
 * A pool of worker processes for the local runner: each child runs one job at a time with runNode (native
 * work in its own process, so a crash loses one attempt, not the batch) and reports progress over IPC.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { packageRoot } from '../native/binding.js';
import type { SerializedError } from './errors.js';
import type { BatchNode } from './graph.js';
import type { NodeResult } from './runNode.js';

export type PoolRequest = { type: 'run'; node: BatchNode; depsRan: boolean } | { type: 'abort' };
export type PoolReply =
  | { type: 'progress'; fraction: number; message?: string }
  | { type: 'result'; result: NodeResult }
  | { type: 'error'; error: SerializedError };

/** A job that failed in a pool process: the child's error, or the child's death. */
export class PoolJobError extends Error {
  readonly input: boolean;
  constructor(e: SerializedError) {
    super(e.message);
    this.name = e.name;
    this.input = e.input;
  }
}

/** The compiled child entry (dist/batch/poolWorker.js), also when this module runs from the TypeScript sources. */
export function poolWorkerPath(): string {
  const here = join(dirname(fileURLToPath(import.meta.url)), 'poolWorker.js');
  return existsSync(here) ? here : join(packageRoot, 'dist', 'batch', 'poolWorker.js');
}

interface Slot {
  child: ChildProcess;
  busy: boolean;
}

export class ProcessPool {
  private slots: Slot[] = [];
  private closed = false;

  constructor(readonly size: number, private readonly env: NodeJS.ProcessEnv = process.env) {}

  private spawn(): Slot {
    const child = fork(poolWorkerPath(), [], { env: this.env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const slot = { child, busy: false };
    child.once('exit', () => {
      this.slots = this.slots.filter((s) => s !== slot);
    });
    return slot;
  }

  get idle(): number {
    return this.size - this.slots.filter((s) => s.busy).length;
  }

  /** Runs a job in a free child (one is started when needed); rejects with PoolJobError. */
  run(node: BatchNode, depsRan: boolean, onProgress: (fraction: number, message?: string) => void, signal?: AbortSignal): Promise<NodeResult> {
    if (this.closed) return Promise.reject(new Error('pool closed'));
    let slot = this.slots.find((s) => !s.busy && s.child.connected);
    if (!slot) {
      slot = this.spawn();
      this.slots.push(slot);
    }
    const s = slot;
    s.busy = true;
    return new Promise<NodeResult>((resolve, reject) => {
      const onAbort = () => s.child.send({ type: 'abort' } satisfies PoolRequest);
      const cleanup = () => {
        s.child.off('message', onMessage);
        s.child.off('exit', onExit);
        signal?.removeEventListener('abort', onAbort);
        s.busy = false;
      };
      const onMessage = (m: PoolReply) => {
        if (m.type === 'progress') onProgress(m.fraction, m.message);
        else {
          cleanup();
          if (m.type === 'result') resolve(m.result);
          else reject(new PoolJobError(m.error));
        }
      };
      const onExit = (code: number | null, sig: string | null) => {
        cleanup();
        reject(new PoolJobError({ name: 'WorkerExit', message: `the worker process died (exit code ${code}, signal ${sig})`, input: false }));
      };
      s.child.on('message', onMessage);
      s.child.once('exit', onExit);
      signal?.addEventListener('abort', onAbort, { once: true });
      s.child.send({ type: 'run', node, depsRan } satisfies PoolRequest);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.slots.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.child.exitCode !== null || s.child.signalCode !== null) return resolve();
            s.child.once('exit', () => resolve());
            s.child.kill('SIGTERM');
          }),
      ),
    );
    this.slots = [];
  }
}
