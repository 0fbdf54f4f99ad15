/**
 * A submitted batch seen from Redis: the state of every job (`batchStatus`), a stream of changes
 * (`watchBatch`), `cancelBatch` and `retryBatch`. Reads poll the queues, so they ride out a Redis restart.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { ConnectionOptions, Queue } from 'bullmq';

import { checkControl } from '../callbackOptions.js';
import { loadRedisQueue } from '../optionalDependencies.js';
import { InvalidArgumentError } from '../errors.js';
import { BatchError, RedisUnreachableError } from './errors.js';
import { forceSubjects, QUEUES, type BatchPlan, type QueueClass } from './graph.js';
import { connectionClosed, keys, openShortLivedRedis, PREFIX, PURGED_TTL_S, shownRedisUrl, withShortLivedRedis, type BatchRecord, type JobRecord } from './redis.js';
import type { NodeResult } from './runNode.js';
import { blockedRoot, failedChildKey, jobIdOfKey } from './blocked.js';
import { batchStatus, CANCELLED_REASON, isCancelledReason, isJobCount, jobCount, oneLine, resultUnet, resultWarnings, summarize, type BatchEvent, type JobInfo, type BatchJobState, type BatchState } from './status.js';
import type { BatchReport } from './outputs.js';
import { BatchPreflightError, forcedReplacements, preflightPlanned } from './preflight.js';
import { clearSubject, submitPlan } from './submit.js';
import { checkJobTimeoutMs } from './jobTimeout.js';
import { liveState } from './liveLock.js';
import { stampResubmission, unstampResubmission } from './resubmission.js';

/** Where the batch queues are: a Redis URL (`redis://host:6379`). */
export interface RedisOptions {
  /** Redis URL of the BullMQ queues. */
  redis: string;
}

type Queues = Record<QueueClass, Queue>;

/** BullMQ: an optional dependency, loaded on first use. */
const bullmq = async () => (await loadRedisQueue()).bullmq;

/**
 * The queues on one short-lived connection (redis.ts openShortLivedRedis), for one call or one watch: connecting and
 * every command bounded by REDIS_ANSWER_MS, so that a Redis that stops answering mid-command fails the call with
 * RedisUnreachableError instead of holding it for ever (BullMQ's own connections have no command timeout). The
 * connection is shared by the queues (BullMQ leaves it open) and closed by `close`. Workers keep BullMQ's connections:
 * a command timeout would break their blocking commands.
 */
async function openQueues(redis: string): Promise<{ queues: Queues; unanswered: (e: unknown) => unknown; close: () => Promise<void> }> {
  const { Queue } = await bullmq();
  const c = await openShortLivedRedis(redis);
  const connection = c.client as unknown as ConnectionOptions;
  const queues = Object.fromEntries(QUEUES.map((q) => [q, new Queue(q, { connection, prefix: PREFIX })])) as Queues;
  for (const q of Object.values(queues)) q.on('error', () => {}); // reported by the calls that fail
  const close = async () => {
    c.close();
    // (the connection is gone: a queue's close only lets go of it)
    await Promise.allSettled(Object.values(queues).map((q) => q.close()));
  };
  return { queues, unanswered: c.unanswered, close };
}

async function withQueues<T>(redis: string, fn: (queues: Queues) => Promise<T>): Promise<T> {
  const { queues, unanswered, close } = await openQueues(redis);
  try {
    return await fn(queues);
  } catch (e) {
    throw unanswered(e);
  } finally {
    await close();
  }
}

/**
 * A name a service's job claimed (`serve --redis`, nameClaim.ts) and has not recorded a batch under yet: its plan's
 * hash and the service's job ids that hold it (jobs of that service, not of the batch queues).
 */
export interface BatchClaim {
  batch: string;
  hash: string;
  jobs: string[];
}

type RedisClient = Awaited<ReturnType<Queue['getBackend']>['client']>;

async function readClaim(client: RedisClient, batch: string): Promise<BatchClaim | null> {
  const h = await client.hgetall(keys.claim(batch));
  if (!h.hash) return null;
  return { batch, hash: h.hash, jobs: Object.keys(h).filter((k) => k.startsWith('job:')).map((k) => k.slice(4)) };
}

