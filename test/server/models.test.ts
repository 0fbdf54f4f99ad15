import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import pngjs from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { decodeNpy, encodeNpy } from '../../ts/io/npy.js';
import { RidgeCV } from '../../ts/ridge/RidgeCV.js';
import type { RidgeModel } from '../../ts/ridge/RidgeModel.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import { planted } from '../helpers/random.js';
import { startTestServer, until, type TestServer } from './helpers.js';

let s: TestServer;
let model: RidgeModel;
let sd: Diffusion;
const X = planted(8, 40, 3, 11).x;

beforeAll(async () => {
  s = await startTestServer({ predict: { concurrency: 2, maxQueued: 8 }, img2img: { concurrency: 1, maxQueued: 0 } });
  const p = planted(200, 40, 64, 3);
  model = await new RidgeCV({ alphas: [1, 10, 100], folds: 3 }).fit(p.x, p.y);
  mkdirSync(join(s.root, 'models'));
  await model.save(join(s.root, 'models', 'ridge.safetensors'));
  await model.save(join(s.root, 'models', 'ridge2.safetensors'));
  await writeSdFixture(join(s.root, 'models', 'sd'));
  sd = await Diffusion.load(join(s.root, 'models', 'sd'));
}, 120_000);
afterAll(async () => {
  sd?.dispose();
  await s?.stop();
});

const b64 = (data: Float32Array, shape: number[]) => encodeNpy(data, shape).toString('base64');

