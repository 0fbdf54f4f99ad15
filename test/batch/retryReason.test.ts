import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { probePlan } from '../../ts/batch/graph.js';
import { cancelBatch, getBatchStatus } from '../../ts/batch/inspect.js';
import { formatSummary } from '../../ts/batch/status.js';
import { submitPlan } from '../../ts/batch/submit.js';
import { createWorker } from '../../ts/batch/worker.js';
import { redisAvailable, redisTestBed } from './redis.js';
import { until } from '../helpers/waitFor.js';

// A job whose attempt failed for a transient reason (its process killed: the OOM killer, a node's trouble) waits for
// its retry. `batch status` said only "waiting": the reason was in the log of the worker that ran it, on another
// machine, while the local runner (and the worker's own events) say "attempt 1 failed (…); retrying".

const { dir, workers, url } = redisTestBed('bl-retry-reason-');

describe.skipIf(!redisAvailable)('a job waiting for its retry', () => {
  it('says in batch status why its last attempt failed', { timeout: 90_000 }, async () => {
    // a long backoff: the job waits (delayed) while the status is read
    const plan = probePlan('rr', 1, join(dir, 'rr'), 60_000, { attempts: 3, backoffMs: 600_000 });
    const id = plan.subjects[0].shared[0].id;
    const w = await createWorker({ redis: url(), pollMs: 100 });
    workers.push(w);
    await submitPlan(plan, { redis: url() });
    await until('the job running in its process', async () => (await getBatchStatus('rr', { redis: url() })).jobs.find((j) => j.id === id && j.state === 'active' && j.fraction > 0));
    for (const pid of w.processes) process.kill(pid, 'SIGKILL');

    const st = await until('the job waiting for its retry', async () => {
      const s = await getBatchStatus('rr', { redis: url() });
      return s.jobs.find((j) => j.id === id)!.state === 'waiting' ? s : undefined;
    });
    const reason = "attempt 1 failed (WorkerExit: the job's process died (exit code null, signal SIGKILL)); retrying";
    expect(st.jobs.find((j) => j.id === id)).toMatchObject({ state: 'waiting', attempts: 1, reason });
    expect(formatSummary(st.summary).split('\n').filter((l) => /^probe +probe +waiting: /.test(l))).toEqual([expect.stringMatching(/ waiting: attempt 1 failed/)]);
    expect(formatSummary(st.summary)).toContain(` waiting: ${reason}`);
    // (the join above it waits, with no reason)
    const root = st.jobs.find((j) => j.id === 'rr.probe')!;
    expect([root.state, root.reason]).toEqual(['waiting', undefined]);
    await cancelBatch('rr', { redis: url() });
  });
});