/** A claim in words: `claimed by a service's job for plan <hash> (job <id> of that service)`. */
export function claimWords(c: Pick<BatchClaim, 'hash' | 'jobs'>): string {
  const held = c.jobs.length ? ` (${c.jobs.length > 1 ? 'jobs' : 'job'} ${c.jobs.join(', ')} of that service)` : '';
  return `claimed by a service's job for plan ${c.hash}${held}`;
}

/** A name only claimed by a service's job: no batch to show or retry yet (status, retry, watch say so). */
export class BatchClaimedError extends BatchError {
  constructor(readonly claim: BatchClaim) {
    super(`batch '${claim.batch}' is ${claimWords(claim)}, not submitted yet: nothing to show or retry until that job submits it`);
  }
}

async function readRecord(q: Queue, batch: string): Promise<BatchRecord> {
  const client = await q.getBackend().client;
  const text = await client.get(keys.batch(batch));
  if (!text) {
    const claim = await readClaim(client, batch);
    if (claim) throw new BatchClaimedError(claim);
    throw new BatchError(`no batch '${batch}' in this Redis (submitted batches: ${Object.keys(await client.hgetall(keys.batches)).join(', ') || 'none'})`);
  }
  return JSON.parse(text) as BatchRecord;
}

/**
 * The hash of the plan submitted under the name `batch` (what a batch submitted again under that name must match to
 * map onto its jobs; submitPlan refuses another), or null when no batch of that name is in this Redis.
 */
export async function recordedBatchHash(batch: string, options: RedisOptions): Promise<string | null> {
  return withQueues(options.redis, async (queues) => {
    const text = await (await queues.control.getBackend().client).get(keys.batch(batch));
    return text ? (JSON.parse(text) as BatchRecord).hash : null;
  });
}

/** Every submitted batch id. */
export async function listBatches(options: RedisOptions): Promise<string[]> {
  return withQueues(options.redis, async (qs) => Object.keys(await (await qs.control.getBackend().client).hgetall(keys.batches)).sort());
}

/** Every name a service's job has claimed and not recorded a batch under yet (see BatchClaim), by name. */
export async function listClaims(options: RedisOptions): Promise<BatchClaim[]> {
  return withQueues(options.redis, async (qs) => {
    const client = await qs.control.getBackend().client;
    const pattern = keys.claim('*');
    const [head, tail] = pattern.split('*');
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await client.scan(cursor, { MATCH: pattern, COUNT: 500 });
      cursor = next;
      found.push(...batch);
    } while (cursor !== '0');
    const claims: BatchClaim[] = [];
    for (const key of found.sort()) {
      const c = await readClaim(client, key.slice(head.length, key.length - tail.length));
      if (c) claims.push(c);
    }
    return claims;
  });
}

const STATE: Record<string, BatchJobState> = {
  completed: 'done',
  failed: 'failed',
  active: 'active',
  waiting: 'waiting',
  'waiting-children': 'waiting',
  delayed: 'waiting',
  prioritized: 'waiting',
  unknown: 'waiting',
  // (liveState: active, but its worker is gone; it waits for a live worker's stalled-job check)
  stalled: 'waiting',
};

/** What `batch status` says of an active job whose lock expired (liveLock.ts). */
export const STALLED_MESSAGE = "its worker stopped (its lock expired): it runs again once a worker's stalled-job check puts it back in the queue";

