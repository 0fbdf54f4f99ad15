import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { probePlan, type BatchNode, type BatchPlan } from '../../ts/batch/graph.js';
import { cancelBatch, getBatchStatus, retryBatch, waitForBatch } from '../../ts/batch/inspect.js';
import { writePlan } from '../../ts/batch/outputs.js';
import type { JobInfo } from '../../ts/batch/status.js';
import { submitPlan } from '../../ts/batch/submit.js';
import { createWorker } from '../../ts/batch/worker.js';
import { redisAvailable, redisTestBed } from './redis.js';
import { sleep, until } from '../helpers/waitFor.js';

// What `batch status` says about jobs through BullMQ: a cancel leaves finished jobs done; a job a worker returned
// to the queue on SIGTERM, or that stalled, used no attempt. Tiny probe jobs (wait, write a file), no world.

const { dir, workers, url } = redisTestBed('bl-qstates-');

/** Two subjects of probe jobs, A (fast) and B (each job `slowMs`), as one batch. */
function twoSubjects(id: string, out: string, slowMs: number): BatchPlan {
  const subject = (name: string, ms: number) => {
    const p = probePlan(id, 3, out, ms).subjects[0];
    const fix = (n: BatchNode): BatchNode => ({ ...n, id: n.id.replace('.probe', `.${name}`), subject: name, deps: n.deps.map((d) => d.replace('.probe', `.${name}`)) });
    return { name, root: fix(p.root), shared: p.shared.map(fix), analyses: [] };
  };
  return { id, out, hash: `two-${slowMs}`, retry: { attempts: 3, backoffMs: 200 }, subjects: [subject('A', 50), subject('B', slowMs)] };
}

const states = (jobs: JobInfo[]) => Object.fromEntries(jobs.map((j) => [j.id, j.state]));

