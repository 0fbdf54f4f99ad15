import { once } from 'node:events';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { probePlan } from '../../ts/batch/graph.js';
import { getBatchStatus, waitForBatch } from '../../ts/batch/inspect.js';
import { submitPlan } from '../../ts/batch/submit.js';
import { createWorker } from '../../ts/batch/worker.js';
import { cliWorker, redisAvailable, redisTestBed } from './redis.js';
import { until } from '../helpers/waitFor.js';

// A stop signal to a worker's whole process group or cgroup: Ctrl-C in the terminal it runs in (SIGINT to the
// foreground group), Slurm's scancel and time limit and systemd's stop (SIGTERM to every process of the step or unit).
// The job processes got it too and died at once: "fleet9.subj01.betas failed: WorkerExit: the job's process died
// (exit code null, signal SIGINT) (will be retried)", an attempt used, instead of the job finishing within --grace or
// going back to the queue (docs: "a worker returns its running job to the queue"); three preemptions failed it for good.

const { dir, workers, url } = redisTestBed('bl-group-signal-');

/**
 * A CLI worker leading a process group of its own; the whole group gets `signal` once the job `jobId` has reported
 * progress from its job process (at the worker's "started" line that process may not be forked yet).
 */
async function signalledGroup(name: string, batch: string, jobId: string, signal: NodeJS.Signals, grace: number, submit: () => Promise<unknown>): Promise<{ code: number | null; log: string }> {
  const { child: p, log } = cliWorker(url(), ['--name', name, '--grace', `${grace}`, '--lock-ms', '3000', '--poll', '100'], { detached: true });
  const exited = once(p, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  try {
    await submit();
    await until(`${jobId} running in a job process`, async () => (await getBatchStatus(batch, { redis: url() })).jobs.find((j) => j.id === jobId && j.state === 'active' && j.fraction > 0));
    process.kill(-p.pid!, signal);
    const [code] = await exited;
    return { code, log: log() };
  } finally {
    if (p.exitCode === null && p.signalCode === null) process.kill(-p.pid!, 'SIGKILL');
  }
}

describe.skipIf(!redisAvailable)("a stop signal to the worker's whole process group", () => {
  it('SIGTERM (Slurm, systemd): the running job finishes within the grace, its one attempt done, and the worker exits 0', { timeout: 120_000 }, async () => {
    const plan = probePlan('gterm', 1, join(dir, 'gterm'), 3000);
    const id = plan.subjects[0].shared[0].id;
    const { code, log } = await signalledGroup('slurm', 'gterm', id, 'SIGTERM', 60, () => submitPlan(plan, { redis: url() }));
    expect(code).toBe(0);
    expect(log).toMatch(new RegExp(`SIGTERM: finishing the running job\\(s\\), then exiting\\n.* ${id.replace(/\./g, '\\.')} done in `));
    expect(log).not.toMatch(/failed|died/);
    const job = (await getBatchStatus('gterm', { redis: url() })).jobs.find((j) => j.id === id)!;
    expect([job.state, job.attempts, job.worker]).toEqual(['done', 1, 'slurm']);
  });

  it('SIGINT (Ctrl-C in its terminal): the same', { timeout: 120_000 }, async () => {
    const plan = probePlan('gint', 1, join(dir, 'gint'), 3000);
    const id = plan.subjects[0].shared[0].id;
    const { code, log } = await signalledGroup('terminal', 'gint', id, 'SIGINT', 60, () => submitPlan(plan, { redis: url() }));
    expect(code).toBe(0);
    expect(log).toMatch(new RegExp(`SIGINT: finishing the running job\\(s\\), then exiting\\n.* ${id.replace(/\./g, '\\.')} done in `));
    expect(log).not.toMatch(/failed|died/);
    const job = (await getBatchStatus('gint', { redis: url() })).jobs.find((j) => j.id === id)!;
    expect([job.state, job.attempts, job.worker]).toEqual(['done', 1, 'terminal']);
  });

  it('SIGTERM past a short grace: the running job goes back to the queue, no attempt used, and another worker runs it', { timeout: 120_000 }, async () => {
    const plan = probePlan('gback', 1, join(dir, 'gback'), 10_000);
    const id = plan.subjects[0].shared[0].id;
    const { code, log } = await signalledGroup('preempted', 'gback', id, 'SIGTERM', 1, () => submitPlan(plan, { redis: url() }));
    expect(code).toBe(0);
    expect(log).toContain(`${id} returned to the queue (worker closing)`);
    expect(log).not.toMatch(/failed|died/);
    const back = (await getBatchStatus('gback', { redis: url() })).jobs.find((j) => j.id === id)!;
    expect([back.state, back.attempts]).toEqual(['waiting', 0]);
    workers.push(await createWorker({ redis: url(), name: 'rescuer', pollMs: 100 }));
    const done = (await waitForBatch('gback', { redis: url(), intervalMs: 200 })).jobs.find((j) => j.id === id)!;
    expect([done.state, done.attempts, done.worker]).toEqual(['done', 1, 'rescuer']);
  });
});
