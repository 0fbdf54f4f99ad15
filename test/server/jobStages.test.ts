/**
 * How a job's stages reach its event log and the stage-duration metric: a batch of one's stages are announced
 * only once it is known whether they run, so a resumed run's finished stages are 'skipped' events and are never
 * timed. (No processes here: the batch layer's job states are played into the reporter by hand.)
 */
import { describe, expect, it } from 'vitest';

import type { JobInfo, BatchJobState } from '../../ts/batch/status.js';
import { singleProgress } from '../../ts/server/jobs/batchLayer.js';
import { JobBoard } from '../../ts/server/jobs/jobBoard.js';
import type { JobControl } from '../../ts/server/jobs/types.js';

function boardWithJob() {
  const board = new JobBoard();
  const timed: [string, number][] = [];
  board.onStageTime = (_kind, stage, seconds) => timed.push([stage, seconds]);
  board.add({ id: 'j1', kind: 'reconstruct', out: 'run', stages: ['betas', 'extract', 'img2img', 'report'] }, '/root/run');
  board.started('j1');
  const control: JobControl = { signal: new AbortController().signal, progress: (p) => board.progress('j1', p) };
  const stageEvents = () =>
    board
      .subscribe('j1', () => {}, 0)!
      .replay.filter((e) => e.event.event === 'stage')
      .map((e) => {
        const d = e.event.data as { stage: string; status: string };
        return [d.stage, d.status];
      });
  return { board, timed, control, stageEvents };
}

/** The batch layer's jobs of a batch of one (betas, extract, two img2img shards, report), all waiting. */
function batchJobs(): Map<string, JobInfo> {
  const job = (id: string, stage: string): JobInfo => ({ id, subject: 'subj01', analysis: 'reconstruct', stage, queue: 'cpu', state: 'waiting', fraction: 0, attempts: 0 });
  return new Map(
    [job('subject', 'subject'), job('betas', 'betas'), job('extract', 'extract'), job('shard-0', 'img2img'), job('shard-1', 'img2img'), job('report', 'report')].map((j) => [j.id, j]),
  );
}

describe("a batch of one's stages", () => {
  it('a resumed run: stages whose jobs end skipped are announced skipped, never as running, and are not timed', () => {
    const { board, timed, control, stageEvents } = boardWithJob();
    const jobs = batchJobs();
    const report = singleProgress(['betas', 'extract', 'img2img', 'report'], control);
    const set = (id: string, state: BatchJobState, more: Partial<JobInfo> = {}) => {
      Object.assign(jobs.get(id)!, { state, ...more });
      report([...jobs.values()]);
    };
    report([...jobs.values()]);
    set('subject', 'skipped');
    set('betas', 'active', { startedAt: 1000 });
    // started, not yet known to be skipped: nothing announced
    expect(stageEvents()).toEqual([]);
    set('betas', 'skipped', { fraction: 1, finishedAt: 1001 });
    set('extract', 'active', { startedAt: 1001 });
    set('extract', 'skipped', { fraction: 1, finishedAt: 1002 });
    set('shard-0', 'active', { startedAt: 1002 });
    set('shard-1', 'active', { startedAt: 1002 });
    set('shard-0', 'skipped', { fraction: 1, finishedAt: 1003 });
    expect(stageEvents()).toEqual([
      ['betas', 'skipped'],
      ['extract', 'skipped'],
    ]);
    // a shard reports work: img2img runs
    set('shard-1', 'active', { fraction: 0.5, message: 'step 5/10' });
    expect(board.get('j1')!.progress).toMatchObject({ stage: 'img2img', index: 3, fraction: 0.75, message: '1/2 shards' });
    set('shard-1', 'done', { fraction: 1, finishedAt: 5002 });
    // the report runs without a word until it is done: announced at its end
    set('report', 'active', { startedAt: 5002 });
    set('report', 'done', { fraction: 1, finishedAt: 5502 });
    expect(stageEvents()).toEqual([
      ['betas', 'skipped'],
      ['extract', 'skipped'],
      ['img2img', 'running'],
      ['report', 'running'],
    ]);
    board.finish('j1', 'done', { result: {} });
    // only the stages that ran are timed, by their jobs' own clock, once each
    expect(timed).toEqual([
      ['img2img', 4],
      ['report', 0.5],
    ]);
  });

  it("a stage is announced as soon as its job reports progress, and a failed job's stage is shown (not skipped)", () => {
    const { board, timed, control, stageEvents } = boardWithJob();
    const jobs = batchJobs();
    const report = singleProgress(['betas', 'extract', 'img2img', 'report'], control);
    const set = (id: string, state: BatchJobState, more: Partial<JobInfo> = {}) => {
      Object.assign(jobs.get(id)!, { state, ...more });
      report([...jobs.values()]);
    };
    set('subject', 'done');
    set('betas', 'active', { startedAt: 0 });
    set('betas', 'active', { fraction: 0.25, message: 'z: session 1' });
    expect(stageEvents()).toEqual([['betas', 'running']]);
    expect(board.get('j1')!.progress).toMatchObject({ stage: 'betas', fraction: 0.25, message: 'z: session 1' });
    set('betas', 'done', { fraction: 1, finishedAt: 2000 });
    set('extract', 'active', { startedAt: 2000 });
    set('extract', 'failed', { finishedAt: 2100, reason: 'Error: disk full' });
    expect(stageEvents()).toEqual([
      ['betas', 'running'],
      ['extract', 'running'],
    ]);
    board.finish('j1', 'failed', { error: { name: 'Error', message: 'disk full' } });
    expect(timed).toEqual([['betas', 2]]);
  });
});

