/**
 * Large data bodies and answers over real HTTP. A body above 256 KiB is read in segments and decoded by a predict
 * thread rather than on the event loop, and a large answer is streamed: both must give exactly what the small path
 * gives (the same predictions and images, the same 400s naming the same field and element, the same 413), and a
 * number beyond float64 (1e999) is named as written, not as the Infinity JSON.parse makes of it.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import pngjs from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { decodeNpy, encodeNpy } from '../../ts/io/npy.js';
import { RidgeCV } from '../../ts/ridge/RidgeCV.js';
import type { RidgeModel } from '../../ts/ridge/RidgeModel.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import { planted } from '../helpers/random.js';
import { startTestServer, type TestServer } from './helpers.js';

const FEATURES = 40;
const TARGETS = 64;
/** Samples of a large body: 2,000 × 40 float32 is 320 KB as .npy, ~1.6 MB as JSON (the threshold is 256 KiB). */
const LARGE_ROWS = 2000;

let s: TestServer;
let model: RidgeModel;
let sd: Diffusion;

beforeAll(async () => {
  s = await startTestServer({ predict: { concurrency: 1 }, dataBodyLimit: 4 << 20 });
  const p = planted(200, FEATURES, TARGETS, 5);
  model = await new RidgeCV({ alphas: [1, 10, 100], folds: 3 }).fit(p.x, p.y);
  mkdirSync(join(s.root, 'models'));
  await model.save(join(s.root, 'models', 'ridge.safetensors'));
  await writeSdFixture(join(s.root, 'models', 'sd'));
  sd = await Diffusion.load(join(s.root, 'models', 'sd'));
  expect((await s.call('POST', '/v1/models', { kind: 'ridge', name: 'r', path: 'models/ridge.safetensors' })).status).toBe(201);
  expect((await s.call('POST', '/v1/models', { kind: 'sd', name: 'sd', path: 'models/sd' })).status).toBe(201);
}, 120_000);
afterAll(async () => {
  sd?.dispose();
  await s?.stop();
});

const X = planted(LARGE_ROWS, FEATURES, 1, 9).x;
const rowsOf = (data: Float32Array, cols: number) => Array.from({ length: data.length / cols }, (_, i) => Array.from(data.subarray(i * cols, (i + 1) * cols)));
const npyHeaders = { 'content-type': 'application/x-npy', accept: 'application/x-npy' };
const b64 = (data: Float32Array, shape: number[]) => encodeNpy(data, shape).toString('base64');

/** What a client is told: status, code, name, message and problems. */
const told = (r: { status: number; json: { code?: string; name?: string; message?: string; problems?: string[] } }) => ({ status: r.status, code: r.json?.code, name: r.json?.name, message: r.json?.message, problems: r.json?.problems });

