/**
 * The predict threads' decode queue (large request bodies): a decode whose client went away while it waited for a
 * thread is dropped, never decoded (s27: the queue is unbounded, and a client that sent many large bodies and left
 * kept the threads decoding all of them).
 */
import { afterAll, describe, expect, it } from 'vitest';

import { CancelledError } from '../../ts/errors.js';
import { LargeBody } from '../../ts/server/models/dataBodies.js';
import { PredictPool } from '../../ts/server/models/predictPool.js';
import { QueueFullError } from '../../ts/server/workQueue.js';

/** X as a JSON body, in the segments a large body arrives in. */
function jsonBody(rows: number[][]): LargeBody {
  const bytes = Buffer.from(JSON.stringify({ x: rows }));
  const segment = new ArrayBuffer(bytes.length);
  new Uint8Array(segment).set(bytes);
  return new LargeBody('predict-json', [segment], bytes.length);
}

const pool = new PredictPool(1);
afterAll(() => pool.close());

describe('PredictPool decode queue', () => {
  it('drops a queued decode whose signal aborts, and starts none whose signal had aborted', async () => {
    // one thread: the first decode has it until its reply comes back (a later turn of the event loop), the others wait
    const first = pool.decode(jsonBody([[1, 2]]));
    const leaving = new AbortController();
    const left = pool.decode(jsonBody([[3, 4]]), leaving.signal);
    const staying = new AbortController();
    const stays = pool.decode(jsonBody([[5, 6]]), staying.signal);
    expect(pool.decodes).toBe(1);
    expect(pool.queued).toBe(2);
    leaving.abort();
    await expect(left).rejects.toThrow(CancelledError);
    await expect(left).rejects.toThrow("the predict threads' decode: cancelled while queued");
    expect(pool.queued).toBe(1);
    const gone = AbortSignal.abort();
    await expect(pool.decode(jsonBody([[7, 8]]), gone)).rejects.toThrow(CancelledError);
    expect(await first).toMatchObject({ kind: 'matrix', x: { rows: 1, cols: 2, data: Float32Array.from([1, 2]) } });
    expect(await stays).toMatchObject({ kind: 'matrix', x: { data: Float32Array.from([5, 6]) } });
    // the first and the one that stayed: the two whose clients left were never handed to the thread
    expect(pool.decodes).toBe(2);
    expect(pool.queued).toBe(0);
    // a signal that aborts after its decode started changes nothing (the thread's answer is the request's to drop)
    const late = new AbortController();
    const running = pool.decode(jsonBody([[9, 10]]), late.signal);
    late.abort();
    expect(await running).toMatchObject({ kind: 'matrix', x: { data: Float32Array.from([9, 10]) } });
    expect(pool.decodes).toBe(3);
  });

  it('refuses a body with QueueFull once the bodies waiting hold more than its byte bound, and takes bodies again as they leave', async () => {
    // (each waiting body is held in memory until decoded or dropped: the service bounds them at 8 × its data body limit)
    const body = () => jsonBody([[1, 2, 3]]);
    const small = new PredictPool(1, 2 * body().length);
    try {
      const first = small.decode(body()); // on the thread
      const waiting = [small.decode(body()), small.decode(body())]; // two bodies' bytes wait: the bound
      expect(small.queued).toBe(2);
      let refused: unknown;
      try {
        await small.decode(body());
      } catch (e) {
        refused = e;
      }
      expect(refused).toBeInstanceOf(QueueFullError);
      expect((refused as QueueFullError).retryAfter).toBe(1);
      expect((refused as Error).message).toMatch(/^the predict threads' decode queue \(\d+ bytes of bodies waiting, at most \d+\): every worker is busy/);
      expect(small.decodes).toBe(1);
      await first;
      await Promise.all(waiting);
      // the queue emptied: taken again, and one body always may wait whatever its size
      const tiny = new PredictPool(1, 1);
      try {
        const a = tiny.decode(body());
        const b = tiny.decode(body());
        await expect(tiny.decode(body())).rejects.toThrow(QueueFullError);
        expect(await b).toMatchObject({ kind: 'matrix' });
        await a;
      } finally {
        await tiny.close();
      }
      expect(await small.decode(body())).toMatchObject({ kind: 'matrix', x: { data: Float32Array.from([1, 2, 3]) } });
    } finally {
      await small.close();
    }
  });
});
