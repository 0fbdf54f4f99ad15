/**
 * Keeps the locks of a worker's running jobs alive from a thread of its own (lockKeeperThread.ts). BullMQ's own
 * renewal runs on the worker's event loop: a loop held up for longer than the lock (a long synchronous call, a
 * machine so loaded that timers fire seconds late) lets the lock expire while the job still runs, the job is
 * taken for stalled, runs twice, and after `maxStalledCount` such stalls it fails. The keeper renews every
 * lockMs/4 on its own loop and Redis connection, for as long as the main thread shows signs of life.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';


import { packageRoot } from '../native/binding.js';
import type { RedisConnection } from './redis.js';
import type { KeeperData, KeeperReply, KeeperRequest } from './lockKeeperThread.js';

/** The compiled thread entry (dist/batch/lockKeeperThread.js), also when this module runs from the TypeScript sources. */
function threadPath(): string {
  const here = join(dirname(fileURLToPath(import.meta.url)), 'lockKeeperThread.js');
  return existsSync(here) ? here : join(packageRoot, 'dist', 'batch', 'lockKeeperThread.js');
}

export interface LockKeeperOptions {
  connection: RedisConnection;
  prefix: string;
  queues: string[];
  lockMs: number;
  /** The main thread silent this long counts as hung: its locks are left to expire. Default max(60 s, 10 × lockMs). */
  hangMs?: number;
  /**
   * A job's lock was lost (it expired, or another worker holds it): this worker must stop working on it. `gone`: the
   * job is not in Redis at all (restarted without its data, or purged), so no worker will run it again.
   */
  onLost: (id: string, token: string, gone: boolean) => void;
  onLog: (message: string) => void;
}

export class LockKeeper {
  private thread!: Worker;
  private readonly beat = new BigInt64Array(new SharedArrayBuffer(8));
  private readonly pulse: NodeJS.Timeout;
  private readonly tracked = new Map<string, { queue: string; token: string }>();
  private closing = false;
  private markReady!: () => void;
  /** Resolves when the thread is connected and renewing (await it before taking jobs). */
  readonly ready = new Promise<void>((resolve) => (this.markReady = resolve));

  constructor(private readonly options: LockKeeperOptions) {
    const beat = () => Atomics.store(this.beat, 0, BigInt(Date.now()));
    beat();
    this.pulse = setInterval(beat, 250);
    this.pulse.unref();
    this.startThread();
  }

  private startThread(): void {
    const o = this.options;
    const data: KeeperData = {
      connection: o.connection,
      prefix: o.prefix,
      queues: o.queues,
      lockMs: o.lockMs,
      renewMs: Math.max(100, Math.floor(o.lockMs / 4)),
      hangMs: o.hangMs ?? Math.max(60_000, 10 * o.lockMs),
      heartbeat: this.beat.buffer as SharedArrayBuffer,
    };
    const t = new Worker(threadPath(), { workerData: data });
    this.thread = t;
    t.on('message', (m: KeeperReply) => {
      if (m.type === 'lost') {
        if (this.tracked.get(m.id)?.token !== m.token) return;
        this.tracked.delete(m.id);
        o.onLost(m.id, m.token, m.gone);
      } else if (m.type === 'ready') this.markReady();
      else if (m.type === 'log') o.onLog(`lock keeper: ${m.message}`);
    });
    t.on('error', (e) => o.onLog(`lock keeper: ${e.message}`));
    t.on('exit', () => {
      if (this.closing) return;
      // a keeper that died is replaced at once, with every lock it kept
      o.onLog('lock keeper: thread exited; starting another');
      this.startThread();
      for (const [id, r] of this.tracked) this.send({ type: 'track', id, ...r });
    });
  }

  private send(m: KeeperRequest): void {
    this.thread.postMessage(m);
  }

  /** Keeps the lock of a job this worker holds with `token`. */
  track(queue: string, id: string, token: string): void {
    this.tracked.set(id, { queue, token });
    this.send({ type: 'track', queue, id, token });
  }

  untrack(id: string, token: string): void {
    if (this.tracked.get(id)?.token !== token) return;
    this.tracked.delete(id);
    this.send({ type: 'untrack', id, token });
  }

  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.pulse);
    const closed = new Promise<void>((resolve) => {
      this.thread.once('exit', () => resolve());
      this.thread.on('message', (m: KeeperReply) => m.type === 'closed' && void this.thread.terminate());
    });
    this.send({ type: 'close' });
    // a thread stuck on an unreachable Redis is not waited for
    const timeout = setTimeout(() => void this.thread.terminate(), 5000);
    await closed;
    clearTimeout(timeout);
  }
}
