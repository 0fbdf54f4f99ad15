/**
 * The service's jobs: a FIFO of submitted jobs, `concurrency` at a time, each in a process of its own with its
 * own AbortController, so the service's event loop stays free; the processes are forked by the job spawner
 * (jobSpawner.ts), never by the service itself. With a Redis, the
 * batch-layer jobs (reconstruct, encode, manifests) are submitted to its BullMQ queues from that process and
 * followed there, so `brainlatent worker` processes anywhere share the work.
 */
import { setTimeout as delay } from 'node:timers/promises';

import { checkControl } from '../../callbackOptions.js';
import { BrainlatentError, CancelledError } from '../../errors.js';
import { publicError } from '../publicError.js';
import { ClosedError, QueueFullError } from '../workQueue.js';
import { stagesOf, type JobControl } from './executeJob.js';
import { JobSpawner } from './jobSpawner.js';
import { JobBoard } from './jobBoard.js';
import type { BatchQueue, JobRunner, JobSpec, RunnerReadiness } from './JobRunner.js';
import { BatchError, RedisUnreachableError } from '../../batch/errors.js';
import { cancelBatch } from '../../batch/inspect.js';
import { requireRedis, shownRedisUrl } from '../../batch/redis.js';
import { claimJobBatchName, jobBatchId, releaseJobBatchName } from './batchName.js';
import { redisReachable } from './redisReachable.js';
import type { JobView } from './types.js';

/** The reason a shutdown cancels running jobs with (their error then starts with it). */
const SHUT_DOWN = 'the service shut down';

/** Between tries of a batch's cancel that Redis did not answer (cancelLeftBatch): doubling from `first` up to `most`. */
const CANCEL_RETRY_MS = { first: 1000, most: 10_000 };

/** Two jobs may not write one run folder at once, nor one inside the other's. */
export class JobConflictError extends BrainlatentError {
  constructor(out: string, other: string, otherOut: string = out) {
    const where = otherOut === out ? out : `${otherOut}, which overlaps ${out} (one folder holds the other)`;
    super(`job ${other} is already writing to ${where}; wait for it, cancel it, or choose another out`, 'JobConflict');
  }
}

/** The kinds that run on the batch layer, through the queue's Redis when the service has one (executeJob.ts). */
const BATCH_LAYER = new Set<JobSpec['kind']>(['reconstruct', 'encode', 'batch']);

export interface LocalRunnerOptions {
  /** Jobs at once. Default 1 (a job already uses every core through BLAS and ONNX Runtime). */
  concurrency?: number;
  /** Jobs that may wait; beyond that submit() throws QueueFullError. Default 100. */
  maxQueued?: number;
  /** The jobs' working folder (relative paths in configs start there): the service's root. */
  cwd?: string;
  /** What runs a job (default: a process per job, forked by the job spawner; tests may run it in-process). */
  execute?: (spec: JobSpec, control: JobControl) => Promise<Record<string, unknown>>;
  /** U-Net evaluations of finished jobs, for the steps/s metric. */
  onUnet?: (calls: number, seconds: number) => void;
  /** Batch-layer jobs go through BullMQ on this Redis (shared with `brainlatent worker` processes). */
  queue?: BatchQueue;
}

export class LocalJobRunner implements JobRunner {
  readonly board = new JobBoard();
  private readonly waiting: { id: string; spec: JobSpec }[] = [];
  private readonly running = new Map<string, { controller: AbortController }>();
  /** Every started job until it has ended on the board (a pending cancel in Redis included: it leaves `running` first). */
  private readonly ending = new Set<Promise<void>>();
  /** Aborted by a shutdown past its deadline: the batch cancels that Redis has not answered stop being retried. */
  private readonly stopRetries = new AbortController();
  private closing = false;
  private readonly concurrency: number;
  private readonly maxQueued: number;
  private readonly execute: NonNullable<LocalRunnerOptions['execute']>;
  private readonly spawner?: JobSpawner;

  constructor(private readonly options: LocalRunnerOptions = {}) {
    // (before the spawner forks: a bad one would otherwise be a TypeError when the first job runs or ends)
    checkControl(options, 'LocalJobRunner', ['execute', 'onUnet'], false);
    this.concurrency = options.concurrency ?? 1;
    this.maxQueued = options.maxQueued ?? 100;
    if (options.execute) this.execute = options.execute;
    else {
      const spawner = new JobSpawner();
      // now, while the service is small: forking the spawner is the one fork the service does
      spawner.start();
      this.spawner = spawner;
      this.execute = (spec, control) => spawner.run(spec, control, { cwd: options.cwd });
    }
  }