describe('models: load once, predict and img2img off the event loop', () => {
  it('loads a ridge model and an SD folder, lists them, refuses a second load under the same name', async () => {
    const r = await s.call('POST', '/v1/models', { kind: 'ridge', name: 'z', path: 'models/ridge.safetensors' });
    expect(r.status, r.text).toBe(201);
    expect(r.json).toMatchObject({ name: 'z', kind: 'ridge', path: 'models/ridge.safetensors', shape: { features: 40, targets: 64 } });
    const again = await s.call('POST', '/v1/models', { kind: 'ridge', name: 'z', path: 'models/ridge.safetensors' });
    expect(again.status).toBe(409);
    expect((await s.call('POST', '/v1/models', { kind: 'ridge', name: 'z', path: 'models/ridge.safetensors', replace: true })).status).toBe(201);
    const sdLoad = await s.call('POST', '/v1/models', { kind: 'sd', name: 'sd', path: 'models/sd' });
    expect(sdLoad.status, sdLoad.text).toBe(201);
    expect((await s.call('GET', '/v1/models')).json.models.map((m: { name: string }) => m.name).sort()).toEqual(['sd', 'z']);
    expect((await s.call('GET', '/readyz')).json).toMatchObject({ ready: true, models: [{ name: 'z', kind: 'ridge' }, { name: 'sd', kind: 'sd' }] });
  });

  it('predicts exactly what RidgeModel.predict gives, from JSON and from .npy', async () => {
    const want = model.predict(X);
    const rows = Array.from({ length: X.rows }, (_, i) => Array.from(X.data.subarray(i * X.cols, (i + 1) * X.cols)));
    const json = await s.call('POST', '/v1/ridge/z/predict', { x: rows });
    expect(json.status, json.text).toBe(200);
    expect(json.json.rows).toBe(8);
    expect(json.json.cols).toBe(64);
    expect(Float32Array.from(json.json.y.flat())).toEqual(want.data);
    const r = await fetch(`${s.url}/v1/ridge/z/predict`, { method: 'POST', headers: { 'content-type': 'application/x-npy', accept: 'application/x-npy' }, body: encodeNpy(X.data, [X.rows, X.cols]) });
    expect(r.status).toBe(200);
    const y = decodeNpy(new Uint8Array(await r.arrayBuffer()), 'response');
    expect(y.shape).toEqual([8, 64]);
    expect(y.data).toEqual(want.data);
  });

  it('answers 400 for the wrong number of features, 404 for an unknown model', async () => {
    const bad = await s.call('POST', '/v1/ridge/z/predict', { x: [[1, 2, 3]] });
    expect(bad.status).toBe(400);
    expect(bad.json.message).toMatch(/^body\.x: X has 3 features per sample but model 'z' takes 40/);
    const ragged = await s.call('POST', '/v1/ridge/z/predict', { x: [new Array(40).fill(0), [1]] });
    expect(ragged.status).toBe(400);
    expect(ragged.json.message).toMatch(/^body\.x\[1\]/);
    expect((await s.call('POST', '/v1/ridge/nope/predict', { x: [[1]] })).status).toBe(404);
    const npy = await fetch(`${s.url}/v1/ridge/z/predict`, { method: 'POST', headers: { 'content-type': 'application/x-npy' }, body: Buffer.from('not an npy file at all') });
    expect(npy.status).toBe(400);
  });

  it('answers a predict body of another type 415 naming the types it takes (for an unknown model too), and no body 400', async () => {
    for (const name of ['z', 'nope']) {
      for (const type of ['text/plain', 'text/csv']) {
        const r = await s.call('POST', `/v1/ridge/${name}/predict`, 'hello', { 'content-type': type });
        expect(r.status, r.text).toBe(415);
        expect(r.json).toMatchObject({ error: 'Unsupported Media Type', code: 'UnsupportedMediaType' });
        expect(r.json.message).toBe(`content-type '${type}' is not taken by POST /v1/ridge/:model/predict: expected application/json or application/x-npy`);
      }
    }
    const none = await s.call('POST', '/v1/ridge/z/predict');
    expect(none.status, none.text).toBe(400);
    expect(none.json.problems).toEqual([expect.stringMatching(/^body: required, expected X as JSON/)]);
    expect((await s.call('POST', '/v1/ridge/nope/predict')).status).toBe(400);
    // a body of a type it takes reaches the model lookup
    expect((await s.call('POST', '/v1/ridge/nope/predict', encodeNpy(new Float32Array(3), [1, 3]), { 'content-type': 'application/x-npy' })).status).toBe(404);
  });

  it('refuses a .npy X of a dtype it does not take naming the ones it does, whether the reader knows the dtype (int32) or not (float16)', async () => {
    const half = Buffer.from(encodeNpy(new Uint16Array(2 * 40), [2, 40]));
    half.write("'<f2'", half.indexOf("'<u2'"), 'latin1');
    const int = encodeNpy(new Int32Array(2 * 40), [2, 40]);
    for (const [body, got] of [[half, "float16 ('<f2')"], [int, 'int32']] as const) {
      const r = await s.call('POST', '/v1/ridge/z/predict', body, { 'content-type': 'application/x-npy' });
      expect(r.status, r.text).toBe(400);
      expect(r.json.message).toBe(`body: expected float32 or float64 data, got ${got}`);
    }
    const c = await sd.encodeText(['a square']);
    const z = b64(new Float32Array(4 * 8 * 8), [1, 4, 8, 8]);
    const r = await s.call('POST', '/v1/sd/sd/img2img', { z, c: encodeNpy(Float64Array.from(c.data), c.shape).toString('base64') });
    expect(r.status, r.text).toBe(400);
    expect(r.json.message).toBe('body.c: expected float32 data, got float64');
  });

  it("blames a c of the wrong sequence length, not the uncond the client never sent, and names the text encoder's length", async () => {
    const c = await sd.encodeText(['a square']);
    const [, seq, dim] = c.shape;
    const short = { data: c.data.subarray(0, (seq - 1) * dim), shape: [1, seq - 1, dim] };
    const r = await s.call('POST', '/v1/sd/sd/img2img', { z: b64(new Float32Array(4 * 8 * 8), [1, 4, 8, 8]), c: b64(short.data, short.shape), guidance: 3, steps: 2 });
    expect(r.status, r.text).toBe(400);
    expect(r.json.message).toMatch(new RegExp(`^body\\.c: has shape \\[1, ${seq - 1}, ${dim}\\], expected \\[1, ${seq}, ${dim}\\]: the text encoder's sequence length is ${seq}`));
    // an uncond the client sent beside it: of the two, the one without the tokenizer's length is named (review C #4:
    // it was body.uncond, the one of encodeText's length)
    const u = await s.call('POST', '/v1/sd/sd/img2img', { z: b64(new Float32Array(4 * 8 * 8), [1, 4, 8, 8]), c: b64(short.data, short.shape), uncond: b64(c.data, c.shape), guidance: 3, steps: 2 });
    expect(u.status, u.text).toBe(400);
    expect(u.json.message).toBe(
      `body.c: has shape [1, ${seq - 1}, ${dim}], expected [1, ${seq}, ${dim}]: ${seq} tokens, the tokenizer's sequence length, which body.uncond [1, ${seq}, ${dim}] has (encodeText's)`,
    );
    // and an uncond that is short beside a c of the tokenizer's length is the uncond's problem
    const v = await s.call('POST', '/v1/sd/sd/img2img', { z: b64(new Float32Array(4 * 8 * 8), [1, 4, 8, 8]), c: b64(c.data, c.shape), uncond: b64(short.data, short.shape), guidance: 3, steps: 2 });
    expect(v.status, v.text).toBe(400);
    expect(v.json.message).toBe(
      `body.uncond: has shape [1, ${seq - 1}, ${dim}], expected [1, ${seq}, ${dim}]: the sequence length and width of body.c [1, ${seq}, ${dim}], its pair in classifier-free guidance`,
    );
  });

  it('runs img2img: the latents equal an in-process run with the same settings; PNG and .npy images come back', async () => {
    const z = { data: new Float32Array(2 * 4 * 8 * 8).map((_, i) => Math.sin(i)), shape: [2, 4, 8, 8] };
    const c = await sd.encodeText(['a red square', 'a blue circle']);
    const settings = { strength: 0.6, steps: 10, guidance: 3, seeds: [5, 9] };
    const want = await sd.img2img({ z, c, ...settings });
    const body = { z: b64(z.data, z.shape), c: b64(c.data, c.shape), ...settings };
    const lat = await fetch(`${s.url}/v1/sd/sd/img2img`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, output: 'latents' }) });
    expect(lat.status, await lat.clone().text()).toBe(200);
    const got = decodeNpy(new Uint8Array(await lat.arrayBuffer()), 'latents');
    expect(got.shape).toEqual([2, 4, 8, 8]);
    expect(got.data).toEqual(want.latents.data);
    const png = await fetch(`${s.url}/v1/sd/sd/img2img`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(png.headers.get('content-type')).toBe('image/png');
    const image = pngjs.PNG.sync.read(Buffer.from(await png.arrayBuffer()));
    const decoded = await sd.decode(want.latents);
    expect([image.width, image.height]).toEqual([2 * decoded.width, decoded.height]);
    const npy = await fetch(`${s.url}/v1/sd/sd/img2img`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, output: 'npy' }) });
    const rgb = decodeNpy(new Uint8Array(await npy.arrayBuffer()), 'images');
    expect(rgb.shape).toEqual([2, decoded.height, decoded.width, 3]);
    expect(rgb.data).toEqual(decoded.data);
    // the second image of the strip is the second image of the batch
    const x0 = decoded.width, y = 3;
    expect([...image.data.subarray((y * image.width + x0) * 4, (y * image.width + x0) * 4 + 3)]).toEqual([...decoded.data.subarray(((decoded.height + y) * decoded.width) * 3, ((decoded.height + y) * decoded.width) * 3 + 3)]);
  });

  it('answers 503 with Retry-After when the img2img queue is full, and a client that leaves cancels its run', async () => {
    // Long enough that it cannot finish between two polls of /metrics on a fast machine: 64 images of
    // 16×16 latents × 999 steps × 2 (guidance) (999: the most this schedule's leading spacing allows);
    // the client leaves long before it would end.
    const n = 64;
    const z = { data: new Float32Array(n * 4 * 16 * 16).fill(0.1), shape: [n, 4, 16, 16] };
    const one = await sd.encodeText(['a square']);
    const c = { data: new Float32Array(n * one.data.length), shape: [n, one.shape[1], one.shape[2]] };
    for (let i = 0; i < n; i++) c.data.set(one.data, i * one.data.length);
    const long = JSON.stringify({ z: b64(z.data, z.shape), c: b64(c.data, c.shape), strength: 1, steps: 999, guidance: 3, output: 'latents' });
    const active = async () => /brainlatent_pool_tasks\{pool="img2img",status="active"\} (\d+)/.exec((await s.call('GET', '/metrics')).text)?.[1];
    // No wall-clock assumption: an attempt counts only if the first request was still running when the second
    // was answered (on a fast, idle machine the first may end on its own first; then the attempt is repeated).
    let rejected = 0;
    for (let attempt = 1; ; attempt++) {
      const leave = new AbortController();
      let firstEnded = false;
      const first = fetch(`${s.url}/v1/sd/sd/img2img`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: long, signal: leave.signal })
        .then(async (r) => (await r.arrayBuffer(), r), (e: Error) => e)
        .finally(() => (firstEnded = true));
      await until(async () => ((await active()) === '1' || firstEnded ? true : undefined), 30_000, 'the first img2img to run');
      const second = await s.call('POST', '/v1/sd/sd/img2img', JSON.parse(long));
      if (second.status === 503) rejected++;
      if (!firstEnded) {
        expect(second.status, second.text).toBe(503);
        expect(Number(second.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        // a request that could never run is refused as such, not told to retry (review s43: seeds of another length)
        const badSeeds = await s.call('POST', '/v1/sd/sd/img2img', { ...JSON.parse(long), seeds: [1, 2] });
        expect(badSeeds.status, badSeeds.text).toBe(400);
        expect(badSeeds.json.message).toBe(`body.seeds: expected one seed per image of body.z (${n}), got an array of 2`);
        leave.abort();
        expect(await first).toBeInstanceOf(Error);
        await until(async () => ((await active()) === '0' ? true : undefined), 30_000, 'the abandoned run to stop');
        break;
      }
      await first;
      expect(attempt, 'the first img2img never outlasted the second request').toBeLessThan(5);
    }
    const m = (await s.call('GET', '/metrics')).text;
    expect(m).toMatch(new RegExp(`^brainlatent_pool_rejected_total\\{pool="img2img"\\} ${rejected}$`, 'm'));
    expect(m).toMatch(/^brainlatent_predict_duration_seconds_count\{model="z"\} 2$/m);
    expect(m).toMatch(/^brainlatent_unet_steps_total\{source="img2img"\} \d+$/m);
  });

  it('of two loads of one name at once without replace, one is loaded (201) and the other refused (409), the first kept', async () => {
    // (both were 201 before, the later silently replacing the earlier: the name was claimed only when a load landed)
    const paths = ['models/ridge.safetensors', 'models/ridge2.safetensors'];
    const rs = await Promise.all(paths.map((path) => s.call('POST', '/v1/models', { kind: 'ridge', name: 'race', path })));
    expect(rs.map((r) => r.status).sort()).toEqual([201, 409]);
    const won = rs.findIndex((r) => r.status === 201);
    expect(rs[1 - won].json).toMatchObject({ code: 'ModelExists' });
    expect(rs[1 - won].json.message).toMatch(/^a model named 'race' is (being loaded by another request|already loaded); send "replace": true/);
    expect((await s.call('GET', '/v1/models/race')).json.path).toBe(paths[won]);
    expect((await s.call('DELETE', '/v1/models/race')).status).toBe(204);
  });

  it('unloads a model', async () => {
    expect((await s.call('DELETE', '/v1/models/z')).status).toBe(204);
    expect((await s.call('POST', '/v1/ridge/z/predict', { x: [[1]] })).status).toBe(404);
    expect((await s.call('DELETE', '/v1/models/z')).status).toBe(404);
  });
});
