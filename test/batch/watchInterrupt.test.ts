import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { probePlan } from '../../ts/batch/graph.js';
import { submitPlan } from '../../ts/batch/submit.js';
import { redisAvailable, startRedis, type TestRedis } from './redis.js';

// Ctrl-C of `batch watch` stops the watch only: it says so, names the command that resumes watching, and exits 130.

const dir = mkdtempSync(join(tmpdir(), 'bl-watch-int-'));
const cli = join(__dirname, '..', '..', 'dist', 'cli', 'main.js');
let redis: TestRedis | undefined;

beforeAll(async () => {
  if (redisAvailable) redis = await startRedis();
}, 30_000);
afterAll(async () => {
  await redis?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe('batch watch interrupted', () => {
  it.skipIf(!redisAvailable)('Ctrl-C prints one line saying the batch goes on, with the command to watch again, and exits 130', { timeout: 60_000 }, async () => {
    // no worker: the batch stays running while it is watched
    await submitPlan(probePlan('wi', 2, join(dir, 'wi'), 10), { redis: redis!.url });
    const p = spawn(process.execPath, [cli, 'batch', 'watch', 'wi', '--redis', redis!.url, '--interval', '200'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const t0 = Date.now();
    while (!stdout.includes('probe') && Date.now() - t0 < 30_000 && p.exitCode === null) await new Promise((r) => setTimeout(r, 100));
    expect(stdout).toContain('probe'); // the table was printed
    p.kill('SIGINT');
    const [code] = (await once(p, 'exit')) as [number | null];
    expect(code).toBe(130);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^batch wi: watch interrupted; the batch goes on\. Watch it again with: brainlatent batch watch wi --redis redis:\/\/:\*\*\*@127\.0\.0\.1:\d+$/);
    expect(stderr).not.toContain(new URL(redis!.url).password);
  });

  it.skipIf(!redisAvailable)('a reader that closes stdout (| head -3) ends the watch with exit 0, the batch still running', { timeout: 60_000 }, async () => {
    // A command with work to finish goes on when its stdout is closed (ridge fit writes its model); a watch has none
    await submitPlan(probePlan('wc', 2, join(dir, 'wc'), 10), { redis: redis!.url });
    const p = spawn(process.execPath, [cli, 'batch', 'watch', 'wc', '--redis', redis!.url, '--interval', '200'], { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout!.destroy();
    let stderr = '';
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    const [code, signal] = (await once(p, 'exit')) as [number | null, string | null];
    clearTimeout(timer);
    expect([code, signal]).toEqual([0, null]);
    expect(stderr).toBe('');
  });
});
