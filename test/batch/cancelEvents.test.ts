import { join } from 'node:path';

import { Job, Queue, QueueEvents } from 'bullmq';
import { describe, expect, it } from 'vitest';

import { probePlan } from '../../ts/batch/graph.js';
import { cancelBatch, getBatchStatus } from '../../ts/batch/inspect.js';
import { PREFIX, redisConnection } from '../../ts/batch/redis.js';
import { CANCELLED_REASON, isCancelledReason, type BatchEvent } from '../../ts/batch/status.js';
import { submitPlan } from '../../ts/batch/submit.js';
import { createWorker } from '../../ts/batch/worker.js';
import { redisAvailable, redisTestBed } from './redis.js';
import { until } from '../helpers/waitFor.js';

// A job running when its batch is cancelled is stopped, and BullMQ records it as failed (its 'failed' event, the
// failed set), with failedReason 'batch cancelled'. `batch status` said cancelled, but the worker's own log line
// and events said 'failed': they say cancelled now, and a BullMQ listener tells a cancel apart by its reason.

const { dir, workers, url } = redisTestBed('bl-cancel-events-');

describe.skipIf(!redisAvailable)('a running job stopped by batch cancel', () => {
  it("is 'cancelled' in the worker's log and events; BullMQ's 'failed' event carries the cancel's reason", { timeout: 90_000 }, async () => {
    const logs: string[] = [];
    const events: BatchEvent[] = [];
    workers.push(await createWorker({ redis: url(), pollMs: 100, onLog: (l) => logs.push(l), onEvent: (e) => events.push(e) }));
    // one long probe job (on the data queue) under its subject's join
    const plan = probePlan('ce', 1, join(dir, 'ce'), 60_000);
    const id = plan.subjects[0].shared[0].id;
    const listener = new QueueEvents('data', { connection: redisConnection(url()), prefix: PREFIX });
    const failed: { jobId: string; failedReason: string }[] = [];
    listener.on('failed', (e) => failed.push(e));
    await listener.waitUntilReady();
    try {
      await submitPlan(plan, { redis: url() });
      await until('the probe running', async () => events.some((e) => e.job?.id === id && e.job.state === 'active'));
      expect((await cancelBatch('ce', { redis: url() })).running).toBe(1);

      const ended = await until('the worker to end the job', async () => events.find((e) => e.job?.id === id && e.job.state !== 'active'));
      expect(ended.job).toMatchObject({ state: 'cancelled', reason: CANCELLED_REASON });
      expect(ended.job!.startedAt).toBeGreaterThan(0);
      expect(logs).toContain(`${id} cancelled while it ran (${CANCELLED_REASON})`);
      expect(logs.filter((l) => l.startsWith(`${id} failed`))).toEqual([]);

      // what a listener on BullMQ sees: a failure, told apart from a real one by its reason
      await until("BullMQ's 'failed' event", async () => failed.length > 0);
      expect(failed).toMatchObject([{ jobId: id, failedReason: CANCELLED_REASON }]);
      expect(isCancelledReason(failed[0].failedReason)).toBe(true);
      expect(isCancelledReason('Error: something broke')).toBe(false);
      const data = new Queue('data', { connection: redisConnection(url()), prefix: PREFIX });
      try {
        const job = (await Job.fromId(data, id))!;
        expect([await job.getState(), job.failedReason, isCancelledReason(job.failedReason)]).toEqual(['failed', CANCELLED_REASON, true]);
      } finally {
        await data.close();
      }
      expect((await getBatchStatus('ce', { redis: url() })).jobs.find((j) => j.id === id)).toMatchObject({ state: 'cancelled', reason: CANCELLED_REASON });
    } finally {
      await listener.close();
    }
  });
});