async function jobState(queues: Record<QueueClass, Queue>, r: JobRecord, cancelled: boolean, subjectFailed: boolean): Promise<JobInfo> {
  const info: JobInfo = { id: r.id, subject: r.subject, analysis: r.analysis, stage: r.stage, shard: r.shard, queue: r.queue, state: 'waiting', fraction: 0, attempts: 0 };
  const job = await (await bullmq()).Job.fromId<unknown, NodeResult>(queues[r.queue], r.id);
  if (!job) {
    // not added yet (a fan-out adds its jobs when it runs), or removed by a cancel; a subject that failed before
    // the cancel (its join is not removed) never added them: blocked, whether or not the batch was cancelled since
    if (subjectFailed) Object.assign(info, { state: 'blocked', reason: `${r.subject} failed` });
    else if (cancelled) Object.assign(info, { state: 'cancelled', reason: 'batch cancelled' });
    return info;
  }
  const raw = await liveState(job, queues[r.queue]);
  let state = STATE[raw] ?? 'waiting';
  const result = job.returnvalue;
  if (state === 'done' && result?.status === 'skipped') state = 'skipped';
  const reported = job.progress as { fraction?: number; message?: string; count?: unknown; run?: number } | number;
  // An earlier run's progress (an attempt that failed, a run whose worker died) stays on the job until the new run
  // reports: a run that started since (processedOn is set when a run takes the job) has made none of it yet.
  const progress = typeof reported === 'object' && reported?.run !== undefined && Number(reported.run) !== Number(job.processedOn) ? 0 : reported;
  Object.assign(info, {
    state,
    // attempts used, as retries count them (BullMQ's attemptsMade: runs that ended, done or failed) and the one
    // running; not attemptsStarted, which also counts the runs a closing worker returned and those that stalled
    attempts: job.attemptsMade + (state === 'active' ? 1 : 0),
    startedAt: job.processedOn,
    finishedAt: job.finishedOn,
    seconds: result?.seconds,
    fraction: state === 'done' || state === 'skipped' ? 1 : typeof progress === 'number' ? progress / 100 : (progress?.fraction ?? 0),
    message: raw === 'stalled' ? STALLED_MESSAGE : typeof progress === 'object' ? progress?.message : undefined,
    ...(typeof progress === 'object' && isJobCount(progress?.count) ? { count: jobCount(progress.count) } : {}),
    worker: job.processedBy,
    stalls: job.stalledCounter,
    ...(result ? resultWarnings(result) : {}),
    ...(result ? resultUnet(result) : {}),
  });
  if (state === 'failed') {
    const reason = oneLine(job.failedReason ?? 'failed');
    const root = blockedRoot(reason);
    const child = failedChildKey(reason);
    // a join fails when a job under it does: blocked by the job that failed (the root cause), not broken itself
    if (root) Object.assign(info, { state: 'blocked', reason: `${root} failed` });
    // (a join failed by a worker before the root was named: its direct child, resolved to the root in statusFrom)
    else if (child) Object.assign(info, { state: 'blocked', reason: `${jobIdOfKey(child)} failed` });
    else {
      // the time the attempt ran that failed or was stopped (a done job's comes from its result)
      if (job.processedOn && job.finishedOn && job.finishedOn >= job.processedOn) info.seconds = (job.finishedOn - job.processedOn) / 1000;
      // stopped while it ran (or taken after the cancel): cancelled, not broken
      if (isCancelledReason(reason)) Object.assign(info, { state: 'cancelled', reason });
      else info.reason = reason;
    }
  }
  // waiting for its next attempt (a transient failure): why, as the local runner says it; the worker's log line is on
  // whichever machine ran it
  if (state === 'waiting' && job.attemptsMade > 0 && job.failedReason) info.reason = `attempt ${job.attemptsMade} failed (${oneLine(job.failedReason)}); retrying`;
  if (cancelled && state === 'waiting') Object.assign(info, { state: 'cancelled', reason: 'batch cancelled', ...(raw === 'stalled' ? { message: undefined } : {}) });
  return info;
}

/**
 * Blocked jobs name the failed job that blocked them, as the local runner's do: a join that named its direct child
 * (blocked in turn) takes that child's root, and a job never added (its subject failed before its fan-out ran)
 * names the failed jobs of its analysis, else of its subject (a shared extraction).
 */
