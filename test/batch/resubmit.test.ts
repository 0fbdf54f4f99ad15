import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { BatchError } from '../../ts/batch/errors.js';
import { probePlan, type BatchNode, type BatchPlan } from '../../ts/batch/graph.js';
import { cancelBatch, getBatchStatus, waitForBatch } from '../../ts/batch/inspect.js';
import { submitPlan } from '../../ts/batch/submit.js';
import { shownRedisUrl } from '../../ts/batch/redis.js';
import { submitLines } from '../../ts/cli/commands/batch.js';
import { createWorker } from '../../ts/batch/worker.js';
import { redisAvailable, redisTestBed } from './redis.js';
import { sleep, until } from '../helpers/waitFor.js';

// `batch submit` a second time: after a cancel (the subjects it cut off run again, whole, instead of waiting for
// ever on the job the cancel stopped), and with another manifest under the same name (refused, and the plan on
// disk, which `batch retry` reads, stays the submitted one); and what a cancel shows for a subject that had failed.
// Tiny probe jobs, no world.

const { dir, workers, url } = redisTestBed('bl-resubmit-');

/**
 * One subject of three probe jobs in a chain (each after the one before), so that the cancel stops one mid-chain:
 * the first and last take `ms`, the middle one (the one cut off) `middleMs`.
 */
function chain(id: string, out: string, ms: number, middleMs: number): BatchPlan {
  const p = probePlan(id, 3, out, ms);
  const s = p.subjects[0];
  const shared: BatchNode[] = s.shared.map((n, i) => ({
    ...n,
    deps: i ? [s.shared[i - 1].id] : [],
    ...(i === 1 && n.work.kind === 'probe' ? { work: { ...n.work, ms: middleMs } } : {}),
  }));
  return { ...p, hash: `chain-${ms}-${middleMs}`, subjects: [{ ...s, root: { ...s.root, deps: [shared[2].id] }, shared }] };
}

describe.skipIf(!redisAvailable)('submitting a batch again', () => {
  it('after a cancel, runs the cut-off subject again to the end instead of leaving it waiting for the stopped job', { timeout: 180_000 }, async () => {
    // the second job (10 s) outlasts the cancel's path by construction: cancelBatch reads the batch's status before it
    // marks it cancelled, and the worker looks for a cancel every 2 s; a 3 s job, cut at its first step, left ~0.9 s
    // of slack, and one that ended first was done, not cut off. The others are short: the run stays ~15 s
    const plan = chain('rs', join(dir, 'rs'), 200, 10_000);
    // the cancel comes once the second job has reported a step here (a poll of Redis for 'active' could miss it on a
    // loaded machine, or look too late)
    let secondRuns!: () => void;
    const second = new Promise<void>((r) => (secondRuns = r));
    const w = await createWorker({
      redis: url(), pollMs: 100, lockMs: 3000, stallMs: 1000,
      onEvent: (e) => {
        if (e.job?.id === 'rs.probe.p0001' && e.job.fraction > 0) secondRuns();
      },
    });
    workers.push(w);
    await submitPlan(plan, { redis: url() });
    await second;
    const running = { id: 'rs.probe.p0001' };
    await cancelBatch('rs', { redis: url() });
    await until('the running job to stop', async () => (await getBatchStatus('rs', { redis: url() })).jobs.find((j) => j.id === running.id)!.state === 'cancelled');

    const again = await submitPlan(plan, { redis: url() });
    expect(again).toMatchObject({ added: ['probe'], existing: [] });
    const report = await waitForBatch('rs', { redis: url(), intervalMs: 200, signal: AbortSignal.timeout(60_000) });
    expect(report.state).toBe('done');
    expect(Object.fromEntries(report.jobs.map((j) => [j.id, j.state]))).toEqual({ 'rs.probe.p0000': 'skipped', 'rs.probe.p0001': 'done', 'rs.probe.p0002': 'done', 'rs.probe': 'done' });
  });

  it('with another manifest under the same name: refused before the plan on disk is touched', { timeout: 60_000 }, async () => {
    const out = join(dir, 'same');
    await submitPlan(probePlan('same', 2, out, 10), { redis: url() });
    const saved = readFileSync(join(out, 'batch.json'), 'utf8');
    expect(JSON.parse(saved).hash).toBe(probePlan('same', 2, out, 10).hash);
    const other = submitPlan(probePlan('same', 5, out, 10), { redis: url() });
    await expect(other).rejects.toThrow(BatchError);
    await expect(other).rejects.toThrow(/batch 'same' was submitted before from another manifest/);
    expect(readFileSync(join(out, 'batch.json'), 'utf8')).toBe(saved);
  });
});