  async submit(spec: JobSpec): Promise<JobView> {
    if (this.closing) throw new ClosedError('jobs');
    if (this.waiting.length >= this.maxQueued) throw new QueueFullError('jobs', 60);
    const busy = this.busyError(spec);
    if (busy) throw busy;
    // a batch-layer job needs the queue's Redis: refused now (503) rather than accepted to wait for it for ever
    const queue = this.options.queue;
    if (queue && BATCH_LAYER.has(spec.kind)) await requireRedis(queue.redis);
    // a manifest whose name another manifest's batch holds in Redis would fail at once: refused now (409); the name
    // is claimed now, in one step, so that of two such manifests submitted at once one is refused
    if (queue) await claimJobBatchName(queue.redis, spec);
    // (checked again after the awaits: a shutdown, or a job of the same folder accepted meanwhile)
    const refusal = this.closing ? new ClosedError('jobs') : this.busyError(spec);
    if (refusal) {
      await this.releaseName(spec);
      throw refusal;
    }
    const id = spec.id;
    const view = this.board.add({ id, kind: spec.kind, out: spec.outShown, stages: stagesOf(spec) }, spec.out);
    this.waiting.push({ id, spec: this.options.queue ? { ...spec, queue: this.options.queue } : spec });
    this.pump();
    return view;
  }

  /** A job already writing the spec's folder (or one inside it, or around it). */
  private busyError(spec: JobSpec): JobConflictError | undefined {
    const busy = this.board.activeIn(spec.out);
    return busy ? new JobConflictError(spec.outShown, busy.id, busy.out) : undefined;
  }

  /**
   * A batch job's claim on its name in Redis goes once it has ended (or was refused), before its end is shown: a
   * client that sees it end may submit another manifest of that name at once. A Redis that does not answer leaves
   * the claim (the same manifest may still be submitted; `batch cancel NAME --purge` removes it).
   */
  private async releaseName(spec: JobSpec): Promise<void> {
    const queue = this.options.queue;
    if (!queue) return;
    await releaseJobBatchName(queue.redis, spec).catch((e: unknown) =>
      console.error(`brainlatent serve: releasing job ${spec.id}'s claim on its batch name failed: ${(e as Error).message}`),
    );
  }

  async cancel(id: string): Promise<JobView | undefined> {
    const w = this.waiting.findIndex((j) => j.id === id);
    if (w >= 0) {
      const [{ spec }] = this.waiting.splice(w, 1);
      await this.releaseName(spec);
      this.board.finish(id, 'cancelled', { error: publicError(new CancelledError('cancelled before it started')) });
    } else {
      this.running.get(id)?.controller.abort();
    }
    return this.board.get(id);
  }

  queueDepth(): number {
    return this.waiting.length;
  }

  async ready(): Promise<RunnerReadiness> {
    if (this.closing) return { ok: false, detail: 'shutting down' };
    const jobs = `${this.running.size}/${this.concurrency} running, ${this.waiting.length} queued`;
    const queue = this.options.queue;
    if (!queue) return { ok: true, detail: `in-process, ${jobs}` };
    const redis = await redisReachable(queue.redis);
    return { ok: redis.ok, detail: `${redis.detail}; ${jobs}` };
  }