function nameRootCauses(jobs: JobInfo[]): void {
  const byId = new Map(jobs.map((j) => [j.id, j]));
  const failedBy = (id: string): string | undefined => /^(\S+) failed$/.exec(byId.get(id)?.reason ?? '')?.[1];
  for (const j of jobs) {
    if (j.state !== 'blocked') continue;
    let id = failedBy(j.id);
    const seen = new Set<string>();
    while (id && byId.get(id)?.state === 'blocked' && !seen.has(id)) {
      seen.add(id);
      id = failedBy(id);
    }
    if (id && byId.get(id)?.state === 'failed') {
      j.reason = `${id} failed`;
      continue;
    }
    // a join failed by a job that a cancel stopped (one taken while the cancel was removing the batch's jobs), recorded
    // as blocked by an older worker: nothing failed, so it is cancelled too
    if (id && byId.get(id)?.state === 'cancelled') {
      Object.assign(j, { state: 'cancelled', reason: CANCELLED_REASON });
      continue;
    }
    const failed = jobs.filter((f) => f.state === 'failed' && f.subject === j.subject);
    const mine = failed.filter((f) => f.analysis !== null && f.analysis === j.analysis);
    const causes = (mine.length ? mine : failed).map((f) => f.id);
    if (causes.length) j.reason = `${causes.join(', ')} failed`;
  }
}

/** A batch's state (see getBatchStatus): its report, plus the workers listening on each queue. */
export type BatchStatusReport = BatchReport & { workers: Record<string, number> };

async function statusFrom(queues: Queues, batch: string): Promise<BatchStatusReport> {
  const rec = await readRecord(queues.control, batch);
  const client = await queues.control.getBackend().client;
  const cancelled = (await client.get(keys.cancelled(batch))) !== null;
  // (subjects cancelled alone: batch cancel --subject)
  const cancelledSubjects = new Set(Object.keys(await client.hgetall(keys.cancelledSubjects(batch))));
  const roots = new Map<string, boolean>();
  for (const s of rec.subjects) {
    const root = await (await bullmq()).Job.fromId(queues.control, s.root);
    // (a root cancelled with a job under it did not fail: the jobs it never added are cancelled, not blocked)
    roots.set(s.name, root ? (await root.getState()) === 'failed' && !isCancelledReason(root.failedReason) : false);
  }
  const jobs: JobInfo[] = [];
  for (const r of rec.jobs) jobs.push(await jobState(queues, r, cancelled || cancelledSubjects.has(r.subject), roots.get(r.subject) ?? false));
  nameRootCauses(jobs);
  // (a loop, not Math.min(...): a spread of a large batch's jobs overflows the stack)
  const started = jobs.reduce<number | null>((first, j) => (j.startedAt === undefined ? first : Math.min(first ?? Infinity, j.startedAt)), null);
  const status = batchStatus(batch, jobs, started);
  const workers: Record<string, number> = {};
  for (const j of jobs) if (j.state === 'active' && j.worker) workers[j.worker] = (workers[j.worker] ?? 0) + 1;
  return { ...status, summary: summarize(jobs), workers };
}

/** The state of every job of a batch and the summary per subject × stage. */
export async function getBatchStatus(batch: string, options: RedisOptions): Promise<BatchStatusReport> {
  return withQueues(options.redis, (queues) => statusFrom(queues, batch));
}

/**
 * Changes of a batch as events (a job's state or progress), until it finishes or `signal` fires. Polls every
 * `intervalMs` (default 1000), each read bounded like getBatchStatus's. A Redis that does not answer before the first
 * read (not there, or stalled) throws RedisUnreachableError. Once watching, an outage or a stall is waited out: one
 * 'redis' event when a read fails (`redis.answering` false, the RedisUnreachableError's message), the connection is
 * dropped and a new one tried at every tick, and one 'redis' event (`answering` true) when Redis answers again. A
 * connection that closed (a server whose `timeout` drops connections idle longer than the interval) is reopened and
 * the read retried once in the same tick before Redis counts as down. Any other error (not Redis's) is thrown.
 */
export async function* watchBatch(batch: string, options: RedisOptions & { intervalMs?: number; signal?: AbortSignal }): AsyncGenerator<BatchEvent & { status?: BatchStatusReport }> {
  // (a generator: a bad option rejects the first next(), as before)
  checkControl(options, 'watchBatch', []);
  yield* watch(batch, options, false);
}

