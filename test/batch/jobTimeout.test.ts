import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';

import { registerBatchCommand } from '../../ts/cli/commands/batch.js';
import { probePlan, type BatchPlan } from '../../ts/batch/graph.js';
import { retryBatch, waitForBatch } from '../../ts/batch/inspect.js';
import { parseJobTimeout } from '../../ts/batch/jobTimeout.js';
import { runLocal } from '../../ts/batch/localRunner.js';
import { PREFIX, redisConnection } from '../../ts/batch/redis.js';
import { submitBatch, submitPlan } from '../../ts/batch/submit.js';
import { createWorker } from '../../ts/batch/worker.js';
import { runCommands } from '../helpers/cli.js';
import { running } from './procs.js';
import { redisAvailable, redisTestBed } from './redis.js';

// A job stuck in native code never ended: the lock keeper renews its lock from a thread of its own, so nothing took it
// for stalled, and the worker's job process stayed busy with it for ever. A batch's --job-timeout now kills the job's
// process past the limit and fails the attempt (JobTimeoutError naming the job and the limit); its retries apply.
// The probe here blocks its process for good once started (Atomics.wait): no abort, no IPC reaches it.

const { dir, workers, url } = redisTestBed('bl-job-timeout-');

/** One probe that hangs, 2 attempts. */
function hangingPlan(id: string): BatchPlan {
  const plan = probePlan(id, 1, join(dir, id), 50, { attempts: 2, backoffMs: 100 });
  const probe = plan.subjects[0].shared[0];
  if (probe.work.kind === 'probe') probe.work.hang = true;
  return plan;
}

/** The pids that ran the probe, from its executions.log (one line per attempt). */
const executions = (plan: BatchPlan) =>
  readFileSync(join(plan.out, 'executions.log'), 'utf8').trim().split('\n').map((l) => Number(l.split(' ')[1]));

describe('--job-timeout', () => {
  it.each([
    ['90s', 90_000],
    ['45m', 2_700_000],
    ['1h30m', 5_400_000],
    ['1d', 86_400_000],
    ['04:00:00', 14_400_000], // Slurm's HH:MM:SS
    ['10:30', 630_000], // Slurm's MM:SS
    ['1-12', 129_600_000], // Slurm's D-HH
    ['1-02:03:04', 93_784_000],
  ])('reads %s as %i ms', (text, ms) => {
    expect(parseJobTimeout(text, '--job-timeout')).toBe(ms);
  });

  it.each([
    ['90', /^--job-timeout: expected a duration .*got '90' \(a bare number has no unit: 90m, or 90s\?\)$/],
    ['0s', /^--job-timeout: expected a duration from 1s to .*got '0s'$/],
    ['30d', /^--job-timeout: expected a duration from 1s to .*got '30d'$/],
    ['01:60:00', /^--job-timeout: expected a duration \(Slurm's .*got '01:60:00'$/],
  ])('refuses %s, naming the flag', (text, message) => {
    expect(() => parseJobTimeout(text, '--job-timeout')).toThrow(message);
  });

  it('is checked by batch submit before anything is read or connected', async () => {
    await expect(runCommands([registerBatchCommand], ['batch', 'submit', join(dir, 'none.json'), '--redis', 'redis://127.0.0.1:1', '--job-timeout', '2x'])).rejects.toThrow(
      /^--job-timeout: expected a duration .*got '2x'$/,
    );
    await expect(submitBatch(join(dir, 'none.json'), { redis: 'redis://127.0.0.1:1', jobTimeoutMs: 0 })).rejects.toThrow(/^submitBatch jobTimeoutMs: expected an integer in 1000\.\.2147483647, got 0$/);
  });

  it('kills a hung job here (batch run) and fails it naming the limit, after its attempts', { timeout: 45_000 }, async () => {
    const plan = { ...hangingPlan('jtl'), jobTimeoutMs: 1500 };
    const status = await runLocal(plan, { concurrency: 1 });
    const job = status.jobs.find((j) => j.stage === 'probe')!;
    expect(job).toMatchObject({ state: 'failed', attempts: 2 });
    expect(job.reason).toMatch(/^JobTimeoutError: jtl\.probe\.p0000 ran past its time limit of 1\.5s \(its batch's --job-timeout\): its process \(pid \d+\) was killed$/);
    const pids = executions(plan);
    expect(pids).toHaveLength(2);
    expect(pids.filter(running)).toEqual([]);
  });
});

describe.skipIf(!redisAvailable)('a worker', () => {
  it("kills a job past its batch's --job-timeout; the attempt fails and BullMQ retries it", { timeout: 45_000 }, async () => {
    const lines: string[] = [];
    const w = await createWorker({ redis: url(), pollMs: 100, graceMs: 0, onLog: (l) => lines.push(l) });
    workers.push(w);
    const plan = { ...hangingPlan('jtw'), jobTimeoutMs: 1500 };
    const id = plan.subjects[0].shared[0].id;
    await submitPlan(plan, { redis: url() });
    const report = await waitForBatch('jtw', { redis: url(), intervalMs: 200 });
    const job = report.jobs.find((j) => j.id === id)!;
    const reason = /^JobTimeoutError: jtw\.probe\.p0000 ran past its time limit of 1\.5s \(its batch's --job-timeout\): its process \(pid \d+\) was killed$/;
    expect(job).toMatchObject({ state: 'failed', attempts: 2 });
    expect(job.reason).toMatch(reason);
    // the first attempt failed and was retried, the second failed for good; each in a process now killed
    const said = lines.filter((l) => l.startsWith(`${id} failed: `)).map((l) => l.slice(`${id} failed: `.length));
    expect(said).toHaveLength(2);
    expect(said[0]).toMatch(new RegExp(`${reason.source.slice(1, -1)} \\(will be retried\\)$`));
    expect(said[1]).toMatch(reason);
    const pids = executions(plan);
    expect(pids).toHaveLength(2);
    expect(pids.filter(running)).toEqual([]);
    expect(w.running).toBe(0);
    await w.close();

    // batch retry --job-timeout: the resubmitted jobs carry the new limit, and the plan saved with the batch keeps it
    expect(JSON.parse(readFileSync(join(plan.out, 'batch.json'), 'utf8')).jobTimeoutMs).toBe(1500);
    expect(await retryBatch('jtw', { redis: url(), jobTimeoutMs: 120_000 })).toMatchObject({ retried: ['probe'] });
    const queue = new Queue('data', { connection: redisConnection(url()), prefix: PREFIX });
    try {
      expect((await queue.getJob(id))?.data.timeoutMs).toBe(120_000);
    } finally {
      await queue.close();
    }
    expect(JSON.parse(readFileSync(join(plan.out, 'batch.json'), 'utf8')).jobTimeoutMs).toBe(120_000);
  });
});
