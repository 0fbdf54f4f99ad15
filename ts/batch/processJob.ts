/**
 * The body of a work job (data, compute, sample queues), run in a BullMQ sandbox: a child process of the
 * worker, so the worker's event loop stays free to renew the job's lock however long the native work or a
 * synchronous read takes, and a crash costs one attempt instead of the worker.
 */
import { UnrecoverableError, WaitingError } from 'bullmq';

import { setThreads } from '../ridge/RidgeCV.js';
import { isInputError } from './errors.js';
import { runNode, type NodeResult } from './runNode.js';
import type { JobData } from './submit.js';

/** What the job body uses of BullMQ's job (a SandboxedJob in the child, a Job in process). */
export interface WorkJob {
  data: JobData;
  getChildrenValues(): Promise<Record<string, unknown>>;
  updateProgress(progress: number | object): Promise<void>;
  moveToWait(token?: string): Promise<unknown>;
}

/** Environment variable that carries a worker's engine thread count into its job processes. */
export const THREADS_ENV = 'BRAINLATENT_THREADS';

/** Applies THREADS_ENV in a job process (BLAS and the engine's loops). */
export function applyThreadsFromEnv(): void {
  const n = Number(process.env[THREADS_ENV] ?? 0);
  if (Number.isInteger(n) && n > 0) setThreads(n);
}

/** Abort reasons the worker sends: the batch was cancelled, or the worker is shutting down. */
export const CANCELLED = 'batch cancelled';
export const CLOSING = 'worker closing';

/** True when a job that depends on this one ran in this batch (the shared extraction only fills a cache). */
export function dependenciesRan(children: Record<string, unknown>): boolean {
  return Object.entries(children).some(([k, v]) => (v as NodeResult | null)?.status === 'done' && !k.endsWith('.betas'));
}

export async function processWorkJob(job: WorkJob, token: string | undefined, signal: AbortSignal | undefined): Promise<NodeResult> {
  const depsRan = dependenciesRan(await job.getChildrenValues());
  let last = 0;
  try {
    return await runNode(job.data.node, {
      depsRan,
      signal,
      progress: (fraction, message) => {
        const now = Date.now();
        if (now - last < 500 && fraction < 1) return;
        last = now;
        job.updateProgress({ fraction, message }).catch(() => {});
      },
    });
  } catch (e) {
    if (signal?.aborted && signal.reason === CLOSING) {
      // the worker is shutting down: give the job back without using an attempt
      await job.moveToWait(token);
      throw new WaitingError();
    }
    const msg = `${(e as Error).name}: ${(e as Error).message}`;
    if (signal?.aborted) throw new UnrecoverableError(String(signal.reason ?? CANCELLED));
    if (isInputError(e)) throw new UnrecoverableError(msg);
    // transient: BullMQ retries it with backoff; keep the class name in the reason
    const err = new Error(msg);
    err.stack = (e as Error).stack;
    throw err;
  }
}
