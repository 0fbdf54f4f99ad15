/** Connecting to Redis for BullMQ, and where a batch keeps its own records there. */
import type { ConnectionOptions } from 'bullmq';

import { InvalidArgumentError } from '../errors.js';
import type { QueueClass } from './graph.js';

/** Key prefix of every queue and record brainlatent keeps in Redis. */
export const PREFIX = 'brainlatent';

/** `redis://[user:password@]host[:port][/db]` → connection options (BullMQ makes worker connections blocking-safe itself). */
export function redisConnection(url: string): ConnectionOptions {
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
  out: string;
  submittedAt: string;
  subjects: { name: string; root: string }[];
  jobs: JobRecord[];
}
