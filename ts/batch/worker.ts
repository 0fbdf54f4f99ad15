/**
 * `createWorker({redis})`: takes batch jobs from the queues and runs them, on any machine that sees the same data
 * and output folders.
 *
 * - Work jobs (data, compute, sample queues) run in a pool of job processes (pool.ts): `concurrency` of them at
 *   once for the whole worker, whatever queue they come from, so a GPU machine given `--concurrency 1` runs one
 *   job, not one per queue. Jobs are fetched by hand (BullMQ's manual-processing pattern) only when a process is
 *   free, so a busy worker never holds jobs that another could run.
 * - Joins (control queue: a subject's fan-out, the merge of img2img shards) are small and run here, beside.
 * - Locks are renewed by a thread of their own (lockKeeper.ts), never by this event loop. A worker that dies
 *   takes its job processes with it (pool.ts); its jobs' locks expire and the next stalled-job check puts them
 *   back for another worker: within about lockMs + 2 × stallMs.
 * - A stall is a lost lease, not a failed attempt: BullMQ fails a job that stalls more than `maxStalledCount`
 *   times whatever `attempts` says, so that limit is set high (a job only stalls when its worker dies or hangs);
 *   it remains as the guard against a job that takes down every worker that runs it.
 * - Input errors fail the job at once (UnrecoverableError), others are retried with backoff; `close()` lets the
 *   running jobs finish for `graceMs`, then returns them to the queue (no attempt used) and resolves.
 */
import { hostname } from 'node:os';

import type { FlowProducer, Job, Worker } from 'bullmq';

import { checkControl } from '../callbackOptions.js';
import { loadRedisQueue } from '../optionalDependencies.js';
import { MAX_ENGINE_THREADS } from '../ridge/RidgeCV.js';
import { checkInteger, MAX_TIMER_MS } from '../ridge/options.js';
import { withoutServiceRoots } from '../sd/modelRoots.js';
import { isInputError } from './errors.js';
import { QUEUES, type BatchNode, type QueueClass } from './graph.js';
import { jobProcessEnv } from './jobThreads.js';
import { LockKeeper } from './lockKeeper.js';
import { lockTokens } from './lockToken.js';
import { MAX_JOB_PROCESSES, PoolJobError, ProcessPool, type PoolRun } from './pool.js';
import { keys, PREFIX, probeRedis, redisConnection, requireRedis, shownRedisUrl } from './redis.js';
import { cancelOfMarks } from './cancelMarks.js';
import { resubmissionOfJob } from './resubmission.js';
import { runNode, type NodeResult } from './runNode.js';
import { blockedByReason, blockedRoot, failedChildKey, rootOfFailedChild } from './blocked.js';
import { CANCELLED_REASON, isCancelledReason, oneLine, resultUnet, resultWarnings, type BatchEvent, type JobInfo, type BatchJobState } from './status.js';
import type { JobData } from './submit.js';

export interface WorkerOptions {
  redis: string;
  /** Work jobs at once in this worker, over all its queues (job processes), 1..MAX_JOB_PROCESSES (256). Default 1. */
  concurrency?: number;
  /** Queues to take jobs from. Default all: data, compute, sample, control. */
  queues?: QueueClass[];
  /** Lock time of a job, renewed every lockMs/4 by the lock keeper. Default 6000. */
  lockMs?: number;
  /** How often stalled jobs are looked for. Default 2000. */
  stallMs?: number;
  /** A job that stalls more often than this fails, whatever its attempts (see above), 0..MAX_STALLED_COUNT (1000). Default 20. */
  maxStalledCount?: number;
  /** On close: how long running jobs may take to finish before they are returned to the queue. Default 30000. */
  graceMs?: number;
  /** Longest wait between two looks at empty queues, in ms. Default 1000. */
  pollMs?: number;
  /** Name shown as the job's worker (default host:pid). */
  name?: string;
  /** Threads of the engine (BLAS, its loops) in each job's process; 0 or unset: all cores. ONNX Runtime's come from the config (model.threads). */
  threads?: number;
  /**
   * A Redis that does not answer when the worker starts: false (default) rejects with RedisUnreachableError
   * within a few seconds; true waits for it, saying so once through `onLog`, and starts when it answers. An
   * outage once started is always ridden out (ioredis reconnects).
   */
  waitForRedis?: boolean;
  /** One line per job event (start, done, failed, returned), for logs. */
  onLog?: (line: string) => void;
  /** The jobs of this worker as they start, progress and end (the same events as runBatch's). */
  onEvent?: (e: BatchEvent) => void;
}