/** watchBatch; `recorded`: the batch was just recorded (runBatch), so a first read that fails is waited out like a later one. */
async function* watch(batch: string, options: RedisOptions & { intervalMs?: number; signal?: AbortSignal }, recorded: boolean): AsyncGenerator<BatchEvent & { status?: BatchStatusReport }> {
  const seen = new Map<string, string>();
  // (`as`: assigned in read(), which TypeScript's narrowing does not follow)
  let open = null as Awaited<ReturnType<typeof openQueues>> | null;
  let watching = recorded;
  let down = false;
  /** This tick's status, or the RedisUnreachableError of a Redis that did not answer (other errors are thrown). */
  const read = async (): Promise<BatchStatusReport | RedisUnreachableError> => {
    for (let retried = false; ; retried = true) {
      try {
        open ??= await openQueues(options.redis);
        return await statusFrom(open.queues, batch);
      } catch (e) {
        if (e instanceof BatchError) throw e;
        const err = open ? open.unanswered(e) : e;
        // a connection that failed is not trusted again (a late answer could be read as another command's)
        await open?.close();
        open = null;
        // a bug or a record that does not parse is no outage: waiting it out would hide it
        if (!(err instanceof RedisUnreachableError)) throw err;
        if (retried || !connectionClosed(e)) return err;
      }
    }
  };
  try {
    for (;;) {
      const r = await read();
      if (r instanceof RedisUnreachableError) {
        // nothing watched yet: fails as `batch status` would
        if (!watching) throw r;
        if (!down) {
          down = true;
          yield { batch, type: 'redis', at: Date.now(), redis: { answering: false, message: r.message } };
        }
      } else {
        const status = r;
        watching = true;
        if (down) {
          down = false;
          yield { batch, type: 'redis', at: Date.now(), redis: { answering: true, message: `Redis at ${shownRedisUrl(options.redis)} answers again` } };
        }
        for (const j of status.jobs) {
          const key = `${j.state}:${j.fraction.toFixed(3)}:${j.attempts}`;
          if (seen.get(j.id) !== key) {
            seen.set(j.id, key);
            yield { batch, type: 'job', job: j, at: Date.now() };
          }
        }
        yield { batch, type: 'batch', state: status.state, at: Date.now(), status };
        if (status.state !== 'running') return;
      }
      if (options.signal?.aborted) return;
      await new Promise((r) => setTimeout(r, options.intervalMs ?? 1000));
    }
  } finally {
    await open?.close();
  }
}

/** waitForBatch's options: the Redis connection, the refresh interval, an AbortSignal and the events of the watch (jobs; Redis stalls and their end). */
export type WaitForBatchOptions = RedisOptions & { intervalMs?: number; signal?: AbortSignal; onEvent?: (e: BatchEvent) => void };

/**
 * Resolves with the final status once every job of the batch has finished. `onEvent` gets each job's change and
 * Redis's 'redis' events (it stopped answering, it answers again).
 */
export async function waitForBatch(batch: string, options: WaitForBatchOptions): Promise<BatchReport> {
  checkControl(options, 'waitForBatch', ['onEvent']);
  return waitFor(batch, options, false);
}

/**
 * waitForBatch for a batch this process has just recorded (runBatch, serve --redis): a Redis that stalls at the first
 * read is waited out as at any later one, instead of failing the run while its batch runs on.
 */
export async function waitForRecordedBatch(batch: string, options: WaitForBatchOptions): Promise<BatchReport> {
  checkControl(options, 'waitForBatch', ['onEvent']);
  return waitFor(batch, options, true);
}

async function waitFor(batch: string, options: WaitForBatchOptions, recorded: boolean): Promise<BatchReport> {
  let last: BatchReport | undefined;
  for await (const e of watch(batch, options, recorded)) {
    if (e.type === 'job' || e.type === 'redis') options.onEvent?.(e);
    if (e.status) last = e.status;
  }
  if (!last) throw new BatchError(`batch '${batch}': watching stopped before its state was known`);
  return last;
}

/**
 * Cancels a batch: its unfinished jobs (waiting, delayed, waiting for their children) are removed, running ones
 * stop at their next progress report (and fail with 'batch cancelled'); finished jobs stay as they are (done,
 * skipped or failed). `purge` also removes the finished jobs and the batch's record, so the name can be reused
 * (outputs on disk stay, and finished stages are skipped by a later batch).
 */
/**
 * What a cancel did: jobs removed and jobs still running (they stop at their next check); `finished` when the batch
 * had already ended (done, failed or cancelled) and there was nothing to cancel: its state and job counts, and
 * nothing was changed (a purge still removes it).
 */