  async close(deadlineMs: number): Promise<void> {
    this.closing = true;
    const waiting = this.waiting.splice(0);
    await Promise.all(waiting.map((j) => this.releaseName(j.spec)));
    for (const j of waiting) this.board.finish(j.id, 'cancelled', { error: publicError(new CancelledError('the service shut down before the job started')) });
    const all = () => Promise.all([...this.ending]);
    let timer: NodeJS.Timeout | undefined;
    const expired = await Promise.race([all().then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), deadlineMs)))]);
    clearTimeout(timer);
    if (expired) {
      for (const r of this.running.values()) r.controller.abort(new CancelledError(SHUT_DOWN));
      // a batch's cancel that Redis has not answered is tried once more as its job ends, then given up (and logged)
      this.stopRetries.abort();
      await all();
    }
    await this.spawner?.close();
  }

  private pump(): void {
    while (!this.closing && this.running.size < this.concurrency && this.waiting.length > 0) {
      const { id, spec } = this.waiting.shift()!;
      const controller = new AbortController();
      this.board.started(id);
      const control: JobControl = {
        signal: controller.signal,
        progress: (p) => this.board.progress(id, p),
        unet: this.options.onUnet,
      };
      let confirmed = false;
      control.batchCancelled = () => (confirmed = true);
      /** How the batch's cancel in Redis ended, when the service had to do it (cancelLeftBatch). */
      let redisNote: string | undefined;
      const done = this.execute(spec, control)
        .catch(async (e: unknown) => {
          // cancelled, and its batch's cancel not confirmed by its process: the service's to do, before the job ends
          // (its folder and its batch name stay claimed meanwhile); its process has ended, so its slot goes now
          if ((controller.signal.aborted || e instanceof CancelledError) && !confirmed && this.options.queue && BATCH_LAYER.has(spec.kind)) {
            this.freeSlot(id, controller);
            redisNote = await this.cancelLeftBatch(id, spec);
          }
          throw e;
        })
        .finally(() => this.releaseName(spec))
        .then(
          (result) => this.board.finish(id, 'done', { result }),
          (e: unknown) => {
            const cancelled = controller.signal.aborted || e instanceof CancelledError;
            const result = (e as { result?: Record<string, unknown> }).result;
            // the job says what it stopped ('batch … cancelled'); a shutdown's cancel says why, as for queued jobs
            const byShutdown = cancelled && (controller.signal.reason as Error | undefined)?.message === SHUT_DOWN;
            const said = byShutdown ? new CancelledError(`${SHUT_DOWN} while the job ran (its shutdown deadline passed): ${(e as Error)?.message ?? String(e)}`) : e;
            const error = redisNote ? new CancelledError(`${(said as Error)?.message ?? String(said)}; ${redisNote}`) : said;
            this.board.finish(id, cancelled ? 'cancelled' : 'failed', { error: publicError(error), ...(result ? { result } : {}) });
            if (!cancelled && !(e instanceof BrainlatentError)) console.error(`brainlatent serve: job ${id} failed:`, e);
          },
        );
      const ended = done.finally(() => {
        this.ending.delete(ended);
        this.freeSlot(id, controller);
      });
      this.ending.add(ended);
      this.running.set(id, { controller });
    }
  }

  /** The job's slot goes to the next queued job (once, whichever of its ends comes first). */
  private freeSlot(id: string, controller: AbortController): void {
    if (this.running.get(id)?.controller !== controller) return;
    this.running.delete(id);
    this.pump();
  }

  /**
   * Cancels a cancelled job's batch in Redis when its process ended without having done so (Redis did not answer it,
   * or it was killed first): with cancelBatch, as `batch cancel` does, tried again with backoff until Redis answers,
   * so that no worker runs the batch on into the run folder of a job shown cancelled. Until then the job shows
   * `cancelPending` and stays running. A shutdown stops the tries (a last one once the job has ended); what became
   * of the cancel, when Redis had not answered at first, is returned for the job's error.
   */
  private async cancelLeftBatch(id: string, spec: JobSpec): Promise<string | undefined> {
    const batch = jobBatchId(spec)!;
    const redis = this.options.queue!.redis;
    let tries = 0;
    for (let waitMs = CANCEL_RETRY_MS.first; ; waitMs = Math.min(2 * waitMs, CANCEL_RETRY_MS.most)) {
      try {
        await cancelBatch(batch, { redis });
        if (tries === 0) return undefined;
        console.error(`brainlatent serve: job ${id}: batch ${batch} cancelled in Redis (it answered the service's try ${tries + 1})`);
        return `Redis did not answer at first, and the service cancelled batch ${batch} there once it did`;
      } catch (e) {
        // not recorded (nor to be: the job's process has ended), or only claimed by this job: nothing of it is queued;
        // said when the job showed its cancel pending (else its end would not say what became of that)
        if (e instanceof BatchError) {
          if (tries === 0) return undefined;
          console.error(`brainlatent serve: job ${id}: Redis answered the service's try ${tries + 1}, and batch ${batch} is not there: nothing of it is queued`);
          return `Redis did not answer at first; once it did, batch ${batch} was not there, so nothing of it is queued`;
        }
        if (tries++ === 0) {
          console.error(`brainlatent serve: job ${id} was cancelled, but its batch ${batch} is not cancelled in Redis: ${(e as Error).message}; trying again until Redis answers`);
          const why = e instanceof RedisUnreachableError ? 'Redis did not answer' : `cancelling it there failed (${(e as Error).name})`;
          this.board.cancelPending(
            id,
            `the job was cancelled and its process has ended, but its batch ${batch} is not cancelled in Redis yet: ${why}; the service tries again until Redis answers, and until then the job stays running and its run folder claimed (a worker could still run the batch's jobs)`,
          );
        }
      }
      if (this.stopRetries.signal.aborted) {
        console.error(`brainlatent serve: job ${id}: the service shut down before Redis answered: batch ${batch} is NOT cancelled in Redis (workers may still run its jobs); cancel it with 'brainlatent batch cancel ${batch} --redis ${shownRedisUrl(redis)}'`);
        return `${SHUT_DOWN} before Redis answered: its batch ${batch} is not cancelled in Redis, and workers may still run its jobs; cancel it with 'brainlatent batch cancel ${batch} --redis <this service's Redis URL>'`;
      }
      await delay(waitMs, undefined, { signal: this.stopRetries.signal }).catch(() => {});
    }
  }
}
