/**
 * Which limit a route's body has, as docs/server.md ("Bodies") says: predict's (JSON or .npy) and img2img's the data
 * body limit (`dataBodyLimit`), every other route's the JSON one (`bodyLimit`). s26-r2 sent a 15 MB JSON predict
 * body, got 200, and found the docs saying JSON bodies were limited to 1 MiB: the code meant a JSON X to be data
 * (dataBodies.ts reads it as one), and the docs now say so.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { encodeNpy } from '../../ts/io/npy.js';
import { RidgeCV } from '../../ts/ridge/RidgeCV.js';
import { planted } from '../helpers/random.js';
import { startTestServer, type TestServer } from './helpers.js';

const JSON_LIMIT = 2048;
const DATA_LIMIT = 8192;
let s: TestServer;

beforeAll(async () => {
  s = await startTestServer({ bodyLimit: JSON_LIMIT, dataBodyLimit: DATA_LIMIT });
  mkdirSync(join(s.root, 'models'));
  const p = planted(60, 4, 3, 5);
  await (await new RidgeCV({ alphas: [1, 10], folds: 3 }).fit(p.x, p.y)).save(join(s.root, 'models', 'ridge.safetensors'));
  const r = await s.call('POST', '/v1/models', { kind: 'ridge', name: 'z', path: 'models/ridge.safetensors' });
  if (r.status !== 201) throw new Error(`loading the test ridge model: ${r.status} ${r.text}`);
}, 60_000);
afterAll(async () => {
  await s?.stop();
});

/** A JSON predict body of `rows` samples of 4 features (about 44 bytes a sample). */
const predictJson = (rows: number) => ({ x: Array.from({ length: rows }, (_, i) => [0.123456789 + i, -1.23456789, 2.5e-7, 3.0000001]) });

describe('body limits, per route', () => {
  it('a JSON predict body has the data limit: over the JSON limit it is predicted, over the data limit it is a 413 naming it', async () => {
    const within = predictJson(60);
    expect(JSON.stringify(within).length).toBeGreaterThan(JSON_LIMIT);
    const ok = await s.call('POST', '/v1/ridge/z/predict', within);
    expect(ok.status, ok.text).toBe(200);
    expect(ok.json.rows).toBe(60);
    const over = await s.call('POST', '/v1/ridge/z/predict', predictJson(250));
    expect(over.status).toBe(413);
    expect(over.json).toMatchObject({ code: 'FST_ERR_CTP_BODY_TOO_LARGE', limit: DATA_LIMIT });
    expect(over.json.message).toMatch(/^the request body is over the 8,192-byte limit \(8 KiB\) of POST \/v1\/ridge\/:model\/predict/);
  });

  it('a .npy predict body and an img2img body have the data limit too', async () => {
    const npy = encodeNpy(new Float32Array(3000 * 4), [3000, 4]);
    const r = await s.call('POST', '/v1/ridge/z/predict', new Uint8Array(npy), { 'content-type': 'application/x-npy' });
    expect([r.status, r.json.limit]).toEqual([413, DATA_LIMIT]);
    // over the JSON limit, within the data limit: read, then refused by the schema (no c), not by size
    const img = await s.call('POST', '/v1/sd/none/img2img', { z: 'A'.repeat(4000) });
    expect(img.status).toBe(400);
    expect(img.json.code).not.toBe('FST_ERR_CTP_BODY_TOO_LARGE');
  });

  it("every other route's body has the JSON limit", async () => {
    for (const [path, body] of [
      ['/v1/models', { kind: 'ridge', name: 'y', path: `models/${'a'.repeat(3000)}` }],
      ['/v1/jobs', { kind: 'ridge-fit', config: { x: 'a'.repeat(3000) } }],
    ] as const) {
      const r = await s.call('POST', path, body);
      expect([path, r.status, r.json.limit]).toEqual([path, 413, JSON_LIMIT]);
    }
  });

  it('is what docs/server.md says', () => {
    const doc = readFileSync('docs/server.md', 'utf8').replace(/\s+/g, ' ');
    expect(doc).toContain("Data bodies are limited to 64 MiB (`dataBodyLimit`): predict's, JSON (`{\"x\": …}`, the same array as a .npy) or .npy, and img2img's; every other route's body to 1 MiB (`bodyLimit`)");
  });
});
