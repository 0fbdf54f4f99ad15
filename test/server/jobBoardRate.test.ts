/**
 * A job's rate and ETA over HTTP follow the CLI bar's rule (RateEstimator): measured from the stage's first
 * progress of the job's own work, the samples a resumed img2img reused counted in its fraction but not its rate.
 * Before, the board gave the estimator no counts: the reused seeds, reported within milliseconds, read as a rate of
 * 25 stages a second. Synthetic progress on a clock the test sets.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';

import type { BatchJobState, JobInfo } from '../../ts/batch/status.js';
import { singleProgress } from '../../ts/server/jobs/batchLayer.js';
import { JobBoard } from '../../ts/server/jobs/jobBoard.js';
import type { JobProgress, StageUpdate } from '../../ts/server/jobs/types.js';

afterEach(() => vi.restoreAllMocks());

describe("the job board's rate", () => {
  it('leaves out the samples a resumed img2img reused, and starts at its first own sample', () => {
    let ms = 0;
    vi.spyOn(performance, 'now').mockImplementation(() => ms);
    const board = new JobBoard();
    board.add({ id: 'j', kind: 'reconstruct', out: 'run', stages: ['img2img'] }, '/root/run');
    board.started('j');
    const at = (seconds: number, p: Omit<StageUpdate, 'stage' | 'index' | 'stages'>): JobProgress => {
      ms = seconds * 1000;
      board.progress('j', { stage: 'img2img', index: 1, stages: 1, ...p });
      return board.get('j')!.progress!;
    };
    const total = 48;
    at(0, { fraction: 0, status: 'running' });
    // seeds 0 and 1 of 4 were made by an interrupted run
    at(0.01, { fraction: 12 / total, message: 'seed 0 (done before)', count: { done: 12, total, reused: 12 } });
    let p = at(0.02, { fraction: 24 / total, message: 'seed 1 (done before)', count: { done: 24, total, reused: 24 } });
    expect(p.fraction).toBe(0.5);
    expect([p.rate, p.etaSeconds]).toEqual([null, null]);
    // this run's first sample: the rate's base (the time before it was start-up)
    p = at(10, { fraction: 25 / total, count: { done: 25, total, reused: 24 } });
    expect([p.rate, p.etaSeconds]).toEqual([null, null]);
    // one more sample in 10 s: 1/48 of the stage per 10 s, 22 samples left
    p = at(20, { fraction: 26 / total, count: { done: 26, total, reused: 24 } });
    expect(p.rate).toBeCloseTo(1 / total / 10, 12);
    expect(p.etaSeconds).toBeCloseTo(22 * 10, 6);
  });
});

describe("a batch of one's rate (the batch layer's img2img shards)", () => {
  it('leaves out the shards skipped as done before and the samples a resumed shard kept', () => {
    let ms = 0;
    vi.spyOn(performance, 'now').mockImplementation(() => ms);
    const board = new JobBoard();
    board.add({ id: 'j', kind: 'reconstruct', out: 'run', stages: ['betas', 'extract', 'img2img', 'report'] }, '/root/run');
    board.started('j');
    const report = singleProgress(['betas', 'extract', 'img2img', 'report'], { signal: new AbortController().signal, progress: (p) => board.progress('j', p) });
    const job = (id: string, stage: string, state: BatchJobState = 'waiting'): JobInfo => ({ id, subject: 'subj01', analysis: 'reconstruct', stage, queue: 'sample', state, fraction: state === 'skipped' ? 1 : 0, attempts: 0 });
    // four shards of 10 samples; the run before made shard 1 and 5 samples of shard 2
    const shards = Array.from({ length: 4 }, (_, i): JobInfo => ({ ...job(`img2img.i${i}`, 'img2img'), shard: `i${i}` }));
    const jobs = [job('betas', 'betas', 'skipped'), job('extract', 'extract', 'skipped'), ...shards, job('img2img', 'img2img')];
    const at = (seconds: number, i: number, more: Partial<JobInfo>): JobProgress => {
      ms = seconds * 1000;
      Object.assign(shards[i], more);
      report(jobs);
      return board.get('j')!.progress!;
    };
    const sample = (done: number, reused = 0) => ({ state: 'active' as const, fraction: done / 10, count: { done, total: 10, ...(reused ? { reused } : {}) } });
    at(0, 0, sample(1));
    at(10, 0, sample(2)); // this run's pace: a sample of shard 0 every 10 s, 1/40 of the stage
    at(20, 0, sample(3));
    // a worker takes shard 1: skipped at once (made before); another takes shard 2 and reports its 5 kept samples
    at(20.01, 1, { state: 'skipped', fraction: 1 });
    let p = at(20.02, 2, sample(5, 5));
    expect(p.fraction).toBeCloseTo((0.3 + 1 + 0.5) / 4, 12);
    // (before, the jump of 1.2 shards in 20 ms read as this run's work: 0.04 of the stage a second, 16 times its pace)
    expect(p.rate).toBeCloseTo(1 / 40 / 10.02, 12);
    // both compute: shard 0 a sample, shard 2 its first own sample; the rate from shard 0's second sample (t = 10)
    at(30, 0, sample(4));
    p = at(30, 2, sample(6, 5));
    expect(p.fraction).toBeCloseTo(2 / 4, 12);
    const own = (0.4 + 0.1) / 4 - 0.2 / 4;
    expect(p.rate).toBeCloseTo(own / 20, 12);
    expect(p.etaSeconds).toBeCloseTo(0.5 / (own / 20), 6);
  });
});

describe("a running job's rate and ETA as read", () => {
  it('count down from the last update, then are null with stalledSeconds once the stage reports nothing for the window', () => {
    // (before, a worker killed during img2img left GET /v1/jobs/ID at the same rate and ETA for ever)
    let ms = 0;
    vi.spyOn(performance, 'now').mockImplementation(() => ms);
    const board = new JobBoard();
    board.add({ id: 'j', kind: 'reconstruct', out: 'run', stages: ['img2img'] }, '/root/run');
    board.started('j');
    const update = (seconds: number, fraction: number) => {
      ms = seconds * 1000;
      board.progress('j', { stage: 'img2img', index: 1, stages: 1, fraction, status: 'running' });
    };
    const read = (seconds: number): JobProgress => {
      ms = seconds * 1000;
      return board.get('j')!.progress!;
    };
    update(0, 0);
    update(1, 0.1); // the rate's base (the time before it was start-up)
    update(11, 0.2); // 0.01 of the stage a second: 80 s left
    let p = read(11);
    expect([p.rate, p.etaSeconds, p.stalledSeconds]).toEqual([0.01, 80, undefined]);
    p = read(26);
    expect(p.rate).toBeCloseTo(0.01, 12);
    expect(p.etaSeconds).toBeCloseTo(65, 9);
    expect(p.stalledSeconds).toBeUndefined();
    // nothing for more than the rate's window (20 s): no pace to speak of, and for how long
    p = read(31.5);
    expect([p.fraction, p.rate, p.etaSeconds, p.stalledSeconds]).toEqual([0.2, null, null, 20]);
    expect(board.list()[0].progress).toMatchObject({ rate: null, etaSeconds: null, stalledSeconds: 20 });
    expect(read(76).stalledSeconds).toBe(65);
    // an update again: the pace is measured afresh from it (the 50-s gap is not the pace: a base from before it gave
    // 0.1 / 70 a second, an ETA of 490 s), so none until a second update, then that of the pace since the gap
    update(81, 0.3);
    p = read(81);
    expect([p.stalledSeconds, p.rate, p.etaSeconds]).toEqual([undefined, null, null]);
    update(83, 0.32);
    p = read(83);
    expect(p.rate).toBeCloseTo(0.01, 12);
    expect(p.etaSeconds).toBeCloseTo(68, 9);
    // an ended job keeps none of it
    ms = 200_000;
    board.finish('j', 'failed');
    expect(board.get('j')!.progress).toEqual({ stage: 'img2img', index: 1, stages: 1, fraction: 0.32, rate: null, etaSeconds: null });
  });
});
