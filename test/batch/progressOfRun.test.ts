import { join } from 'node:path';

import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';

import { probePlan } from '../../ts/batch/graph.js';
import { getBatchStatus } from '../../ts/batch/inspect.js';
import { PREFIX, redisConnection } from '../../ts/batch/redis.js';
import { submitPlan } from '../../ts/batch/submit.js';
import { createWorker } from '../../ts/batch/worker.js';
import { until } from '../helpers/waitFor.js';
import { redisAvailable, redisTestBed } from './redis.js';

// A job's progress stays on it in Redis from one run to the next (an attempt that failed, a run whose worker died):
// the status showed a retry that had just started at the earlier attempt's 90 or 100 % until it reported. A worker's
// progress names its run (the job's processedOn, set when a run takes the job) and the status leaves out an earlier run's.

const { dir, workers, url } = redisTestBed('bl-progress-run-');

describe.skipIf(!redisAvailable)("a job's progress in the batch status", () => {
  it("is the running attempt's, not an earlier run's", { timeout: 60_000 }, async () => {
    const plan = probePlan('pr', 1, join(dir, 'pr'), 100);
    const node = plan.subjects[0].shared[0];
    await submitPlan(plan, { redis: url() });
    const queue = new Queue(node.queue, { connection: redisConnection(url()), prefix: PREFIX });
    const redis = new Redis(redisConnection(url()));
    try {
      const job = (await queue.getJob(node.id))!;
      // an earlier run (started at 111) got to 90 %; the run now going started at 222
      await job.updateProgress({ fraction: 0.9, message: 'features', run: 111 });
      await redis.hset(`${PREFIX}:${node.queue}:${node.id}`, 'processedOn', '222');
      const of = async () => (await getBatchStatus('pr', { redis: url() })).jobs.find((j) => j.id === node.id)!;
      expect((await of()).fraction).toBe(0);
      expect((await of()).message).toBeUndefined();
      // its own run's progress (and progress that names no run, as earlier versions wrote it) is shown
      await job.updateProgress({ fraction: 0.9, message: 'features', run: 222 });
      expect((await of()).fraction).toBe(0.9);
      await job.updateProgress({ fraction: 0.5, message: 'features' });
      expect((await of()).fraction).toBe(0.5);
      // a worker names the run it reports for: the job's processedOn
      const w = await createWorker({ redis: url(), concurrency: 1, pollMs: 100 });
      workers.push(w);
      await until('the probe done', async () => (await of()).state === 'done');
      const done = (await queue.getJob(node.id))!;
      expect(done.progress).toMatchObject({ fraction: 1, run: Number(done.processedOn) });
      expect(Number(done.processedOn)).toBeGreaterThan(222);
    } finally {
      redis.disconnect();
      await queue.close();
    }
  });
});
