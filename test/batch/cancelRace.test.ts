import { join } from 'node:path';

import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';

import { probePlan, type BatchNode, type BatchPlan } from '../../ts/batch/graph.js';
import { getBatchStatus } from '../../ts/batch/inspect.js';
import { keys, PREFIX, redisConnection } from '../../ts/batch/redis.js';
import { CANCELLED_REASON } from '../../ts/batch/status.js';
import { submitPlan } from '../../ts/batch/submit.js';
import { createWorker } from '../../ts/batch/worker.js';
import { redisAvailable, redisTestBed } from './redis.js';
import { until } from '../helpers/waitFor.js';

// `batch cancel` sets the batch's cancelled mark, then removes its jobs one by one (seconds for a big batch on a loaded
// Redis). A job a worker takes meanwhile fails 'batch cancelled' ("cancelled before it started"), and BullMQ fails the
// joins above it with it (failParentOnFailure). Those joins were failed as 'blocked by <that job>': the worker logged
// "fleet5b.subj01.recon.img2img blocked by ….k2-2.i8-15" and `batch status` counted 2 blocked ("recon/evaluate blocked:
// ….k2-2.i8-15 failed") in a batch where nothing failed. Here the race is made certain: the mark is set before any
// worker runs and nothing is removed, as at the start of a cancel's pass.

const { dir, workers, url } = redisTestBed('bl-cancel-race-');

/**
 * Subject S: probe p0, p1 on it (a work job with a job under it), the join on p1, and an analysis 'a' of one probe
 * that the join adds when it runs (never, here).
 */
function chain(id: string, out: string): BatchPlan {
  const probe = (name: string, deps: string[], analysis: string | null = null): BatchNode => ({
    id: `${id}.S.${name}`,
    batch: id,
    subject: 'S',
    analysis,
    stage: 'probe',
    shard: name,
    queue: 'data',
    deps,
    work: { kind: 'probe', out, ms: 50 },
  });
  const shared = [probe('p0', []), probe('p1', [`${id}.S.p0`])];
  const root: BatchNode = { id: `${id}.S`, batch: id, subject: 'S', analysis: null, stage: 'subject', queue: 'control', deps: [`${id}.S.p1`, `${id}.S.a`], work: { kind: 'subject' } };
  const analysis = { name: 'a', kind: 'encode' as const, out: join(out, 'a'), steps: [probe('a', [`${id}.S.p1`], 'a')] };
  return { id, out, hash: `race-${id}`, retry: { attempts: 2, backoffMs: 100 }, subjects: [{ name: 'S', root, shared, analyses: [analysis] }] };
}

describe.skipIf(!redisAvailable)('a job taken while a cancel is under way', () => {
  it('cancels the joins above it: cancelled in the log, the events and batch status, nothing blocked', { timeout: 90_000 }, async () => {
    const plan = chain('crace', join(dir, 'crace'));
    await submitPlan(plan, { redis: url() });
    const client = new Redis(url());
    try {
      await client.set(keys.cancelled('crace'), '1');
    } finally {
      client.disconnect();
    }
    const logs: string[] = [];
    const ended = new Map<string, string | undefined>();
    const worker = await createWorker({
      redis: url(),
      pollMs: 100,
      onLog: (l) => logs.push(l),
      onEvent: (e) => {
        if (e.job && e.job.state !== 'active' && e.job.state !== 'waiting') ended.set(e.job.id, `${e.job.state}: ${e.job.reason}`);
      },
    });
    workers.push(worker);
    await until('the join to end', async () => ended.has('crace.S'));
    await worker.close(); // (the next test plays an older worker by hand)

    expect(Object.fromEntries(ended)).toEqual({
      'crace.S.p0': `cancelled: ${CANCELLED_REASON}`,
      'crace.S.p1': `cancelled: ${CANCELLED_REASON}`,
      'crace.S': `cancelled: ${CANCELLED_REASON}`,
    });
    expect(logs).toContain(`crace.S.p0 cancelled before it started (${CANCELLED_REASON})`);
    expect(logs).toContain(`crace.S.p1 cancelled with a job under it (${CANCELLED_REASON})`);
    expect(logs).toContain(`crace.S cancelled with a job under it (${CANCELLED_REASON})`);
    expect(logs.filter((l) => /blocked|failed/.test(l))).toEqual([]);
    const st = await getBatchStatus('crace', { redis: url() });
    // (the analysis's job, never added: its subject's join was cancelled, it did not fail)
    expect(st.jobs.map((j) => [j.id, j.state, j.reason]).sort()).toEqual([
      ['crace.S', 'cancelled', CANCELLED_REASON],
      ['crace.S.a', 'cancelled', CANCELLED_REASON],
      ['crace.S.p0', 'cancelled', CANCELLED_REASON],
      ['crace.S.p1', 'cancelled', CANCELLED_REASON],
    ]);
    expect(st.state).toBe('cancelled');
    expect(st.counts).toMatchObject({ blocked: 0, failed: 0, cancelled: 4 });
  });

  it("batch status: a join an older worker failed as 'blocked by' a cancelled job is cancelled", { timeout: 90_000 }, async () => {
    // one probe stopped by the cancel, its join failed as workers before the fix did: 'blocked by <the probe>'
    const plan = probePlan('cold', 1, join(dir, 'cold'), 50);
    await submitPlan(plan, { redis: url() });
    const connection = redisConnection(url());
    const take = async (queue: string, fail: Error) => {
      const w = new Worker(queue, null, { connection, prefix: PREFIX, autorun: false });
      try {
        const job = await until(`a job of ${queue}`, async () => w.getNextJob('old-worker', { block: false }));
        await job.moveToFailed(fail, 'old-worker', false);
      } finally {
        await w.close();
      }
    };
    await take(plan.subjects[0].shared[0].queue, new UnrecoverableError(CANCELLED_REASON));
    await take('control', new UnrecoverableError(`blocked by ${plan.subjects[0].shared[0].id}`));
    const control = new Queue('control', { connection, prefix: PREFIX });
    try {
      expect(await (await control.getJob('cold.probe'))!.getState()).toBe('failed');
    } finally {
      await control.close();
    }
    const client = new Redis(url());
    try {
      await client.set(keys.cancelled('cold'), '1');
    } finally {
      client.disconnect();
    }
    const st = await getBatchStatus('cold', { redis: url() });
    expect(st.jobs.map((j) => [j.id, j.state, j.reason])).toEqual([
      ['cold.probe.p0000', 'cancelled', CANCELLED_REASON],
      ['cold.probe', 'cancelled', CANCELLED_REASON],
    ]);
    expect(st.counts).toMatchObject({ blocked: 0, cancelled: 2 });
    expect(st.state).toBe('cancelled');
  });
});
