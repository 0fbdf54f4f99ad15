import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { getBatchStatus } from '../../ts/batch/inspect.js';
import type { BatchEvent } from '../../ts/batch/status.js';
import { createWorker } from '../../ts/batch/worker.js';
import type { DemoWorld } from '../../ts/demo/world.js';
import { redisAvailable, startRedis, type TestRedis } from '../batch/redis.js';
import { batchWorld, singleConfig } from '../batch/world.js';
import { readEvents, startTestServer, until, type TestServer } from './helpers.js';

// `serve --redis`: a job cancelled while Redis is stalled (SIGSTOP) cannot cancel its batch there; its process ends
// with the cancel lost: on its own (workers 0: nothing holds it), or killed after the grace (workers 1: its own worker's
// close waits for Redis). The service must take the cancel over: the job stays running with `cancelPending` and its
// folder claimed until Redis answers, then its batch is cancelled there, and a worker started afterwards runs nothing
// of it (review s43: the job read "cancelled" and a later worker ran it to done in the folder).
describe.skipIf(!redisAvailable).each([0, 1])('a cancel while Redis does not answer (serve --redis --workers %i)', (workers) => {
  let redis: TestRedis;
  let s: TestServer;
  let world: DemoWorld;
  let paused = false;
  beforeAll(async () => {
    redis = await startRedis();
    // 0: no job process of the service's own works the queue, the batch waits in Redis; 1: the job's process runs one
    s = await startTestServer({ redis: redis.url, jobs: { workers } });
    world = await batchWorld(s.root, [1]);
  }, 600_000);
  afterAll(async () => {
    if (paused) process.kill(redis.pid(), 'SIGCONT');
    await s?.stop();
    await redis?.dispose();
  });

  const rel = (p: string) => p.slice(s.root.length + 1);
  const single = (out: string) => {
    const c = singleConfig(world, 1, out) as unknown as { nsd: { root: string }; model: { dir: string } };
    return { ...c, nsd: { ...c.nsd, root: rel(c.nsd.root) }, model: { ...c.model, dir: rel(c.model.dir) } };
  };
  const view = async (id: string) => (await s.call('GET', `/v1/jobs/${id}`)).json;

  it('retries the batch cancel until Redis answers, keeping the job running and its folder claimed meanwhile', async () => {
    const r = await s.call('POST', '/v1/jobs', { kind: 'reconstruct', config: single('runs/stalled') });
    expect(r.status, r.text).toBe(202);
    const id: string = r.json.id;
    await until(async () => {
      try {
        const st = await getBatchStatus(id, { redis: redis.url });
        return st.jobs.some((j) => (workers ? j.state === 'active' : j.state === 'waiting')) ? st : undefined;
      } catch {
        return undefined; // not submitted yet
      }
    }, 120_000, workers ? "the batch's first job to run" : 'the batch to wait in Redis');

    process.kill(redis.pid(), 'SIGSTOP');
    paused = true;
    expect((await s.call('DELETE', `/v1/jobs/${id}`)).status).toBe(202);
    // the job's process ends without an answer from Redis (on its own, or killed after the grace): the service takes
    // the cancel over; a job that ended instead would claim a cancel Redis never saw
    const pending = await until(async () => {
      const v = await view(id);
      return v.cancelPending || v.state !== 'running' ? v : undefined;
    }, 120_000, 'the job to end or show its cancel pending');
    expect(pending.state, JSON.stringify(pending.error)).toBe('running');
    expect(pending.cancelPending).toMatch(new RegExp(`batch ${id} is not cancelled in Redis yet: Redis did not answer; the service tries again`));
    // the run folder stays claimed: a worker could still run the batch into it
    const again = await s.call('POST', '/v1/jobs', { kind: 'reconstruct', config: single('runs/stalled') });
    expect(again.status, again.text).toBe(409);
    expect(again.json.code).toBe('JobConflict');
    expect((await view(id)).state).toBe('running');

    process.kill(redis.pid(), 'SIGCONT');
    paused = false;
    const ended = await until(async () => {
      const v = await view(id);
      return v.state !== 'running' ? v : undefined;
    }, 120_000, 'the job to end once Redis answers');
    expect(ended.state).toBe('cancelled');
    expect(ended.cancelPending).toBeUndefined();
    expect(ended.error.message).toMatch(new RegExp(`the service cancelled batch ${id} there once it did`));
    const st = await getBatchStatus(id, { redis: redis.url });
    // nothing waits; a job the killed process ran keeps its lock until it expires: 'active' (the batch 'running')
    // until a worker finds it stalled, takes it, and stops it as the batch's (below)
    expect(st.jobs.filter((j) => j.state === 'waiting')).toEqual([]);
    if (!workers) expect(st.state).toBe('cancelled');
    const doneAtCancel = st.counts.done;

    // a worker started now runs nothing of it: another job is run to its end through the same queues (taken in
    // order), and of the cancelled batch there is no event but a cancel, and no output
    const events: BatchEvent[] = [];
    const worker = await createWorker({ redis: redis.url, concurrency: 1, onEvent: (e) => events.push(e) });
    try {
      const next = await s.call('POST', '/v1/jobs', { kind: 'reconstruct', config: single('runs/after') });
      expect(next.status, next.text).toBe(202);
      const done = await readEvents(`${s.url}/v1/jobs/${next.json.id}/events`);
      expect(done[done.length - 1].event, JSON.stringify(done[done.length - 1].data.error)).toBe('result');
      // a job left active by the killed process is found stalled by this worker, taken, and stopped as cancelled
      await until(async () => {
        const now = await getBatchStatus(id, { redis: redis.url });
        return now.jobs.every((j) => j.state !== 'active' && j.state !== 'waiting') ? now : undefined;
      }, 120_000, "the cancelled batch's jobs to be finished");
    } finally {
      await worker.close();
    }
    // (with workers 0 it alone ran the other job; with 1 the service's own worker shares the work)
    if (!workers) expect(events.some((e) => e.batch !== id && e.job?.state === 'done')).toBe(true);
    // (a job it takes is 'active' until its first check finds the batch cancelled: 'cancelled before it started')
    const ours = events.filter((e) => e.batch === id);
    expect(ours.filter((e) => e.job?.state !== 'active' && e.job?.state !== 'cancelled')).toEqual([]);
    const last = new Map(ours.map((e) => [e.job!.id, e.job!.state]));
    expect([...last].filter(([, state]) => state !== 'cancelled')).toEqual([]);
    const after = await getBatchStatus(id, { redis: redis.url });
    expect(after.state).toBe('cancelled');
    expect(after.counts.done).toBe(doneAtCancel);
    if (!workers) expect(existsSync(join(s.root, 'runs', 'stalled', 'stages', 'extract.json'))).toBe(false);
    expect(existsSync(join(s.root, 'runs', 'stalled', 'report.html'))).toBe(false);
  }, 600_000);
});

