import { describe, expect, it } from 'vitest';

import { batchStatus, formatSummary, subjectProgress, summarize, type JobInfo } from '../../ts/batch/status.js';
import { renderTable } from '../../ts/batch/table.js';

const job = (subject: string, stage: string, extra: Partial<JobInfo> = {}): JobInfo => ({
  id: `b.${subject}.r.${stage}${extra.shard ? `.${extra.shard}` : ''}`,
  subject,
  analysis: 'r',
  stage,
  queue: 'sample',
  state: 'waiting',
  fraction: 0,
  attempts: 0,
  ...extra,
});

describe('per-subject progress and ETA', () => {
  // two subjects, each a stage of one job then a stage of two shards; 20 s into the batch the first subject's
  // first stage took 10 s and one of its shards is half done
  const t0 = 1_000_000;
  const jobs = [
    job('A', 's1', { state: 'done', seconds: 10, startedAt: t0, finishedAt: t0 + 10_000 }),
    job('A', 'sh', { shard: 'x', state: 'active', fraction: 0.5, startedAt: t0 + 10_000 }),
    job('A', 'sh', { shard: 'y' }),
    job('B', 's1'),
    job('B', 'sh', { shard: 'x' }),
    job('B', 'sh', { shard: 'y' }),
    { ...job('B', 'subject'), analysis: null, queue: 'control' },
  ];

  it('weights jobs by their stage’s measured seconds and finishes subjects in batch order at the measured pace', () => {
    // cost: s1 10 s (measured), sh 10 s (the mean of all measured jobs), the join 0; pace (10 + 5) / 20 = 0.75
    const [a, b] = subjectProgress(jobs, t0, t0 + 20_000);
    expect(a).toEqual({ subject: 'A', state: 'running', progress: 0.5, etaSeconds: 20 }); // 15 s of work left / 0.75
    expect(b).toEqual({ subject: 'B', state: 'running', progress: 0, etaSeconds: 60 }); // (15 + 30) / 0.75
  });

  it('is never below the subject’s own remaining chain of stages', () => {
    // a fast pace (many workers) cannot finish B before its two stages have run one after the other
    const [, b] = subjectProgress(jobs, t0, t0 + 1_000);
    expect(b.etaSeconds).toBe(20); // s1 10 s, then the shards side by side 10 s
  });

  it('says when a subject has finished or failed, and has no ETA before anything was measured', () => {
    const done = jobs.map((j) => (j.subject === 'A' ? { ...j, state: 'done' as const, fraction: 1, seconds: j.seconds ?? 10 } : j));
    const failed = done.map((j) => (j.subject === 'B' ? { ...j, state: j.stage === 's1' ? ('failed' as const) : ('blocked' as const) } : j));
    expect(subjectProgress(failed, t0, t0 + 40_000).map((p) => [p.state, p.etaSeconds])).toEqual([
      ['done', 0],
      ['failed', 0],
    ]);
    const fresh = jobs.map((j) => ({ ...j, state: 'waiting' as const, fraction: 0, seconds: undefined }));
    expect(subjectProgress(fresh, null).map((p) => p.etaSeconds)).toEqual([null, null]);
  });

  it('shows each subject’s share and ETA in the watch table', () => {
    const table = renderTable(batchStatus('b', jobs, t0, t0 + 20_000));
    expect(table).toMatch(/^A\s+done\s+0\/2 25%\s+50%, 20 s$/m);
    expect(table).toMatch(/^B\s+·\s+·\s+0%, 60 s$/m);
  });
});

describe('the job count of a stage of several jobs says what it counts', () => {
  const shards = (states: [JobInfo['state'], boolean?][]) =>
    states.map(([state, started], i) => job('A', 'img2img', { shard: `s${i}`, state, ...(started ? { startedAt: 1 } : {}) }));
  const line = (js: JobInfo[]) => formatSummary(summarize(js)).replace(/\s+/g, ' ');

  it('shards a cancel removed before they started are "not run", not "4/4"', () => {
    const cells = summarize(shards([['cancelled'], ['cancelled'], ['cancelled'], ['cancelled']]));
    expect(cells[0]).toMatchObject({ state: 'cancelled', jobs: 4, counts: { 'not run': 4 } });
    expect(line(shards([['cancelled'], ['cancelled'], ['cancelled'], ['cancelled']]))).toBe('A r/img2img cancelled (4 jobs not run)');
  });

  it('a mixed stage lists its jobs by what happened to them, in the summary and the watch table alike', () => {
    const js = shards([['done', true], ['done', true], ['cancelled', true], ['cancelled']]);
    expect(summarize(js)[0].counts).toEqual({ done: 2, stopped: 1, 'not run': 1 });
    expect(line(js)).toBe('A r/img2img cancelled (4 jobs: 2 done, 1 stopped, 1 not run)');
    expect(renderTable(batchStatus('b', js, null))).toMatch(/^A\s+cancel 2\/4 done/m);
    expect(line(shards([['failed', true], ['blocked'], ['blocked']]))).toBe('A r/img2img failed (3 jobs: 1 failed, 2 blocked)');
    expect(line(shards([['done', true], ['done', true]]))).toBe('A r/img2img done (2 jobs)');
    // seconds of several jobs are their sum, not a wall time (review s44)
    expect(line(shards([['done', true], ['done', true]]).map((j) => ({ ...j, seconds: 57 })))).toBe('A r/img2img done (2 jobs) 114.0 s of job time');
    expect(line(shards([['done', true]]).map((j) => ({ ...j, seconds: 57 })))).toBe('A r/img2img done 57.0 s');
    const running = shards([['done', true], ['active', true], ['waiting'], ['waiting']]);
    expect(line(running)).toBe('A r/img2img active (4 jobs: 1 done, 1 running, 2 waiting)');
    expect(renderTable(batchStatus('b', running, null))).toMatch(/^A\s+1\/4 25%/m);
  });
});