export interface BatchWorker {
  name: string;
  /** Work jobs being run now. */
  readonly running: number;
  /** Pids of the job processes (for monitoring). */
  readonly processes: number[];
  /** Stops taking jobs, lets running ones finish within graceMs, returns the rest to the queue; resolves when closed. */
  close(): Promise<void>;
}

/** Abort reasons: the batch was cancelled, the worker is closing, another worker holds the job now. */
export const CANCELLED = CANCELLED_REASON;
export const CLOSING = 'worker closing';
export const LOST = 'lock lost';

/** The shared extraction and features only fill caches: they do not make a run folder's stages stale. */
const fillsCache = (id: string) => /\.(betas|shared\.[zc]-[0-9a-f]+)$/.test(id);

/**
 * Whether a job that `node` depends on ran in this batch, from the results of the jobs under it (its children), and
 * the jobs that ran down its chain (NodeResult.ran, without this one). A chain holds each job over the one before it,
 * so the results carry what ran further down; a job checks its own dependencies (node.deps) against them, so a
 * features job skipped on its key hides neither the extraction from the decoders nor runs the encode stages that
 * read only the features. A result without `ran` (a worker from before) counts as before: a child that ran.
 */
export function dependenciesRan(node: BatchNode, children: Record<string, unknown>): { depsRan: boolean; ranDeps: string[]; ran: string[] } {
  const ran = new Set<string>();
  let legacy = false;
  for (const [k, v] of Object.entries(children)) {
    const r = v as NodeResult | null;
    if (!r) continue;
    if (Array.isArray(r.ran)) for (const id of r.ran) ran.add(id);
    else if (r.status === 'done' && !fillsCache(k)) legacy = true;
  }
  return { depsRan: legacy || node.deps.some((d) => ran.has(d)), ranDeps: node.deps.filter((d) => ran.has(d)), ran: [...ran] };
}

/** A job's result with the jobs that ran down its chain, itself included when it ran (a cache-filling job is not). */
const withRan = (node: BatchNode, r: NodeResult, below: string[]): NodeResult => ({
  ...r,
  ran: r.status === 'done' && !fillsCache(node.id) ? [...below, node.id] : below,
});

interface Running {
  job: Job<JobData, NodeResult>;
  token: string;
  queue: QueueClass;
  stop?: string;
  run?: PoolRun;
  /** A join failed by a job under it that the batch's cancel stopped. */
  cancelledBelow?: boolean;
  /** What cancelled it: its batch, or its subject alone (batch cancel --subject). */
  cancelOf?: 'batch' | 'subject' | null;
  /** Its lock was lost: the line that says why, logged once written (the run's end is logged after it). */
  lostSaid?: Promise<void>;
}

/** A lost or refused connection (BullMQ's isNotConnectionError counts only ECONNREFUSED and a closed connection). */
function isConnectionTrouble(e: Error, isNotConnectionError: (e: Error) => boolean): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return !isNotConnectionError(e) || ['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'].includes(code ?? '');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Retries a Redis call through a connection outage (ioredis reconnects); other errors are thrown. */
async function settle<T>(fn: () => Promise<T>, closed: () => boolean, isNotConnectionError: (e: Error) => boolean): Promise<T> {
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (isNotConnectionError(e as Error) || closed()) throw e;
      await sleep(1000);
    }
  }
}

/** Resolves once the Redis at `url` answers: at once, or (waiting) after saying once that it waits for it. */
async function firstConnection(url: string, wait: boolean, log: (line: string) => void): Promise<void> {
  if (!wait) return requireRedis(url);
  let r = await probeRedis(url);
  if (r.ok) return;
  log(`Redis at ${shownRedisUrl(url)} is not reachable (${r.reason}): waiting for it, checking every 2 s`);
  while (!r.ok) {
    await sleep(2000);
    r = await probeRedis(url);
  }
  log(`Redis at ${shownRedisUrl(url)} answers: starting`);
}

/**
 * When a job's batch was purged, from the purge's tombstone (keys.purged: JSON `{ at }`, or null when there is none):
 * `at` if the purge came after the job's submission (submissionId: `<batch>@<ISO time>`; a job without one counts as
 * before), else null: the batch was submitted again under its name since, and the job is of that batch.
 */
