import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { probePlan } from '../../ts/batch/graph.js';
import { waitForBatch } from '../../ts/batch/inspect.js';
import { submitPlan } from '../../ts/batch/submit.js';
import { createWorker, type BatchWorker } from '../../ts/batch/worker.js';
import { redisAvailable, startRedis, type TestRedis } from './redis.js';
import { sleep, until } from '../helpers/waitFor.js';

// A Redis outage longer than the lock, seen from a worker: it says once that it waits and once that Redis is back
// (not one error line per queue and nothing after), and a job that finished while Redis was away, whose lock
// expired meanwhile, is said to have finished and to run again (not 'could not record its failure').

const dir = mkdtempSync(join(tmpdir(), 'bl-outage-'));
let redis: TestRedis;
let worker: BatchWorker | undefined;
beforeAll(async () => {
  if (redisAvailable) redis = await startRedis();
});
afterAll(async () => {
  await worker?.close();
  await redis?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!redisAvailable)('a worker through a Redis outage longer than its locks', () => {
  it('says it waits and that Redis is back, once each, and the job that finished meanwhile runs again without being redone', { timeout: 120_000 }, async () => {
    const out = join(dir, 'out');
    const lines: string[] = [];
    // Redis stops once the probe runs in its job process (its first step reported here, not read back from Redis);
    // 'active' in Redis came earlier, before the job process was forked and the probe's own Redis reads, and on a
    // slow machine a 1.5 s probe then did not always end within the outage (its lock was then lost: no 'done here')
    let probing!: () => void;
    const probeRuns = new Promise<void>((r) => (probing = r));
    worker = await createWorker({
      redis: redis.url, name: 'ow', lockMs: 1000, stallMs: 500, pollMs: 100, onLog: (l) => lines.push(l),
      onEvent: (e) => {
        if (e.job?.stage === 'probe' && e.job.fraction > 0) probing();
      },
    });
    await submitPlan(probePlan('ou', 1, out, 3000), { redis: redis.url });
    await probeRuns;
    await redis.stop();
    // the probe finishes meanwhile (waited for, however slow the machine: its output is published while Redis is
    // away); its lock (1 s) expires
    await sleep(4000);
    await until('the probe to finish while Redis is away', async () => existsSync(join(out, 'published.log')));
    await redis.start();
    const report = await waitForBatch('ou', { redis: redis.url, intervalMs: 200, signal: AbortSignal.timeout(60_000) });
    expect(report.state).toBe('done');
    await until('Redis said to be back', async () => lines.some((l) => /answers again/.test(l)));

    const port = `127\\.0\\.0\\.1:${redis.port}`;
    expect(lines.filter((l) => new RegExp(`^Redis at redis://(\\S+@)?${port} is not reachable \\(.*\\): waiting for it; the jobs running here go on$`).test(l))).toHaveLength(1);
    expect(lines.filter((l) => new RegExp(`^Redis at redis://(\\S+@)?${port} answers again: going on$`).test(l))).toHaveLength(1);
    expect(lines.filter((l) => /^redis \(/.test(l))).toEqual([]);
    expect(lines.filter((l) => /could not record its failure/.test(l))).toEqual([]);
    expect(lines).toContainEqual(expect.stringMatching(/^ou\.probe\.p0000 done here in [\d.]+ s, but that could not be recorded \(.*\): the job runs again$/));
    // published once: the second run found the output complete
    expect(readFileSync(join(out, 'published.log'), 'utf8').trim().split('\n')).toHaveLength(1);
    expect(report.jobs.find((j) => j.stage === 'probe')!.state).toBe('skipped');
    await worker.close();
    worker = undefined;
  });

  it('a job whose record Redis lost while it ran (a restart without persistence) is said to need a new submit, not to run again', { timeout: 60_000 }, async () => {
    const lines: string[] = [];
    // a long lock: the probe ends before its lock is renewed (a renewal would find the lock gone first). Renewals
    // come every lockMs / 4 from the worker's start: with 20 s, a probe that had not ended 5 s after it (a slow
    // job process start) lost its lock; 240 s puts the first renewal past this test's own timeout
    // Redis is emptied once the probe's first step is reported here (not once 'active' is read back from Redis, which
    // a poll can miss or catch before the job process runs)
    let probing!: () => void;
    const probeRuns = new Promise<void>((r) => (probing = r));
    const w = await createWorker({
      redis: redis.url, name: 'ow2', pollMs: 100, lockMs: 240_000, onLog: (l) => lines.push(l),
      onEvent: (e) => {
        if (e.job?.stage === 'probe' && e.job.fraction > 0) probing();
      },
    });
    try {
      await submitPlan(probePlan('gone', 1, join(dir, 'gone'), 3000), { redis: redis.url });
      await probeRuns;
      const client = new Redis(redis.url);
      await client.flushall();
      client.disconnect();
      await until('the probe to end', async () => lines.find((l) => l.startsWith('gone.probe.p0000 done')), 30_000).catch((e: Error) => {
        throw new Error(`${e.message} (log: ${lines.join(' | ')})`);
      });
      expect(lines).toContainEqual(expect.stringMatching(/^gone\.probe\.p0000 done here in [\d.]+ s, but that could not be recorded \(Missing key .*\): Redis no longer has the job \(restarted without its data\?\): submit the batch again$/));
    } finally {
      await w.close();
    }
  });

  // the usual case: the job still runs when Redis comes back empty; its lock renewal fails, and the worker said
  // "lock lost (expired, or another worker has the job now)", which was untrue, and nothing of a new submit (review s44)
  it('a job whose record Redis lost while it still runs is stopped saying Redis no longer has it, and to submit again', { timeout: 60_000 }, async () => {
    const lines: string[] = [];
    let probing!: () => void;
    const probeRuns = new Promise<void>((r) => (probing = r));
    const w = await createWorker({
      redis: redis.url, name: 'ow3', pollMs: 100, lockMs: 1000, onLog: (l) => lines.push(l),
      onEvent: (e) => {
        if (e.job?.stage === 'probe' && e.job.fraction > 0) probing();
      },
    });
    try {
      await submitPlan(probePlan('gone2', 1, join(dir, 'gone2'), 20_000), { redis: redis.url });
      await probeRuns;
      const client = new Redis(redis.url);
      await client.flushall();
      client.disconnect();
      await until('the run to stop', async () => lines.find((l) => /^gone2\.probe\.p0000: its run here stopped/.test(l)), 30_000).catch((e: Error) => {
        throw new Error(`${e.message} (log: ${lines.join(' | ')})`);
      });
      expect(lines).toContain('gone2.probe.p0000: Redis no longer has the job (restarted without its data?): stopping it here; submit the batch again');
      expect(lines.filter((l) => /another worker has the job/.test(l))).toEqual([]);
    } finally {
      await w.close();
    }
  });
});