describe.skipIf(!redisAvailable)('batch cancel after a subject failed', () => {
  it('leaves that subject blocked behind its failure, not cancelled', { timeout: 120_000 }, async () => {
    // the shared probe cannot write its output (its folder is a file): the subject fails before it adds its analysis
    const out = join(dir, 'blk');
    writeFileSync(join(dir, 'a-file'), '');
    const p = probePlan('blk', 1, out, 10, { attempts: 1, backoffMs: 100 });
    const s = p.subjects[0];
    const shared = s.shared.map((n) => ({ ...n, work: { kind: 'probe' as const, out: join(dir, 'a-file', 'x'), ms: 10 } }));
    const analysis: BatchNode = { ...shared[0], id: 'blk.probe.a.p0000', analysis: 'a', stage: 'step', deps: [shared[0].id], work: { kind: 'probe', out, ms: 10 } };
    const plan: BatchPlan = { ...p, hash: 'blk', subjects: [{ ...s, shared, analyses: [{ name: 'a', kind: 'reconstruct', out, steps: [analysis] }] }] };
    workers.push(await createWorker({ redis: url(), pollMs: 100 }));
    await submitPlan(plan, { redis: url() });
    const failed = await waitForBatch('blk', { redis: url(), intervalMs: 200, signal: AbortSignal.timeout(60_000) });
    expect(failed.state).toBe('failed');
    const before = Object.fromEntries(failed.jobs.map((j) => [j.id, j.state]));
    expect(before).toEqual({ 'blk.probe.p0000': 'failed', 'blk.probe.a.p0000': 'blocked', 'blk.probe': 'blocked' });
    await cancelBatch('blk', { redis: url() });
    const after = await getBatchStatus('blk', { redis: url() });
    expect(Object.fromEntries(after.jobs.map((j) => [j.id, j.state]))).toEqual(before);
    // (the failed job that blocks it, as the local runner names it; it read 'probe failed', the subject)
    expect(after.jobs.find((j) => j.id === 'blk.probe.a.p0000')!.reason).toBe('blk.probe.p0000 failed');
  });
});

// submitting a finished batch again said 'added nothing; already queued: subj01, subj02, subj03' (they were done), then
// 'follow it with: brainlatent batch watch …'
describe.skipIf(!redisAvailable)('the subjects a submit finds already submitted', () => {
  it('are named by their state: done (then status, not watch), running', { timeout: 120_000 }, async () => {
    workers.push(await createWorker({ redis: url(), pollMs: 100 }));
    const shown = shownRedisUrl(url());
    const fin = probePlan('fin', 2, join(dir, 'fin'), 10);
    await submitPlan(fin, { redis: url() });
    expect((await waitForBatch('fin', { redis: url(), intervalMs: 200, signal: AbortSignal.timeout(60_000) })).state).toBe('done');
    const again = await submitPlan(fin, { redis: url() });
    expect(again).toMatchObject({ added: [], existing: ['probe'], existingStates: { probe: 'done' } });
    expect(submitLines({ ...again, plan: fin }, shown)).toBe(
      `batch fin: 3 jobs for 1 subject; added nothing; already submitted (done: probe)\nnothing is left to run; its summary: brainlatent batch status fin --redis ${shown}`,
    );

    const long = probePlan('long', 1, join(dir, 'long'), 60_000);
    await submitPlan(long, { redis: url() });
    await until('the probe running', async () => (await getBatchStatus('long', { redis: url() })).counts.active === 1);
    const running = await submitPlan(long, { redis: url() });
    expect(running.existingStates).toEqual({ probe: 'running' });
    expect(submitLines({ ...running, plan: long }, shown)).toBe(
      `batch long: 2 jobs for 1 subject; added nothing; already submitted (running: probe)\nfollow it with: brainlatent batch watch long --redis ${shown}`,
    );
    await cancelBatch('long', { redis: url(), purge: true, waitMs: 30_000 });
  });
});
