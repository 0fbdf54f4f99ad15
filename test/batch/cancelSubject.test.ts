import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { registerBatchCommand } from '../../ts/cli/commands/batch.js';
import type { BatchNode, BatchPlan, SubjectPlan } from '../../ts/batch/graph.js';
import { cancelBatch, getBatchStatus, waitForBatch } from '../../ts/batch/inspect.js';
import { submitPlan } from '../../ts/batch/submit.js';
import { createWorker } from '../../ts/batch/worker.js';
import { Command } from 'commander';
import { until } from '../helpers/waitFor.js';
import { redisAvailable, redisTestBed } from './redis.js';

// `batch cancel` was per batch only: one subject whose inputs turned out wrong, or that a lab wanted to stop, took the
// whole batch down with it. `--subject` cancels that subject's jobs alone: waiting ones removed, running ones stopped,
// its later jobs and joins cancelled (not blocked); the other subjects run on to done.

const { dir, workers, url } = redisTestBed('bl-cancel-subject-');

/** A subject of probes: a shared probe, then its join adds a chain of two (the second waits for the first). */
function probeSubject(batch: string, out: string, name: string, ms: { shared: number; first: number }): SubjectPlan {
  const probe = (id: string, ms: number, deps: string[], analysis: string | null): BatchNode => ({
    id: `${batch}.${name}.${id}`,
    batch,
    subject: name,
    analysis,
    stage: id,
    queue: 'compute',
    deps,
    work: { kind: 'probe', out, ms },
  });
  const shared = probe('p0', ms.shared, [], null);
  const first = probe('s1', ms.first, [], 'chain');
  const second = probe('s2', 50, [first.id], 'chain');
  const root: BatchNode = { id: `${batch}.${name}`, batch, subject: name, analysis: null, stage: 'subject', queue: 'control', deps: [shared.id, second.id], work: { kind: 'subject' } };
  return { name, root, shared: [shared], analyses: [{ name: 'chain', kind: 'encode', out, steps: [first, second] }] };
}

function program(): Command {
  const p = new Command().exitOverride();
  registerBatchCommand(p);
  return p;
}

/** `brainlatent batch cancel …` in this process: what it printed on stdout. */
async function cancelCli(...args: string[]): Promise<string> {
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
  try {
    await program().parseAsync(['node', 'brainlatent', 'batch', 'cancel', ...args, '--redis', url()]);
  } finally {
    process.stdout.write = write;
  }
  return out;
}

describe.skipIf(!redisAvailable)('batch cancel --subject', () => {
  it("cancels those subjects' jobs, running, waiting and not added yet; the other subject runs on to done", { timeout: 60_000 }, async () => {
    const out = join(dir, 'cs');
    // a: cancelled while its chain's first job runs (the second and the join wait in Redis); b: while its shared job
    // runs (its join has not added its chain yet); c: left alone
    const plan: BatchPlan = {
      id: 'cs',
      out,
      hash: 'cs',
      retry: { attempts: 3, backoffMs: 200 },
      subjects: [probeSubject('cs', out, 'a', { shared: 50, first: 20_000 }), probeSubject('cs', out, 'b', { shared: 20_000, first: 50 }), probeSubject('cs', out, 'c', { shared: 1500, first: 50 })],
    };
    const lines: string[] = [];
    const busy = new Set<string>();
    const w = await createWorker({
      redis: url(), concurrency: 3, pollMs: 100, graceMs: 0, onLog: (l) => lines.push(l),
      onEvent: (e) => {
        if (e.job?.state === 'active' && e.job.fraction > 0) busy.add(e.job.id);
      },
    });
    workers.push(w);
    await submitPlan(plan, { redis: url() });
    await until('a.s1 and b.p0 to run', async () => busy.has('cs.a.s1') && busy.has('cs.b.p0'), 60_000);

    // (the flag both repeated and as a list)
    const said = await cancelCli('cs', '--subject', 'a', '--subject', 'b,a');
    // removed: a's join and a.s2 (waiting for a.s1), b's join; running: a.s1, b.p0
    expect(said).toBe('batch cs: subjects a, b cancelled; 3 jobs removed, 2 running (they stop at their next progress report); the other subjects go on\n');

    const report = await waitForBatch('cs', { redis: url(), intervalMs: 200 });
    const state = Object.fromEntries(report.jobs.map((j) => [j.id, j.state]));
    expect(state).toEqual({
      'cs.a.p0': 'done',
      'cs.a.s1': 'cancelled',
      'cs.a.s2': 'cancelled',
      'cs.a': 'cancelled',
      'cs.b.p0': 'cancelled',
      'cs.b.s1': 'cancelled',
      'cs.b.s2': 'cancelled',
      'cs.b': 'cancelled',
      'cs.c.p0': 'done',
      'cs.c.s1': 'done',
      'cs.c.s2': 'done',
      'cs.c': 'done',
    });
    expect(report.jobs.filter((j) => j.state === 'cancelled').map((j) => j.reason)).toEqual(Array(7).fill('batch cancelled'));
    expect(report.subjects.map((s) => [s.subject, s.state])).toEqual([
      ['a', 'cancelled'],
      ['b', 'cancelled'],
      ['c', 'done'],
    ]);
    expect(lines).toContain('cs.a.s1 cancelled while it ran (batch cancelled: its subject a, batch cancel --subject)');
    expect(lines).toContain('cs.b.p0 cancelled while it ran (batch cancelled: its subject b, batch cancel --subject)');
    expect(lines.filter((l) => / blocked by |failed/.test(l))).toEqual([]);

    // a subject that has finished: nothing to cancel, and it stays done
    expect(await cancelCli('cs', '--subject', 'c')).toBe('batch cs: subject c had already finished (done: 4 done); nothing was cancelled\n');
    expect((await getBatchStatus('cs', { redis: url() })).subjects.find((s) => s.subject === 'c')?.state).toBe('done');

    // submitted again, the cancelled subjects are added again whole, their cancel lifted (as a batch's is)
    expect((await submitPlan(plan, { redis: url() })).added).toEqual(['a', 'b']);
    const again = await getBatchStatus('cs', { redis: url() });
    expect(again.subjects.map((s) => [s.subject, s.state])).toEqual([
      ['a', 'running'],
      ['b', 'running'],
      ['c', 'done'],
    ]);
    await cancelBatch('cs', { redis: url() });
  });

  it('refuses a subject the batch does not have, and --purge, naming the flag', { timeout: 60_000 }, async () => {
    const out = join(dir, 'cr');
    await submitPlan({ id: 'cr', out, hash: 'cr', retry: { attempts: 1, backoffMs: 0 }, subjects: [probeSubject('cr', out, 'a', { shared: 50, first: 50 })] }, { redis: url() });
    await expect(cancelCli('cr', '--subject', 'a,zz')).rejects.toThrow("batch 'cr' has no subject 'zz' (--subject; its subjects: a)");
    await expect(cancelCli('cr', '--subject', 'a', '--purge')).rejects.toThrow(/^--subject: not with --purge/);
    await expect(cancelCli('cr', '--subject', 'a,')).rejects.toThrow(/^--subject: expected subject names/);
    await expect(cancelBatch('cr', { redis: url(), subjects: [] })).rejects.toThrow(/^cancelBatch subjects: expected a non-empty list of subject names, got \[\]$/);
    // nothing was cancelled
    expect((await getBatchStatus('cr', { redis: url() })).counts.cancelled).toBe(0);
  });
});