export interface CancelResult {
  removed: number;
  running: number;
  finished?: { state: BatchState; counts: Record<BatchJobState, number> };
  /** A purge of a name only claimed by a service's job (nameClaim.ts), not recorded: the claim's plan hash, removed, and the jobs that held it. */
  claim?: string;
  claimHolders?: string[];
  /**
   * A purge whose running jobs had not stopped when its wait ran out: their ids. Nothing was purged (the record stays,
   * so the name is still the batch's): run the purge again once they have stopped.
   */
  notPurged?: string[];
}

/**
 * `cancelBatch`'s options: `purge` (see cancelBatch), `subjects` to cancel only those, and how long a purge waits for
 * the jobs still running to stop.
 */
export interface CancelOptions extends RedisOptions {
  purge?: boolean;
  /**
   * Cancel only these subjects of the batch (`batch cancel --subject`), by name: their waiting jobs are removed, their
   * running ones stop at their worker's next check, and their jobs not run yet end cancelled; the other subjects go
   * on. Not with `purge`, which removes the whole batch. Default: the whole batch.
   */
  subjects?: string[];
  /**
   * A purge of a batch with running jobs waits until they have stopped (at their worker's next check, every 2 s),
   * removes them and then the record; at most this long (default 60 000 ms), after which it purges nothing more and
   * returns their ids as `notPurged`.
   */
  waitMs?: number;
  /** While a purge waits: the ids of the jobs still running and the seconds waited, at every poll (about 2 a second). */
  onWait?: (running: string[], seconds: number) => void;
}

