/**
 * Calls wait for an engine thread in the order they were made (README: "further calls wait in call order"). img2img
 * with guidance > 1 awaited its cached embedding of "" and predictAsync its NaN scan before queueing, so a fit called
 * after them queued first: img2img called first ran after four fits, a 361 ms predictAsync finished at 4958 ms
 * (reviewer s24-R5's out/order.js, ord2.mjs). Here four fits take every engine thread; call A, then a fit B, queue
 * behind them; one of the four is then aborted, which frees exactly one thread: the call at the head of the queue
 * starts alone, and its progress comes first.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CancelledError } from '../../ts/errors.js';
import type { Matrix } from '../../ts/matrix.js';
import { RidgeCV } from '../../ts/ridge/RidgeCV.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';

let s = 11;
const rand = (): number => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5;
const matrix = (rows: number, cols: number): Matrix => ({ data: Float32Array.from({ length: rows * cols }, rand), rows, cols });

/**
 * Four long fits on every engine thread; once all four compute, queue(first) runs (it calls A, then B); then the
 * first fit is aborted and, once one of A and B has reported progress, the other three. Returns which reported first.
 */
async function headOfQueue(queue: (events: string[]) => Promise<unknown>[]): Promise<string[]> {
  const x = matrix(2000, 1600), y = matrix(2000, 20);
  const events: string[] = [];
  const busy = [0, 1, 2, 3].map(() => new AbortController());
  let computing = 0;
  let queued: Promise<unknown>[] = [];
  let started: () => void = () => {};
  const allComputing = new Promise<void>((r) => (started = r));
  const fits = busy.map((ac) => {
    let first = true;
    return new RidgeCV({ alphas: [1, 10, 100], solver: 'per-fold-primal' })
      .fit(x, y, {
        signal: ac.signal,
        onProgress: () => {
          if (first && ++computing === 4) started();
          first = false;
        },
      })
      .catch((e: unknown) => {
        if (!(e instanceof CancelledError)) throw e;
      });
  });
  await allComputing;
  queued = queue(events);
  busy[0]!.abort();
  while (events.length === 0) await new Promise((r) => setTimeout(r, 5));
  for (const ac of busy.slice(1)) ac.abort();
  await Promise.all([...fits, ...queued]);
  return events;
}

/** A fit that reports 'B' at its first progress event. */
const fitB = (events: string[]): Promise<unknown> => {
  let first = true;
  return new RidgeCV({ alphas: [1, 10] }).fit(matrix(300, 100), matrix(300, 10), {
    onProgress: () => {
      if (first) events.push('B');
      first = false;
    },
  });
};

describe('calls enter the engine queue in call order', () => {
  let dir = '';
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bl-order-'));
    await writeSdFixture(join(dir, 'model'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('predictAsync called before a fit starts before it', async () => {
    const model = await new RidgeCV({ alphas: [1, 10] }).fit(matrix(200, 100), matrix(200, 10));
    const xs = matrix(500, 100);
    const events = await headOfQueue((ev) => [
      model.predictAsync(xs, {
        onProgress: () => {
          if (!ev.includes('A')) ev.push('A');
        },
      }),
      fitB(ev),
    ]);
    expect(events).toEqual(['A', 'B']);
  }, 120_000);

  it('img2img with guidance (its embedding of "" cached) called before a fit starts before it', async () => {
    const sd = await Diffusion.load(join(dir, 'model'));
    const z = { data: Float32Array.from({ length: 2 * 4 * 8 * 8 }, rand), shape: [2, 4, 8, 8] };
    const c = await sd.encodeText(['a', 'b']);
    // (the first guided run encodes "" and caches it; the one under test takes it from the cache)
    await sd.img2img({ z, c, steps: 2, strength: 1, guidance: 5 });
    const events = await headOfQueue((ev) => [
      sd.img2img({
        z,
        c,
        steps: 2,
        strength: 1,
        guidance: 5,
        onStep: () => {
          if (!ev.includes('A')) ev.push('A');
        },
      }),
      fitB(ev),
    ]);
    expect(events).toEqual(['A', 'B']);
    sd.dispose();
  }, 120_000);
});