// watch counted an img2img stage's merge job as a shard: one shard showed '0/2 30%', then 'done 2'
describe('the watch table counts an img2img stage by its shards, not its merge job', () => {
  const merge = (state: JobInfo['state']) => ({ ...job('A', 'img2img', { state }), queue: 'control' });
  it('one shard and its merge: a single job', () => {
    const running = [job('A', 'img2img', { shard: 'k0-0.i0-end', state: 'active', fraction: 0.3, startedAt: 1 }), merge('waiting')];
    expect(renderTable(batchStatus('b', running, null))).toMatch(/^A\s+30%\s/m);
    const done = [job('A', 'img2img', { shard: 'k0-0.i0-end', state: 'done', startedAt: 1 }), merge('done')];
    expect(renderTable(batchStatus('b', done, null))).toMatch(/^A\s+done\s/m);
  });
  it('two shards and their merge: 1/2, then done 2', () => {
    const running = [job('A', 'img2img', { shard: 'a', state: 'done', startedAt: 1 }), job('A', 'img2img', { shard: 'b', state: 'active', fraction: 0.5, startedAt: 1 }), merge('waiting')];
    expect(renderTable(batchStatus('b', running, null))).toMatch(/^A\s+1\/2 75%\s/m);
    const done = running.map((j) => ({ ...j, state: 'done' as const }));
    expect(renderTable(batchStatus('b', done, null))).toMatch(/^A\s+done 2\s/m);
  });
});

// watch's batch ETA (jobs left at the job rate) read 4 s while a subject's row read 53%, 11 s: short jobs done fast
// made the job rate high while a long shard still had most of its work to do
describe('the batch ETA', () => {
  it('is never below the largest subject ETA', () => {
    const t0 = 1_000_000;
    // nine 1 s jobs done in 10 s, and B's 10 s job of a stage that A has started: A's is 10% done (9 s left)
    const quick = Array.from({ length: 9 }, (_, i) => job('A', `q${i}`, { state: 'done', seconds: 1, startedAt: t0 + i * 1000, finishedAt: t0 + (i + 1) * 1000 }));
    const jobs = [...quick, job('B', 'long', { state: 'done', seconds: 10, startedAt: t0, finishedAt: t0 + 10_000 }), job('A', 'long', { state: 'active', fraction: 0.1, startedAt: t0 + 10_000 })];
    const s = batchStatus('b', jobs, t0, t0 + 20_000);
    const a = s.subjects.find((p) => p.subject === 'A')!;
    expect(a.etaSeconds).toBeGreaterThan(5);
    expect(s.etaSeconds).toBeGreaterThanOrEqual(a.etaSeconds!);
    expect(s.etaSeconds).toBe(Math.max(...s.subjects.map((p) => p.etaSeconds ?? 0)));
  });
});

// s26-r2: a batch cancelled half-way showed 'r2f: 100% of 22 jobs (11 done, …, 0 blocked) … cancelled', and status
// --json progress 1 (each subject's too) beside counts.cancelled 11: cancelled jobs counted as finished work
describe('a batch that ended cancelled or failed', () => {
  const t0 = 1_000_000;
  // two subjects of 11 one-job stages: A's all done, B's all cancelled before they started
  const half = ['A', 'B'].flatMap((subject) =>
    Array.from({ length: 11 }, (_, i) =>
      job(subject, `s${i}`, subject === 'A' ? { state: 'done', fraction: 1, seconds: 1, startedAt: t0 + i * 1000, finishedAt: t0 + (i + 1) * 1000 } : { state: 'cancelled' }),
    ),
  );

  it('is at the share of the work made, not 100%, and the watch line counts the cancelled jobs', () => {
    const s = batchStatus('r2f', half, t0, t0 + 20_000);
    expect(s.state).toBe('cancelled');
    expect(s.progress).toBe(0.5);
    expect(s.subjects.map((p) => [p.subject, p.state, p.progress])).toEqual([
      ['A', 'done', 1],
      ['B', 'cancelled', 0],
    ]);
    expect(renderTable(s).split('\n').at(-1)).toBe('r2f: 50% of 22 jobs (11 done, 0 skipped, 0 running, 0 waiting, 0 failed, 0 blocked, 11 cancelled); 33.0 jobs/min; cancelled');
  });

  it('counts a stopped or failed job by the part it had made, as the service’s batch job does', () => {
    // B's first job was stopped at 40%, its second failed at 10%: (11 + 0.4 + 0.1) / 22
    const js = half.map((j) => (j.id === 'b.B.r.s0' ? { ...j, startedAt: t0, fraction: 0.4 } : j.id === 'b.B.r.s1' ? { ...j, state: 'failed' as const, fraction: 0.1 } : j));
    const s = batchStatus('r2f', js, t0, t0 + 20_000);
    expect(s.progress).toBeCloseTo(11.5 / 22, 12);
    // B's jobs cost 1 s each (their stages' measured seconds): 0.5 of 11 s
    expect(s.subjects[1].progress).toBeCloseTo(0.5 / 11, 12);
    expect(renderTable(s).split('\n').at(-1)).toMatch(/^r2f: 52% of 22 jobs \(11 done, 0 skipped, 0 running, 0 waiting, 1 failed, 0 blocked, 10 cancelled\);/);
  });
});