export async function cancelBatch(batch: string, options: CancelOptions): Promise<CancelResult> {
  checkControl(options, 'cancelBatch', ['onWait']);
  const only = options.subjects;
  if (only !== undefined) {
    if (!Array.isArray(only) || only.length === 0 || only.some((s) => typeof s !== 'string' || s === '')) {
      throw new InvalidArgumentError(`cancelBatch subjects: expected a non-empty list of subject names, got ${JSON.stringify(only)}`);
    }
    if (options.purge) throw new InvalidArgumentError('cancelBatch: subjects and purge do not go together (a purge removes the whole batch and its record)');
  }
  const chosen = (subject: string) => only === undefined || only.includes(subject);
  return withQueues(options.redis, async (queues) => {
    const client = await queues.control.getBackend().client;
    // a name a service's job claimed and has not recorded yet: nothing to cancel; a purge frees the name (a claim
    // left by a service that stopped before its job ran holds it for good otherwise)
    const claim = (await client.get(keys.batch(batch))) ? null : await readClaim(client, batch);
    if (claim && !options.purge) {
      throw new BatchError(
        `batch '${batch}' is not submitted yet: ${claimWords(claim)}; cancel that job on its service, or remove the claim with --purge (one left by a service that stopped before its job ran)`,
      );
    }
    if (claim) {
      await client.del(keys.claim(batch));
      return { removed: 0, running: 0, claim: claim.hash, claimHolders: claim.jobs };
    }
    const rec = await readRecord(queues.control, batch);
    const unknown = (only ?? []).filter((s) => !rec.subjects.some((r) => r.name === s));
    if (unknown.length) {
      throw new BatchError(`batch '${batch}' has no subject ${unknown.map((s) => `'${s}'`).join(', ')} (--subject; its subjects: ${rec.subjects.map((s) => s.name).join(', ')})`);
    }
    const all = await statusFrom(queues, batch);
    // (the chosen subjects' jobs only, as a batch of their own)
    const now = only ? batchStatus(batch, all.jobs.filter((j) => chosen(j.subject)), null) : all;
    // nothing waits or runs: marking it cancelled would only relabel a finished batch
    const finished = now.state !== 'running' ? { state: now.state, counts: now.counts } : undefined;
    if (finished && !options.purge) return { removed: 0, running: 0, finished };
    if (only) {
      const at = new Date().toISOString();
      await client.hset(keys.cancelledSubjects(batch), Object.fromEntries(only.map((s) => [s, at])));
    } else await client.set(keys.cancelled(batch), '1');
    // parents before their children (the subject roots, then the jobs, dependents first), so that removing a job
    // never releases its parent to run; each job alone: BullMQ's default removes a job's whole tree, the
    // finished jobs under a waiting join included
    const order = [
      ...rec.subjects.filter((s) => chosen(s.name)).map((s) => ({ id: s.root, queue: 'control' as QueueClass })),
      ...[...rec.jobs].reverse().filter((j) => chosen(j.subject)),
    ];
    // what was removed is counted from Redis, before and after: a finished job is removed with its children (below),
    // so one remove() can take a subject's whole tree
    const ids = [...new Map(order.map((r) => [r.id, r])).values()];
    const present = async () => {
      const { Job } = await bullmq();
      const found = await Promise.all(ids.map((r) => Job.fromId(queues[r.queue], r.id)));
      return new Set(ids.filter((_, i) => found[i]).map((r) => r.id));
    };
    /** One pass over the jobs: removes what it may, returns the ids of those still running. */
    const removePass = async (): Promise<string[]> => {
      const running: string[] = [];
      for (const r of order) {
        const job = await (await bullmq()).Job.fromId(queues[r.queue], r.id);
        if (!job) continue;
        // (an active job whose worker is gone is not running: it is removed as a waiting one is)
        const state = await liveState(job, queues[r.queue]);
        if (state === 'active') {
          running.push(r.id);
          continue;
        }
        const done = state === 'completed' || state === 'failed';
        if (done && !options.purge) continue;
        try {
          await job.remove({ removeChildren: done });
        } catch {
          // locked: it was taken meanwhile, and stops at its worker's next check
          running.push(r.id);
        }
      }
      return running;
    };
    const before = await present();
    const firstRunning = await removePass();
    let running = firstRunning;
    // a purge waits for the running jobs to stop (they fail 'batch cancelled' at their worker's next check), then
    // removes them too: a record purged under a running job would be gone while its job still writes
    if (options.purge && running.length) {
      const started = Date.now();
      const waitMs = options.waitMs ?? 60_000;
      while (running.length && Date.now() - started < waitMs) {
        options.onWait?.(running, (Date.now() - started) / 1000);
        await new Promise((r) => setTimeout(r, Math.min(500, Math.max(0, waitMs - (Date.now() - started)))));
        running = await removePass();
      }
    }
    const after = await present();
    const removed = [...before].filter((id) => !after.has(id)).length;
    if (options.purge && running.length === 0) {
      await client.del(keys.batch(batch), keys.cancelled(batch), keys.cancelledSubjects(batch), keys.resubmitted(batch), keys.claim(batch));
      await client.hdel(keys.batches, batch);
      // a tombstone: a worker that hung meanwhile (the purge took its job for a dead worker's) and resumes finds its job
      // gone with neither record nor cancel mark, and said Redis had lost its data; it says the batch was purged now
      await client.set(keys.purged(batch), JSON.stringify({ at: new Date().toISOString() }), { EX: PURGED_TTL_S });
    }
    return { removed, running: firstRunning.length, ...(finished ? { finished } : {}), ...(options.purge && running.length ? { notPurged: running } : {}) };
  });
}

/**
 * Runs a batch's failed (and cancelled) subjects again: their trees are removed from the queues and submitted
 * anew. Finished stages are skipped (their outputs are on disk), so only what failed is redone.
 */
export interface RetryOptions {
  /** Check the subjects to resubmit with their analyses' preflight first, as `batch submit` does (default true). */
  preflight?: boolean;
  /**
   * `batch retry --force`, as `batch submit --force`: the resubmitted subjects' extract jobs replace a run folder
   * whose run is of another config (an analysis's config edited since that folder was written) instead of refusing
   * it; folders of this config resume as always. The plan saved with the batch keeps it, as a forced submit's does.
   */
  force?: boolean;
  /**
   * `batch retry --job-timeout`: the resubmitted subjects' work jobs get this time limit (ms) instead of the one the
   * batch was submitted with (jobs that ran past a limit too short); the plan saved with the batch keeps it. Default:
   * the batch's own.
   */
  jobTimeoutMs?: number;
}

