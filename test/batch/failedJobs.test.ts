import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { type BatchNode, type BatchPlan } from '../../ts/batch/graph.js';
import { getBatchStatus, waitForBatch } from '../../ts/batch/inspect.js';
import { runLocal } from '../../ts/batch/localRunner.js';
import { writePlan } from '../../ts/batch/outputs.js';
import type { JobInfo } from '../../ts/batch/status.js';
import { submitPlan } from '../../ts/batch/submit.js';
import { createWorker } from '../../ts/batch/worker.js';
import { redisAvailable, redisTestBed } from './redis.js';

// What a failed job and the jobs it blocks say, here and through BullMQ: the failed one the time its attempt ran
// (it read 0 s), the blocked ones the failed job that blocked them (through BullMQ 'subj03 failed', or the direct
// child as a BullMQ key), and the worker's log 'blocked by <job id>' (it said '<join> failed: child brainlatent:…').

const { dir, workers, url } = redisTestBed('bl-failedjobs-');

/** One subject 'F': probe p0 fails (an input error) after 300 ms; p1 on it, p2 on p1, the join on p2. */
function chain(id: string, out: string): BatchPlan {
  const probe = (i: number, deps: string[], fail = false): BatchNode => ({
    id: `${id}.F.p${i}`,
    batch: id,
    subject: 'F',
    analysis: null,
    stage: 'probe',
    shard: `p${i}`,
    queue: 'data',
    deps,
    work: { kind: 'probe', out, ms: 300, fail },
  });
  const shared = [probe(0, [], true), probe(1, [`${id}.F.p0`]), probe(2, [`${id}.F.p1`])];
  const root: BatchNode = { id: `${id}.F`, batch: id, subject: 'F', analysis: null, stage: 'subject', queue: 'control', deps: [`${id}.F.p2`], work: { kind: 'subject' } };
  return { id, out, hash: `chain-${id}`, retry: { attempts: 2, backoffMs: 100 }, subjects: [{ name: 'F', root, shared, analyses: [] }] };
}

const expectRootCause = (id: string, jobs: JobInfo[]) => {
  const by = Object.fromEntries(jobs.map((j) => [j.id, j]));
  expect(by[`${id}.F.p0`]).toMatchObject({ state: 'failed', reason: expect.stringMatching(/a probe told to fail/) });
  // the attempt ran its 300 ms before failing
  expect(by[`${id}.F.p0`].seconds).toBeGreaterThanOrEqual(0.25);
  for (const b of [`${id}.F.p1`, `${id}.F.p2`, `${id}.F`]) expect(by[b], b).toMatchObject({ state: 'blocked', reason: `${id}.F.p0 failed` });
};

describe('failed and blocked jobs', () => {
  it('locally: the failed attempt has its seconds, the blocked jobs name it', { timeout: 60_000 }, async () => {
    const st = await runLocal(chain('lf', join(dir, 'lf')), { concurrency: 1 });
    expect(st.state).toBe('failed');
    expectRootCause('lf', st.jobs);
  });

  it.skipIf(!redisAvailable)('through BullMQ: the same in batch status, and the worker logs "blocked by <job id>"', { timeout: 120_000 }, async () => {
    const plan = chain('rf', join(dir, 'rf'));
    await writePlan(plan);
    const lines: string[] = [];
    const w = await createWorker({ redis: url(), pollMs: 100, onLog: (l) => lines.push(l) });
    workers.push(w);
    await submitPlan(plan, { redis: url() });
    const report = await waitForBatch('rf', { redis: url(), intervalMs: 200 });
    expect(report.state).toBe('failed');
    expectRootCause('rf', (await getBatchStatus('rf', { redis: url() })).jobs);
    const log = lines.join('\n');
    for (const b of ['rf.F.p1', 'rf.F.p2', 'rf.F']) expect(log).toContain(`${b} blocked by rf.F.p0`);
    expect(log).not.toMatch(/child brainlatent/);
    await w.close();
  });
});
