import { spawn } from 'node:child_process';
import { join } from 'node:path';

import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';

import { probePlan } from '../../ts/batch/graph.js';
import { cancelBatch, getBatchStatus, retryBatch, STALLED_MESSAGE, waitForBatch } from '../../ts/batch/inspect.js';
import { writePlan } from '../../ts/batch/outputs.js';
import { keys, PREFIX, redisConnection } from '../../ts/batch/redis.js';
import { submitPlan } from '../../ts/batch/submit.js';
import { createWorker } from '../../ts/batch/worker.js';
import { redisAvailable, redisTestBed } from './redis.js';
import { until } from '../helpers/waitFor.js';

// Every worker of a batch killed (a Slurm allocation's time limit, scancel, a lost rack): their jobs stay listed
// active in BullMQ, their locks expired, until a live worker's stalled-job check puts them back; with no worker left,
// for ever. Seen from the lab (3 workers killed with -9): `batch status` said "2 active", `batch watch` "2 running,
// 2 worker(s) busy; ETA 10 min"; `batch cancel` said they "stop at their next progress report", `--purge` waited for
// them and refused ("not purged: 2 jobs still running"), and `batch retry` left the subject alone as busy.

const { dir, workers, url } = redisTestBed('bl-dead-workers-');

const cli = join(process.cwd(), 'dist', 'cli', 'main.js');

/** A CLI worker with a 1 s lock, SIGKILLed (with its job process) as soon as its log says it took `jobId`. */
async function killedWhileRunning(jobId: string, submit: () => Promise<unknown>): Promise<void> {
  const victim = spawn(process.execPath, [cli, 'worker', '--redis', url(), '--name', 'victim', '--lock-ms', '1000', '--poll', '100'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  victim.stderr!.setEncoding('utf8');
  const killed = new Promise<void>((resolve, reject) => {
    victim.stderr!.on('data', (d: string) => {
      log += d;
      if (!log.split('\n').slice(0, -1).some((l) => l.endsWith(` ${jobId} started`))) return;
      victim.kill('SIGKILL');
      resolve();
    });
    victim.once('exit', (code, signal) => reject(new Error(`the victim exited (${signal ?? code}) before it took ${jobId}: ${log}`)));
  });
  killed.catch(() => {});
  try {
    await submit();
    await killed;
  } finally {
    victim.kill('SIGKILL');
  }
}

describe.skipIf(!redisAvailable)('jobs of workers that all died', () => {
  it('are waiting in batch status, not running; a resubmit says queued; a purge removes them at once', { timeout: 120_000 }, async () => {
    const plan = probePlan('dw', 1, join(dir, 'dw'), 60_000);
    const id = plan.subjects[0].shared[0].id;
    await killedWhileRunning(id, () => submitPlan(plan, { redis: url() }));

    // once its lock has expired: nobody runs it, and nobody is busy
    const st = await until('the lock to expire', async () => {
      const s = await getBatchStatus('dw', { redis: url() });
      return s.jobs.find((j) => j.id === id)!.state !== 'active' ? s : undefined;
    });
    expect(st.jobs.find((j) => j.id === id)).toMatchObject({ state: 'waiting', worker: 'victim', message: STALLED_MESSAGE, attempts: 0 });
    expect(st.counts).toMatchObject({ active: 0, waiting: 2 });
    expect(st.workers).toEqual({});
    expect(st.state).toBe('running');

    expect((await submitPlan(plan, { redis: url() })).existingStates).toEqual({ probe: 'queued' });

    const purged = await cancelBatch('dw', { redis: url(), purge: true, waitMs: 3000 });
    expect(purged).toEqual({ removed: 2, running: 0 });
    await expect(getBatchStatus('dw', { redis: url() })).rejects.toThrow(/no batch 'dw'/);
  });

  it('batch retry resubmits a cancelled subject whose job died with its worker, not holding it busy', { timeout: 120_000 }, async () => {
    const plan = probePlan('dc', 1, join(dir, 'dc'), 60_000);
    await writePlan(plan); // (retry reads it)
    const id = plan.subjects[0].shared[0].id;
    await killedWhileRunning(id, () => submitPlan(plan, { redis: url() }));
    // what a cancel does while the job runs (its worker alive: the job is left to stop itself), made certain here: the
    // batch marked cancelled and its subject's join removed, the job left as it is
    const client = new Redis(url());
    const control = new Queue('control', { connection: redisConnection(url()), prefix: PREFIX });
    try {
      await client.set(keys.cancelled('dc'), '1');
      await (await control.getJob('dc.probe'))!.remove({ removeChildren: false });
    } finally {
      client.disconnect();
      await control.close();
    }
    const st = await until('the lock to expire', async () => {
      const s = await getBatchStatus('dc', { redis: url() });
      return s.state !== 'running' ? s : undefined;
    });
    expect(st.state).toBe('cancelled');
    expect(st.jobs.map((j) => [j.id, j.state, j.message])).toEqual([
      [id, 'cancelled', undefined],
      ['dc.probe', 'cancelled', undefined],
    ]);

    // (the probe now takes 50 ms: the plan saved with the batch, of the same hash, is what a retry submits)
    await writePlan({ ...probePlan('dc', 1, join(dir, 'dc'), 50), hash: plan.hash });
    expect(await retryBatch('dc', { redis: url() })).toEqual({ retried: ['probe'], busy: [], replaces: [] });
    workers.push(await createWorker({ redis: url(), pollMs: 100 }));
    expect((await waitForBatch('dc', { redis: url(), intervalMs: 200 })).state).toBe('done');
  });
});
