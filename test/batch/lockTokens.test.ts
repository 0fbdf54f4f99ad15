import { join } from 'node:path';

import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';

import { probePlan } from '../../ts/batch/graph.js';
import { PREFIX } from '../../ts/batch/redis.js';
import { submitPlan } from '../../ts/batch/submit.js';
import { lockTokens } from '../../ts/batch/lockToken.js';
import { createWorker } from '../../ts/batch/worker.js';
import { until } from '../helpers/waitFor.js';
import { redisAvailable, redisTestBed } from './redis.js';

// A job's lock token is who owns the job (renewals, completion and failure check it). It was `<name>:<n>`, n counting
// the worker's fetches from 0: two workers started with the same --name (one Slurm script for a whole array) made the
// same tokens, so a worker that hung past its lock, whose job its namesake then took under the same token, had its
// renewals accepted when it resumed, and both ran the job and recorded it.

describe('lock tokens', () => {
  it('of two workers with the same name are never the same', () => {
    const a = lockTokens('gpu');
    const b = lockTokens('gpu');
    const fromA = new Set(Array.from({ length: 1000 }, a));
    const fromB = Array.from({ length: 1000 }, b);
    expect(fromB.filter((t) => fromA.has(t))).toEqual([]);
    expect(fromB[0]).toMatch(/^gpu:[0-9a-f]{8}:0$/);
  });
});

const { dir, workers, url } = redisTestBed('bl-lock-tokens-');

describe.skipIf(!redisAvailable)('a worker given a name', () => {
  it("holds its job's lock with a token of its own, its name shown as the job's worker", { timeout: 60_000 }, async () => {
    const w = await createWorker({ redis: url(), name: 'twin', pollMs: 100, graceMs: 0, queues: ['data', 'control'] });
    workers.push(w);
    const plan = probePlan('lt', 1, join(dir, 'lt'), 20_000);
    const { id, queue } = plan.subjects[0].shared[0];
    expect(queue).toBe('data');
    await submitPlan(plan, { redis: url() });
    const client = new Redis(url());
    try {
      const token = await until('the probe to be locked', async () => client.get(`${PREFIX}:${queue}:${id}:lock`));
      expect(token).toMatch(/^twin:[0-9a-f]{8}:\d+$/);
      expect(await client.hget(`${PREFIX}:${queue}:${id}`, 'pb')).toBe('twin');
    } finally {
      client.disconnect();
      await w.close();
    }
  });
});
