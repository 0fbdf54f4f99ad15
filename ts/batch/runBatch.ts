/**
 * `await runBatch(manifest, {onEvent, signal})`: every subject × analysis of a manifest, on this machine
 * (a pool of worker processes) or, with `redis`, through BullMQ (submit, then workers here and/or elsewhere
 * take the jobs). Same graph, same job ids, same outputs either way.
 */
import { checkControl } from '../callbackOptions.js';
import { checkInteger } from '../ridge/options.js';
import { planBatch } from './graph.js';
import { checkJobTimeoutMs } from './jobTimeout.js';
import { waitForRecordedBatch } from './inspect.js';
import { runLocal, type LocalRunOptions } from './localRunner.js';
import { MAX_JOB_PROCESSES } from './pool.js';
import { redisConnection, requireRedis } from './redis.js';
import { toResolved, writePlan, writeReport, type BatchReport, type ManifestInput } from './outputs.js';
import { summarize } from './status.js';
import { submitPlan } from './submit.js';
import { checkWorkerOptions, createWorker, type WorkerOptions } from './worker.js';

export type { BatchReport, ManifestInput } from './outputs.js';
export { toResolved } from './outputs.js';

export interface RunBatchOptions extends LocalRunOptions {
  /**
   * Jobs at once, each in a process of its own, at most MAX_JOB_PROCESSES (256). Here: the pool's processes (default half the cores, at least 1).
   * With `redis`: the job processes of the one worker started here, over all queues together (default 1; 0: start none).
   */
  concurrency?: number;
  /** Go through BullMQ on this Redis (redis://host:port/db) instead of the local pool. */
  redis?: string;
  /** With redis: settings of the worker started here (`concurrency` 0: start none, wait for others). */
  worker?: Omit<WorkerOptions, 'redis' | 'concurrency'>;
  /** Replace a run folder that holds another config's run (a config edited in the manifest) instead of failing its analysis: planBatch's `force`. */
  force?: boolean;
  /** The time limit of each work job, in ms, here or through Redis: submitBatch's `jobTimeoutMs`. Default: none. */
  jobTimeoutMs?: number;
}

/** Runs a whole batch; resolves with the final status and the summary per subject × stage. */
export async function runBatch(manifest: ManifestInput, options: RunBatchOptions = {}): Promise<BatchReport> {
  // (before the plan is written: a bad callback would be a TypeError at the first job's event)
  checkControl(options, 'runBatch', ['onEvent']);
  checkControl(options.worker, 'runBatch worker', ['onLog', 'onEvent'], false);
  // (createWorker's own check, here before the plan is written and submitted)
  if (options.worker !== null && typeof options.worker === 'object') checkWorkerOptions(options.worker, 'runBatch worker');
  // (an empty URL is refused, not taken as no Redis: the run was local)
  if (options.redis !== undefined) redisConnection(options.redis);
  // (0 is "no worker here" through Redis; a local pool of 0 processes would wait for ever)
  // (and at most MAX_JOB_PROCESSES either way, the pool's bound, here before the plan is written and submitted)
  if (options.concurrency !== undefined) checkInteger(options.concurrency, 'options.concurrency', 'runBatch', options.redis ? 0 : 1, MAX_JOB_PROCESSES);
  if (options.jobTimeoutMs !== undefined) checkJobTimeoutMs(options.jobTimeoutMs, 'runBatch');
  const plan = { ...(await planBatch(await toResolved(manifest), { force: options.force })), ...(options.jobTimeoutMs !== undefined ? { jobTimeoutMs: options.jobTimeoutMs } : {}) };
  // a Redis that is not there fails the run at once, before anything is written
  if (options.redis) await requireRedis(options.redis);
  let report: BatchReport;
  if (options.redis) {
    await submitPlan(plan, { redis: options.redis }); // writes the plan once the name is known to be this plan's
    const concurrency = options.concurrency ?? 1;
    const worker = concurrency > 0 ? await createWorker({ ...options.worker, redis: options.redis, concurrency }) : null;
    try {
      report = await waitForRecordedBatch(plan.id, { redis: options.redis, signal: options.signal, onEvent: options.onEvent });
    } finally {
      await worker?.close();
    }
    options.onEvent?.({ batch: plan.id, type: 'batch', state: report.state, at: Date.now() });
  } else {
    await writePlan(plan);
    const status = await runLocal(plan, options);
    report = { ...status, summary: summarize(status.jobs) };
  }
  await writeReport(plan, report);
  return report;
}
