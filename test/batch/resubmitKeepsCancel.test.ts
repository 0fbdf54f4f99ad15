import { join } from 'node:path';

import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';

import { cancelOfMarks } from '../../ts/batch/cancelMarks.js';
import type { BatchNode, BatchPlan, QueueClass, SubjectPlan } from '../../ts/batch/graph.js';
import { cancelBatch, getBatchStatus, retryBatch } from '../../ts/batch/inspect.js';
import { keys } from '../../ts/batch/redis.js';
import { submitPlan } from '../../ts/batch/submit.js';
import { until } from '../helpers/waitFor.js';
import { cliWorker, redisAvailable, redisTestBed } from './redis.js';

// A resubmission (`batch retry`, `batch submit` again) lifted every cancel mark, the batch's and each subject's. A
// cancelled subject whose stopped job had not stopped yet (its worker checks every 2 s) is not added again (busy), and
// lost its mark all the same: that job ran on to done, and the jobs the cancel had removed (the chain after it, the
// subject's join) showed `waiting` for good, the batch `running` for good (reproduced with these runs before the fix:
// 'a.s1 done in 6.2 s', a.s2 and a 'waiting', the batch 'running'). A subject's mark now goes only when it is added
// again. The worker (a CLI process) is held with SIGSTOP, its lock long, so its job is still running when the
// resubmission comes.

const { dir, url } = redisTestBed('bl-resubmit-cancel-');

/** A subject of probes: a shared probe (on `queue`), then its join adds a chain of two (the second waits for the first). */
function probeSubject(batch: string, out: string, name: string, first: number, queue: QueueClass): SubjectPlan {
  const probe = (id: string, ms: number, deps: string[], analysis: string | null, q: QueueClass): BatchNode => ({
    id: `${batch}.${name}.${id}`, batch, subject: name, analysis, stage: id, queue: q, deps, work: { kind: 'probe', out, ms },
  });
  const shared = probe('p0', 50, [], null, queue);
  const s1 = probe('s1', first, [], 'chain', 'compute');
  const s2 = probe('s2', 50, [s1.id], 'chain', 'compute');
  const root: BatchNode = { id: `${batch}.${name}`, batch, subject: name, analysis: null, stage: 'subject', queue: 'control', deps: [shared.id, s2.id], work: { kind: 'subject' } };
  return { name, root, shared: [shared], analyses: [{ name: 'chain', kind: 'encode', out, steps: [s1, s2] }] };
}

/** The batch's jobs as `id: state`, the batch's id left out. */
async function states(b: string): Promise<Record<string, string>> {
  const s = await getBatchStatus(b, { redis: url() });
  return Object.fromEntries(s.jobs.map((j) => [j.id.slice(b.length + 1), j.state]));
}

describe('whose cancel a mark says', () => {
  it("the batch's (its own mark, or a subject's split from it), the subject's alone, or none", () => {
    expect(cancelOfMarks('1', null)).toBe('batch');
    expect(cancelOfMarks(null, 'batch 2026-03-02T10:00:00.000Z')).toBe('batch');
    expect(cancelOfMarks(null, '2026-03-02T10:00:00.000Z')).toBe('subject');
    expect(cancelOfMarks(null, null)).toBeNull();
  });
});

describe.skipIf(!redisAvailable)('a resubmission that leaves a cancelled subject (its stopped job still running)', () => {
  // a: its chain's first job runs when the batch (or it) is cancelled; c: its shared job waits on a queue no worker takes
  for (const how of ['batch retry', 'batch submit'] as const) {
    it(`keeps its mark: the job stops as cancelled and the rest stays cancelled; the subject added again loses its own (${how})`, { timeout: 120_000 }, async () => {
      const b = how === 'batch retry' ? 'kr' : 'ks';
      const out = join(dir, b);
      const plan: BatchPlan = { id: b, out, hash: b, retry: { attempts: 3, backoffMs: 200 }, subjects: [probeSubject(b, out, 'a', 4000, 'compute'), probeSubject(b, out, 'c', 50, 'data')] };
      const { child: worker, log } = cliWorker(url(), ['--name', 'w', '--queues', 'compute,control', '--lock-ms', '60000', '--poll', '100']);
      const client = new Redis(url());
      try {
        await submitPlan(plan, { redis: url() });
        await until('a.s1 running', async () => (await getBatchStatus(b, { redis: url() })).jobs.find((j) => j.id === `${b}.a.s1` && j.state === 'active' && j.fraction > 0), 60_000);
        // held: its job keeps its lock (60 s) but the worker does not look at the marks until it resumes
        worker.kill('SIGSTOP');
        // retry: the whole batch cancelled; submit: both subjects, by name
        expect(await cancelBatch(b, { redis: url(), ...(how === 'batch submit' ? { subjects: ['a', 'c'] } : {}) })).toEqual({ removed: 4, running: 1 });
        if (how === 'batch retry') expect(await retryBatch(b, { redis: url(), preflight: false })).toEqual({ retried: ['c'], busy: ['a'], replaces: [] });
        else expect(await submitPlan(plan, { redis: url() })).toMatchObject({ added: ['c'], busy: ['a'] });
        // (before: every mark gone, and a's removed jobs 'waiting')
        expect(await client.exists(keys.cancelled(b))).toBe(0);
        const mark = await client.hget(keys.cancelledSubjects(b), 'a');
        expect(mark).toMatch(how === 'batch retry' ? /^batch \d{4}-\d\d-\d\dT/ : /^\d{4}-\d\d-\d\dT/);
        expect(await client.hexists(keys.cancelledSubjects(b), 'c')).toBe(0);
        expect(await states(b)).toEqual({ 'a.p0': 'done', 'a.s1': 'active', 'a.s2': 'cancelled', a: 'cancelled', 'c.p0': 'waiting', 'c.s1': 'waiting', 'c.s2': 'waiting', c: 'waiting' });

        worker.kill('SIGCONT');
        // the batch's words for a batch's cancel, the subject's for its own
        const words = how === 'batch retry' ? 'batch cancelled' : 'batch cancelled: its subject a, batch cancel --subject';
        await until('a.s1 to stop', async () => log().includes(`${b}.a.s1 cancelled while it ran`) || log().includes(`${b}.a.s1 done`), 30_000);
        expect(log()).toContain(`${b}.a.s1 cancelled while it ran (${words})\n`);
        expect(log()).not.toContain(`${b}.a.s1 done`);
        expect(await states(b)).toEqual({ 'a.p0': 'done', 'a.s1': 'cancelled', 'a.s2': 'cancelled', a: 'cancelled', 'c.p0': 'waiting', 'c.s1': 'waiting', 'c.s2': 'waiting', c: 'waiting' });

        // once it has stopped, a retry adds it again, its mark lifted: it runs to done
        expect(await retryBatch(b, { redis: url(), preflight: false })).toEqual({ retried: ['a'], busy: [], replaces: [] });
        expect(await client.hexists(keys.cancelledSubjects(b), 'a')).toBe(0);
        await until('a done', async () => (await states(b)).a === 'done', 60_000);
        expect(log()).toContain(`${b}.a.s1 done`);
      } finally {
        client.disconnect();
        worker.kill('SIGCONT');
        worker.kill('SIGKILL');
      }
    });
  }
});
