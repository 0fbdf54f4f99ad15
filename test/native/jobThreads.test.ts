/**
 * Engine jobs compute on the engine's own threads, not on libuv's pool: four concurrent fits used to take all four
 * of its threads, and every fs call, dns.lookup, zlib and crypto job of the process waited behind them (9–13 s for
 * an fs.readFile of /etc/hostname in the reviewer's service).
 */
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';

import { expect, it } from 'vitest';

import { RidgeCV } from '../../ts/ridge/RidgeCV.js';
import { distModule } from '../helpers/dist.js';
import { planted } from '../helpers/random.js';

it("a file read during four concurrent fits completes before any of them: the fits leave libuv's pool to I/O", async () => {
  const { x, y } = planted(600, 500, 200, 11);
  const events: string[] = [];
  // (each fit queues its engine job before fit() returns, so all four are queued before the read is)
  const fits = [1, 2, 3, 4].map((i) =>
    new RidgeCV({ alphas: [1, 10, 100], folds: 5, solver: 'per-fold-primal' }).fit(x, y).then((m) => {
      events.push(`fit ${i}`);
      return m;
    }),
  );
  const read = readFile(new URL(import.meta.url)).then((b) => {
    events.push('read');
    return b;
  });
  const [models, text] = await Promise.all([Promise.all(fits), read]);
  expect(text.toString('utf8')).toContain('a file read during four concurrent fits');
  expect(models.map((m) => m.nTargets)).toEqual([200, 200, 200, 200]);
  expect(events[0]).toBe('read');
  expect(events.slice(1).sort()).toEqual(['fit 1', 'fit 2', 'fit 3', 'fit 4']);
});

it('a worker thread ended while its fit computes: the fit stops, and the process goes on and exits cleanly', () => {
  // (the engine's threads run the addon's code: ended with the only thread that loaded it, it stays mapped; the
  // fit's promise, settled at the teardown, had aborted the process before)
  const ridge = pathToFileURL(distModule('ridge/RidgeCV')).href;
  const worker = `
    const { RidgeCV } = await import(${JSON.stringify(ridge)});
    const { parentPort } = await import('node:worker_threads');
    let s = 3;
    const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
    const n = 1500, p = 1200, t = 20;
    const x = { data: Float32Array.from({ length: n * p }, rand), rows: n, cols: p };
    const y = { data: Float32Array.from({ length: n * t }, rand), rows: n, cols: t };
    await new RidgeCV({ alphas: [1, 10, 100], solver: 'per-fold-primal' }).fit(x, y, { onProgress: (q) => parentPort.postMessage(q.stage) });
    parentPort.postMessage('fit done');
  `;
  const main = `
    import { Worker } from 'node:worker_threads';
    const w = new Worker(${JSON.stringify(worker)}, { eval: true, type: 'module' });
    let ended = false;
    w.on('message', async (m) => {
      if (m === 'fit done') console.log('the fit finished first');
      if (m !== 'decompose' || ended) return;
      ended = true;
      await w.terminate();
      setTimeout(() => console.log('terminated; still running'), 200);
    });
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', main], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.stdout.trim()).toBe('terminated; still running');
  expect([r.status, r.signal]).toEqual([0, null]);
});
