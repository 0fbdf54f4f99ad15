/**
 * A throwaway redis-server for tests: a free local port, its own password, a temporary folder, stopped with SIGTERM. With the
 * append-only file on, a stop and restart on the same port and folder keeps the queues (the restart test).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll } from 'vitest';

import type { BatchWorker } from '../../ts/batch/worker.js';

export const redisAvailable = spawnSync('redis-server', ['--version']).status === 0;

async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

export interface TestRedis {
  url: string;
  port: number;
  /** The running server's process id (a test stops it with SIGSTOP to stall it). */
  pid(): number;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and removes its folder. */
  dispose(): Promise<void>;
}

export async function startRedis(): Promise<TestRedis> {
  const port = await freePort();
  // Its own password: a worker of another test file whose Redis stopped (a restart test) keeps reconnecting to its
  // port; if the kernel hands that port to this server, the foreign worker must not get in and run this file's jobs
  // (batch.test's img2img shards ran in such a worker: 'ended before an img2img shard starting').
  const password = randomBytes(12).toString('hex');
  const dir = mkdtempSync(join(tmpdir(), 'bl-redis-'));
  let proc: ChildProcess | null = null;
  const start = async () => {
    const p = spawn(
      'redis-server',
      ['--port', `${port}`, '--bind', '127.0.0.1', '--requirepass', password, '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    proc = p;
    await new Promise<void>((ok, fail) => {
      let out = '';
      const onExit = (c: number | null) => fail(new Error(`redis-server exited with ${c}: ${out}`));
      p.once('exit', onExit);
      p.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('Ready to accept connections')) {
          p.off('exit', onExit);
          ok();
        }
      });
    });
  };
  const stop = async () => {
    const p = proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      p.kill('SIGTERM');
      await once(p, 'exit');
    }
    proc = null;
  };
  await start();
  return {
    url: `redis://:${password}@127.0.0.1:${port}`,
    port,
    pid: () => proc!.pid!,
    stop,
    start,
    async dispose() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A test file's real Redis (started before its tests where redis-server is installed), a temporary folder, and
 * a list for the workers its tests start: all closed or removed after its tests. `url()` is the Redis URL.
 */
export function redisTestBed(prefix: string): { dir: string; workers: BatchWorker[]; url: () => string; redis: () => TestRedis } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const workers: BatchWorker[] = [];
  let redis: TestRedis | undefined;
  beforeAll(async () => {
    if (redisAvailable) redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.close()));
    await redis?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, workers, url: () => redis!.url, redis: () => redis! };
}

/** The CLI worker of dist/ (`brainlatent worker --redis URL …args`), its stderr gathered for the test to read. */
export function cliWorker(url: string, args: string[], options: { detached?: boolean } = {}): { child: ChildProcess; log: () => string } {
  const child = spawn(process.execPath, [join(process.cwd(), 'dist', 'cli', 'main.js'), 'worker', '--redis', url, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: options.detached ?? false,
  });
  let log = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => (log += d));
  return { child, log: () => log };
}
