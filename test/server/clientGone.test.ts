/**
 * img2img clients that go away, over real sockets: one waiting in the queue gives up its place at once (a live
 * client is queued, not refused with 503), one running stops its sampler run, and neither is logged as a failed
 * request (level 50 "request failed") or counted as a 500: they are logged at info, "client went away".
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { encodeNpy } from '../../ts/io/npy.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import { startTestServer, until, type TestServer } from './helpers.js';

let s: TestServer;
const logLines: { level: number; msg: string; reason?: string; reqId?: string }[] = [];

beforeAll(async () => {
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line.trim()) logLines.push(JSON.parse(line));
      done();
    },
  });
  s = await startTestServer({ img2img: { concurrency: 1, maxQueued: 2 }, logger: { level: 'info', stream } });
  mkdirSync(join(s.root, 'models'));
  // a U-Net wider and deeper than the default fixture's (8× its time a step), so that the long run outlasts the test
  await writeSdFixture(join(s.root, 'models', 'sd'), { unetChannels: 32, unetLayers: 4 });
  const r = await s.call('POST', '/v1/models', { kind: 'sd', name: 'sd', path: 'models/sd' });
  if (r.status !== 201) throw new Error(`loading the SD fixture: ${r.status} ${r.text}`);
}, 120_000);
afterAll(async () => {
  await s?.stop();
});

const b64 = (data: Float32Array, shape: number[]) => encodeNpy(data, shape).toString('base64');

/** An img2img body of `n` 16×16 latents with `steps` steps (999: the most the fixture's schedule allows). */
async function body(n: number, steps: number): Promise<string> {
  const sd = await Diffusion.load(join(s.root, 'models', 'sd'));
  try {
    const one = await sd.encodeText(['a square']);
    const c = new Float32Array(n * one.data.length);
    for (let i = 0; i < n; i++) c.set(one.data, i * one.data.length);
    return JSON.stringify({ z: b64(new Float32Array(n * 4 * 16 * 16).fill(0.1), [n, 4, 16, 16]), c: b64(c, [n, one.shape[1], one.shape[2]]), strength: 1, steps, guidance: 3, output: 'latents' });
  } finally {
    sd.dispose();
  }
}

const pool = async (status: 'active' | 'queued') => Number(new RegExp(`brainlatent_pool_tasks\\{pool="img2img",status="${status}"\\} (\\d+)`).exec((await s.call('GET', '/metrics')).text)?.[1]);

/** An img2img request its client can leave: the answer's status, or the fetch's error once it has left. */
function img2img(text: string) {
  const leave = new AbortController();
  const answer = fetch(`${s.url}/v1/sd/sd/img2img`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: text, signal: leave.signal }).then(
    async (r) => ({ status: r.status, text: await r.text() }),
    (e: Error) => e,
  );
  return { leave: () => leave.abort(), answer };
}

describe('img2img clients that go away', () => {
  it('give up their queue places at once, stop their run, and are logged at info, not as failed requests', async () => {
    // one runs, long enough to outlast the test's requests many times over (128 images, one after another, × 999
    // steps × 2 through the wider U-Net: 0.6 ms a step of one image measured, over a minute in all; it is cancelled
    // when its client leaves, and its log line says at which step), two wait
    const [long, short] = [await body(128, 999), await body(1, 2)];
    const running = img2img(long);
    await until(async () => ((await pool('active')) === 1 ? true : undefined), 30_000, 'the long img2img to run');
    const waiting = [img2img(short), img2img(short)];
    await until(async () => ((await pool('queued')) === 2 ? true : undefined), 30_000, 'two img2img requests to queue');
    // the queue is full: a third is refused (the place a live client is refused for while the two are there)
    expect((await s.call('POST', '/v1/sd/sd/img2img', JSON.parse(short))).status).toBe(503);
    for (const w of waiting) w.leave();
    for (const w of waiting) expect(await w.answer).toBeInstanceOf(Error);
    await until(async () => ((await pool('queued')) === 0 ? true : undefined), 30_000, 'the queue to empty when its clients left');
    // a live client now waits for the slot instead of a 503, and gets its answer once the running client leaves
    const live = img2img(short);
    await until(async () => ((await pool('queued')) === 1 ? true : undefined), 30_000, 'the live request to queue');
    running.leave();
    expect(await running.answer).toBeInstanceOf(Error);
    const answered = await live.answer;
    expect(answered).not.toBeInstanceOf(Error);
    expect((answered as { status: number }).status).toBe(200);
    await until(async () => ((await pool('active')) === 0 ? true : undefined), 30_000, 'the pool to be idle');

    const metrics = (await s.call('GET', '/metrics')).text;
    expect(metrics).toMatch(/^brainlatent_pool_rejected_total\{pool="img2img"\} 1$/m);
    // the three that left are not 500s (only the live one's 200 and the 503 are answers)
    expect(metrics).not.toMatch(/http_request_duration_seconds_count\{method="POST",route="\/v1\/sd\/:model\/img2img",code="500"\}/);
    await until(() => (logLines.filter((l) => l.msg === 'client went away').length >= 3 ? true : undefined), 10_000, 'three "client went away" lines');
    expect(logLines.filter((l) => l.level >= 50)).toEqual([]);
    const gone = logLines.filter((l) => l.msg === 'client went away');
    expect(gone.map((l) => l.level)).toEqual([30, 30, 30]);
    // (the running one's U-Net call is interrupted, or the cancel lands between two calls)
    expect(gone.map((l) => l.reason).sort()).toEqual([
      expect.stringMatching(/^img2img cancelled (during step \d+ of \d+ \(its U-Net call was interrupted\)|before step \d+ of \d+)$/),
      'img2img: cancelled while queued',
      'img2img: cancelled while queued',
    ]);
  }, 180_000);
});
