/**
 * A shared-features entry's lock is a lease: its holder renews the lock file's time while it computes, and a waiter
 * takes over the lock of a holder on another host that stopped renewing it (its host was killed mid-computation).
 * Before, such a lock was waited for for ever — the waiting batch job's own lock kept alive meanwhile — until someone
 * deleted the file by hand. Review s34-d.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { lockEntry } from '../../ts/batch/sharedFeatures.js';
import { CancelledError } from '../../ts/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-entry-lease-'));
beforeAll(() => {
  process.env.BRAINLATENT_SHARED_LOCK_LEASE_MS = '100'; // (taken over after 6 × 100 ms without a renewal)
});
afterAll(() => {
  delete process.env.BRAINLATENT_SHARED_LOCK_LEASE_MS;
  rmSync(dir, { recursive: true, force: true });
});

/** A lock as a job process on another host writes it. */
const otherHostLock = (key: string, token: string) =>
  writeFileSync(
    join(dir, `${key}.lock`),
    JSON.stringify({ pid: 4242, host: 'another-host', command: 'brainlatent worker (job process)', startedAt: new Date().toISOString(), processStart: null, token }),
  );
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a shared-features entry lock held on another host', () => {
  it('is taken over once its holder stops renewing it, and renewed while this process holds it', { timeout: 30_000 }, async () => {
    otherHostLock('k1', 'deadbeefdeadbeef');
    const lines: string[] = [];
    const lock = await lockEntry(dir, 'k1', (_f, m) => m && lines.push(m), undefined);
    expect(lines[0]).toMatch(/^waiting for k1 computed by pid 4242 on another-host \(taken over if it stops renewing its lock .*k1\.lock for 0\.6 s\)$/);
    const mine = JSON.parse(readFileSync(join(dir, 'k1.lock'), 'utf8')) as { pid: number; token: string };
    expect(mine.pid).toBe(process.pid);
    // renewed while held
    utimesSync(join(dir, 'k1.lock'), new Date(0), new Date(0));
    await sleep(400);
    expect(statSync(join(dir, 'k1.lock')).mtimeMs).toBeGreaterThan(Date.now() - 5_000);
    await lock.release();
    expect(() => statSync(join(dir, 'k1.lock'))).toThrow();
  });

  it('is waited for while its holder renews it', { timeout: 30_000 }, async () => {
    otherHostLock('k2', 'livelivelivelive');
    const renew = setInterval(() => {
      const now = new Date();
      utimesSync(join(dir, 'k2.lock'), now, now);
    }, 50);
    const ac = new AbortController();
    try {
      const waiting = lockEntry(dir, 'k2', () => {}, ac.signal);
      await sleep(2_000); // (more than 3 times the lapse)
      ac.abort('enough');
      await expect(waiting).rejects.toBeInstanceOf(CancelledError);
      expect((JSON.parse(readFileSync(join(dir, 'k2.lock'), 'utf8')) as { token: string }).token).toBe('livelivelivelive');
    } finally {
      clearInterval(renew);
    }
  });
});
