import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { RedisUnreachableError } from '../../ts/batch/errors.js';
import { probePlan } from '../../ts/batch/graph.js';
import { cancelBatch, getBatchStatus, listBatches, retryBatch, waitForBatch, watchBatch } from '../../ts/batch/inspect.js';
import { runBatch } from '../../ts/batch/runBatch.js';
import { submitBatch, submitPlan } from '../../ts/batch/submit.js';
import { createWorker } from '../../ts/batch/worker.js';
import type { DemoWorld } from '../../ts/demo/world.js';
import { startTestServer, type TestServer } from '../server/helpers.js';
import { redisAvailable } from './redis.js';
import { batchManifest, batchWorld } from './world.js';

// A Redis that is not there (a free port nobody listens on): every batch command and library entry point fails
// within seconds with one line naming the URL, instead of waiting for it for ever (BullMQ's connections retry
// without end). The tests assert the failure, never its duration: the 15 s limits only tell a hang apart.

/**
 * A port nobody listens on, below the range the kernel hands out for port 0 (ip_local_port_range, 32768–60999 by
 * default): the other test files start their redis-servers on such ports, and a worker here waiting on one of them
 * would connect to another file's Redis and run its batch's jobs (it did: batch.test's img2img shards finished in
 * the early worker of this file, so that file never saw one start). Free now, and no port-0 bind can take it.
 */
async function deadPort(): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const s = net.createServer();
    const free = await new Promise<boolean>((ok) => {
      s.once('error', () => ok(false));
      s.listen(port, '127.0.0.1', () => ok(true));
    });
    if (!free) continue;
    await new Promise((r) => s.close(r));
    return port;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'bl-redisdown-'));
