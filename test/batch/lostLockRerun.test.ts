import { join } from 'node:path';

import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';

import { probePlan } from '../../ts/batch/graph.js';
import { cancelBatch, getBatchStatus } from '../../ts/batch/inspect.js';
import { PREFIX, redisConnection } from '../../ts/batch/redis.js';
import { submitPlan } from '../../ts/batch/submit.js';
import { createWorker } from '../../ts/batch/worker.js';
import { until } from '../helpers/waitFor.js';
import { redisAvailable, redisTestBed } from './redis.js';

// A job whose lock this worker lost keeps running here until it stops at its next step (a long native call does not
// look at its signal), and the job can meanwhile come back to this same worker under a new lock token. The worker's
// table of runs was keyed by the job's id alone: the new run overwrote the old one's entry and the old one's end
// deleted the new one's, so the new run was no longer counted against the concurrency (worker.running 0), nor
// stopped by `batch cancel` (it ran on and was recorded done in a cancelled batch). A review's reproduction (s34-d).

const { dir, workers, url } = redisTestBed('bl-lost-lock-');

describe.skipIf(!redisAvailable)('a job that comes back to the worker that lost its lock', () => {
  it('is one more run here: counted, and stopped by batch cancel', { timeout: 120_000 }, async () => {
    const logs: string[] = [];
    const w = await createWorker({ redis: url(), concurrency: 2, pollMs: 100, lockMs: 2000, stallMs: 500, onLog: (l) => logs.push(l) });
    workers.push(w);
    // one probe job of 20 s
    const plan = probePlan('ll', 1, join(dir, 'll'), 100, { attempts: 3, backoffMs: 200 }, { count: 1, ms: 20_000 });
    const id = plan.subjects[0].shared[0].id;
    await submitPlan(plan, { redis: url() });
    await until('the probe running', async () => w.running === 1 && w.processes.length === 1);
    const old = w.processes[0];
    // its process stops answering (a long native call) and its lock is gone (Redis away longer than the lock)
    process.kill(old, 'SIGSTOP');
    const redis = new Redis(redisConnection(url()));
    try {
      await redis.del(`${PREFIX}:${plan.subjects[0].shared[0].queue}:${id}:lock`);
    } finally {
      redis.disconnect();
    }
    // the stalled-job check puts it back in the queue, and this worker takes it again, in a second process
    await until('the job taken again here', async () => w.processes.length === 2);
    process.kill(old, 'SIGCONT');
    // the old run, told its lock is lost, ends; the new one runs on, counted (0 before: the old run's end took the
    // new one's entry with it)
    await until('the old run stopped', async () => logs.some((l) => l === `${id}: its run here stopped (its lock was lost)`));
    await new Promise((r) => setTimeout(r, 500)); // (its clean-up after that line)
    expect(w.running).toBe(1);
    expect((await getBatchStatus('ll', { redis: url() })).jobs.find((j) => j.id === id)?.state).toBe('active');
    // a cancel reaches the new run
    await cancelBatch('ll', { redis: url() });
    await until('the job stopped by the cancel', async () => (await getBatchStatus('ll', { redis: url() })).jobs.find((j) => j.id === id)?.state !== 'active');
    expect(w.running).toBe(0);
  });
});
