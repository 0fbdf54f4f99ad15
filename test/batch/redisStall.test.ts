import { once } from 'node:events';
import net from 'node:net';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { RedisUnreachableError } from '../../ts/batch/errors.js';
import { probePlan } from '../../ts/batch/graph.js';
import { cancelBatch, getBatchStatus, listBatches, retryBatch, waitForRecordedBatch, watchBatch } from '../../ts/batch/inspect.js';
import { keys, shownRedisUrl, withShortLivedRedis } from '../../ts/batch/redis.js';
import type { BatchEvent } from '../../ts/batch/status.js';
import { submitPlan } from '../../ts/batch/submit.js';
import { runCommand } from '../helpers/nodeChild.js';
import { redisAvailable, redisTestBed } from './redis.js';

// A Redis that answered the first check and then stops answering (stopped with SIGSTOP, or stalled mid-command):
// BullMQ's connections have no command timeout, so `batch status` and `batch cancel --purge` waited for as long as it
// stalled (for ever). Every call is raced against a generous guard only so that a hang fails the test instead of the
// file: the assertion is the error, never the time.

const { dir, url, redis } = redisTestBed('bl-redisstall-');
const cli = join(process.cwd(), 'dist', 'cli', 'main.js');

type Settled = { ok?: unknown; err?: Error; hung?: true };
const settled = (p: Promise<unknown>): Promise<Settled> =>
  Promise.race([p.then((v) => ({ ok: v }), (e: unknown) => ({ err: e as Error })), new Promise<Settled>((r) => setTimeout(() => r({ hung: true }), 25_000).unref())]);

const stalled = (at: string) => `Redis at ${shownRedisUrl(at)} did not answer within 2 s (running but stalled?)`;

/**
 * A TCP proxy to the test's Redis that goes silent (forwards nothing either way, on every connection, new ones
 * included) once a client sends `marker`, or when `stall()` is called; `resume()` forwards again (new connections).
 */