export function purgeOfJob(tombstone: string | null, submission: string | undefined): string | null {
  let at: unknown;
  try {
    at = tombstone === null ? undefined : (JSON.parse(tombstone) as { at?: unknown } | null)?.at;
  } catch {
    return null;
  }
  if (typeof at !== 'string' || Number.isNaN(Date.parse(at))) return null;
  const submitted = submission ? Date.parse(submission.slice(submission.lastIndexOf('@') + 1)) : NaN;
  return Number.isNaN(submitted) || submitted <= Date.parse(at) ? at : null;
}

/** The shortest job lock a worker takes: the lock keeper renews it every lockMs/4, over Redis round trips. */
export const MIN_LOCK_MS = 1000;

/**
 * The most stalls a job may have before BullMQ fails it (maxStalledCount). A stall is a worker lost (each about
 * lockMs + 2 × stallMs, 10 s at the defaults, plus the time the job ran): 1000 outlasts any run of preempted nodes,
 * while more turns off the guard against a job that takes down every worker that runs it, in all but name.
 */
export const MAX_STALLED_COUNT = 1000;

/**
 * The numbers of a worker's options, checked before anything connects (`what` names the call: 'createWorker', or
 * 'runBatch worker' for runBatch's). Unchecked, NaN or -1 slots were clamped or passed on, a fractional `threads`
 * was dropped in the job process, a NaN pollMs polled every 1 ms, and BullMQ refused a stallMs of 0 only after
 * connecting. Times are whole ms that setTimeout takes (MAX_TIMER_MS).
 */
export function checkWorkerOptions(options: Partial<WorkerOptions>, what: string): void {
  const check = (key: keyof WorkerOptions, min: number, max?: number) => {
    if (options[key] !== undefined) checkInteger(options[key], key, what, min, max);
  };
  check('concurrency', 1, MAX_JOB_PROCESSES);
  // (a lock of 0 was taken, and the worker then ran nothing: every job it fetched stalled at once, in a loop)
  check('lockMs', MIN_LOCK_MS, MAX_TIMER_MS);
  check('stallMs', 1, MAX_TIMER_MS);
  check('maxStalledCount', 0, MAX_STALLED_COUNT);
  check('graceMs', 0, MAX_TIMER_MS);
  check('pollMs', 0, MAX_TIMER_MS);
  // (the engine's cap: a count it refuses would fail every job in its process)
  check('threads', 0, MAX_ENGINE_THREADS);
}

