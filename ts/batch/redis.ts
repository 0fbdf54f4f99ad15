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

export const keys = {
  /** JSON: the batch's plan summary (hash, out, job list). */
  batch: (id: string) => `${PREFIX}:batch:${id}`,
  /** Set when the batch is cancelled: workers stop its jobs. */
  cancelled: (id: string) => `${PREFIX}:batch:${id}:cancelled`,
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
 * Whether the Redis at `url` answers a PING within `timeoutMs`: one short-lived connection that neither retries
 * nor queues commands (BullMQ's own connections retry forever, so a first connection that never succeeds would
 * leave a call pending for good). `reason` is the socket error's code (ECONNREFUSED, ENOTFOUND, ETIMEDOUT, …)
 * or its message.
 */
export async function probeRedis(url: string, timeoutMs = 2000): Promise<{ ok: true } | { ok: false; reason: string }> {
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
  // a TLS handshake or an AUTH that never answers is bounded too
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`no answer within ${timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })), timeoutMs + 500);
  });
  try {
    await Promise.race([client.connect().then(() => client.ping()), deadline]);
    return { ok: true };
  } catch (e) {
    const err = (first ?? e) as Error & { code?: string };
    const code = err.code && /^E[A-Z]+$/.test(err.code) ? err.code : undefined;
    const reason =
      code === 'ETIMEDOUT' || /timed? ?out/i.test(err.message)
        ? `no answer within ${timeoutMs / 1000} s`
        : /RESP|protocol/i.test(err.message)
          ? 'what answers there does not speak the Redis protocol'
          : (code ?? err.message.replace(/^connect /, ''));
    return { ok: false, reason };
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
}

/** The message for a Redis that did not answer. */
export function unreachableMessage(url: string, reason: string): string {
  return `Redis at ${shownRedisUrl(url)} is not reachable (${reason}): is redis-server running there, and is the URL right?`;
}

/** Throws RedisUnreachableError unless the Redis at `url` answers within `timeoutMs` (every entry point's first step). */
export async function requireRedis(url: string, timeoutMs = 2000): Promise<void> {
  const r = await probeRedis(url, timeoutMs);
  if (!r.ok) throw new RedisUnreachableError(unreachableMessage(url, r.reason), shownRedisUrl(url));
}