async function stallingProxy(target: number, marker?: string) {
  let silent = false;
  const sockets: net.Socket[] = [];
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    sockets.push(client, upstream);
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.on('data', (d: Buffer) => {
      if (marker && d.includes(marker)) silent = true;
      if (!silent) upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (!silent) client.write(d);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    /** The test Redis's URL (its password) through the proxy. */
    url: url().replace(/:\d+$/, `:${port}`),
    stall: () => void (silent = true),
    /** Closes every connection open now, as a Redis whose `timeout` drops idle clients does (new ones are taken). */
    drop: () => {
      for (const s of sockets.splice(0)) s.destroy();
    },
    resume: () => void (silent = false),
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe.skipIf(!redisAvailable)('a Redis that stops answering after the first check', () => {
  it('status, cancel --purge, retry, list and submit stalled mid-command reject with RedisUnreachableError naming the URL', { timeout: 120_000 }, async () => {
    await submitPlan(probePlan('mid', 2, join(dir, 'mid'), 10), { redis: url() });
    // silent from the first command that names the batch's record: after the connection, its AUTH and BullMQ's INFO
    const calls: [string, (at: string) => Promise<unknown>][] = [
      ['getBatchStatus', (at) => getBatchStatus('mid', { redis: at })],
      ['cancelBatch --purge', (at) => cancelBatch('mid', { redis: at, purge: true })],
      ['retryBatch', (at) => retryBatch('mid', { redis: at })],
      ['listBatches', (at) => listBatches({ redis: at })],
      ['submitPlan', (at) => submitPlan(probePlan('mid', 2, join(dir, 'mid'), 10), { redis: at })],
    ];
    for (const [name, call] of calls) {
      const proxy = await stallingProxy(redis().port, name === 'listBatches' ? 'brainlatent:batches' : name === 'submitPlan' ? 'brainlatent:control:' : 'brainlatent:batch:mid');
      try {
        const r = await settled(call(proxy.url));
        expect(r.hung, name).toBeUndefined();
        expect(r.err, name).toBeInstanceOf(RedisUnreachableError);
        expect(r.err!.message, name).toBe(stalled(proxy.url));
        expect((r.err as RedisUnreachableError).url, name).toBe(shownRedisUrl(proxy.url));
      } finally {
        proxy.close();
      }
    }
    // nothing was cancelled or purged
    expect((await getBatchStatus('mid', { redis: url() })).counts.cancelled).toBe(0);
  });

  it('batch status and batch cancel --purge of a redis-server stopped with SIGSTOP exit 1 with the stall named, no stack', { timeout: 120_000 }, async () => {
    await submitPlan(probePlan('stopped', 2, join(dir, 'stopped'), 10), { redis: url() });
    const pid = redis().pid();
    process.kill(pid, 'SIGSTOP');
    try {
      for (const args of [['batch', 'status', 'stopped'], ['batch', 'cancel', 'stopped', '--purge']]) {
        const r = await runCommand(process.execPath, [cli, ...args, '--redis', url()], { hangLimitMs: 25_000 });
        const what = args.join(' ');
        expect(r.status, what).toBe(1);
        expect(r.stderr.trim(), what).toBe(`brainlatent: RedisUnreachableError: ${stalled(url())}`);
      }
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect((await getBatchStatus('stopped', { redis: url() })).counts.cancelled).toBe(0);
  });

  it('watchBatch says once that Redis stalled, keeps trying, and says when it answers again', { timeout: 120_000 }, async () => {
    await submitPlan(probePlan('watched', 1, join(dir, 'watched'), 10), { redis: url() });
    const proxy = await stallingProxy(redis().port);
    const seen: string[] = [];
    try {
      const watch = watchBatch('watched', { redis: proxy.url, intervalMs: 200 });
      const next = async () => {
        const r = await settled(watch.next());
        expect(r.hung).toBeUndefined();
        if (r.err) throw r.err;
        return (r.ok as IteratorResult<{ type: string; state?: string; redis?: { answering: boolean; message: string } }>).value!;
      };
      let e = await next();
      while (e.type !== 'batch') e = await next();
      proxy.stall();
      while (e.type !== 'redis') e = await next();
      seen.push(`${e.redis!.answering}: ${e.redis!.message}`);
      proxy.resume();
      e = await next();
      while (e.type !== 'redis') e = await next();
      seen.push(`${e.redis!.answering}: ${e.redis!.message}`);
      await cancelBatch('watched', { redis: url() });
      while (!(e.type === 'batch' && e.state !== 'running')) e = await next();
      seen.push(`batch ${e.state}`);
    } finally {
      proxy.close();
    }
    expect(seen).toEqual([`false: ${stalled(proxy.url)}`, `true: Redis at ${shownRedisUrl(proxy.url)} answers again`, 'batch cancelled']);
  });

  /** watchBatch's events through `proxy` until the batch event after `act` ran once a first batch event came. */
  async function eventsAround(name: string, proxyUrl: string, act: () => Promise<void>): Promise<string[]> {
    const watch = watchBatch(name, { redis: proxyUrl, intervalMs: 200 });
    const next = async () => {
      const r = await settled(watch.next());
      expect(r.hung).toBeUndefined();
      if (r.err) throw r.err;
      return (r.ok as IteratorResult<BatchEvent>).value!;
    };
    try {
      let e = await next();
      while (e.type !== 'batch') e = await next();
      await act();
      const after: string[] = [];
      e = await next();
      while (e.type !== 'batch') {
        after.push(e.type === 'redis' ? `redis ${e.redis!.answering}` : e.type);
        e = await next();
      }
      return [...after, 'batch'];
    } finally {
      await watch.return(undefined);
    }
  }

  it('watchBatch reopens a connection the server closed (its idle timeout) in the same tick: no outage said', { timeout: 120_000 }, async () => {
    await submitPlan(probePlan('dropped', 1, join(dir, 'dropped'), 10), { redis: url() });
    const proxy = await stallingProxy(redis().port);
    try {
      // (before: 'redis false', 'redis true' for a connection that was only idle)
      expect(await eventsAround('dropped', proxy.url, async () => proxy.drop())).toEqual(['batch']);
    } finally {
      proxy.close();
      await cancelBatch('dropped', { redis: url() });
    }
  });

  it('watchBatch throws an error that is not Redis not answering (a record that does not parse) instead of waiting it out', { timeout: 120_000 }, async () => {
    await submitPlan(probePlan('garbled', 1, join(dir, 'garbled'), 10), { redis: url() });
    const proxy = await stallingProxy(redis().port);
    let record = '';
    try {
      const broken = eventsAround('garbled', proxy.url, async () => {
        await withShortLivedRedis(url(), async (c) => {
          const client = c as unknown as { get(k: string): Promise<string>; set(k: string, v: string): Promise<unknown> };
          record = await client.get(keys.batch('garbled'));
          await client.set(keys.batch('garbled'), '{not json');
        });
      });
      // (before: a 'redis' event "Redis at …: Unexpected token …", the watch going on for ever)
      await expect(broken).rejects.toThrow(SyntaxError);
    } finally {
      proxy.close();
      if (record) await withShortLivedRedis(url(), (c) => (c as unknown as { set(k: string, v: string): Promise<unknown> }).set(keys.batch('garbled'), record));
      await cancelBatch('garbled', { redis: url() });
    }
  });

  it("runBatch's wait for the batch it just recorded waits out a Redis that stalls at the first read", { timeout: 120_000 }, async () => {
    await submitPlan(probePlan('first', 1, join(dir, 'first'), 10), { redis: url() });
    const proxy = await stallingProxy(redis().port);
    const events: string[] = [];
    try {
      proxy.stall();
      const done = settled(
        waitForRecordedBatch('first', {
          redis: proxy.url,
          intervalMs: 200,
          onEvent: (e) => {
            if (e.type !== 'redis') return;
            events.push(`${e.redis!.answering}`);
            if (e.redis!.answering) void cancelBatch('first', { redis: url() });
            else proxy.resume();
          },
        }),
      );
      // (before: rejected with RedisUnreachableError at the first read, the batch running on)
      const r = await done;
      expect([r.err?.message, (r.ok as { state?: string } | undefined)?.state]).toEqual([undefined, 'cancelled']);
    } finally {
      proxy.close();
    }
    expect(events).toEqual(['false', 'true']);
  });
});
