import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { getBatchStatus } from '../../ts/batch/inspect.js';
import { createWorker } from '../../ts/batch/worker.js';
import type { DemoWorld } from '../../ts/demo/world.js';
import { redisAvailable, startRedis, type TestRedis } from '../batch/redis.js';
import { batchWorld, singleConfig } from '../batch/world.js';
import { readEvents, startTestServer, until, type TestServer } from './helpers.js';

// `serve --redis`: batch-layer jobs go to BullMQ on a real redis-server (started here), and a separate worker
// (what `brainlatent worker` runs) does the work; the service follows it stage by stage and cancels through Redis.
if (!redisAvailable) console.warn('no redis-server (apt-get install redis-server): the serve --redis tests are skipped');

describe.skipIf(!redisAvailable)('jobs through Redis (serve --redis)', () => {
  let redis: TestRedis;
  let s: TestServer;
  let world: DemoWorld;
  beforeAll(async () => {
    redis = await startRedis();
    // the service gives the queue no job process of its own: only the worker below works
    s = await startTestServer({ redis: redis.url, jobs: { workers: 0 } });
    world = await batchWorld(s.root, [1, 2]); // the two subjects these tests use
  }, 600_000);
  afterAll(async () => {
    await s?.stop();
    await redis?.dispose();
  });

  const rel = (p: string) => p.slice(s.root.length + 1);
  const single = (subject: number, out: string) => {
    const c = singleConfig(world, subject, out) as unknown as { nsd: { root: string }; model: { dir: string } };
    return { ...c, nsd: { ...c.nsd, root: rel(c.nsd.root) }, model: { ...c.model, dir: rel(c.model.dir) } };
  };

  it('is ready while Redis answers', async () => {
    const r = await s.call('GET', '/readyz');
    expect(r.status, r.text).toBe(200);
    expect(r.json.runner).toMatch(/jobs through Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+.* \(reachable\)/);
  });

  it('cancels a job waiting in Redis for a worker: its jobs leave the queue', async () => {
    const r = await s.call('POST', '/v1/jobs', { kind: 'reconstruct', config: single(2, 'runs/never') });
    expect(r.status, r.text).toBe(202);
    // submitted: the batch is recorded in Redis with its jobs waiting
    const waiting = await until(async () => {
      try {
        const st = await getBatchStatus(r.json.id, { redis: redis.url });
        return st.jobs.some((j) => j.state === 'waiting' || j.state === 'active') ? st : undefined;
      } catch {
        return undefined; // not submitted yet
      }
    }, 60_000, 'the batch to reach Redis');
    expect(waiting.jobs.length).toBeGreaterThan(1);
    expect((await s.call('DELETE', `/v1/jobs/${r.json.id}`)).status).toBe(202);
    const view = await until(async () => {
      const v = (await s.call('GET', `/v1/jobs/${r.json.id}`)).json;
      return v.state === 'cancelled' ? v : undefined;
    }, 60_000, 'the job to be cancelled');
    expect(view.error.name).toBe('CancelledError');
    const after = await getBatchStatus(r.json.id, { redis: redis.url });
    expect(after.jobs.filter((j) => j.state === 'waiting' || j.state === 'active')).toEqual([]);
    expect(existsSync(join(s.root, 'runs', 'never', 'stages', 'extract.json'))).toBe(false);
  });

  it('runs a reconstruct job on a separate worker: every stage in order over SSE, then the result', async () => {
    const worker = await createWorker({ redis: redis.url, concurrency: 2 });
    try {
      const r = await s.call('POST', '/v1/jobs', { kind: 'reconstruct', config: single(1, 'runs/q1') });
      expect(r.status, r.text).toBe(202);
      const events = await readEvents(`${s.url}/v1/jobs/${r.json.id}/events`);
      const last = events[events.length - 1];
      expect(last.event, JSON.stringify(last.data.error)).toBe('result');
      expect(events.filter((e) => e.event === 'stage').map((e) => e.data.stage)).toEqual(r.json.stages);
      expect(last.data.result.metrics.final['Pixels(2WI)']).toBeGreaterThan(0.5);
      expect(last.data.result.counts.failed).toBe(0);
      const run = join(s.root, 'runs', 'q1');
      expect(existsSync(join(run, 'report.html'))).toBe(true);
      expect(readdirSync(run, { recursive: true }).filter((f) => /(^|\/)\.[^/]*tmp/.test(String(f)))).toEqual([]);
    } finally {
      await worker.close();
    }
  }, 600_000);

  it('is not ready when Redis is down, and says so', async () => {
    await redis.stop();
    const r = await s.call('GET', '/readyz');
    expect(r.status).toBe(503);
    expect(r.json.runner).toMatch(/Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+.* is not reachable/);
  });
});