let url: string;
let world: DemoWorld;
let unreachable: RegExp;
beforeAll(async () => {
  const port = await deadPort();
  url = `redis://127.0.0.1:${port}`;
  unreachable = new RegExp(`Redis at redis://127\\.0\\.0\\.1:${port} is not reachable \\(ECONNREFUSED\\)`);
  world = await batchWorld(dir, [1]);
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cli = join(process.cwd(), 'dist', 'cli', 'main.js');

/** Runs the CLI to its end: exit code and both streams. */
async function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = await once(p, 'exit');
  return { code, stdout, stderr };
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('resolved, expected RedisUnreachableError');
}

describe('a Redis that is not reachable', () => {
  it('fails every library entry point with RedisUnreachableError naming the URL, rather than hanging', { timeout: 60_000 }, async () => {
    const out = join(dir, 'lib');
    const calls: [string, () => Promise<unknown>][] = [
      ['getBatchStatus', () => getBatchStatus('b2', { redis: url })],
      ['listBatches', () => listBatches({ redis: url })],
      ['cancelBatch', () => cancelBatch('b2', { redis: url })],
      ['retryBatch', () => retryBatch('b2', { redis: url })],
      ['submitPlan', () => submitPlan(probePlan('b2', 2, out, 10), { redis: url })],
      ['submitBatch', () => submitBatch(batchManifest(world, 'b2', out, [1]), { redis: url })],
      ['runBatch', () => runBatch(batchManifest(world, 'b2', out, [1]), { redis: url })],
      ['waitForBatch', () => waitForBatch('b2', { redis: url })],
      ['watchBatch', () => watchBatch('b2', { redis: url }).next()],
      ['createWorker', () => createWorker({ redis: url })],
    ];
    for (const [name, call] of calls) {
      const e = await rejection(call());
      expect(e, name).toBeInstanceOf(RedisUnreachableError);
      expect(e.message, name).toMatch(unreachable);
    }
    // nothing was written for the batches that could not be submitted
    expect(existsSync(join(out, 'batch.json'))).toBe(false);
  });

  it('batch status, cancel, retry, submit, watch and run --redis exit 1 with one line naming the URL, no stack', { timeout: 60_000 }, async () => {
    const manifest = join(dir, 'm.json');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(manifest, JSON.stringify(batchManifest(world, 'b3', join(dir, 'cli'), [1])));
    for (const args of [['batch', 'status', 'b2'], ['batch', 'status'], ['batch', 'cancel', 'b2'], ['batch', 'retry', 'b2'], ['batch', 'submit', manifest], ['batch', 'watch', 'b2'], ['batch', 'run', manifest]]) {
      const r = await run([...args, '--redis', url]);
      const what = args.join(' ');
      expect(r.code, what).toBe(1);
      expect(r.stdout, what).toBe('');
      const lines = r.stderr.trim().split('\n');
      expect(lines, what).toHaveLength(1);
      expect(lines[0], what).toMatch(/^brainlatent: RedisUnreachableError: /);
      expect(lines[0], what).toMatch(unreachable);
    }
  });

  it.skipIf(!redisAvailable)('a worker started before its Redis says once, with the URL, that it waits; then starts when Redis comes', { timeout: 120_000 }, async () => {
    const port = await deadPort();
    const wurl = `redis://127.0.0.1:${port}`;
    const p = spawn(process.execPath, [cli, 'worker', '--redis', wurl, '--name', 'early'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    p.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const redisDir = mkdtempSync(join(tmpdir(), 'bl-redis-'));
    let redis: ReturnType<typeof spawn> | undefined;
    try {
      const until = async (what: string, ok: () => boolean) => {
        const t0 = Date.now();
        while (!ok()) {
          if (Date.now() - t0 > 60_000) throw new Error(`timed out waiting for ${what}; log:\n${log}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      };
      await until('the waiting line', () => log.includes('waiting for it'));
      // a few more checks go by: still one line, no stack per retry
      await new Promise((r) => setTimeout(r, 5000));
      expect(p.exitCode).toBe(null);
      expect(log.trim().split('\n')).toHaveLength(1);
      expect(log).toMatch(new RegExp(`Redis at redis://127\\.0\\.0\\.1:${port} is not reachable \\(ECONNREFUSED\\): waiting for it`));
      expect(log).not.toMatch(/\n\s+at /);
      redis = spawn('redis-server', ['--port', `${port}`, '--bind', '127.0.0.1', '--dir', redisDir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      await until('the worker to start', () => log.includes('worker early ready'));
      expect(log).toMatch(/answers: starting/);
      p.kill('SIGTERM');
      const [code] = await once(p, 'exit');
      expect(code).toBe(0);
    } finally {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      if (redis && redis.exitCode === null) {
        redis.kill('SIGTERM');
        await once(redis, 'exit');
      }
      rmSync(redisDir, { recursive: true, force: true });
    }
  });

  it('a worker stopped (SIGTERM) while it waits for its Redis exits 0 with a line, not killed by the signal', { timeout: 60_000 }, async () => {
    // (its handlers were installed after the ready line: until then SIGTERM ended it at once, and a supervisor's
    // SIGTERM right after that line could still find none: a CI run saw the exit code null)
    const port = await deadPort();
    const p = spawn(process.execPath, [cli, 'worker', '--redis', `redis://127.0.0.1:${port}`, '--name', 'waiting'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    p.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    try {
      const t0 = Date.now();
      while (!log.includes('waiting for it')) {
        if (Date.now() - t0 > 30_000) throw new Error(`timed out waiting for the waiting line; log:\n${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      p.kill('SIGTERM');
      const [code, signal] = await once(p, 'exit');
      expect([code, signal]).toEqual([0, null]);
      expect(log).toMatch(/SIGTERM before the worker started: exiting\n$/);
    } finally {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    }
  });
});

describe('serve --redis with its Redis down', () => {
  let s: TestServer;
  let sworld: DemoWorld;
  beforeAll(async () => {
    s = await startTestServer({ redis: url, jobs: { workers: 0 } }, realpathSync(mkdtempSync(join(tmpdir(), 'bl-serve-'))));
    sworld = await batchWorld(s.root, [1]);
  }, 300_000);
  afterAll(async () => {
    await s?.stop();
    rmSync(s.root, { recursive: true, force: true });
  });

  it('refuses a batch job with 503 and the reason, instead of accepting a job that never runs', { timeout: 30_000 }, async () => {
    const rel = (p: string) => p.slice(s.root.length + 1);
    const manifest = batchManifest(sworld, 'down', 'batches/down', [1]);
    const body = { kind: 'batch', manifest: { ...manifest, nsd: { root: rel(manifest.nsd!.root!) }, analyses: manifest.analyses.map((a) => ({ ...a, config: { ...a.config, model: { ...(a.config.model as object), dir: rel((a.config.model as { dir: string }).dir) } } })) } };
    const r = await s.call('POST', '/v1/jobs', body);
    expect(r.status, r.text).toBe(503);
    expect(r.headers.get('retry-after')).toBe('5');
    expect(r.json).toMatchObject({ code: 'RedisUnreachable', name: 'RedisUnreachableError' });
    expect(r.json.message).toMatch(unreachable);
    // nothing was queued
    expect((await s.call('GET', '/v1/jobs')).json.jobs).toEqual([]);
  });
});