describe("a cancelled batch of one's img2img progress", () => {
  it('counts only done (or skipped) shards as complete: a stopped shard its last fraction, one never run nothing', () => {
    const { board, control } = boardWithJob();
    const job = (id: string, stage: string): JobInfo => ({ id, subject: 'subj01', analysis: 'reconstruct', stage, queue: 'sample', state: 'waiting', fraction: 0, attempts: 0 });
    const shards = Array.from({ length: 6 }, (_, i): JobInfo => ({ ...job(`img2img.k0-0.i${i}`, 'img2img'), shard: `k0-0.i${i}` }));
    // the shards' merge: a job of the stage too, but not a shard (it was counted as one: '3/3 shards' for 2)
    const merge = job('img2img', 'img2img');
    const jobs = [{ ...job('betas', 'betas'), state: 'skipped' as const, fraction: 1 }, { ...job('extract', 'extract'), state: 'skipped' as const, fraction: 1 }, ...shards, merge];
    const report = singleProgress(['betas', 'extract', 'img2img', 'report'], control);
    const set = (i: number, state: BatchJobState, more: Partial<JobInfo> = {}) => {
      Object.assign(shards[i], { state, ...more });
      report(jobs);
    };
    set(0, 'done', { fraction: 1, startedAt: 10, finishedAt: 20 });
    set(1, 'skipped', { fraction: 1 });
    set(2, 'active', { startedAt: 20, fraction: 0.4, message: 'seed 0' });
    expect(board.get('j1')!.progress).toMatchObject({ stage: 'img2img', fraction: 2.4 / 6, message: '2/6 shards' });
    // the job is cancelled: the running shard stops, the waiting ones never run (the batch layer's states then)
    set(2, 'cancelled', { reason: 'batch cancelled', finishedAt: 30 });
    for (const i of [3, 4, 5]) set(i, 'cancelled', { reason: 'batch cancelled', finishedAt: 30 });
    Object.assign(merge, { state: 'cancelled', reason: 'batch cancelled', finishedAt: 30 });
    report(jobs);
    const last = board.get('j1')!.progress!;
    expect(last.fraction).toBeCloseTo(2.4 / 6, 12);
    expect(last.message).toBe('2/6 shards (1 stopped, 3 not run)');
  });
});

describe('the job board', () => {
  it("times a stage at its 'done' (once), and not one that turns out to be skipped after it was announced running", () => {
    const { board, timed, stageEvents } = boardWithJob();
    board.progress('j1', { stage: 'betas', index: 1, stages: 4, fraction: 0, status: 'running' });
    board.progress('j1', { stage: 'betas', index: 1, stages: 4, fraction: 1, status: 'skipped' });
    board.progress('j1', { stage: 'extract', index: 2, stages: 4, fraction: 0.5 });
    board.progress('j1', { stage: 'extract', index: 2, stages: 4, fraction: 1, status: 'done', seconds: 3 });
    board.progress('j1', { stage: 'img2img', index: 3, stages: 4, fraction: 1, status: 'skipped' });
    board.progress('j1', { stage: 'report', index: 4, stages: 4, fraction: 1, status: 'done', seconds: 0.25 });
    board.finish('j1', 'done', { result: {} });
    expect(stageEvents()).toEqual([
      ['betas', 'running'],
      ['extract', 'running'],
      ['img2img', 'skipped'],
      ['report', 'running'],
    ]);
    expect(timed).toEqual([
      ['extract', 3],
      ['report', 0.25],
    ]);
  });
});

describe("a batch of one's img2img message", () => {
  it('counts its shards as k/n shards with one shard too, that shard\'s own message after it', () => {
    // (before, one shard's message was its own alone, 'seed 0': the docs say 'k/n shards')
    const { board, control } = boardWithJob();
    const job = (id: string, stage: string): JobInfo => ({ id, subject: 'subj01', analysis: 'reconstruct', stage, queue: 'sample', state: 'waiting', fraction: 0, attempts: 0 });
    const shard: JobInfo = { ...job('img2img.k0-0.i0', 'img2img'), shard: 'k0-0.i0' };
    const jobs = [{ ...job('betas', 'betas'), state: 'skipped' as const, fraction: 1 }, { ...job('extract', 'extract'), state: 'skipped' as const, fraction: 1 }, shard, job('img2img', 'img2img')];
    const report = singleProgress(['betas', 'extract', 'img2img', 'report'], control);
    Object.assign(shard, { state: 'active', startedAt: 10, fraction: 0.25, message: 'seed 0' });
    report(jobs);
    expect(board.get('j1')!.progress).toMatchObject({ stage: 'img2img', fraction: 0.25, message: '0/1 shards · seed 0' });
    Object.assign(shard, { state: 'done', fraction: 1, finishedAt: 30, message: undefined });
    report(jobs);
    expect(board.get('j1')!.progress).toMatchObject({ stage: 'img2img', fraction: 1, message: '1/1 shards' });
  });
});
