/**
 * A ridge model that a DELETE or a replace drops gives its memory back. Before the fix the model's shared arrays
 * reached the event loop's thread in the load's reply, and nothing there collected them (the service runs with
 * --no-memory-reducer, which removes V8's idle collections): each POST + DELETE of a 128 MiB model kept ~130 MiB
 * more (5 cycles: +650 MiB, no model loaded). Measured on a `serve` process, as a client sees it.
 */
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { RidgeModel } from '../../ts/ridge/RidgeModel.js';
import { startServeCli, until } from './helpers.js';

const FEATURES = 8192;
const TARGETS = 4096;
const MODEL_MIB = (FEATURES * TARGETS * 4) / 2 ** 20; // 128

/** The process's resident memory in MiB (VmRSS). */
function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`/proc/${pid}/status: no VmRSS line`);
  return Number(m[1]) / 1024;
}

const ones = (n: number) => new Float32Array(n).fill(1);

let root: string;
let serve: Awaited<ReturnType<typeof startServeCli>>;

beforeAll(async () => {
  root = realpathSync(mkdtempSync(join(tmpdir(), 'bl-model-memory-')));
  mkdirSync(join(root, 'models'));
  const coef = { data: new Float32Array(FEATURES * TARGETS).map((_, i) => (i % 7) / 7), rows: FEATURES, cols: TARGETS };
  const settings = { alphas: [1], nFolds: 2, foldKind: 'contiguous' as const, score: 'r2' as const, fitIntercept: true, standardize: false };
  const model = new RidgeModel({ coef, intercept: ones(TARGETS), xMean: ones(FEATURES), xScale: ones(FEATURES), bestAlphas: ones(TARGETS), bestScores: ones(TARGETS), cvScores: { data: ones(TARGETS), rows: 1, cols: TARGETS }, settings });
  await model.save(join(root, 'models', 'big.safetensors'));
  // two predict threads: a model held by both is freed by both
  serve = await startServeCli(root, 5, process.env, ['--predict-threads', '2']);
}, 120_000);

afterAll(async () => {
  serve?.proc.kill('SIGTERM');
  await serve?.exited;
  rmSync(root, { recursive: true, force: true });
});

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const r = await fetch(serve.url + path, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  return { status: r.status, json: await r.json().catch(() => undefined) };
}

describe('ridge models dropped by the service', () => {
  it('give their memory back: 5 loads and DELETEs of a 128 MiB model, and 5 replaces, leave RSS near where it started', async () => {
    const pid = serve.proc.pid!;
    const x = { x: [Array.from({ length: FEATURES }, (_, i) => i % 3)] };
    const baseline = rssMiB(pid);
    for (let i = 0; i < 5; i++) {
      expect((await call('POST', '/v1/models', { kind: 'ridge', name: 'm', path: 'models/big.safetensors' })).status).toBe(201);
      // a predict while the model is loaded (its thread holds the arrays too), answered with the model's numbers
      const p = await call('POST', '/v1/ridge/m/predict', x);
      expect(p.status).toBe(200);
      expect(p.json.y[0]).toHaveLength(TARGETS);
      expect((await call('DELETE', '/v1/models/m')).status).toBe(204);
    }
    // (a model's memory may stay held for a moment after its DELETE, never for good)
    const afterDeletes = await until(() => (rssMiB(pid) < baseline + 2 * MODEL_MIB ? rssMiB(pid) : undefined), 15_000, `RSS below ${baseline.toFixed(0)} + 2 × ${MODEL_MIB} MiB after 5 DELETEs`).catch(() => rssMiB(pid));
    expect(afterDeletes).toBeLessThan(baseline + 2 * MODEL_MIB);

    for (let i = 0; i < 6; i++) {
      expect((await call('POST', '/v1/models', { kind: 'ridge', name: 'm', path: 'models/big.safetensors', replace: true })).status).toBe(201);
    }
    // one model loaded now: the five it replaced are given back
    const afterReplaces = await until(() => (rssMiB(pid) < baseline + 3 * MODEL_MIB ? rssMiB(pid) : undefined), 15_000, 'RSS after 5 replaces').catch(() => rssMiB(pid));
    expect(afterReplaces).toBeLessThan(baseline + 3 * MODEL_MIB);
    expect((await call('DELETE', '/v1/models/m')).status).toBe(204);
  }, 180_000);

  it('answers the predictions in flight when their model is replaced or deleted', async () => {
    const x = { x: [Array.from({ length: FEATURES }, () => 1)] };
    expect((await call('POST', '/v1/models', { kind: 'ridge', name: 'm', path: 'models/big.safetensors' })).status).toBe(201);
    const predicts = Array.from({ length: 8 }, () => call('POST', '/v1/ridge/m/predict', x));
    const replaced = call('POST', '/v1/models', { kind: 'ridge', name: 'm', path: 'models/big.safetensors', replace: true });
    const more = Array.from({ length: 4 }, () => call('POST', '/v1/ridge/m/predict', x));
    expect((await replaced).status).toBe(201);
    const deleted = call('DELETE', '/v1/models/m');
    for (const r of await Promise.all([...predicts, ...more])) {
      // X = 1 = x_mean: each prediction is the intercept, 1 (or the model was already gone: 404)
      expect([200, 404]).toContain(r.status);
      if (r.status === 200) expect(new Set(r.json.y[0])).toEqual(new Set([1]));
    }
    expect((await deleted).status).toBe(204);
  }, 120_000);
});
