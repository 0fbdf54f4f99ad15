/**
 * Engine jobs compute on the engine's own threads, not on libuv's pool: four concurrent fits used to take all four
 * of its threads, and every fs call, dns.lookup, zlib and crypto job of the process waited behind them (9–13 s for
 * an fs.readFile of /etc/hostname in the reviewer's service). A worker_thread's jobs end with it.
 */
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';

import { expect, it } from 'vitest';

import { CancelledError } from '../../ts/errors.js';
import { twoWayIdentification } from '../../ts/eval/identification.js';
import { RidgeCV } from '../../ts/ridge/RidgeCV.js';
import { distModule } from '../helpers/dist.js';
import { runModule } from '../helpers/nodeChild.js';
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

/** A child's module head: fit(onComputing) starts a fit of a second or more and calls onComputing at its first progress event. */
const fitHead = (): string => `
  const { RidgeCV } = await import(${JSON.stringify(pathToFileURL(distModule('ridge/RidgeCV')).href)});
  let s = 3;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
  const matrix = (rows, cols) => ({ data: Float32Array.from({ length: rows * cols }, rand), rows, cols });
  const x = matrix(2000, 1600), y = matrix(2000, 20);
  const fit = (onComputing = () => {}) => {
    let first = true;
    const onProgress = () => { if (first) { first = false; onComputing(); } };
    return new RidgeCV({ alphas: [1, 10, 100], solver: 'per-fold-primal' }).fit(x, y, { onProgress });
  };
`;

it('a worker thread ended while its fit computes: the fit stops, and the process goes on and exits cleanly', async () => {
  // (the engine's threads run the addon's code: ended with the only thread that loaded it, it stays mapped; the
  // fit's promise, settled at the teardown, had aborted the process before)
  const worker = `(async () => {
    const { parentPort } = await import('node:worker_threads');
    ${fitHead()}
    await fit(() => parentPort.postMessage('computing'));
    parentPort.postMessage('fit done');
  })();`;
  const r = await runModule(`
    import { Worker } from 'node:worker_threads';
    const w = new Worker(${JSON.stringify(worker)}, { eval: true });
    w.on('message', async (m) => {
      if (m === 'fit done') console.log('the fit finished first');
      if (m !== 'computing') return;
      await w.terminate();
      setTimeout(() => console.log('terminated; still running'), 200);
    });
  `);
  expect(r.stderr).toBe('');
  expect(r.stdout.trim()).toBe('terminated; still running');
  expect({ hung: r.hung, signal: r.signal, status: r.status }).toEqual({ hung: false, signal: null, status: 0 });
});

it("a worker thread ended while its job waits for a thread: the job is withdrawn, its end does not wait for other threads' jobs", async () => {
  // The main thread's four predictions take every engine thread; the worker's fit then waits in the queue. The
  // worker's teardown withdraws it at once, where a teardown that waited for its work had waited until one of the
  // main thread's predictions had ended and the fit had had a thread to stop on.
  const ridge = JSON.stringify(pathToFileURL(distModule('ridge/RidgeCV')).href);
  const head = `
    const { RidgeCV } = await import(${ridge});
    let s = 3;
    const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
    const matrix = (rows, cols) => ({ data: Float32Array.from({ length: rows * cols }, rand), rows, cols });
  `;
  const worker = `(async () => {
    const { parentPort } = await import('node:worker_threads');
    ${head}
    const x = matrix(500, 400), y = matrix(500, 10);
    parentPort.on('message', () => {
      new RidgeCV({ alphas: [1, 10] }).fit(x, y);
      parentPort.postMessage('queued');
    });
    parentPort.postMessage('ready');
  })();`;
  const r = await runModule(`
    import { Worker } from 'node:worker_threads';
    ${head}
    const model = await new RidgeCV({ alphas: [1, 10, 100] }).fit(matrix(1000, 1500), matrix(1000, 1500));
    const xs = matrix(20000, 1500);
    const ac = new AbortController();
    const w = new Worker(${JSON.stringify(worker)}, { eval: true });
    w.on('message', async (m) => {
      if (m === 'ready') {
        let computing = 0;
        for (let i = 0; i < 4; i++) {
          let first = true;
          const onProgress = () => { if (first) { first = false; if (++computing === 4) w.postMessage('go'); } };
          const ended = () => console.log('a main prediction ended');
          model.predictAsync(xs, { onProgress, signal: ac.signal }).then(ended, ended);
        }
      }
      if (m === 'queued') {
        await w.terminate();
        console.log('terminated');
        ac.abort();
      }
    });
  `);
  expect(r.stderr).toBe('');
  expect(r.stdout.trim().split('\n')).toEqual(['terminated', ...Array(4).fill('a main prediction ended')]);
  expect({ hung: r.hung, signal: r.signal, status: r.status }).toEqual({ hung: false, signal: null, status: 0 });
});

