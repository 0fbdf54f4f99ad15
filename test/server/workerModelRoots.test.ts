/**
 * `serve --redis` with a `brainlatent worker` started on its own (another machine: it has neither the service's
 * environment nor BRAINLATENT_MODEL_ROOTS): the service's root travels with each job, and the worker holds that
 * job's model files to it. Before, such a worker followed a model folder's links anywhere: a job whose model.onnx
 * files linked outside the root loaded them and ran to its end. A model inside the root still loads and runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { cp, mkdtemp, readdir, realpath, rename, rm, symlink } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { DemoWorld } from '../../ts/demo/world.js';
import { MODEL_ROOTS_ENV, SERVICE_MODEL_ROOTS_ENV } from '../../ts/sd/modelRoots.js';
import { redisAvailable, startRedis, type TestRedis } from '../batch/redis.js';
import { batchWorld, singleConfig } from '../batch/world.js';
import { startTestServer, until, type TestServer } from './helpers.js';

if (!redisAvailable) console.warn('no redis-server (apt-get install redis-server): the outside-worker model-roots test is skipped');

const cli = join(process.cwd(), 'dist', 'cli', 'main.js');

describe.skipIf(!redisAvailable)('serve --redis: a worker started elsewhere holds model files to the service root', () => {
  let redis: TestRedis;
  let s: TestServer;
  let world: DemoWorld;
  let outside = '';
  let worker: ChildProcess | undefined;
  let log = '';

  beforeAll(async () => {
    redis = await startRedis();
    // no job process of the service's own: only the outside worker works
    s = await startTestServer({ redis: redis.url, jobs: { workers: 0 } });
    world = await batchWorld(s.root, [1]);
    outside = await realpath(await mkdtemp(join(tmpdir(), 'bl-worker-roots-out-')));
    // models/evil: the world's model (its links out of the root are made once the job has passed the preflight)
    await cp(world.modelDir, join(s.root, 'models', 'evil'), { recursive: true });
  }, 600_000);

  /** Each component's model.onnx of `dir` a link to a file outside the root. */
  async function linkOut(dir: string): Promise<void> {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const onnx = join(dir, e.name, 'model.onnx');
      if (!e.isDirectory() || !existsSync(onnx)) continue;
      await rename(onnx, join(outside, `${e.name}.onnx`));
      await symlink(join(outside, `${e.name}.onnx`), onnx);
    }
  }

  /** The worker of another machine: none of this process's model-root variables. */
  function startWorker(): void {
    const env = { ...process.env };
    delete env[MODEL_ROOTS_ENV];
    delete env[SERVICE_MODEL_ROOTS_ENV];
    worker = spawn(process.execPath, [cli, 'worker', '--redis', redis.url, '--name', 'outside', '--concurrency', '2', '--poll', '250'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    worker.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  }
  afterAll(async () => {
    if (worker && worker.exitCode === null && worker.signalCode === null) {
      worker.kill('SIGTERM');
      await once(worker, 'exit');
    }
    await s?.stop();
    await redis?.dispose();
    await rm(outside, { recursive: true, force: true });
  });

  const rel = (p: string) => p.slice(s.root.length + 1);
  const config = (model: string, out: string) => {
    const c = singleConfig(world, 1, out) as unknown as { nsd: { root: string }; model: { dir: string } };
    return { ...c, nsd: { ...c.nsd, root: rel(c.nsd.root) }, model: { ...c.model, dir: model } };
  };
  const ended = (id: string) =>
    until(async () => {
      const v = (await s.call('GET', `/v1/jobs/${id}`)).json;
      return v.state === 'done' || v.state === 'failed' || v.state === 'cancelled' ? v : undefined;
    }, 600_000, `job ${id} to end`);

  it('refuses a model whose files link outside the root, and runs one inside it', async () => {
    const evil = await s.call('POST', '/v1/jobs', { kind: 'reconstruct', config: config('models/evil', 'runs/evil') });
    expect(evil.status, evil.text).toBe(202);
    const ok = await s.call('POST', '/v1/jobs', { kind: 'reconstruct', config: config(rel(world.modelDir), 'runs/ok') });
    expect(ok.status, ok.text).toBe(202);
    // the folder's files linked out after the submission's preflight (which refuses such links itself), before any
    // worker runs the job (the service has none of its own): the worker is what holds the job to the root here
    await linkOut(join(s.root, 'models', 'evil'));
    startWorker();
    const [e, o] = await Promise.all([ended(evil.json.id), ended(ok.json.id)]);
    expect(e.state, `${JSON.stringify(e.error)}\nworker log:\n${log}`).toBe('failed');
    expect(e.error.message).toMatch(/model\.onnx.*leads, through a symbolic link, outside the service's root folder/);
    // (the file named as the API names it, relative to the root; the link's target nowhere)
    expect(e.error.message).toContain('models/evil/');
    expect(e.error.message).not.toContain(s.root);
    expect(JSON.stringify(e)).not.toContain(outside);
    expect(log).not.toContain(outside);
    expect(existsSync(join(s.root, 'runs', 'evil', 'report.html'))).toBe(false);
    expect(o.state, `${JSON.stringify(o.error)}\nworker log:\n${log}`).toBe('done');
    expect(o.result.metrics.final['Pixels(2WI)']).toBeGreaterThan(0.5);
  }, 900_000);
});