// A shutdown does not wait for Redis for ever: it gives the pending cancel one more try, then ends the job saying that
// its batch is NOT cancelled in Redis and what to run (not a plain "cancelled" that hides a batch still queued).
describe.skipIf(!redisAvailable)('a shutdown while a cancel waits for Redis (serve --redis)', () => {
  let redis: TestRedis;
  let s: TestServer | undefined;
  let paused = false;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    if (paused) process.kill(redis.pid(), 'SIGCONT');
    await s?.stop();
    await redis?.dispose();
  });

  it("ends the job saying its batch is not cancelled in Redis, and how to cancel it", async () => {
    // a deadline of 0: the shutdown cancels the running job at once
    const server = await startTestServer({ redis: redis.url, jobs: { workers: 0 }, shutdownDeadlineMs: 0 });
    s = server;
    const world = await batchWorld(server.root, [1]);
    const c = singleConfig(world, 1, 'runs/left') as unknown as { nsd: { root: string }; model: { dir: string } };
    const rel = (p: string) => p.slice(server.root.length + 1);
    const r = await server.call('POST', '/v1/jobs', { kind: 'reconstruct', config: { ...c, nsd: { ...c.nsd, root: rel(c.nsd.root) }, model: { ...c.model, dir: rel(c.model.dir) } } });
    expect(r.status, r.text).toBe(202);
    const id: string = r.json.id;
    await until(async () => {
      try {
        return (await getBatchStatus(id, { redis: redis.url })).jobs.some((j) => j.state === 'waiting') || undefined;
      } catch {
        return undefined; // not submitted yet
      }
    }, 120_000, 'the batch to wait in Redis');
    process.kill(redis.pid(), 'SIGSTOP');
    paused = true;
    // the job's stream open (its first event read) before the shutdown starts: it sees the job end
    let opened!: () => void;
    const open = new Promise<void>((r) => (opened = r));
    const events = readEvents(`${server.url}/v1/jobs/${id}/events`, {}, () => opened());
    await open;
    s = undefined;
    await server.stop();
    const got = await events;
    const end = got.find((e) => e.event === 'error');
    expect(end?.data.state).toBe('cancelled');
    expect(end?.data.error.message).toMatch(new RegExp(`the service shut down before Redis answered: its batch ${id} is not cancelled in Redis, and workers may still run its jobs; cancel it with 'brainlatent batch cancel ${id} --redis <this service's Redis URL>'`));

    process.kill(redis.pid(), 'SIGCONT');
    paused = false;
    // as it said: the batch is still there, its jobs waiting for a worker
    const st = await getBatchStatus(id, { redis: redis.url });
    expect(st.state).toBe('running');
    expect(st.jobs.some((j) => j.state === 'waiting')).toBe(true);
  }, 600_000);
});