it("a progress callback that throws stops its job, which rejects with the callback's own exception (an object or not)", async () => {
  const { x, y } = planted(300, 200, 20, 5);
  const thrown = new Error('thrown by onProgress');
  const fitThrowing = (value: unknown) =>
    new RidgeCV({ alphas: [1, 10], solver: 'per-fold-primal' }).fit(x, y, {
      onProgress: () => {
        throw value;
      },
    });
  await expect(fitThrowing(thrown)).rejects.toBe(thrown);
  // the caller's own value, whatever it is: not mapped as the engine's errors are (a RangeError was an
  // InvalidArgumentError, a system error's code a BrainlatentError, 42 a BrainlatentError '42')
  const range = new RangeError('my own range');
  await expect(fitThrowing(range)).rejects.toBe(range);
  const system = Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
  await expect(fitThrowing(system)).rejects.toBe(system);
  await expect(fitThrowing(42)).rejects.toBe(42);
  const plain = { code: 1 };
  await expect(fitThrowing(plain)).rejects.toBe(plain);
});

it('a call aborted while it waits for an engine thread rejects at once, before any running job ends, and never computes', async () => {
  // Four fits take every engine thread; a fifth waits in the queue. Aborting its signal used to set only a flag that
  // the fit would read once it had a thread: it rejected after one of the four had ended (31.5 s for the reviewer).
  let s = 7;
  const rand = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5;
  const matrix = (rows: number, cols: number) => ({ data: Float32Array.from({ length: rows * cols }, rand), rows, cols });
  const x = matrix(1000, 800), y = matrix(1000, 20);
  const settled: string[] = [];
  const ac = new AbortController();
  const reason = new Error('the caller gave up');
  let fifthProgress = 0;
  let fifth: Promise<unknown> | undefined;
  let metric: Promise<unknown> | undefined;
  let computing = 0;
  const fits = [1, 2, 3, 4].map((i) => {
    let first = true;
    const onProgress = () => {
      if (!first) return;
      first = false;
      if (++computing < 4) return;
      // (every engine thread is computing one of the four: the fifth queues, then is aborted)
      fifth = new RidgeCV({ alphas: [1, 10, 100], solver: 'per-fold-primal' })
        .fit(x, y, { signal: ac.signal, onProgress: () => void fifthProgress++ })
        .then(
          () => settled.push('fifth resolved'),
          (e: unknown) => {
            settled.push('fifth rejected');
            return e;
          },
        );
      // (and a metric behind it: the rejection names the call made, not the engine's internal job)
      metric = twoWayIdentification(matrix(10, 8), matrix(10, 8), { signal: ac.signal }).then(
        () => 'metric resolved',
        (e: unknown) => e,
      );
      ac.abort(reason);
    };
    return new RidgeCV({ alphas: [1, 10, 100], solver: 'per-fold-primal' }).fit(x, y, { onProgress }).then((m) => {
      settled.push(`fit ${i}`);
      return m;
    });
  });
  const models = await Promise.all(fits);
  expect(fifth).toBeDefined();
  const err = await fifth;
  expect(settled[0]).toBe('fifth rejected');
  expect(settled.slice(1).sort()).toEqual(['fit 1', 'fit 2', 'fit 3', 'fit 4']);
  expect(err).toBeInstanceOf(CancelledError);
  expect((err as CancelledError).message).toBe('RidgeCV.fit: cancelled before it started (its signal aborted while it waited for an engine thread)');
  expect((err as CancelledError).cause).toBe(reason);
  const metricErr = await metric;
  expect(metricErr).toBeInstanceOf(CancelledError);
  expect((metricErr as CancelledError).message).toBe('twoWayIdentification: cancelled before it started (its signal aborted while it waited for an engine thread)');
  expect((metricErr as CancelledError).stack).toMatch(/^CancelledError: twoWayIdentification: cancelled before it started/);
  expect((metricErr as CancelledError).cause).toBe(reason);
  expect(fifthProgress).toBe(0);
  // the four are unharmed: the same inputs, the same model
  expect(models.map((m) => m.nTargets)).toEqual([20, 20, 20, 20]);
  for (const m of models.slice(1)) expect(Array.from(m.coef.data)).toEqual(Array.from(models[0]!.coef.data));
});