describe.skipIf(!redisAvailable)('job states through BullMQ', () => {
  it("batch cancel: finished jobs stay done (a waiting join's included); waiting and running ones become cancelled; retry then completes the batch", { timeout: 180_000 }, async () => {
    const out = join(dir, 'cancel');
    const plan = twoSubjects('cx', out, 8000);
    await writePlan(plan); // what submitBatch writes (retry reads it)
    // no control queue here: A's join waits with every job under it done (a join not taken yet), which is
    // where the cancel used to remove the whole tree, finished jobs and all
    // (B's job is cancelled once it has reported a step here, not when a poll of Redis reads it 'active')
    let bRuns!: (id: string) => void;
    const bRunning = new Promise<string>((r) => (bRuns = r));
    const w = await createWorker({
      redis: url(), queues: ['data', 'compute', 'sample'], pollMs: 100, lockMs: 3000, stallMs: 1000,
      onEvent: (e) => {
        if (e.job?.subject === 'B' && e.job.stage === 'probe' && e.job.state === 'active' && e.job.fraction > 0) bRuns(e.job.id);
      },
    });
    workers.push(w);
    await submitPlan(plan, { redis: url(), only: ['A'] });
    await until('A done', async () => (await getBatchStatus('cx', { redis: url() })).jobs.filter((j) => j.subject === 'A' && j.stage === 'probe').every((j) => j.state === 'done'));
    await submitPlan(plan, { redis: url(), only: ['B'] });
    const running = { id: await bRunning };

    const c = await cancelBatch('cx', { redis: url() });
    expect(c.running).toBe(1);
    // the running job stops at its worker's next check and fails as cancelled
    const after = await until('the running job to stop', async () => {
      const st = await getBatchStatus('cx', { redis: url() });
      return st.jobs.find((j) => j.id === running.id)!.state !== 'active' ? st : undefined;
    });
    expect(states(after.jobs)).toEqual({
      'cx.A.p0000': 'done',
      'cx.A.p0001': 'done',
      'cx.A.p0002': 'done',
      'cx.A': 'cancelled',
      'cx.B.p0000': 'cancelled',
      'cx.B.p0001': 'cancelled',
      'cx.B.p0002': 'cancelled',
      'cx.B': 'cancelled',
    });
    expect(after.jobs.find((j) => j.id === running.id)!.reason).toBe('batch cancelled');
    expect(after.state).toBe('cancelled');
    expect(after.counts).toMatchObject({ done: 3, cancelled: 5, active: 0, waiting: 0 });
    for (const i of [0, 1, 2]) expect(existsSync(join(out, `cx.A.p000${i}.json`))).toBe(true);
    expect(existsSync(join(out, `${running.id}.json`))).toBe(false);

    // retry: both subjects again (A's join and B's jobs were cancelled); A's finished jobs are skipped
    await w.close();
    const w2 = await createWorker({ redis: url(), concurrency: 3, pollMs: 100 });
    workers.push(w2);
    const r = await retryBatch('cx', { redis: url() });
    expect(r).toEqual({ retried: ['A', 'B'], busy: [], replaces: [] });
    const report = await waitForBatch('cx', { redis: url(), intervalMs: 200 });
    expect(report.state).toBe('done');
    expect(states(report.jobs)).toMatchObject({ 'cx.A.p0000': 'skipped', 'cx.A.p0001': 'skipped', 'cx.A.p0002': 'skipped', [running.id]: 'done' });
    await w2.close();
  });

  it('a job returned to the queue on close (SIGTERM) or lost with a killed worker (a stall) used no attempt', { timeout: 180_000 }, async () => {
    const out = join(dir, 'returned');
    // close: the running job goes back to the queue at once (no grace), another worker finishes it
    // closed once the probe has reported a step here (a poll of Redis for 'active' could miss the 4 s window, or
    // look so late that the probe ended before the close)
    let probing!: () => void;
    const probeRuns = new Promise<void>((r) => (probing = r));
    const leaving = await createWorker({
      redis: url(), name: 'leaving', graceMs: 0, pollMs: 100,
      onEvent: (e) => {
        if (e.job?.stage === 'probe' && e.job.fraction > 0) probing();
      },
    });
    await submitPlan(probePlan('ret', 1, out, 4000), { redis: url() });
    await probeRuns;
    await leaving.close();
    const back = (await getBatchStatus('ret', { redis: url() })).jobs.find((j) => j.stage === 'probe')!;
    expect(back.state).toBe('waiting');
    expect(back.attempts).toBe(0);
    const rescuer = await createWorker({ redis: url(), name: 'rescuer', pollMs: 100 });
    workers.push(rescuer);
    const done = (await waitForBatch('ret', { redis: url(), intervalMs: 200 })).jobs.find((j) => j.stage === 'probe')!;
    expect(done).toMatchObject({ state: 'done', worker: 'rescuer', attempts: 1 });
    expect(done.stalls ?? 0).toBe(0); // returned, not stalled

    // a stall: the worker running the job is killed; the rescuer finds it stalled and runs it
    await rescuer.close();
    const cli = join(process.cwd(), 'dist', 'cli', 'main.js');
    const victim = spawn(process.execPath, [cli, 'worker', '--redis', url(), '--name', 'victim', '--lock-ms', '3000', '--stall-ms', '1000', '--poll', '100'], { stdio: ['ignore', 'ignore', 'pipe'] });
    // killed (SIGKILL) in the handler of its line that says it took the probe, not once a poll of Redis every 100 ms
    // reads it 'active' there: a late look at the 4 s probe could find it done. Once the line is out, the job is the
    // victim's, active with its lock, so its death leaves a stall however fast or slow the probe would have run.
    const taken = / stall\.probe\.p0000 started$/;
    let log = '';
    victim.stderr!.setEncoding('utf8');
    const killed = new Promise<void>((resolve, reject) => {
      victim.stderr!.on('data', (d: string) => {
        const whole = log.lastIndexOf('\n') + 1; // where the line not yet ended starts
        log += d;
        const end = log.lastIndexOf('\n');
        if (end < whole || !log.slice(whole, end).split('\n').some((line) => taken.test(line))) return;
        victim.kill('SIGKILL');
        resolve();
      });
      victim.once('exit', (code, signal) => reject(new Error(`the victim exited (${signal ?? code}) before it started the probe: ${log}`)));
    });
    killed.catch(() => {}); // (awaited below, after the submit: an early exit is not an unhandled rejection meanwhile)
    try {
      await submitPlan(probePlan('stall', 1, join(dir, 'stall'), 4000), { redis: url() });
      await killed;
    } finally {
      victim.kill('SIGKILL');
    }
    // (the job stays the dead victim's until a worker's stall check takes it back, none running yet: active while its
    // lock lasts, then waiting, deadWorkers.test)
    const left = (await getBatchStatus('stall', { redis: url() })).jobs.find((j) => j.stage === 'probe')!;
    expect([left.state, left.worker]).toEqual([expect.stringMatching(/^(active|waiting)$/), 'victim']);
    workers.push(await createWorker({ redis: url(), name: 'rescuer2', pollMs: 100, lockMs: 3000, stallMs: 1000 }));
    const stalled = (await waitForBatch('stall', { redis: url(), intervalMs: 200 })).jobs.find((j) => j.stage === 'probe')!;
    expect(stalled.state).toBe('done');
    expect(stalled.worker).toBe('rescuer2');
    expect(stalled.stalls).toBeGreaterThanOrEqual(1);
    expect(stalled.attempts).toBe(1);
  });
});
