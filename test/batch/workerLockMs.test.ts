/**
 * A worker's job lock has a floor: with --lock-ms 0 (accepted before) every job it fetched stalled at once, in a
 * loop, and it ran nothing, silently (its fetch swallowed every error). Review s34-d.
 */
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { runBatch } from '../../ts/batch/runBatch.js';
import { createWorker } from '../../ts/batch/worker.js';
import { runCommand } from '../helpers/nodeChild.js';

const cli = join(process.cwd(), 'dist', 'cli', 'main.js');

describe("a worker's job lock", () => {
  it('is refused below 1000 ms, by createWorker and by worker --lock-ms, before Redis is looked at', async () => {
    for (const lockMs of [0, 999, 1500.5]) {
      await expect(createWorker({ redis: 'redis://127.0.0.1:1', lockMs })).rejects.toThrow(
        `createWorker lockMs: expected an integer in 1000..2147483647, got ${lockMs}`,
      );
    }
    const r = await runCommand(cli, ['worker', '--redis', 'redis://127.0.0.1:1', '--lock-ms', '0']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('InvalidArgumentError: --lock-ms: expected an integer from 1000 to 2147483647, got 0');
  });
});

describe("a worker's other numbers", () => {
  // (none was checked: each reached RedisUnreachableError, then was clamped, dropped or polled every 1 ms)
  const cases: [Record<string, number>, string][] = [
    [{ concurrency: NaN }, 'concurrency: expected an integer in 1..256, got NaN'],
    [{ concurrency: -1 }, 'concurrency: expected an integer in 1..256, got -1'],
    [{ concurrency: 2.5 }, 'concurrency: expected an integer in 1..256, got 2.5'],
    // (no bound before: each job process is a forked Node, and 1e9 forked one for every job queued)
    [{ concurrency: 257 }, 'concurrency: expected an integer in 1..256, got 257'],
    [{ threads: 2.5 }, 'threads: expected an integer in 0..4096, got 2.5'],
    [{ pollMs: NaN }, 'pollMs: expected an integer in 0..2147483647, got NaN'],
    [{ graceMs: -1 }, 'graceMs: expected an integer in 0..2147483647, got -1'],
    [{ stallMs: 0 }, 'stallMs: expected an integer in 1..2147483647, got 0'],
    [{ stallMs: 2 ** 31 }, 'stallMs: expected an integer in 1..2147483647, got 2147483648'],
    [{ lockMs: 2 ** 31 }, 'lockMs: expected an integer in 1000..2147483647, got 2147483648'],
    [{ maxStalledCount: 2.5 }, 'maxStalledCount: expected an integer in 0..1000, got 2.5'],
    // (beyond it the guard against a job that kills every worker is off in all but name)
    [{ maxStalledCount: 1001 }, 'maxStalledCount: expected an integer in 0..1000, got 1001'],
  ];
  it.each(cases)('%j is refused by createWorker before Redis is looked at', async (o, message) => {
    await expect(createWorker({ redis: 'redis://127.0.0.1:1', ...o })).rejects.toThrow(`createWorker ${message}`);
  });
  it('takes the bounds themselves (concurrency 256, maxStalledCount 1000): refused only for the Redis that is not there', async () => {
    const e = (await createWorker({ redis: 'redis://127.0.0.1:1', concurrency: 256, maxStalledCount: 1000 }).catch((x: Error) => x)) as Error;
    expect(e.name).toBe('RedisUnreachableError');
    // and runBatch's 256 passes its check, to fail on the manifest
    await expect(runBatch('/nonexistent/manifest.json', { concurrency: 256 })).rejects.toThrow('/nonexistent/manifest.json');
  });
  it("runBatch refuses a concurrency over the pool's bound, with or without Redis, before the manifest is read", async () => {
    for (const redis of [undefined, 'redis://127.0.0.1:1']) {
      await expect(runBatch('/nonexistent/manifest.json', { redis, concurrency: 257 })).rejects.toThrow('runBatch options.concurrency: expected an integer in ' + (redis ? 0 : 1) + '..256, got 257');
    }
  });
  it("is refused by runBatch's worker options with the same check, before the manifest is read", async () => {
    for (const [o, message] of cases.filter(([o]) => !('concurrency' in o))) {
      await expect(runBatch('/nonexistent/manifest.json', { redis: 'redis://127.0.0.1:1', worker: o })).rejects.toThrow(`runBatch worker ${message}`);
    }
  });
});
