/** Connecting to Redis for BullMQ, and where a batch keeps its own records there. */
import type { RedisOptions } from 'ioredis';

import { InvalidArgumentError } from '../errors.js';
import { loadRedisQueue } from '../optionalDependencies.js';
import { RedisUnreachableError } from './errors.js';
import type { QueueClass } from './graph.js';

/** Key prefix of every queue and record brainlatent keeps in Redis. */
export const PREFIX = 'brainlatent';

/**
 * Where a Redis is, as BullMQ's and ioredis' connection options take it. Written here rather than as bullmq's
 * ConnectionOptions: the emitted .d.ts names no optional package (a slim install has no types of them).
 */
export interface RedisConnection {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  /** Set (empty: the default TLS options) for a rediss:// URL. */
  tls?: Record<string, never>;
}

/** `redis://[user:password@]host[:port][/db]` → connection options (BullMQ makes worker connections blocking-safe itself). */
export function redisConnection(url: string): RedisConnection {
  // ('' became redis:// — 127.0.0.1 — and a worker waited there for ever, saying "Redis at redis:/ is not reachable")
  if (url.trim() === '') throw new InvalidArgumentError(`--redis: expected a URL like redis://127.0.0.1:6379/0 or a host name, got '${url}'`);
  let u: URL;
  try {
    u = new URL(url.includes('://') ? url : `redis://${url}`);
  } catch {
    throw new InvalidArgumentError(`--redis: expected a URL like redis://127.0.0.1:6379/0, got '${url}'`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new InvalidArgumentError(`--redis: expected a redis:// or rediss:// URL, got '${url}'`);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new InvalidArgumentError(`--redis: database '${u.pathname.slice(1)}' in '${url}' is not a number`);
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    db,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    tls: u.protocol === 'rediss:' ? {} : undefined,
  };
}

export const queueName = (q: QueueClass) => q;

/**
 * How long a purged batch's tombstone (keys.purged) stays: 7 days, longer than a worker is left hung or a node
 * suspended in practice, short enough that Redis does not keep every batch name ever purged.
 */
export const PURGED_TTL_S = 7 * 86_400;

export const keys = {
  /** JSON: the batch's plan summary (hash, out, job list). */
  batch: (id: string) => `${PREFIX}:batch:${id}`,
  /** Set when the batch is cancelled: workers stop its jobs (a resubmission splits it into its subjects': cancelMarks.ts). */
  cancelled: (id: string) => `${PREFIX}:batch:${id}:cancelled`,
  /**
   * Left by `batch cancel --purge` for PURGED_TTL_S (JSON: `at`, when): a worker that resumes after the purge with one
   * of the batch's jobs says it was purged, not that Redis lost its data.
   */
  purged: (id: string) => `${PREFIX}:batch:${id}:purged`,
  /**
   * A hash of the batch's subjects that `batch retry` (or `batch submit` again) re-added (subject → JSON `{ at, by }`),
   * kept 7 days (resubmission.ts): a worker that resumes with a job the resubmission removed says so.
   */
  resubmitted: (id: string) => `${PREFIX}:batch:${id}:resubmitted`,
  /**
   * A hash of the batch's subjects that `batch cancel --subject` cancelled (subject → when; `batch <when>` for a mark
   * split from the batch's): workers stop their jobs; a resubmission lifts a subject's as it adds it again.
   */
  cancelledSubjects: (id: string) => `${PREFIX}:batch:${id}:cancelled-subjects`,
  /** A service's claim on the name before its job records the batch (nameClaim.ts): a hash, `hash` and its holding jobs. */
  claim: (id: string) => `${PREFIX}:batch:${id}:claim`,
  /** Every submitted batch id (a hash: id → when it was last submitted). */
  batches: `${PREFIX}:batches`,
};

/** A job as the batch records it (the work description stays in the job's data). */
export interface JobRecord {
  id: string;
  queue: QueueClass;
  subject: string;
  analysis: string | null;
  stage: string;
  shard?: string;
}

export interface BatchRecord {
  id: string;
  hash: string;
  /** A service's batch: the roots its jobs are held to (absent: none, the CLI's, or recorded before they were kept). */
  modelRoots?: string[];
  out: string;
  submittedAt: string;
  subjects: { name: string; root: string }[];
  jobs: JobRecord[];
}

/** The URL without its password, for messages. */
export function shownRedisUrl(url: string): string {
  try {
    const u = new URL(url.includes('://') ? url : `redis://${url}`);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return 'redis (unparsable URL)';
  }
}

/**
 * How long a short-lived connection of a batch's own (probeRedis, nameClaim.ts, and the queues of the one-shot commands
 * in inspect.ts and submit.ts) waits for Redis: to connect, and per command.
 */
export const REDIS_ANSWER_MS = 2000;

/** The Redis calls made through a short-lived connection (of ioredis' client). */
export interface ShortLivedRedis {
  ping(): Promise<string>;
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
}

/**
 * One open short-lived connection (openShortLivedRedis): `client` for BullMQ's Queue and FlowProducer too (as their
 * `connection`, shared: they leave it open), `unanswered` turns what a call on it threw into the error to throw, and
 * `close` disconnects it at once (a stalled Redis would never answer a QUIT).
 */
export interface ShortLivedConnection {
  client: ShortLivedRedis;
  unanswered(e: unknown): unknown;
  close(): void;
}

/**
 * A short-lived connection to the Redis at `url` (connectShortLived), or a RedisUnreachableError naming the URL. Its
 * commands never wait more than `timeoutMs` each, and a lost connection is not reconnected: a caller that wants to ride
 * out an outage opens another (watchBatch).
 */
export async function openShortLivedRedis(url: string, timeoutMs = REDIS_ANSWER_MS): Promise<ShortLivedConnection> {
  const c = await connectShortLived(url, timeoutMs);
  if ('reason' in c) throw new RedisUnreachableError(c.stalled ? stalledMessage(url, timeoutMs) : unreachableMessage(url, c.reason), shownRedisUrl(url));
  return { client: c.client, unanswered: (e) => unansweredError(url, e, timeoutMs) ?? e, close: () => c.client.disconnect() };
}

/**
 * Runs `fn` with one short-lived connection to the Redis at `url` (connectShortLived): failing to connect, or a
 * command's timeout or lost connection, is a RedisUnreachableError naming the URL (a reply error, e.g. of a script, is
 * passed on as it is). A Redis that accepted the connection but stalls fails the call instead of holding it for ever.
 */
export async function withShortLivedRedis<T>(url: string, fn: (client: ShortLivedRedis) => Promise<T>, timeoutMs = REDIS_ANSWER_MS): Promise<T> {
  const c = await openShortLivedRedis(url, timeoutMs);
  try {
    return await fn(c.client);
  } catch (e) {
    throw c.unanswered(e);
  } finally {
    c.close();
  }
}

/**
 * Whether the Redis at `url` answers a PING within `timeoutMs`. `reason` is the socket error's code (ECONNREFUSED,
 * ENOTFOUND, ETIMEDOUT, …) or its message; `stalled` when it accepted the connection and then did not answer.
 */
export async function probeRedis(url: string, timeoutMs = REDIS_ANSWER_MS): Promise<{ ok: true } | { ok: false; reason: string; stalled?: boolean }> {
  const c = await connectShortLived(url, timeoutMs);
  if ('reason' in c) return { ok: false, reason: c.reason, ...(c.stalled ? { stalled: true } : {}) };
  try {
    await c.client.ping();
    return { ok: true };
  } catch (e) {
    const timedOut = isTimeout(e);
    return { ok: false, reason: timedOut ? noAnswer(timeoutMs) : lostAnswer(e) ?? (e as Error).message, ...(timedOut ? { stalled: true } : {}) };
  } finally {
    c.client.disconnect();
  }
}

/**
 * One short-lived connection that neither retries nor queues commands (BullMQ's own connections retry for ever, so a
 * first connection that never succeeds would leave a call pending for good), connected within `timeoutMs` (a TLS
 * handshake, an AUTH or a ready check that never answers included), whose every command fails after `timeoutMs`
 * without an answer. Or why it could not connect (`stalled`: the socket connected, then nothing answered).
 */
async function connectShortLived(url: string, timeoutMs: number): Promise<{ client: ShortLivedRedis & { disconnect(): void } } | { reason: string; stalled: boolean }> {
  const options = redisConnection(url) as RedisOptions;
  // optional dependencies, loaded on first use: both, so a missing one is reported before any connection
  const { Redis } = (await loadRedisQueue()).ioredis;
  const client = new Redis({
    ...options,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  let first: (Error & { code?: string }) | undefined;
  client.on('error', (e: Error) => {
    first ??= e;
  });
  // the socket is up (ioredis' 'connect'): a timeout from here on is a Redis that took the connection and stalls
  let socketUp = false;
  client.once('connect', () => (socketUp = true));
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(noAnswer(timeoutMs)), { code: 'ETIMEDOUT' })), timeoutMs + 500);
  });
  try {
    await Promise.race([client.connect(), deadline]);
    return { client };
  } catch (e) {
    client.disconnect();
    const err = (first ?? e) as Error & { code?: string };
    const code = err.code && /^E[A-Z]+$/.test(err.code) ? err.code : undefined;
    const timedOut = code === 'ETIMEDOUT' || /timed? ?out|no answer/i.test(err.message);
    const reason = timedOut
      ? noAnswer(timeoutMs)
      : /RESP|protocol/i.test(err.message)
        ? 'what answers there does not speak the Redis protocol'
        : (code ?? err.message.replace(/^connect /, ''));
    return { reason, stalled: timedOut && socketUp };
  } finally {
    clearTimeout(timer);
  }
}

