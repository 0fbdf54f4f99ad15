/**
 * The lock keeper's thread (see lockKeeper.ts): extends the locks of the jobs its worker runs, on its own event
 * loop and its own Redis connection, so a busy main thread (a long synchronous call, a big GC) never lets a
 * running job be taken for stalled. It stops renewing when the main thread has not beaten for `hangMs`: a hung
 * worker must let its jobs go to others.
 */
import { parentPort, workerData } from 'node:worker_threads';

import type { Queue } from 'bullmq';

import { loadRedisQueue } from '../optionalDependencies.js';
import type { RedisConnection } from './redis.js';

export interface KeeperData {
  connection: RedisConnection;
  prefix: string;
  /** The queues whose jobs it keeps: connected before it reports ready. */
  queues: string[];
  lockMs: number;
  renewMs: number;
  hangMs: number;
  /** BigInt64Array[1]: the main thread's last beat (ms since the epoch). */
  heartbeat: SharedArrayBuffer;
}

export type KeeperRequest = { type: 'track'; queue: string; id: string; token: string } | { type: 'untrack'; id: string; token: string } | { type: 'close' };
export type KeeperReply =
  /**
   * The lock is gone or another worker holds it: this worker no longer owns the job. `gone`: the job itself is not in
   * Redis (restarted without its data, or purged): nobody will run it again.
   */
  | { type: 'lost'; id: string; token: string; gone: boolean }
  | { type: 'log'; message: string }
  /** Connected to Redis and renewing: the worker may take jobs. */
  | { type: 'ready' }
  | { type: 'closed' };

// BullMQ: an optional dependency (the worker that starts this thread has loaded it already)
const { Queue: BullQueue } = (await loadRedisQueue()).bullmq;
const data = workerData as KeeperData;
const port = parentPort!;
const beat = new BigInt64Array(data.heartbeat);
const queues = new Map<string, Queue>();
const tracked = new Map<string, { queue: string; token: string }>();
let hung = false;
let failing = false;
let closing = false;

const post = (m: KeeperReply) => port.postMessage(m);

function queue(name: string): Queue {
  let q = queues.get(name);
  if (!q) {
    q = new BullQueue(name, { connection: data.connection, prefix: data.prefix });
    q.on('error', () => {}); // reported once per outage below
    queues.set(name, q);
  }
  return q;
}

/** Whether the job's own key is missing from Redis (not only its lock); false when Redis does not say. */
async function jobGone(q: Queue, id: string): Promise<boolean> {
  try {
    return (await q.getJob(id)) == null;
  } catch {
    return false;
  }
}

async function renew(): Promise<void> {
  const silent = Date.now() - Number(Atomics.load(beat, 0));
  if (silent > data.hangMs) {
    if (!hung) post({ type: 'log', message: `the worker's main thread has not answered for ${Math.round(silent / 1000)} s: its job locks are left to expire, so other workers take the jobs` });
    hung = true;
    return;
  }
  hung = false;
  const byQueue = new Map<string, { ids: string[]; tokens: string[] }>();
  for (const [id, t] of tracked) {
    const g = byQueue.get(t.queue) ?? { ids: [], tokens: [] };
    g.ids.push(id);
    g.tokens.push(t.token);
    byQueue.set(t.queue, g);
  }
  for (const [name, g] of byQueue) {
    try {
      const failed = await queue(name).getBackend().extendLocks(g.ids, g.tokens, data.lockMs);
      if (failing) post({ type: 'log', message: 'job locks renewed again' });
      failing = false;
      for (const id of failed) {
        const token = g.tokens[g.ids.indexOf(id)];
        if (tracked.get(id)?.token !== token) continue; // finished meanwhile
        tracked.delete(id);
        post({ type: 'lost', id, token, gone: await jobGone(queue(name), id) });
      }
    } catch (e) {
      // Redis unreachable: keep trying; a lock that expires meanwhile is reported as lost once Redis is back
      if (!failing) post({ type: 'log', message: `could not renew job locks (${(e as Error).message}); retrying` });
      failing = true;
    }
  }
}

let renewing = false;
const tick = () => {
  if (renewing || closing) return;
  renewing = true;
  renew().finally(() => {
    renewing = false;
  });
};
const timer = setInterval(tick, data.renewMs);

// ready once every queue's connection is up (a worker must not take a job whose lock nobody renews yet); a
// Redis that is down now is waited for by the worker itself, so readiness is reported either way
Promise.allSettled(data.queues.map((name) => queue(name).waitUntilReady())).then(() => post({ type: 'ready' }));

port.on('message', (m: KeeperRequest) => {
  if (m.type === 'track') {
    tracked.set(m.id, { queue: m.queue, token: m.token });
    // the lock was taken with a full lockMs; extend it now rather than up to renewMs later
    tick();
  }
  else if (m.type === 'untrack') {
    if (tracked.get(m.id)?.token === m.token) tracked.delete(m.id);
  } else {
    closing = true;
    clearInterval(timer);
    Promise.allSettled([...queues.values()].map((q) => q.close())).then(() => {
      post({ type: 'closed' });
      port.close();
    });
  }
});
