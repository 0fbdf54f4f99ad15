import { join } from 'node:path';

import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';

import type { BatchNode, BatchPlan, SubjectPlan } from '../../ts/batch/graph.js';
import { cancelBatch, getBatchStatus, retryBatch } from '../../ts/batch/inspect.js';
import { keys } from '../../ts/batch/redis.js';
import { resubmissionOfJob, stampResubmission, unstampResubmission } from '../../ts/batch/resubmission.js';
import { submitPlan } from '../../ts/batch/submit.js';
import { until } from '../helpers/waitFor.js';
import { cliWorker, redisAvailable, redisTestBed } from './redis.js';

// `batch retry` (and `batch submit` again after a cancel) lifts the cancel marks and removes the subject's jobs left in
// the queue, a hung worker's job among them once its lock has expired. The worker, resumed, found its job gone with no
// mark and said "Redis no longer has the job (restarted without its data?): stopping it here; submit the batch again"
// (reproduced with this file's run before the fix, after `cancel --subject` and after a whole-batch cancel). The
// resubmission now stamps the subject first (keys.resubmitted, TTL 7 days), and the worker says what happened.
// Here the worker (a CLI process) is hung for real with SIGSTOP while a job of its subject's chain runs: a job the
// new submission adds only when the subject's join runs again, so Redis has no job of that id when the worker resumes.

const { dir, url } = redisTestBed('bl-retry-tombstone-');

const WRONG = /no longer has the job|restarted without its data|submit the batch again|another worker has the job/;

/** A subject of probes: a shared probe, then its join adds a chain of two (the second waits for the first). */
function probeSubject(batch: string, out: string, name: string, ms: { shared: number; first: number }): SubjectPlan {
  const probe = (id: string, ms: number, deps: string[], analysis: string | null): BatchNode => ({
    id: `${batch}.${name}.${id}`, batch, subject: name, analysis, stage: id, queue: 'compute', deps, work: { kind: 'probe', out, ms },
  });
  const shared = probe('p0', ms.shared, [], null);
  const first = probe('s1', ms.first, [], 'chain');
  const second = probe('s2', 50, [first.id], 'chain');
  const root: BatchNode = { id: `${batch}.${name}`, batch, subject: name, analysis: null, stage: 'subject', queue: 'control', deps: [shared.id, second.id], work: { kind: 'subject' } };
  return { name, root, shared: [shared], analyses: [{ name: 'chain', kind: 'encode', out, steps: [first, second] }] };
}

describe('the stamp of a resubmission', () => {
  const stamp = JSON.stringify({ at: '2026-03-02T10:00:00.000Z', by: 'batch retry' });
  it('is the resubmission of a job submitted before it', () => {
    expect(resubmissionOfJob(stamp, 'nsd4@2026-03-01T09:00:00.000Z')).toEqual({ at: '2026-03-02T10:00:00.000Z', by: 'batch retry' });
    // (a job queued by a version that did not record its submission)
    expect(resubmissionOfJob(stamp, undefined)).toEqual({ at: '2026-03-02T10:00:00.000Z', by: 'batch retry' });
  });
  it("is not that of the resubmission's own jobs or a later one's, nor anything without a stamp that reads", () => {
    expect(resubmissionOfJob(stamp, 'nsd4@2026-03-02T10:00:00.000Z')).toBeNull();
    expect(resubmissionOfJob(stamp, 'nsd4@2026-03-02T10:05:00.000Z')).toBeNull();
    expect(resubmissionOfJob(null, 'nsd4@2026-03-01T09:00:00.000Z')).toBeNull();
    expect(resubmissionOfJob('{not json', 'nsd4@2026-03-01T09:00:00.000Z')).toBeNull();
    expect(resubmissionOfJob('null', undefined)).toBeNull();
  });
});