const noAnswer = (timeoutMs: number) => `no answer within ${timeoutMs / 1000} s`;

/** ioredis' commandTimeout ('Command timed out'). */
const isTimeout = (e: unknown) => (e as Error | undefined)?.name !== 'ReplyError' && /timed out/i.test((e as Error | undefined)?.message ?? '');

/** Why a command on a connected client got no answer (the socket closed, or without the offline queue: not open), else undefined. */
function lostAnswer(e: unknown): string | undefined {
  const err = e as Error | undefined;
  if (err?.name === 'ReplyError') return undefined;
  if (/Connection is closed|Stream isn't writeable/i.test(err?.message ?? '')) return 'the connection closed without an answer';
  return undefined;
}

/** Whether a command failed because its connection closed (an idle connection the server dropped: its `timeout`), not a stall. */
export function connectionClosed(e: unknown): boolean {
  return lostAnswer(e) !== undefined;
}

/**
 * The RedisUnreachableError naming `url` for what a command on a short-lived connection threw, when it is a Redis that
 * stopped answering (a command past `timeoutMs`) or a lost connection; undefined for anything else (a reply error).
 */
export function unansweredError(url: string, e: unknown, timeoutMs = REDIS_ANSWER_MS): RedisUnreachableError | undefined {
  if (e instanceof RedisUnreachableError) return e;
  if (isTimeout(e)) return new RedisUnreachableError(stalledMessage(url, timeoutMs), shownRedisUrl(url));
  const lost = lostAnswer(e);
  return lost ? new RedisUnreachableError(unreachableMessage(url, lost), shownRedisUrl(url)) : undefined;
}

/** The message for a Redis that did not answer. */
export function unreachableMessage(url: string, reason: string): string {
  return `Redis at ${shownRedisUrl(url)} is not reachable (${reason}): is redis-server running there, and is the URL right?`;
}

/** The message for a Redis that accepted the connection and then did not answer (stopped, paused, overloaded). */
export function stalledMessage(url: string, timeoutMs = REDIS_ANSWER_MS): string {
  return `Redis at ${shownRedisUrl(url)} did not answer within ${timeoutMs / 1000} s (running but stalled?)`;
}

/** Throws RedisUnreachableError unless the Redis at `url` answers within `timeoutMs` (every entry point's first step). */
export async function requireRedis(url: string, timeoutMs = REDIS_ANSWER_MS): Promise<void> {
  const r = await probeRedis(url, timeoutMs);
  if (!r.ok) throw new RedisUnreachableError(r.stalled ? stalledMessage(url, timeoutMs) : unreachableMessage(url, r.reason), shownRedisUrl(url));
}