describe('large bodies are decoded off the event loop, with the small path’s answers', () => {
  it('predicts a 2,000-sample .npy body exactly; the large .npy and JSON answers are streamed and exact', async () => {
    const want = model.predict(X);
    const npy = await fetch(`${s.url}/v1/ridge/r/predict`, { method: 'POST', headers: npyHeaders, body: encodeNpy(X.data, [X.rows, X.cols]) });
    expect(npy.status).toBe(200);
    expect(Number(npy.headers.get('content-length'))).toBe(128 + LARGE_ROWS * TARGETS * 4);
    const y = decodeNpy(new Uint8Array(await npy.arrayBuffer()), 'response');
    expect(y.shape).toEqual([LARGE_ROWS, TARGETS]);
    expect(y.data).toEqual(want.data);
    // 128,000 numbers of JSON: made a few rows at a time, the very text one JSON.stringify would give
    const json = await fetch(`${s.url}/v1/ridge/r/predict`, { method: 'POST', headers: { 'content-type': 'application/x-npy' }, body: encodeNpy(X.data, [X.rows, X.cols]) });
    expect(json.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await json.text()).toBe(JSON.stringify({ rows: LARGE_ROWS, cols: TARGETS, y: rowsOf(want.data, TARGETS) }));
  });

  it('predicts a ~1.6 MB JSON body exactly, and one sent without a length (chunked)', async () => {
    const want = model.predict(X);
    const text = JSON.stringify({ x: rowsOf(X.data, FEATURES) });
    expect(text.length).toBeGreaterThan(1 << 20);
    const r = await s.call('POST', '/v1/ridge/r/predict', text, { 'content-type': 'application/json', accept: 'application/x-npy' });
    expect(r.status, r.text.slice(0, 300)).toBe(200);
    const chunked = await fetch(`${s.url}/v1/ridge/r/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/x-npy' },
      body: new Blob([text]).stream(),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(200);
    expect(decodeNpy(new Uint8Array(await chunked.arrayBuffer()), 'response').data).toEqual(want.data);
  });

  it('answers a bad large predict body exactly as the same fault in a small one (400 naming the field and element)', async () => {
    const small = rowsOf(X.data.subarray(0, 2 * FEATURES), FEATURES);
    const large = rowsOf(X.data, FEATURES);
    const json = (rows: unknown[]) => JSON.stringify({ x: rows });
    const cases: [string, (rows: number[][]) => string][] = [
      ['a string among the numbers', (rows) => json(rows.map((r, i) => (i === 1 ? ['a', ...r.slice(1)] : r)))],
      ['an unknown key', (rows) => JSON.stringify({ x: rows, y: [[1]] })],
      ['a ragged row', (rows) => json(rows.map((r, i) => (i === 1 ? r.slice(0, 3) : r)))],
      ['a number beyond float32', (rows) => json(rows.map((r, i) => (i === 1 ? [r[0], r[1], 1e39, ...r.slice(3)] : r)))],
      ['text that is not JSON', (rows) => json(rows).slice(0, -2)],
    ];
    for (const [what, body] of cases) {
      const a = told(await s.call('POST', '/v1/ridge/r/predict', body(small), { 'content-type': 'application/json' }));
      const b = told(await s.call('POST', '/v1/ridge/r/predict', body(large), { 'content-type': 'application/json' }));
      expect(a.status, what).toBe(400);
      // (JSON that does not parse is told where: the same fault at the end of a longer body is at a later column)
      const place = (text: string) => text.replace(/column \d+/, 'column N');
      const at = (t: typeof a) => ({ ...t, message: t.message && place(t.message), problems: t.problems?.map(place) });
      expect(at(b), what).toEqual(at(a));
    }
    const nan = (rows: number) => {
      const x = new Float64Array(X.data.subarray(0, rows * FEATURES));
      x[FEATURES + 3] = Number.NaN;
      return encodeNpy(x, [rows, FEATURES]);
    };
    const a = told(await s.call('POST', '/v1/ridge/r/predict', nan(2), { 'content-type': 'application/x-npy' }));
    const b = told(await s.call('POST', '/v1/ridge/r/predict', nan(LARGE_ROWS), { 'content-type': 'application/x-npy' }));
    expect(a).toMatchObject({ status: 400, code: 'NonFinite', name: 'NonFiniteError' });
    expect(a.message).toMatch(/^body \(X as \.npy\): element \[sample 1, feature 3\] .* is NaN/);
    expect(b).toEqual(a);
  });

  // s27: JSON.parse reads 1e999 as Infinity, and the schema's 400 said 'expected a number, got number Infinity'
  it('names a number beyond float64 (1e999) by its field and as written, in a small or a large body, predict or img2img', async () => {
    const FLOAT64 = "is beyond float64's range (±1.8e308), the type JSON numbers are read as; finite numbers are required";
    // X's JSON with the numbers at [row][feature] written as given (JSON.stringify has no way to write 1e999)
    const predictText = (rows: number, typed: [number, number, string][]) => {
      const x = rowsOf(X.data.subarray(0, rows * FEATURES), FEATURES).map((r) => r.map(String));
      for (const [i, j, text] of typed) x[i][j] = text;
      return `{"x": [${x.map((r) => `[${r.join(', ')}]`).join(',\n')}]}`;
    };
    const typed: [number, number, string][] = [
      [1, 7, '1e999'],
      [1, 9, '-1E+400'],
    ];
    const small = told(await s.call('POST', '/v1/ridge/r/predict', predictText(2, typed), { 'content-type': 'application/json' }));
    expect(small).toEqual({
      status: 400,
      code: 'InvalidRequest',
      name: 'RequestValidationError',
      message: expect.stringMatching(/^the request body is not valid \(2 problems\)/),
      problems: [`body.x[1][7]: 1e999 ${FLOAT64}`, `body.x[1][9]: -1E+400 ${FLOAT64}`],
    });
    const large = predictText(LARGE_ROWS, typed);
    expect(large.length).toBeGreaterThan(256 << 10);
    expect(told(await s.call('POST', '/v1/ridge/r/predict', large, { 'content-type': 'application/json' }))).toEqual(small);
    // a number of 400 digits is one too, quoted in part; and many are counted, the first 10 named
    const digits = `9${'0'.repeat(399)}`;
    const long = told(await s.call('POST', '/v1/ridge/r/predict', predictText(2, [[0, 0, digits]]), { 'content-type': 'application/json' }));
    expect(long.problems).toEqual([`body.x[0][0]: 9${'0'.repeat(23)}…00000000 (400 characters) ${FLOAT64}`]);
    const many = told(await s.call('POST', '/v1/ridge/r/predict', predictText(2, Array.from({ length: 30 }, (_, j) => [1, j, '2e308'] as [number, number, string])), { 'content-type': 'application/json' }));
    expect(many.problems).toHaveLength(11);
    expect(many.problems?.[10]).toBe("body: 20 more numbers beyond float64's range (30 in all)");
    // big but finite numbers are not refused here (1e300 is float32's Inf: the arrays' check names it as sent)
    const finite = told(await s.call('POST', '/v1/ridge/r/predict', predictText(2, [[1, 2, '1e300']]), { 'content-type': 'application/json' }));
    expect(finite).toMatchObject({ status: 400, code: 'NonFinite' });
    expect(finite.message).toMatch(/^body\.x: element \[sample 1, feature 2\] .* is 1e\+300, beyond float32's range/);
    // img2img: a number where z's or c's .npy was expected, small and large
    const c = (k: number) => b64(new Float32Array(k * 77 * 32), [k, 77, 32]);
    const z = (k: number) => b64(new Float32Array(k * 4 * 8 * 8), [k, 4, 8, 8]);
    for (const k of [1, 40]) {
      const zNumber = told(await s.call('POST', '/v1/sd/sd/img2img', `{"z": 1e999, "c": "${c(k)}"}`, { 'content-type': 'application/json' }));
      expect(zNumber.problems, `${k} images`).toEqual([`body.z: 1e999 ${FLOAT64}`]);
      const cNumber = told(await s.call('POST', '/v1/sd/sd/img2img', `{"z": "${z(k)}", "c": -1e999, "steps": 2}`, { 'content-type': 'application/json' }));
      expect(cNumber.problems, `${k} images`).toEqual([`body.c: -1e999 ${FLOAT64}`]);
    }
  });

  it('answers a body nested too deeply for the JSON locator with a 400, small or large (the locator overflowed its stack: 500)', async () => {
    // jsonc-parser recurses per level: ~10,000 levels of [ ] overflowed it where a body held 1e999 or was not JSON
    for (const depth of [20_000, 150_000]) {
      const nested = (inner: string) => `{"x": ${'['.repeat(depth)}${inner}${']'.repeat(depth)}}`;
      const beyond = told(await s.call('POST', '/v1/ridge/r/predict', nested('1e999'), { 'content-type': 'application/json' }));
      expect(beyond, `depth ${depth}`).toMatchObject({ status: 400, code: 'InvalidRequest' });
      expect(beyond.problems, `depth ${depth}`).toEqual(["body: 1 number beyond float64's range (such as 1e999), nested too deeply to say where; finite numbers are required"]);
      const invalid = told(await s.call('POST', '/v1/ridge/r/predict', nested('1,'), { 'content-type': 'application/json' }));
      expect(invalid, `depth ${depth}`).toMatchObject({ status: 400 });
      expect(invalid.problems, `depth ${depth}`).toEqual([
        'body: expected JSON (application/json), got text that is not JSON or holds a key that is refused (__proto__, or constructor with a prototype); it is nested too deeply to say where',
      ]);
    }
  });

  // s28: a large body was parsed with JSON.parse, a small one with Fastify's parser (secure-json-parse): a BOM was
  // 200 small and 400 large, a __proto__ key FST_ERR_CTP_INVALID_JSON_BODY small and InvalidRequest large; a gzip
  // body was neither decoded nor refused (400 as not JSON, or not .npy)
  it('answers a body the same below and above 256 KiB: a leading BOM, a prototype key, a compressed body (415)', async () => {
    const rows = (n: number) => rowsOf(X.data.subarray(0, n * FEATURES), FEATURES);
    const predict = (body: string | Uint8Array, headers: Record<string, string> = {}) => s.call('POST', '/v1/ridge/r/predict', body, { 'content-type': 'application/json', ...headers });
    const bodies = (make: (x: number[][]) => string) => [make(rows(2)), make(rows(LARGE_ROWS))];
    for (const [small, large] of [bodies((x) => `\uFEFF${JSON.stringify({ x })}`)]) {
      expect(large.length).toBeGreaterThan(256 << 10);
      const [a, b] = [await predict(small), await predict(large)];
      expect([a.status, b.status]).toEqual([200, 200]);
      expect([a.json.rows, b.json.rows]).toEqual([2, LARGE_ROWS]);
    }
    const keys: [string, (x: number[][]) => string][] = [
      ['a __proto__ key', (x) => `{"x": ${JSON.stringify(x)}, "__proto__": {"polluted": 1}}`],
      ['an escaped __proto__ key, nested', (x) => `{"x": ${JSON.stringify(x)}, "o": {"\\u005f_proto__": {}}}`],
      ['a constructor.prototype key', (x) => `{"x": ${JSON.stringify(x)}, "constructor": {"prototype": {"polluted": 1}}}`],
      ['a BOM and a __proto__ key', (x) => `\uFEFF{"__proto__": 1, "x": ${JSON.stringify(x)}}`],
      ['a BOM and text that is not JSON', (x) => `\uFEFF{"x": ${JSON.stringify(x)}`],
    ];
    for (const [what, make] of keys) {
      const [small, large] = bodies(make);
      const a = told(await predict(small));
      const b = told(await predict(large));
      expect(a, what).toMatchObject({ status: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY' });
      const place = (text: string) => text.replace(/line \d+, column \d+/, 'line L, column N');
      const at = (t: typeof a) => ({ ...t, message: t.message && place(t.message), problems: t.problems?.map(place) });
      expect(at(b), what).toEqual(at(a));
    }
    expect(told(await predict(bodies(keys[0][1])[0])).problems).toEqual([
      'body: expected JSON (application/json) without a __proto__ key, or a constructor key holding a prototype, got JSON that holds one (such keys are refused)',
    ]);
    // (the BOM is not counted: the syntax error is where it is in the JSON)
    expect(told(await predict(`\uFEFF{"x": [[1,]]}`)).problems).toEqual(['body: expected JSON (application/json), got text that stops being JSON at line 1, column 11: value expected']);
    // compressed: 415 naming the coding, JSON and .npy alike; identity is no coding
    const gzJson = bodies((x) => JSON.stringify({ x })).map((t) => gzipSync(t));
    const gzNpy = [2, LARGE_ROWS].map((n) => gzipSync(encodeNpy(X.data.subarray(0, n * FEATURES), [n, FEATURES])));
    expect(gzJson[1].length).toBeGreaterThan(256 << 10);
    for (const [body, type] of [...gzJson.map((b) => [b, 'application/json'] as const), ...gzNpy.map((b) => [b, 'application/x-npy'] as const)]) {
      for (const coding of ['gzip', 'identity, gzip', 'br']) {
        const r = await predict(body, { 'content-type': type, 'content-encoding': coding });
        expect(told(r), `${type} ${body.length} bytes, ${coding}`).toEqual({
          status: 415,
          code: 'UnsupportedMediaType',
          name: 'FastifyError',
          message: `content-encoding '${coding.replace('identity, ', '')}' is not taken by POST /v1/ridge/:model/predict: send the body uncompressed (no content-encoding, or identity)`,
          problems: undefined,
        });
        expect(r.headers.get('accept-encoding')).toBe('identity');
      }
    }
    for (const body of bodies((x) => JSON.stringify({ x }))) expect((await predict(body, { 'content-encoding': 'identity' })).status).toBe(200);
    // every route takes its JSON uncompressed
    const load = await s.call('POST', '/v1/models', gzipSync(JSON.stringify({ kind: 'ridge', name: 'q', path: 'models/ridge.safetensors' })), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(told(load)).toMatchObject({ status: 415, message: expect.stringMatching(/^content-encoding 'gzip' is not taken by POST \/v1\/models:/) });
  });

  it('refuses a body beyond the data limit with 413, with or without a declared length', async () => {
    const big = Buffer.alloc((4 << 20) + 1024, 0x20);
    const declared = await fetch(`${s.url}/v1/ridge/r/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
    expect(declared.status).toBe(413);
    const chunked = await fetch(`${s.url}/v1/ridge/r/predict`, { method: 'POST', headers: { 'content-type': 'application/x-npy' }, body: new Blob([big]).stream(), duplex: 'half' } as RequestInit).catch((e: Error) => e);
    // the service answers 413 and closes the connection; a client still sending may see the reset instead
    if (!(chunked instanceof Error)) expect(chunked.status).toBe(413);
  });

  it('runs img2img from a large body (40 images): the latents equal an in-process run; the PNG strip and .npy images are exact', async () => {
    const n = 40;
    const z = { data: new Float32Array(n * 4 * 8 * 8).map((_, i) => Math.sin(i / 7)), shape: [n, 4, 8, 8] };
    const one = await sd.encodeText(['a red square']);
    const c = { data: new Float32Array(n * one.data.length), shape: [n, one.shape[1], one.shape[2]] };
    for (let i = 0; i < n; i++) c.data.set(one.data, i * one.data.length);
    const settings = { strength: 0.5, steps: 4, guidance: 1, seeds: 3 };
    const body = { z: b64(z.data, z.shape), c: b64(c.data, c.shape), ...settings };
    expect(JSON.stringify(body).length).toBeGreaterThan(256 << 10);
    const want = await sd.img2img({ z, c, ...settings });
    const latents = await fetch(`${s.url}/v1/sd/sd/img2img`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, output: 'latents' }) });
    expect(latents.status).toBe(200);
    expect(decodeNpy(new Uint8Array(await latents.arrayBuffer()), 'latents').data).toEqual(want.latents.data);
    const decoded = await sd.decode(want.latents);
    const npy = await fetch(`${s.url}/v1/sd/sd/img2img`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, output: 'npy' }) });
    const rgb = decodeNpy(new Uint8Array(await npy.arrayBuffer()), 'images');
    expect(rgb.shape).toEqual([n, decoded.height, decoded.width, 3]);
    expect(rgb.data).toEqual(decoded.data);
    const png = await fetch(`${s.url}/v1/sd/sd/img2img`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(png.headers.get('content-type')).toBe('image/png');
    expect(png.headers.get('x-brainlatent-images')).toBe(String(n));
    const image = pngjs.PNG.sync.read(Buffer.from(await png.arrayBuffer()));
    expect([image.width, image.height]).toEqual([n * decoded.width, decoded.height]);
    // every pixel of every image, in batch order, left to right
    for (let i = 0; i < n; i++) {
      for (let y = 0; y < decoded.height; y++) {
        for (let x = 0; x < decoded.width; x++) {
          const p = (y * image.width + i * decoded.width + x) * 4;
          const q = ((i * decoded.height + y) * decoded.width + x) * 3;
          if (image.data[p] !== decoded.data[q] || image.data[p + 1] !== decoded.data[q + 1] || image.data[p + 2] !== decoded.data[q + 2]) {
            throw new Error(`PNG pixel (${x}, ${y}) of image ${i} differs`);
          }
        }
      }
    }
  });

  it('answers a bad large img2img body as the same fault in a small one, and refuses .npy bodies (415)', async () => {
    const n = 40;
    const c = { data: new Float32Array(n * 77 * 32).map((_, i) => Math.cos(i)), shape: [n, 77, 32] };
    const z = (images: number) => b64(new Float32Array(images * 4 * 8 * 8).map((_, i) => (i === 70 ? Number.POSITIVE_INFINITY : Math.sin(i))), [images, 4, 8, 8]);
    const cases: [string, (images: number) => Record<string, unknown>][] = [
      ['an Inf in z', (k) => ({ z: z(k), c: b64(c.data.subarray(0, k * 77 * 32), [k, 77, 32]) })],
      ['z not a .npy', (k) => ({ z: Buffer.from('not an npy').toString('base64'), c: b64(c.data.subarray(0, k * 77 * 32), [k, 77, 32]) })],
      ['strength out of range', (k) => ({ z: z(k), c: b64(c.data.subarray(0, k * 77 * 32), [k, 77, 32]), strength: 2 })],
      ['an unknown key', (k) => ({ z: z(k), c: b64(c.data.subarray(0, k * 77 * 32), [k, 77, 32]), colour: 'red' })],
    ];
    for (const [what, body] of cases) {
      const a = told(await s.call('POST', '/v1/sd/sd/img2img', body(1)));
      const b = told(await s.call('POST', '/v1/sd/sd/img2img', body(n)));
      expect(a.status, what).toBe(400);
      expect(b, what).toEqual(a);
    }
    // a body refused past its schema (not a .npy, an Inf) lists its problem as the validator's 400s do: the message
    for (const [what, body] of cases.slice(0, 2)) {
      const r = (await s.call('POST', '/v1/sd/sd/img2img', body(1))).json as { message: string; problems?: string[] };
      expect(r.problems, what).toEqual([r.message]);
    }
    const npy = await s.call('POST', '/v1/sd/sd/img2img', encodeNpy(c.data, c.shape), { 'content-type': 'application/x-npy' });
    expect(npy.status).toBe(415);
  });
});
