/**
 * `createWorker({redis})`: takes batch jobs from the queues and runs them with runNode, on any machine that
 * sees the same data and output folders. Work jobs run in BullMQ sandboxes (child processes, see
 * processJob.ts); joins run here. Lock and stall intervals are short (a killed worker's job is back
 * in the queue within about lockMs + 2 × stallMs); input errors fail at once (UnrecoverableError), others
 * are retried with backoff; `close()` lets the running jobs finish for `graceMs`, then returns them to the
 * queue (no attempt used) and resolves.
 */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { FlowProducer, Queue, UnrecoverableError, WaitingChildrenError, Worker, type Job } from 'bullmq';

import { packageRoot } from '../native/binding.js';
import { isInputError } from './errors.js';
import { QUEUES, type QueueClass } from './graph.js';
import { CANCELLED, CLOSING, dependenciesRan, THREADS_ENV } from './processJob.js';
import { keys, PREFIX, redisConnection } from './redis.js';
import { runNode, type NodeResult } from './runNode.js';
import type { JobData } from './submit.js';

export interface WorkerOptions {
  redis: string;
  /** Jobs at once per queue. Default 1. */
  concurrency?: number;
  /** Queues to take jobs from. Default all: data, compute, sample, control. */
  queues?: QueueClass[];
  /** Lock time of a job; renewed every lockMs/2 while it runs. Default 6000. */
  lockMs?: number;
  /** How often stalled jobs are looked for. Default 2000. */
  stallMs?: number;
  /** A job that stalls more often than this fails (BullMQ ignores `attempts` for stalls). Default 2. */
  maxStalledCount?: number;
  /** On close: how long running jobs may take to finish before they are returned to the queue. Default 30000. */
  graceMs?: number;
  /** Name shown as the job's worker (default host:pid). */
  name?: string;
  /** Threads of the engine (BLAS, its loops) in each job's process; 0 or unset: all cores. ONNX Runtime's come from the config (model.threads). */
  threads?: number;
  /** One line per job event (start, done, failed, returned), for logs. */
  onLog?: (line: string) => void;
}

export interface BatchWorker {
  name: string;
  /** Jobs being run now. */
  readonly running: number;
  /** Stops taking jobs, lets running ones finish within graceMs, returns the rest to the queue; resolves when closed. */
  close(): Promise<void>;
}

/** The compiled sandbox entry (dist/batch/sandbox.js), also when this module runs from the TypeScript sources. */
export function sandboxPath(): string {
  const here = join(dirname(fileURLToPath(import.meta.url)), 'sandbox.js');
  return existsSync(here) ? here : join(packageRoot, 'dist', 'batch', 'sandbox.js');
}

export async function createWorker(options: WorkerOptions): Promise<BatchWorker> {
  const connection = redisConnection(options.redis);
  const name = options.name ?? `${hostname()}:${process.pid}`;
  const log = options.onLog ?? (() => {});
  // the sandboxes are forked with this process's environment
  if (options.threads) process.env[THREADS_ENV] = String(options.threads);
  const flows = new FlowProducer({ connection, prefix: PREFIX });
  const control = new Queue('control', { connection, prefix: PREFIX });
  const redis = async () => control.getBackend().client;
  const isCancelled = async (batch: string) => (await (await redis()).get(keys.cancelled(batch))) !== null;

  /** Joins (control queue), in this process: add the fan-out once, wait for it, then the join's own small work. */
  const join_ = async (job: Job<JobData>, token?: string): Promise<NodeResult> => {
    const { node, spawn } = job.data;
    if (await isCancelled(node.batch)) throw new UnrecoverableError(CANCELLED);
    if (spawn?.length) {
      // ids are deterministic, so adding the fan-out again after a crash is harmless
      if (!job.data.spawned) {
        for (const f of spawn) await flows.add({ ...f, opts: { ...f.opts, parent: { id: job.id!, queue: job.queueQualifiedName } } });
        await job.updateData({ ...job.data, spawned: true });
      }
      if (await job.moveToWaitingChildren(token!)) throw new WaitingChildrenError();
    }
    try {
      return await runNode(node, { depsRan: dependenciesRan(await job.getChildrenValues()), progress: () => {} });
    } catch (e) {
      if (isInputError(e)) throw new UnrecoverableError(`${(e as Error).name}: ${(e as Error).message}`);
      throw e;
    }
  };

  const common = {
    connection,
    prefix: PREFIX,
    name,
    lockDuration: options.lockMs ?? 6000,
    stalledInterval: options.stallMs ?? 2000,
    maxStalledCount: options.maxStalledCount ?? 2,
  };
  const workers = (options.queues ?? [...QUEUES]).map((q) =>
    q === 'control'
      ? new Worker<JobData, NodeResult>(q, join_, { ...common, concurrency: Math.max(4, options.concurrency ?? 1) })
      : new Worker<JobData, NodeResult>(q, sandboxPath(), { ...common, concurrency: options.concurrency ?? 1 }),
  );
  const active = new Map<string, { worker: Worker; batch: string }>();
  for (const w of workers) {
    // connection trouble is reported and ridden out: ioredis reconnects and the workers carry on
    w.on('error', (e) => log(`redis: ${e.message}`));
    w.on('active', (job: Job<JobData>) => {
      active.set(job.id!, { worker: w, batch: job.data.node.batch });
      if (!(job.data.spawn && job.data.spawned)) log(`${job.id} started${job.attemptsMade > 0 ? ` (attempt ${job.attemptsMade + 1})` : ''}`);
    });
    w.on('completed', (job: Job<JobData, NodeResult>) => {
      active.delete(job.id!);
      log(`${job.id} ${job.returnvalue?.status ?? 'done'} in ${(job.returnvalue?.seconds ?? 0).toFixed(1)} s`);
    });
    w.on('failed', (job: Job<JobData> | undefined, e: Error) => {
      if (!job) return;
      active.delete(job.id!);
      if (e.name !== 'WaitingError' && e.name !== 'WaitingChildrenError') log(`${job.id} failed: ${e.message.split('\n')[0]}`);
    });
  }
  // a cancelled batch: its running jobs here are stopped (their signal fires; they fail as cancelled)
  const cancelTimer = setInterval(() => {
    for (const [id, a] of active) isCancelled(a.batch).then((c) => c && a.worker.cancelJob(id, CANCELLED), () => {});
  }, 2000);
  await Promise.all(workers.map((w) => w.waitUntilReady()));

  return {
    name,
    get running() {
      return active.size;
    },
    async close() {
      clearInterval(cancelTimer);
      const closed = Promise.all(workers.map((w) => w.close()));
      // jobs that do not finish within the grace period go back to the queue
      const grace = setTimeout(() => {
        for (const id of active.keys()) log(`${id} returned to the queue (worker closing)`);
        for (const w of workers) w.cancelAllJobs(CLOSING);
      }, options.graceMs ?? 30_000);
      await closed;
      clearTimeout(grace);
      await flows.close();
      await control.close();
    },
  };
}