/** What a retry did: the subjects resubmitted, those still running (retry later), and with `force` the run folders it replaces. */
export interface RetryResult {
  retried: string[];
  busy: string[];
  /** With `force`: one line per run folder of another config that the resubmitted jobs replace (forcedReplacements). */
  replaces: string[];
}

/** A subject whose join is in one of these states is done or still on its way: a retry leaves it alone. */
const FINISHED_OR_QUEUED = new Set(['completed', 'waiting-children', 'waiting', 'active']);
const rootState = async (queues: Queues, id: string) => {
  const root = await (await bullmq()).Job.fromId(queues.control, id);
  return root ? await root.getState() : 'missing';
};

export async function retryBatch(batch: string, options: RedisOptions & RetryOptions): Promise<RetryResult> {
  if (options.jobTimeoutMs !== undefined) checkJobTimeoutMs(options.jobTimeoutMs, 'retryBatch');
  const plan = await withQueues(options.redis, (queues) => readRecord(queues.control, batch));
  // the plan of the batch as submitted is on disk next to its outputs; checked before anything is removed
  const file = join(plan.out, 'batch.json');
  const read = JSON.parse(await readFile(file, 'utf8')) as BatchPlan;
  const saved: BatchPlan = options.jobTimeoutMs === undefined ? read : { ...read, jobTimeoutMs: options.jobTimeoutMs };
  if (saved.hash !== plan.hash) throw new BatchError(`batch '${batch}': ${file} is the plan of another manifest (plan ${saved.hash}, submitted ${plan.hash}); submit the batch's own manifest again to retry it`);
  // the subjects it would resubmit
  const again = await withQueues(options.redis, async (queues) => {
    const names = new Set<string>();
    for (const s of plan.subjects) if (!FINISHED_OR_QUEUED.has(await rootState(queues, s.root))) names.add(s.name);
    return names;
  });
  const subjects = saved.subjects.filter((s) => again.has(s.name));
  if (options.preflight !== false) {
    // checked as a submit checks them: one that failed on its inputs would fail again
    const problems = await preflightPlanned(batch, subjects, { force: options.force });
    if (problems.length) throw new BatchPreflightError({ id: batch, subjects }, problems, { refused: 'nothing was resubmitted', skip: '--no-preflight' });
  }
  // the subjects stamped as resubmitted before their jobs are removed: a worker that hung with one of their jobs (its
  // lock expired, so it goes below, or the cancel removed it) says so when it resumes. Their cancel marks stay until
  // submitPlan adds them again (cancelMarks.ts): a subject left here (one of its jobs still running) stays cancelled
  const at = new Date().toISOString();
  const before = new Map<string, string>();
  await withShortLivedRedis(options.redis, async (client) => {
    for (const name of again) before.set(name, await stampResubmission(client, batch, name, at, 'batch retry'));
  });
  const retried: string[] = [];
  const busy: string[] = [];
  await withQueues(options.redis, async (queues) => {
    for (const s of plan.subjects) {
      const clear = async () => {
        if (FINISHED_OR_QUEUED.has(await rootState(queues, s.root))) return null;
        // a cancel leaves the subject's finished jobs (and a job it stopped) without their removed parents: every
        // job of the subject goes, so that the new tree is whole (finished stages are skipped by their markers)
        const all = [...plan.jobs.filter((j) => j.subject === s.name), { id: s.root, queue: 'control' as QueueClass }];
        return clearSubject((q) => queues[q], all);
      };
      const cleared = await clear();
      if (cleared) retried.push(s.name);
      else if (cleared === false) busy.push(s.name);
      // (one left as it was keeps the stamp it had)
      const had = before.get(s.name);
      if (!cleared && had !== undefined) await withShortLivedRedis(options.redis, (client) => unstampResubmission(client, batch, s.name, had));
    }
  });
  // (listed before the jobs are queued: a worker may clear a folder at once)
  const replaces = options.force ? await forcedReplacements(subjects.filter((s) => retried.includes(s.name))) : [];
  if (retried.length) await submitPlan(options.force ? forceSubjects(saved, retried) : saved, { redis: options.redis, only: retried, stamped: true });
  return { retried, busy, replaces };
}
