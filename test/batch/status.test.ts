import { describe, expect, it } from 'vitest';

import { batchStatus, subjectProgress, type JobInfo } from '../../ts/batch/status.js';
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
