import { describe, expect, it } from 'vitest';

import type { BatchEvent, JobInfo } from '../../../ts/batch/status.js';
import { eventLogger, planSummaryLine } from '../../../ts/cli/commands/batch.js';

const job = (over: Partial<JobInfo>): BatchEvent => ({
  batch: 'aw',
  type: 'job',
  at: Date.UTC(2024, 0, 1, 12, 0, 0),
  job: { id: 'aw.subj01.recon.features', subject: 'subj01', analysis: 'recon', stage: 'features', queue: 'sample', state: 'active', fraction: 0, attempts: 1, ...over },
});

describe('batch run: the job log', () => {
  it('says "started" once per attempt, whatever progress reports at fraction 0 follow, and names a retry', () => {
    const lines: string[] = [];
    const log = eventLogger((l) => lines.push(l));
    log(job({}));
    log(job({ message: 'prepare' })); // a fraction-0 progress report of the same attempt
    log(job({ fraction: 0.5, message: 'images' }));
    log(job({ fraction: 0, message: 'c' })); // a new phase, same attempt
    log(job({ state: 'waiting', reason: 'attempt 1 failed (boom); retrying' }));
    log(job({ attempts: 2 }));
    log(job({ attempts: 2, message: 'prepare' }));
    log(job({ attempts: 2, state: 'done', fraction: 1, seconds: 1.25 }));
    expect(lines).toEqual([
      '12:00:00 aw.subj01.recon.features started\n',
      '12:00:00 aw.subj01.recon.features waiting: attempt 1 failed (boom); retrying\n',
      '12:00:00 aw.subj01.recon.features started (attempt 2)\n',
      '12:00:00 aw.subj01.recon.features done in 1.3 s\n',
    ]);
  });
});

describe('batch run: a running job\'s progress now and then (review s44: nothing between "started" and "done")', () => {
  it('every 10 s in its first minute, then every minute, with the time elapsed and left at its pace; none at fraction 0', () => {
    const lines: string[] = [];
    const log = eventLogger((l) => lines.push(l));
    const t0 = Date.UTC(2024, 0, 1, 12, 0, 0);
    const at = (s: number, over: Partial<JobInfo>) => ({ ...job(over), at: t0 + s * 1000 });
    log(at(0, {}));
    log(at(5, { fraction: 0.01, message: 'images' })); // too soon
    log(at(9, { fraction: 0 })); // nothing done
    log(at(12, { fraction: 0.1, message: 'images' }));
    log(at(15, { fraction: 0.12 })); // 3 s after the last line
    log(at(22, { fraction: 0.2 }));
    log(at(70, { fraction: 0.5 })); // past the first minute: a minute after the last line (48 s here)
    log(at(100, { fraction: 0.6 })); // 78 s
    log(at(130, { fraction: 0.7 })); // 30 s
    log(at(131, { state: 'done', fraction: 1, seconds: 131 }));
    log(at(140, { attempts: 2, fraction: 0.9 })); // a new attempt: "started", no progress line yet
    // the pace from the first report (5 s, 1%): start-up before it is not work
    expect(lines).toEqual([
      '12:00:00 aw.subj01.recon.features started\n',
      '12:00:12 aw.subj01.recon.features 10% images · 12s elapsed, ~1:10 left\n',
      '12:00:22 aw.subj01.recon.features 20% · 22s elapsed, ~1:12 left\n',
      '12:01:40 aw.subj01.recon.features 60% · 1:40 elapsed, ~1:04 left\n',
      '12:02:11 aw.subj01.recon.features done in 131.0 s\n',
      '12:02:20 aw.subj01.recon.features started (attempt 2)\n',
    ]);
  });

  it('a resumed shard: samples made before and the start-up are not its pace (review s44: "~3s left" where 30 s were)', () => {
    const lines: string[] = [];
    const log = eventLogger((l) => lines.push(l));
    const t0 = Date.UTC(2024, 0, 1, 12, 0, 0);
    const at = (s: number, over: Partial<JobInfo>) => ({ ...job(over), at: t0 + s * 1000 });
    log(at(0, {}));
    log(at(25, { fraction: 0.9, message: 'seed 0 (done before)' })); // 90 of 100 reused, after 25 s of loading
    log(at(37, { fraction: 0.94 })); // then 3 s per sample
    log(at(49, { fraction: 0.98 }));
    log(at(50, { fraction: 0.5 })); // started over (another worker's run, same attempt)
    log(at(59, { fraction: 0.6 }));
    expect(lines).toEqual([
      '12:00:00 aw.subj01.recon.features started\n',
      '12:00:25 aw.subj01.recon.features 90% seed 0 (done before) · 25s elapsed, time left not known yet\n',
      '12:00:37 aw.subj01.recon.features 94% · 37s elapsed, ~18s left\n',
      '12:00:49 aw.subj01.recon.features 98% · 49s elapsed, ~6s left\n',
      '12:00:59 aw.subj01.recon.features 60% · 59s elapsed, ~36s left\n',
    ]);
  });
});

describe('batch run --redis: Redis stalling while waiting for the batch', () => {
  it('says on stderr that Redis stalled and that it answers again, as docs/batch.md says', () => {
    const lines: string[] = [];
    const log = eventLogger((l) => lines.push(l));
    const at = Date.UTC(2024, 0, 1, 12, 0, 0);
    const stalled = 'Redis at redis://127.0.0.1:6379/0 did not answer within 2 s (running but stalled?)';
    log({ batch: 'aw', type: 'redis', at, redis: { answering: false, message: stalled } });
    log({ batch: 'aw', type: 'redis', at, redis: { answering: true, message: 'Redis at redis://127.0.0.1:6379/0 answers again' } });
    expect(lines).toEqual([`batch aw: ${stalled}: still watching, trying again every 1 s\n`, 'batch aw: Redis at redis://127.0.0.1:6379/0 answers again\n']);
  });
});

describe('batch plan: counts in words', () => {
  it('says one problem, one subject, one warning in the singular', () => {
    expect(planSummaryLine(13, 1, { problems: 1, warnings: 0 })).toBe('13 jobs, 1 subject; preflight: 1 problem');
    expect(planSummaryLine(1, 2, { problems: 0, warnings: 1 })).toBe('1 job, 2 subjects; preflight: no problems, 1 warning');
    expect(planSummaryLine(26, 2, { problems: 3, warnings: 2 })).toBe('26 jobs, 2 subjects; preflight: 3 problems, 2 warnings');
    expect(planSummaryLine(13, 1, null)).toBe('13 jobs, 1 subject; preflight skipped');
  });
});