export async function createWorker(options: WorkerOptions): Promise<BatchWorker> {
  checkControl(options, 'createWorker', ['onLog', 'onEvent'], false);
  checkWorkerOptions(options, 'createWorker');
  const connection = redisConnection(options.redis);
  const name = options.name ?? `${hostname()}:${process.pid}`;
  const log = options.onLog ?? (() => {});
  // BullMQ's connections wait for a Redis that is not there for ever, silently: check it first
  await firstConnection(options.redis, options.waitForRedis ?? false, log);
  // an optional dependency, loaded on first use (firstConnection has checked it is there)
  const { FlowProducer, isNotConnectionError, Queue, UnrecoverableError, WaitingChildrenError, Worker } = (await loadRedisQueue()).bullmq;
  const lockMs = options.lockMs ?? 6000;
  const concurrency = options.concurrency ?? 1;
  const pollMs = options.pollMs ?? 1000;
  const queues = options.queues ?? [...QUEUES];
  // the job processes are forked with this process's environment (and the threads' settings: jobThreads.ts), less
  // the model roots of a service this worker runs in: it takes other services' jobs too, each held to its own (runNode)
  const env = jobProcessEnv(withoutServiceRoots(process.env), concurrency, options.threads);
  const pool = new ProcessPool(concurrency, env);
  const control = new Queue('control', { connection, prefix: PREFIX });
  control.on('error', () => {});
  const redis = async () => control.getBackend().client;
  // a Redis outage, said once when it starts and once when Redis answers again (every connection reconnects alone)
  let down = false;
  const outage = (e: Error) => {
    if (down) return;
    down = true;
    log(`Redis at ${shownRedisUrl(options.redis)} is not reachable (${e.message}): waiting for it; the jobs running here go on`);
  };
  (await redis()).on('ready', () => {
    if (!down) return;
    down = false;
    log(`Redis at ${shownRedisUrl(options.redis)} answers again: going on`);
  });
  /** Whether the job's batch was cancelled, or its subject alone (`batch cancel --subject`): which, or null. */
  const cancelOf = async (node: BatchNode): Promise<'batch' | 'subject' | null> => {
    const c = await redis();
    const [batch, subject] = await Promise.all([c.get(keys.cancelled(node.batch)), c.hget(keys.cancelledSubjects(node.batch), node.subject)]);
    return cancelOfMarks(batch, subject);
  };
  /** The words of a cancel, in the worker's log: the batch's, or its subject's. */
  const cancelWords = (node: BatchNode, of: 'batch' | 'subject' | null) => (of === 'subject' ? `${CANCELLED}: its subject ${node.subject}, batch cancel --subject` : CANCELLED);
  /**
   * Why Redis no longer has a job that ran here, and what to do: `batch cancel` removed it (its batch, or its subject,
   * has the cancel mark: a job whose worker hung, or that the cancel found with its lock expired), `batch cancel
   * --purge` removed it with its batch (the purge's tombstone), `batch retry` (or `batch submit` again) re-added its
   * subject (its stamp: resubmission.ts), or Redis lost its data. (The worker said "restarted
   * without its data?" and "submit the batch again" of a cancelled or purged batch's jobs too.)
   */
  const goneWords = async (data: JobData, stopping: boolean) => {
    const stop = stopping ? ': stopping it here' : '';
    if (await cancelOf(data.node).catch(() => null)) return `the batch's cancel (batch cancel) removed the job${stop}`;
    // purged (its cancel mark went with it): the tombstone the purge left (keys.purged), of a purge after this job's
    // submission (a batch submitted again under the name since is another one)
    const purgedAt = await purgedSince(data).catch(() => null);
    if (purgedAt) return `its batch was cancelled and purged (batch cancel --purge, at ${purgedAt})${stop}`;
    // its subject re-added since (batch retry, or batch submit after a cancel): the stamp it left (keys.resubmitted)
    const again = await resubmittedSince(data).catch(() => null);
    if (again) return `its subject ${data.node.subject} was resubmitted (${again.by}, at ${again.at}), which runs its jobs anew${stop}`;
    return `Redis no longer has the job (restarted without its data?): ${stopping ? 'stopping it here; ' : ''}submit the batch again`;
  };
  const purgedSince = async (data: JobData): Promise<string | null> => purgeOfJob(await (await redis()).get(keys.purged(data.node.batch)), data.submission);
  const resubmittedSince = async (data: JobData) => resubmissionOfJob(await (await redis()).hget(keys.resubmitted(data.node.batch), data.node.subject), data.submission);

  // one BullMQ Worker per queue, without a processor: jobs are fetched by hand below
  const workers = new Map<QueueClass, Worker<JobData, NodeResult>>();
  for (const q of queues) {
    const w = new Worker<JobData, NodeResult>(q, null, {
      connection,
      prefix: PREFIX,
      name,
      autorun: false,
      lockDuration: lockMs,
      stalledInterval: options.stallMs ?? 2000,
      maxStalledCount: options.maxStalledCount ?? 20,
      skipLockRenewal: true,
    });
    // connection trouble is reported once for the worker and ridden out: ioredis reconnects and the worker carries on
    w.on('error', (e) => {
      if (isConnectionTrouble(e, isNotConnectionError)) outage(e);
      else log(`redis (${q}): ${e.message}`);
    });
    w.on('stalled', (id: string) => log(`${id} stalled (its worker died or hung): back in the queue`));
    workers.set(q, w);
  }
  await Promise.all([...workers.values()].map((w) => w.waitUntilReady()));
  for (const w of workers.values()) await w.startStalledCheckTimer();

  // The runs here by job id and lock token: a job whose lock this worker lost is still running here until it stops
  // (at its next step), and may meanwhile come back to this worker under a new token. Keyed by id alone, the new run
  // overwrote the old one's entry and the old one's end deleted the new one's: the new run was then not counted
  // against the concurrency, not stopped by `batch cancel` or a lost lock, nor waited for by close().
  const active = new Map<string, Running>();
  const runKey = (id: string, token: string) => `${id}\u0000${token}`;
  let closing = false;
  const closed = () => closing;
  const keeper = new LockKeeper({
    connection,
    prefix: PREFIX,
    queues,
    lockMs,
    onLog: log,
    onLost: (id, token, gone) => {
      const r = active.get(runKey(id, token));
      if (!r) return;
      // (a Redis restarted without its data while the job ran: "another worker has it" was untrue, and nothing said
      // to submit again; review s44)
      const said = gone ? goneWords(r.job.data, true) : Promise.resolve('lock lost (expired, or another worker has the job now): stopping it here');
      r.lostSaid = said.then((words) => log(`${id}: ${words}`));
      r.stop = LOST;
      r.run?.abort(LOST);
    },
  });

  const emit = (r: Running, state: BatchJobState, extra: Partial<JobInfo> = {}) => {
    const n = r.job.data.node;
    options.onEvent?.({
      batch: n.batch,
      type: 'job',
      at: Date.now(),
      job: { id: n.id, subject: n.subject, analysis: n.analysis, stage: n.stage, shard: n.shard, queue: n.queue, state, fraction: state === 'done' || state === 'skipped' ? 1 : 0, attempts: r.job.attemptsMade + 1, worker: name, ...extra },
    });
  };

  /** A join, here: add the fan-out once, wait for it, then the join's own small work. */
  const runJoin = async (r: Running): Promise<NodeResult> => {
    const { job, token } = r;
    const { node, spawn } = job.data;
    if (spawn?.length) {
      // ids are deterministic, so adding the fan-out again after a crash is harmless
      if (!job.data.spawned) {
        for (const f of spawn) await flows().add({ ...f, opts: { ...f.opts, parent: { id: job.id!, queue: job.queueQualifiedName } } });
        await job.updateData({ ...job.data, spawned: true });
      }
      if (await job.moveToWaitingChildren(token)) throw new WaitingChildrenError();
    }
    const { depsRan, ranDeps, ran } = dependenciesRan(node, await job.getChildrenValues());
    return withRan(node, await runNode(node, { depsRan, ranDeps, submission: job.data.submission, progress: () => {} }), ran);
  };
  let flowProducer: FlowProducer | null = null;
  const flows = () => {
    if (!flowProducer) {
      flowProducer = new FlowProducer({ connection, prefix: PREFIX });
      flowProducer.on('error', () => {}); // an outage is reported by the queues' workers above
    }
    return flowProducer;
  };

  /** A work job, in a job process. */
  const runWork = async (r: Running): Promise<NodeResult> => {
    const { job } = r;
    const { depsRan, ranDeps, ran } = dependenciesRan(job.data.node, await job.getChildrenValues());
    let last = 0;
    // (the batch's time limit per job, as submitted: jobs queued without one have none)
    r.run = pool.start(job.data.node, { depsRan, ranDeps, submission: job.data.submission }, (fraction, message, count) => {
      emit(r, 'active', { fraction, message, ...(count ? { count } : {}) });
      const now = Date.now();
      if (now - last < 500 && fraction < 1) return;
      last = now;
      // (with its count: a watcher's rate leaves out the samples it reused, which the job's progress keeps once done;
      // with the run's start, so that a reader can tell this run's progress from an earlier attempt's: inspect)
      job.updateProgress({ fraction, message, ...(count ? { count } : {}), run: Number(job.processedOn) }).catch(() => {});
    }, job.data.timeoutMs);
    if (r.stop) r.run.abort(r.stop);
    return withRan(job.data.node, await r.run.result, ran);
  };

  const process_ = async (q: QueueClass, job: Job<JobData, NodeResult>, token: string) => {
    const r: Running = { job, token, queue: q };
    active.set(runKey(job.id!, token), r);
    keeper.track(q, job.id!, token);
    const joined = job.data.spawn && job.data.spawned;
    if (!joined) log(`${job.id} started${job.attemptsMade > 0 ? ` (attempt ${job.attemptsMade + 1})` : ''}`);
    emit(r, 'active');
    try {
      if (job.deferredFailure) {
        // a job under this join failed: blocked by the job whose own failure it was (followed down the chain)
        const child = failedChildKey(job.deferredFailure);
        if (!child) throw new UnrecoverableError(job.deferredFailure);
        const reasonOf = async (key: string) => (await redis()).hget(key, 'failedReason');
        // ... unless it was stopped by a cancel: a job taken while `batch cancel` was still removing the batch's jobs
        // fails 'batch cancelled', and BullMQ fails its joins with it; they are cancelled too, not blocked by a failure
        // that never was (a join cancelled so passes it on up the chain)
        if (isCancelledReason(await reasonOf(child).catch(() => null))) {
          r.cancelledBelow = true;
          throw new UnrecoverableError(CANCELLED);
        }
        throw new UnrecoverableError(blockedByReason(await rootOfFailedChild(child, reasonOf)));
      }
      r.cancelOf = await cancelOf(job.data.node);
      if (r.cancelOf) throw new UnrecoverableError(CANCELLED);
      const result = await (q === 'control' ? runJoin(r) : runWork(r));
      keeper.untrack(job.id!, token);
      try {
        await settle(() => job.moveToCompleted(result, token, false), closed, isNotConnectionError);
      } catch (err) {
        // its lock expired meanwhile (Redis was away longer than the lock, or this worker was silent): the job is
        // someone else's, or back in the queue as stalled; its outputs are complete, so that run skips it
        const msg = (err as Error).message;
        // 'Missing key': the job is gone from Redis (a restart without persistence, a purge): nothing runs it again
        const next = /^Missing key/.test(msg) ? await goneWords(job.data, false) : 'the job runs again';
        log(`${job.id} ${result.status} here in ${result.seconds.toFixed(1)} s, but that could not be recorded (${msg}): ${next}`);
        return;
      }
      log(`${job.id} ${result.status} in ${result.seconds.toFixed(1)} s`);
      emit(r, result.status, { seconds: result.seconds, ...resultWarnings(result), ...resultUnet(result) });
    } catch (e) {
      keeper.untrack(job.id!, token);
      if (e instanceof WaitingChildrenError) {
        emit(r, 'waiting', { message: 'waiting for its jobs' });
        return;
      }
      if (r.stop === LOST) {
        // (the job is another worker's now, or back in the queue: this run's end is this worker's business only)
        await r.lostSaid;
        log(`${job.id}: its run here stopped (its lock was lost)`);
        return;
      }
      if (r.stop === CLOSING) {
        // shutting down: the job goes back to the queue without using an attempt
        await settle(() => job.moveToWait(token), closed, isNotConnectionError).catch((err: Error) => log(`${job.id}: could not return it (${err.message}); it comes back as stalled`));
        log(`${job.id} returned to the queue (worker closing)`);
        emit(r, 'waiting', { message: 'returned to the queue' });
        return;
      }
      const err = e as Error;
      const reason = `${err.name}: ${err.message}`;
      let failure: Error;
      if (r.stop === CANCELLED) failure = new UnrecoverableError(CANCELLED);
      else if (err instanceof UnrecoverableError || (e instanceof PoolJobError ? e.input : isInputError(e))) failure = new UnrecoverableError(err instanceof UnrecoverableError ? err.message : reason);
      else {
        // transient: BullMQ retries it with backoff; keep the class name in the reason
        failure = new Error(reason);
        failure.stack = err.stack;
      }
      try {
        await settle(() => job.moveToFailed(failure, token, false), closed, isNotConnectionError);
      } catch (err2) {
        const msg = (err2 as Error).message;
        // (gone from Redis, as a done job's record above: it does not run again)
        const next = /^Missing key/.test(msg) ? await goneWords(job.data, false) : 'the job runs again';
        log(`${job.id} failed here (${oneLine(failure.message)}), but that could not be recorded (${msg}): ${next}`);
        return;
      }
      // (the time this attempt ran, as a done job's result says it)
      const seconds = job.processedOn ? (Date.now() - job.processedOn) / 1000 : undefined;
      if (isCancelledReason(failure.message)) {
        // stopped by `batch cancel` while it ran, or taken after it: BullMQ can only record it as failed (with this
        // reason; docs/batch.md), but nothing broke, and `batch status` says cancelled: so do the log and the events
        const when = r.stop === CANCELLED ? 'while it ran' : r.cancelledBelow ? 'with a job under it' : 'before it started';
        log(`${job.id} cancelled ${when} (${cancelWords(job.data.node, r.cancelOf ?? null)})`);
        emit(r, 'cancelled', { reason: CANCELLED, startedAt: job.processedOn, finishedAt: Date.now(), seconds });
        return;
      }
      const blockedBy = blockedRoot(failure.message);
      if (blockedBy) {
        // not broken itself: say what it waited for, as the local runner does
        log(`${job.id} blocked by ${blockedBy}`);
        emit(r, 'blocked', { reason: `${blockedBy} failed` });
        return;
      }
      const retried = !(failure instanceof UnrecoverableError) && job.attemptsMade < (job.opts.attempts ?? 1);
      log(`${job.id} failed: ${oneLine(failure.message)}${retried ? ' (will be retried)' : ''}`);
      emit(r, retried ? 'waiting' : 'failed', { reason: oneLine(failure.message), ...(retried ? {} : { seconds }) });
    } finally {
      active.delete(runKey(job.id!, token));
      wake();
    }
  };

  // no job is taken before its lock can be kept (the thread loads BullMQ and connects: seconds on a loaded machine)
  await keeper.ready;

  // ---- the fetch loop: a free job process takes the next job of the work queues, in turn ----
  let wakeUp: (() => void) | null = null;
  const wake = () => wakeUp?.();
  const nap = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        wakeUp = null;
        resolve();
      }
      wakeUp = done;
    });
  let turn = 0;
  // (each worker's own, whatever its name: lockToken.ts)
  const nextToken = lockTokens(name);
  const workQueues = queues.filter((q) => q !== 'control');
  const runningWork = () => [...active.values()].filter((r) => r.queue !== 'control').length;
  const runningJoins = () => [...active.values()].filter((r) => r.queue === 'control').length;
  /** The next job of `q`, or undefined; a Redis outage counts as none. */
  let lastFetchError = '';
  const fetch = async (q: QueueClass): Promise<{ job: Job<JobData, NodeResult>; token: string } | undefined> => {
    const token = nextToken();
    try {
      const job = await workers.get(q)!.getNextJob(token, { block: false });
      return job ? { job, token } : undefined;
    } catch (e) {
      // a Redis outage is reported by the queues' workers (above); anything else is said, once while it lasts
      const line = `fetching a job of ${q}: ${(e as Error).message}`;
      if (!isConnectionTrouble(e as Error, isNotConnectionError) && line !== lastFetchError) log(line);
      lastFetchError = line;
      return undefined;
    }
  };
  const loop = (async () => {
    let idle = 50;
    while (!closing) {
      let got = false;
      if (workers.has('control') && runningJoins() < 4) {
        const f = await fetch('control');
        if (f) {
          got = true;
          void process_('control', f.job, f.token);
        }
      }
      for (let k = 0; k < workQueues.length && runningWork() < concurrency && !closing; k++) {
        const q = workQueues[(turn + k) % workQueues.length];
        const f = await fetch(q);
        if (!f) continue;
        got = true;
        turn = (turn + k + 1) % workQueues.length;
        void process_(q, f.job, f.token);
        break;
      }
      if (got) idle = 50;
      else {
        await nap(idle);
        idle = Math.min(pollMs, idle * 2);
      }
    }
  })();

  // a cancelled batch: its running jobs here are stopped (they fail as cancelled)
  const cancelTimer = setInterval(() => {
    for (const r of active.values()) {
      if (r.stop) continue;
      cancelOf(r.job.data.node).then(
        (c) => {
          if (!c || r.stop) return;
          r.cancelOf = c;
          r.stop = CANCELLED;
          r.run?.abort(CANCELLED);
        },
        () => {},
      );
    }
  }, 2000);

  return {
    name,
    get running() {
      return runningWork();
    },
    get processes() {
      return pool.pids;
    },
    async close() {
      if (closing) return;
      closing = true;
      clearInterval(cancelTimer);
      wake();
      await loop;
      // running jobs may finish within the grace period; then they go back to the queue
      const deadline = Date.now() + (options.graceMs ?? 30_000);
      while (active.size && Date.now() < deadline) await sleep(100);
      for (const r of active.values()) {
        if (r.queue === 'control' || r.stop) continue;
        r.stop = CLOSING;
        r.run?.abort(CLOSING);
      }
      // a job that does not stop at its next step within 10 s has its process killed (its outputs are atomic)
      const hard = Date.now() + 10_000;
      while (active.size && Date.now() < hard) await sleep(50);
      await pool.close();
      while (active.size) await sleep(50);
      await keeper.close();
      await Promise.all([...workers.values()].map((w) => w.close()));
      await flowProducer?.close();
      await control.close();
    },
  };
}
