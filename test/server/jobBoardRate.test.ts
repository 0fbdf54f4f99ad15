/**
 * A job's rate and ETA over HTTP follow the CLI bar's rule (RateEstimator): measured from the stage's first
 * progress of the job's own work, the samples a resumed img2img reused counted in its fraction but not its rate.
 * Before, the board gave the estimator no counts: the reused seeds, reported within milliseconds, read as a rate of
 * 25 stages a second. Synthetic progress on a clock the test sets.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';

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
