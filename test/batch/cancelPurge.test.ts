import { join } from 'node:path';

import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';

import { probePlan } from '../../ts/batch/graph.js';
import { cancelBatch, getBatchStatus, listBatches, waitForBatch } from '../../ts/batch/inspect.js';
import { cancelLine } from '../../ts/cli/commands/batch.js';
import { PREFIX } from '../../ts/batch/redis.js';
import { submitPlan } from '../../ts/batch/submit.js';
import { createWorker } from '../../ts/batch/worker.js';
import { redisAvailable, redisTestBed } from './redis.js';
import { until } from '../helpers/waitFor.js';

// `batch cancel --purge` of a finished batch printed "cancelled; 3 jobs removed" while it removed every job of the
// batch: a finished subject join is removed with its children, and only the remove() calls were counted.

const { dir, workers, url } = redisTestBed('bl-purge-');

/** Keys of the batch's jobs in Redis (each job's hash and its lists: logs, dependencies, processed). */
async function jobKeys(batch: string): Promise<string[]> {
  const client = new Redis(url());
  try {
    return [...(await client.keys(`${PREFIX}:*:${batch}.*`)), ...(await client.keys(`${PREFIX}:*:${batch}`))];
  } finally {
    client.disconnect();
  }
}

describe.skipIf(!redisAvailable)('batch cancel --purge', () => {
  it('of a finished batch reports every job it removed, and leaves none of them in Redis', { timeout: 120_000 }, async () => {
    workers.push(await createWorker({ redis: url(), pollMs: 100 }));
    // two subjects of 3 probes and their join each: 8 jobs
    const a = probePlan('pg', 3, join(dir, 'pg'), 10);
    const b = probePlan('pg', 3, join(dir, 'pg'), 10).subjects[0];
    const rename = (id: string) => id.replace('pg.probe', 'pg.other');
    const other = { ...b, name: 'other', root: { ...b.root, id: rename(b.root.id), subject: 'other', deps: b.root.deps.map(rename) }, shared: b.shared.map((n) => ({ ...n, id: rename(n.id), subject: 'other' })) };
    const plan = { ...a, hash: 'purge-2x3', subjects: [...a.subjects, other] };
    await submitPlan(plan, { redis: url() });
    const report = await waitForBatch('pg', { redis: url(), intervalMs: 200, signal: AbortSignal.timeout(60_000) });
    expect(report.state).toBe('done');
    expect(report.jobs).toHaveLength(8);
    expect((await jobKeys('pg')).length).toBeGreaterThan(8);

    // a cancel without --purge leaves a finished batch as it is, and says so. (A probe whose lock lapsed on a loaded
    // machine runs again, finds the output it had published and counts as skipped: 7 done and 1 skipped in one CI run.)
    const c = await cancelBatch('pg', { redis: url() });
    expect(c).toEqual({ removed: 0, running: 0, finished: { state: 'done', counts: expect.objectContaining({ cancelled: 0 }) } });
    const counts = c.finished!.counts;
    expect(counts.done + counts.skipped).toBe(8);
    const finished = `done: ${counts.done} done${counts.skipped ? `, ${counts.skipped} skipped` : ''}`;
    expect(cancelLine('pg', c, false)).toBe(`batch pg: had already finished (${finished}); nothing was cancelled`);
    const still = await getBatchStatus('pg', { redis: url() });
    expect(still.state).toBe('done');
    expect(still.counts).toMatchObject({ done: counts.done, skipped: counts.skipped, cancelled: 0 });

    const r = await cancelBatch('pg', { redis: url(), purge: true });
    expect(r).toMatchObject({ removed: 8, running: 0, finished: { state: 'done' } });
    expect(cancelLine('pg', r, true)).toBe(`batch pg: had already finished (${finished}); purged: 8 jobs removed`);
    expect(await jobKeys('pg')).toEqual([]);
    expect(await listBatches({ redis: url() })).not.toContain('pg');
    // nothing left: a second purge finds no batch
    await expect(cancelBatch('pg', { redis: url(), purge: true })).rejects.toThrow(/no batch 'pg'/);
  });

  // `batch cancel NAME --purge` while a job ran printed 'cancelled; 19 jobs removed, 1 running (…)', exited 0 and purged
  // nothing: the record stayed, and another manifest under that name was refused
  it('of a batch with a running job waits for it to stop, then purges; a wait that runs out purges nothing and says so', { timeout: 120_000 }, async () => {
    workers.push(await createWorker({ redis: url(), pollMs: 100 }));
    const running = async (batch: string, id: string) =>
      until(`${id} running`, async () => (await getBatchStatus(batch, { redis: url() })).jobs.some((j) => j.id === id && j.state === 'active'));

    // no time to wait: nothing purged, the running job named
    const short = probePlan('pn', 1, join(dir, 'pn'), 60_000);
    const shortId = short.subjects[0].shared[0].id;
    await submitPlan(short, { redis: url() });
    await running('pn', shortId);
    const r0 = await cancelBatch('pn', { redis: url(), purge: true, waitMs: 0 });
    expect(r0).toMatchObject({ running: 1, notPurged: [shortId] });
    expect(cancelLine('pn', r0, true)).toBe(
      `batch pn: cancelled; ${r0.removed} ${r0.removed === 1 ? 'job' : 'jobs'} removed; not purged: 1 job still running (${shortId}); the batch's record stays (its name is still taken): run the purge again when it stops`,
    );
    expect(await listBatches({ redis: url() })).toContain('pn');
    // run again (with time to wait): purged
    const r1 = await cancelBatch('pn', { redis: url(), purge: true, waitMs: 30_000 });
    expect(r1.notPurged).toBeUndefined();
    expect(await listBatches({ redis: url() })).not.toContain('pn');
    expect(await jobKeys('pn')).toEqual([]);

    // time to wait: the purge waits for the running job to stop, removes it, then the record
    const plan = probePlan('pw', 1, join(dir, 'pw'), 60_000);
    const id = plan.subjects[0].shared[0].id;
    await submitPlan(plan, { redis: url() });
    await running('pw', id);
    const waited: string[][] = [];
    const r = await cancelBatch('pw', { redis: url(), purge: true, waitMs: 30_000, onWait: (ids) => waited.push(ids) });
    expect(waited[0]).toEqual([id]);
    expect(r).toEqual({ removed: 2, running: 1 });
    expect(cancelLine('pw', r, true)).toBe('batch pw: cancelled and purged; 2 jobs removed (1 of them once it had stopped running)');
    expect(await listBatches({ redis: url() })).not.toContain('pw');
    expect(await jobKeys('pw')).toEqual([]);
    // the name is free: another manifest may take it
    await submitPlan(probePlan('pw', 2, join(dir, 'pw'), 10), { redis: url() });
    expect((await waitForBatch('pw', { redis: url(), intervalMs: 200, signal: AbortSignal.timeout(60_000) })).state).toBe('done');
  });
});
