import { describe, expect, it } from 'vitest';

import type { Matrix } from '../../ts/matrix.js';
import { PredictBatcher } from '../../ts/server/models/predictBatcher.js';
import { CancelledError } from '../../ts/errors.js';
import { QueueFullError } from '../../ts/server/workQueue.js';

/** A "model" y = [sum(x), key length] per row; calls are held until released, and recorded. */
function fakePredict() {
  const calls: { key: string; rows: number }[] = [];
  const held: (() => void)[] = [];
  const predict = (key: string, x: Matrix): Promise<Matrix> =>
    new Promise((resolve) => {
      calls.push({ key, rows: x.rows });
      held.push(() => {
        const y = new Float32Array(x.rows * 2);
        for (let r = 0; r < x.rows; r++) {
          let s = 0;
          for (let c = 0; c < x.cols; c++) s += x.data[r * x.cols + c];
          y[r * 2] = s;
          y[r * 2 + 1] = key.length;
        }
        resolve({ data: y, rows: x.rows, cols: 2 });
      });
    });
  return { predict, calls, release: () => held.shift()!() };
}

const row = (...v: number[]): Matrix => ({ data: Float32Array.from(v), rows: 1, cols: v.length });
const tick = () => new Promise((r) => setImmediate(r));

describe('PredictBatcher', () => {
  it('answers at once while a thread is free, and predicts the requests that waited as one batch per model', async () => {
    const f = fakePredict();
    const b = new PredictBatcher(f.predict, 1, 16);
    const first = b.run('m', row(1, 2));
    const waiting = [b.run('m', row(3, 4)), b.run('other', row(5, 5)), b.run('m', { data: Float32Array.from([1, 1, 2, 2]), rows: 2, cols: 2 })];
    await tick();
    expect(f.calls).toEqual([{ key: 'm', rows: 1 }]);
    expect(b.queued).toBe(3);
    f.release();
    expect((await first).data).toEqual(Float32Array.from([3, 1]));
    await tick();
    // every waiting request of the oldest one's model, in one call of 3 rows
    expect(f.calls[1]).toEqual({ key: 'm', rows: 3 });
    f.release();
    await tick();
    expect(f.calls[2]).toEqual({ key: 'other', rows: 1 });
    f.release();
    const [a, o, c] = await Promise.all(waiting);
    expect(a).toEqual({ data: Float32Array.from([7, 1]), rows: 1, cols: 2 });
    expect(o.data).toEqual(Float32Array.from([10, 5]));
    expect(c).toEqual({ data: Float32Array.from([2, 1, 4, 1]), rows: 2, cols: 2 });
  });

  it('refuses with QueueFullError (and a Retry-After) when every thread is busy and the queue is full', async () => {
    const f = fakePredict();
    const b = new PredictBatcher(f.predict, 1, 2);
    const running = b.run('m', row(1));
    const queued = [b.run('m', row(2)), b.run('m', row(3))];
    await expect(b.run('m', row(4))).rejects.toBeInstanceOf(QueueFullError);
    await expect(b.run('m', row(4))).rejects.toMatchObject({ retryAfter: expect.any(Number) });
    f.release();
    await running;
    await tick();
    f.release();
    expect((await Promise.all(queued)).map((y) => y.data[0])).toEqual([2, 3]);
  });

  it('passes a failure to every request of the batch', async () => {
    const b = new PredictBatcher(() => Promise.reject(new Error('engine says no')), 2, 4);
    await expect(b.run('m', row(1))).rejects.toThrow('engine says no');
  });

  it('takes a waiting request whose signal aborts out of the queue (CancelledError); the batch after it leaves it out', async () => {
    const f = fakePredict();
    const b = new PredictBatcher(f.predict, 1, 2);
    const running = b.run('m', row(1));
    const leave = new AbortController();
    const gone = b.run('m', row(2), leave.signal).catch((e: unknown) => e);
    const stays = b.run('m', row(3));
    await expect(b.run('m', row(4))).rejects.toBeInstanceOf(QueueFullError);
    leave.abort();
    await tick();
    expect(b.queued).toBe(1);
    const e = await gone;
    expect(e).toBeInstanceOf(CancelledError);
    expect((e as Error).message).toBe('predict: cancelled while queued');
    // its place is free for a live request, and the next batch holds only the live ones
    const live = b.run('m', row(5));
    expect(b.queued).toBe(2);
    f.release();
    await running;
    await tick();
    expect(f.calls[1]).toEqual({ key: 'm', rows: 2 });
    f.release();
    expect([(await stays).data[0], (await live).data[0]]).toEqual([3, 5]);
    // a signal that aborts once its request is in a batch changes nothing
    const late = new AbortController();
    const p = b.run('m', row(7), late.signal);
    late.abort();
    f.release();
    expect((await p).data[0]).toBe(7);
  });
});