describe.skipIf(!redisAvailable)('a worker that resumes after its subject was resubmitted', () => {
  it('a subject left as it was (one of its jobs still running) gets back the stamp it had, or none', async () => {
    const client = new Redis(url());
    try {
      const at = (m: number) => `2026-03-0${m}T10:00:00.000Z`;
      expect(await stampResubmission(client, 'us', 'a', at(1), 'batch submit')).toBe('');
      const first = await client.hget(keys.resubmitted('us'), 'a');
      const had = await stampResubmission(client, 'us', 'a', at(2), 'batch retry');
      expect(had).toBe(first);
      await unstampResubmission(client, 'us', 'a', had);
      expect(await client.hget(keys.resubmitted('us'), 'a')).toBe(first);
      await unstampResubmission(client, 'us', 'a', '');
      expect(await client.hexists(keys.resubmitted('us'), 'a')).toBe(0);
    } finally {
      client.disconnect();
    }
  });

  for (const how of ['batch retry', 'batch submit'] as const) {
    it(`says its subject was resubmitted (${how}), not that Redis lost its data`, { timeout: 120_000 }, async () => {
      const b = how === 'batch retry' ? 'rt' : 'rs';
      const out = join(dir, b);
      const plan: BatchPlan = { id: b, out, hash: b, retry: { attempts: 3, backoffMs: 200 }, subjects: [probeSubject(b, out, 'a', { shared: 1500, first: 60_000 })] };
      const id = `${b}.a.s1`;
      const { child: worker, log } = cliWorker(url(), ['--name', 'sleeper', '--lock-ms', '1000', '--poll', '100']);
      const client = new Redis(url());
      try {
        await submitPlan(plan, { redis: url() });
        await until(`${id} running`, async () => (await getBatchStatus(b, { redis: url() })).jobs.find((j) => j.id === id && j.state === 'active' && j.fraction > 0), 60_000);
        // hung: nothing of the worker runs (its lock keeper's thread neither); cancelled while its job still holds its lock
        worker.kill('SIGSTOP');
        const cancel = how === 'batch retry' ? { subjects: ['a'] } : {};
        expect(await cancelBatch(b, { redis: url(), ...cancel })).toEqual({ removed: 2, running: 1 });
        await until('its lock to expire', async () => (await client.exists(`brainlatent:compute:${id}:lock`)) === 0);
        // the resubmission lifts the mark and removes the job (its worker taken for dead)
        if (how === 'batch retry') expect(await retryBatch(b, { redis: url(), preflight: false })).toEqual({ retried: ['a'], busy: [], replaces: [] });
        else expect(await submitPlan(plan, { redis: url() })).toMatchObject({ added: ['a'], busy: [] });
        expect(await client.exists(`brainlatent:compute:${id}`)).toBe(0);
        expect(await client.exists(keys.cancelled(b), keys.cancelledSubjects(b))).toBe(0);

        // the stamp: what made it, when (before any job was removed: no later than the new submission's), kept 7 days
        const stamp = JSON.parse((await client.hget(keys.resubmitted(b), 'a'))!) as { at: string; by: string };
        const record = JSON.parse((await client.get(keys.batch(b)))!) as { submittedAt: string };
        expect(stamp).toEqual({ at: expect.any(String), by: how });
        expect(Date.parse(stamp.at)).toBeLessThanOrEqual(Date.parse(record.submittedAt));
        expect(Date.parse(stamp.at)).toBeGreaterThan(Date.now() - 60_000);
        const ttl = await client.ttl(keys.resubmitted(b));
        expect(ttl).toBeGreaterThan(7 * 86_400 - 60);
        expect(ttl).toBeLessThanOrEqual(7 * 86_400);

        worker.kill('SIGCONT');
        const esc = id.replace(/\./g, '\\.');
        const words = `its subject a was resubmitted \\(${how}, at ${stamp.at}\\), which runs its jobs anew`;
        const said = new RegExp(`${esc}(: ${words}: stopping it here| \\S+ here in .*, but that could not be recorded \\(Missing key .*\\): ${words})\\n`);
        await until('the worker to say why its job is gone', async () => said.test(log()) || WRONG.test(log()), 30_000).catch((e: Error) => {
          throw new Error(`${e.message} (log: ${log()})`);
        });
        expect(log().split('\n').filter((l) => l.includes(id) && WRONG.test(l))).toEqual([]);
        expect(log()).toMatch(said);

        // a purge takes the stamps with the batch (its own tombstone says what became of its jobs)
        worker.kill('SIGKILL');
        expect(await cancelBatch(b, { redis: url(), purge: true, waitMs: 10_000 })).not.toHaveProperty('notPurged');
        expect(await client.exists(keys.resubmitted(b))).toBe(0);
      } finally {
        client.disconnect();
        worker.kill('SIGCONT');
        worker.kill('SIGKILL');
        // (its jobs, added again, would hold the next test's worker)
        await cancelBatch(b, { redis: url(), purge: true, waitMs: 5000 }).catch(() => undefined);
      }
    });
  }
});
