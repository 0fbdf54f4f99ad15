import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { CancelledError, FormatError, InvalidArgumentError, NonFiniteError, OutOfMemoryError, ShapeError } from '../../ts/errors.js';
import { readSafetensors, writeSafetensors } from '../../ts/io/safetensors.js';
import { MAX_ENGINE_THREADS, setThreads } from '../../ts/ridge/RidgeCV.js';
import { RidgeCV, type FitControl, type RidgeCVOptions } from '../../ts/ridge/RidgeCV.js';
import { RidgeModel, type PredictProgress } from '../../ts/ridge/RidgeModel.js';
import { writeNpy } from '../../ts/io/npy.js';
import { fromNative } from '../../ts/native/nativeError.js';
import type { Matrix } from '../../ts/matrix.js';
import { alteredCopies, expectRefused, type TensorCopy } from '../helpers/modelFiles.js';
import { planted, rng } from '../helpers/random.js';
import { refCv, refFit, refPredict } from '../helpers/ridgeReference.js';
import { commandOutput } from '../helpers/nodeChild.js';
import { tempDir } from '../helpers/tempDir.js';

const ALPHAS = [0.1, 1, 10, 100, 1000];

/** A float32 value as load's messages write it: its shortest decimal. */
function f32(v: number): string {
  for (let digits = 1; digits < 9; digits++) if (Math.fround(Number(v.toPrecision(digits))) === v) return String(Number(v.toPrecision(digits)));
  return String(v);
}

function hasNumpy(): boolean {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import numpy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('RidgeCV against a float64 reference', () => {
  for (const [label, n, p] of [
    ['primal (n > p)', 80, 12],
    ['kernel (n < p)', 40, 70],
  ] as const) {
    for (const cvMethod of ['per-fold', 'exact'] as const) {
      it(`${label}, ${cvMethod}: CV scores, chosen alphas and refit coefficients`, async () => {
        const { x, y } = planted(n, p, 6, 11);
        const model = await new RidgeCV({ alphas: ALPHAS, folds: 4, cvMethod, eigPrecision: 'float64' }).fit(x, y);
        const folds = Array.from({ length: n }, (_, i) => Math.min(3, Math.floor(i / (n / 4))));
        const ref = refCv(x.data, y.data, n, p, 6, ALPHAS, folds, 4);
        for (let i = 0; i < ref.cv.length; i++) expect(Math.abs(model.cvScores.data[i] - ref.cv[i])).toBeLessThan(2e-4);
        expect(Array.from(model.bestAlphas)).toEqual(ref.best.map((a) => Math.fround(a)));
        const all = Array.from({ length: n }, (_, i) => i);
        for (let j = 0; j < 6; j++) {
          const f = refFit(x.data, y.data, p, 6, all, model.bestAlphas[j]);
          for (let k = 0; k < p; k++) expect(model.coef.data[k * 6 + j]).toBeCloseTo(f.w[k * 6 + j], 4);
          expect(model.intercept[j]).toBeCloseTo(f.ym[j], 4);
          // predictions through the native predict path
          const pred = model.predict(x);
          for (const i of [0, n - 1]) expect(pred.data[i * 6 + j]).toBeCloseTo(refPredict(f, x.data, p, 6, i, j), 3);
        }
      });
    }
  }

  it('a single alpha gives the closed-form solution on every route', async () => {
    const { x, y } = planted(50, 20, 3, 5);
    const all = Array.from({ length: 50 }, (_, i) => i);
    const f = refFit(x.data, y.data, 20, 3, all, 7);
    for (const route of ['primal', 'kernel'] as const) {
      const m = await new RidgeCV({ alphas: [7], folds: 5, route, eigPrecision: 'float64' }).fit(x, y);
      for (let i = 0; i < f.w.length; i++) expect(m.coef.data[i]).toBeCloseTo(f.w[i], 5);
      expect(m.info?.route).toBe(route);
    }
  });

  it('groups keep all samples of a group in one fold', async () => {
    const { x, y } = planted(60, 8, 4, 3);
    const groups = Array.from({ length: 60 }, (_, i) => (i * 7) % 15);
    const m = await new RidgeCV({ alphas: ALPHAS, folds: 3, groups }).fit(x, y);
    expect(m.settings.foldKind).toBe('groups');
    // Brute force with the same grouping (whole groups, contiguous runs in order of appearance).
    const { nativeSync } = await import('../../ts/native/call.js');
    const folds = nativeSync((b) => b.groupFolds(Int32Array.from(groups), 3));
    for (let i = 0; i < 60; i++) for (let j = 0; j < 60; j++) if (groups[i] === groups[j]) expect(folds[i]).toBe(folds[j]);
    const ref = refCv(x.data, y.data, 60, 8, 4, ALPHAS, folds, 3);
    for (let i = 0; i < ref.cv.length; i++) expect(Math.abs(m.cvScores.data[i] - ref.cv[i])).toBeLessThan(2e-4);
  });

  it('groups and foldIndex are the arrays checked at construction: changed after it, the fit is unchanged (review s35-r6)', async () => {
    const { x, y } = planted(60, 8, 4, 3);
    const groups = Array.from({ length: 60 }, (_, i) => (i * 7) % 15);
    const foldIndex = Array.from({ length: 60 }, (_, i) => i % 3);
    const a = new RidgeCV({ alphas: ALPHAS, folds: 3, groups }), b = new RidgeCV({ alphas: ALPHAS, foldIndex });
    const [ma, mb] = [await a.fit(x, y), await b.fit(x, y)];
    // (values that the constructor refuses, and labels that would move samples between folds)
    groups.fill(1.5);
    foldIndex.fill(70);
    const [ma2, mb2] = [await a.fit(x, y), await b.fit(x, y)];
    expect(Array.from(ma2.cvScores.data)).toEqual(Array.from(ma.cvScores.data));
    expect(Array.from(mb2.cvScores.data)).toEqual(Array.from(mb.cvScores.data));
  });

  it('standardisation is stored and applied at predict time', async () => {
    const { x, y } = planted(60, 5, 2, 8);
    for (let i = 0; i < 60; i++) x.data[i * 5 + 2] *= 1000; // one feature on a very different scale
    const m = await new RidgeCV({ alphas: [1], standardize: true }).fit(x, y);
    expect(m.xScale[2]).toBeGreaterThan(500);
    const xs = new Float64Array(60 * 5);
    for (let k = 0; k < 5; k++) for (let i = 0; i < 60; i++) xs[i * 5 + k] = (x.data[i * 5 + k] - m.xMean[k]) / m.xScale[k];
    const f = refFit(xs, y.data, 5, 2, Array.from({ length: 60 }, (_, i) => i), 1);
    const pred = m.predict(x);
    for (const i of [0, 17, 59]) expect(pred.data[i * 2 + 1]).toBeCloseTo(refPredict(f, xs, 5, 2, i, 1), 3);
  });
});

describe('RidgeCV float32 resolution', () => {
  it('declares alphas below the resolution of a singular Gram unresolved and never picks them', async () => {
    // 12 features that are 3 features repeated: XᵀX has rank 3, its float32 null space is noise
    const base = planted(60, 3, 4, 12);
    const x = { data: new Float32Array(60 * 12), rows: 60, cols: 12 };
    for (let i = 0; i < 60; i++) for (let k = 0; k < 12; k++) x.data[i * 12 + k] = base.x.data[i * 3 + (k % 3)];
    const m = await new RidgeCV({ alphas: [1e-6, 1e-4, 1, 10], route: 'primal', cvMethod: 'per-fold' }).fit(x, base.y);
    expect(m.info?.unresolvedAlphas).toBe(2);
    expect(m.info?.alphaResolution).toBeGreaterThan(1e-4);
    expect(Number.isNaN(m.cvScores.data[0])).toBe(true);
    expect(Number.isNaN(m.cvScores.data[4])).toBe(true);
    for (const a of m.bestAlphas) expect(a).toBeGreaterThanOrEqual(1);
    // its file loads: load's best-score check skips the NaN rows of the alphas left unresolved
    const file = path.join(tempDir('bl-unresolved-'), 'm.safetensors');
    await m.save(file);
    expect((await RidgeModel.load(file)).cvScores).toEqual(m.cvScores);
    await expect(new RidgeCV({ alphas: [1e-6, 1e-5], route: 'primal', cvMethod: 'per-fold' }).fit(x, base.y)).rejects.toThrow(
      /every alpha is below .* float32 resolution/,
    );
  });
  it('exact kernel CV in float32 with a strong common factor: the centred kernel\'s null vector is exact', async () => {
    // X with one factor shared by every feature: λ_max of the centred kernel is ~10⁵ times the
    // smallest alpha, and a float32 eigensolver gives the constant null vector an eigenvalue of
    // order ε·λ_max. Before that direction was split off exactly, (I − H)_vv came out indefinite
    // here ("not positive definite" at alpha 0.1) and float32 scores were 2e-4 from float64.
    const n = 200, p = 400, t = 4, g = rng(7);
    const x = { data: new Float32Array(n * p), rows: n, cols: p }, y = { data: new Float32Array(n * t), rows: n, cols: t };
    for (let i = 0; i < n; i++) {
      const common = 3 * g();
      for (let k = 0; k < p; k++) x.data[i * p + k] = common + g();
    }
    for (let i = 0; i < n; i++)
      for (let j = 0; j < t; j++) {
        let s = 0;
        for (let k = 0; k < 10; k++) s += x.data[i * p + k * 7 + j];
        y.data[i * t + j] = s + 5 * g();
      }
    const alphas = [0.1, 1, 10, 100, 1e3, 1e4];
    const exact = await new RidgeCV({ alphas, folds: 5, cvMethod: 'exact', route: 'kernel', eigPrecision: 'float32' }).fit(x, y);
    const ref = await new RidgeCV({ alphas, folds: 5, cvMethod: 'per-fold', route: 'kernel', eigPrecision: 'float64' }).fit(x, y);
    expect(exact.info?.cvMethod).toBe('exact');
    expect(exact.info?.unresolvedAlphas).toBe(0);
    for (let i = 0; i < ref.cvScores.data.length; i++) expect(Math.abs(exact.cvScores.data[i] - ref.cvScores.data[i])).toBeLessThan(1e-4);
    expect(Array.from(exact.bestAlphas)).toEqual(Array.from(ref.bestAlphas));
  });
});

describe('RidgeCV batching', () => {
  it('59,136 targets (77×768 CLIP) in memory-bounded batches give the same model as one batch', async () => {
    const n = 120, p = 10, t = 59136;
    const { x } = planted(n, p, 1, 31);
    const y = { data: new Float32Array(n * t), rows: n, cols: t };
    const w = planted(p, t, 1, 32).x.data; // reuse the generator for a p × t weight matrix
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < t; j++) {
        let s = 0;
        for (let k = 0; k < p; k++) s += x.data[i * p + k] * w[k * t + j];
        y.data[i * t + j] = s + ((i * 7919 + j * 104729) % 1000) / 250 - 2;
      }
    }
    const small = await new RidgeCV({ alphas: [1, 100], memoryBudget: 8 * 2 ** 20 }).fit(x, y);
    const whole = await new RidgeCV({ alphas: [1, 100], targetBatch: t }).fit(x, y);
    expect(small.info?.nBatches).toBeGreaterThan(4);
    expect(whole.info?.nBatches).toBe(1);
    expect(small.bestAlphas).toEqual(whole.bestAlphas);
    let maxd = 0;
    for (let i = 0; i < small.coef.data.length; i++) maxd = Math.max(maxd, Math.abs(small.coef.data[i] - whole.coef.data[i]));
    expect(maxd).toBeLessThan(1e-5);
  });
});

describe('RidgeCV under a memory budget', () => {
  it('takes the cheapest route whose fixed part and one target fit the budget, not the cheapest refused (review s43)', async () => {
    const { x, y } = planted(200, 50, 30, 41);
    const alphas = [1, 10, 100, 1000];
    // free: the exact primal route, cheapest by flops; its least footprint is more than the per-fold one's
    const free = new RidgeCV({ alphas }).costModel(200, 50, 30);
    const perFold = new RidgeCV({ alphas, solver: 'per-fold-primal' }).costModel(200, 50, 30);
    expect(free.route).toBe('exact-primal');
    const least = (m: typeof free.memory) => m.fixedBytes + m.bytesPerTarget;
    expect(least(perFold.memory)).toBeLessThan(least(free.memory));
    // a budget between the two: the per-fold route, which fits, where exact-primal was chosen and refused
    const budget = Math.ceil((least(perFold.memory) + least(free.memory)) / 2);
    const planned = new RidgeCV({ alphas, memoryBudget: budget }).costModel(200, 50, 30);
    expect([planned.route, planned.memory.fits]).toEqual(['per-fold-primal', true]);
    const model = await new RidgeCV({ alphas, memoryBudget: budget }).fit(x, y);
    expect([model.info?.route, model.info?.cvMethod]).toEqual(['primal', 'per-fold']);
    const unbounded = await new RidgeCV({ alphas, solver: 'per-fold-primal' }).fit(x, y);
    expect(model.bestAlphas).toEqual(unbounded.bestAlphas);
    // below every route's least: the cheapest is refused, naming what it needs
    await expect(new RidgeCV({ alphas, memoryBudget: 1000 }).fit(x, y)).rejects.toThrow(OutOfMemoryError);
  });
});

describe('RidgeModel persistence', () => {
  it('save/load round trip is bit-exact and readable as safetensors', async () => {
    const { x, y } = planted(40, 6, 5, 2);
    const m = await new RidgeCV({ alphas: ALPHAS, folds: 4, standardize: true, score: 'pearson' }).fit(x, y);
    const dir = tempDir('bl-');
    const file = path.join(dir, 'm.safetensors');
    await m.save(file);
    const back = await RidgeModel.load(file);
    for (const key of ['intercept', 'xMean', 'xScale', 'bestAlphas', 'bestScores'] as const) expect(back[key]).toEqual(m[key]);
    expect(back.coef).toEqual(m.coef);
    expect(back.cvScores).toEqual(m.cvScores);
    expect(back.settings).toEqual(m.settings);
    const raw = readFileSync(file);
    const header = JSON.parse(raw.subarray(8, 8 + Number(raw.readBigUInt64LE())).toString()) as Record<string, { shape?: number[] }>;
    expect(header.coef.shape).toEqual([6, 5]);
    expect(header.cv_scores.shape).toEqual([5, 5]);
  });

  it.skipIf(!hasNumpy())('Python reads the file and its documented prediction formula gives predict()', async () => {
    const { x, y } = planted(30, 4, 3, 6);
    const m = await new RidgeCV({ alphas: [1, 10], standardize: true }).fit(x, y);
    const dir = tempDir('bl-py-');
    await m.save(path.join(dir, 'm.safetensors'));
    await writeNpy(path.join(dir, 'x.npy'), x.data, [30, 4]);
    const script = [
      'import json, struct, sys, numpy as np',
      'raw = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n])',
      't = {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], dtype=np.float32).reshape(v["shape"]) for k, v in h.items() if k != "__metadata__"}',
      'x = np.load(sys.argv[2]).astype(np.float64)',
      'p = ((x - t["x_mean"]) / t["x_scale"]) @ t["coef"].astype(np.float64) + t["intercept"]',
      'print(json.dumps({"pred": p.ravel().tolist(), "alphas": json.loads(h["__metadata__"]["alphas"])}))',
    ].join('\n');
    const out = JSON.parse(await commandOutput('/usr/bin/python3', ['-c', script, path.join(dir, 'm.safetensors'), path.join(dir, 'x.npy')])) as { pred: number[]; alphas: number[] };
    expect(out.alphas).toEqual([1, 10]);
    const ours = m.predict(x).data;
    for (let i = 0; i < ours.length; i++) expect(out.pred[i]).toBeCloseTo(ours[i], 4);
  });

  it('every model RidgeCV writes loads back: each route, with and without intercept and standardisation, both scores, a constant target', async () => {
    // (load checks the metadata against the tensors: these are the files it must take; a constant target scores
    // 0 at every alpha, a tie that goes to the largest)
    const { x, y } = planted(40, 6, 3, 8);
    for (let i = 0; i < 40; i++) y.data[i * 3 + 2] = 2.5;
    const dir = tempDir('bl-combos-');
    for (const solver of ['per-fold-primal', 'per-fold-kernel', 'exact-primal', 'exact-kernel'] as const) {
      for (const fitIntercept of [true, false]) {
        for (const standardize of [true, false]) {
          for (const score of ['r2', 'pearson'] as const) {
            const m = await new RidgeCV({ alphas: ALPHAS, folds: 4, solver, fitIntercept, standardize, score }).fit(x, y);
            const file = path.join(dir, `${solver}-${fitIntercept}-${standardize}-${score}.safetensors`);
            await m.save(file);
            const back = await RidgeModel.load(file);
            expect(back.settings, file).toEqual(m.settings);
            expect(back.bestScores, file).toEqual(m.bestScores);
          }
        }
      }
    }
  });

  it('save() to a folder or below a file is an InvalidArgumentError naming the path, not EISDIR/EEXIST', async () => {
    const { x, y } = planted(30, 4, 2, 1);
    const m = await new RidgeCV({ alphas: [1] }).fit(x, y);
    const dir = tempDir('bl-save-');
    await expect(m.save(dir)).rejects.toThrow(InvalidArgumentError);
    await expect(m.save(dir)).rejects.toThrow(`cannot write ${dir}: it is an existing folder; expected a file path`);
    await m.save(path.join(dir, 'm.safetensors'));
    await expect(m.save(path.join(dir, 'm.safetensors', 'n.safetensors'))).rejects.toThrow(
      `cannot write ${path.join(dir, 'm.safetensors', 'n.safetensors')}: ${path.join(dir, 'm.safetensors')} is a file, not a folder, so nothing can be written below it`,
    );
    // (the temporaries are removed)
    expect(readdirSync(dir)).toEqual(['m.safetensors']);
    expect(readdirSync(path.dirname(dir)).filter((n) => n.startsWith(`.${path.basename(dir)}.tmp-`))).toEqual([]);
  });

  it('refuses X with a different feature count', async () => {
    const { x, y } = planted(30, 4, 2, 1);
    const m = await new RidgeCV({ alphas: [1] }).fit(x, y);
    expect(() => m.predict({ data: new Float32Array(15), rows: 3, cols: 5 })).toThrow(/5 features .* fitted on 4/);
  });
});

describe('RidgeModel checks its parts at construction', () => {
  // a 2-feature, 2-target model with one alpha, every part right
  const f32 = (n: number, v = 0) => new Float32Array(n).fill(v);
  const parts = () => ({
    coef: { data: f32(4, 0.5), rows: 2, cols: 2 },
    intercept: f32(2),
    xMean: f32(2),
    xScale: f32(2, 1),
    bestAlphas: f32(2, 10),
    bestScores: f32(2),
    cvScores: { data: f32(2), rows: 1, cols: 2 },
    settings: { alphas: [10], nFolds: 5, foldKind: 'contiguous' as const, score: 'r2' as const, fitIntercept: true, standardize: false },
  });
  const make = (p: unknown) => () => new RidgeModel(p as ConstructorParameters<typeof RidgeModel>[0]);

  it('refuses missing parts, all named at once (they failed later, in predict or save, with a TypeError)', () => {
    const coefOnly = make({ coef: { data: f32(4), rows: 2, cols: 2 } });
    expect(coefOnly).toThrow(InvalidArgumentError);
    expect(coefOnly).toThrow(/^RidgeModel: missing parts intercept, xMean, xScale, bestAlphas, bestScores, cvScores, settings; a model needs coef, /);
    expect(make(null)).toThrow(/^RidgeModel: expected an object of the model's parts \(coef, intercept, .*\), got null$/);
    expect(make({ ...parts(), intercep: f32(2) })).toThrow(/^RidgeModel: unknown part 'intercep' \(did you mean 'intercept'\?\); known: coef, /);
  });

  it('refuses a part of the wrong type (InvalidArgumentError) or size (ShapeError), naming it and its expected size', () => {
    expect(make({ ...parts(), intercept: new Float64Array(2) })).toThrow(InvalidArgumentError);
    expect(make({ ...parts(), intercept: new Float64Array(2) })).toThrow(
      'RidgeModel intercept: expected a Float32Array of 2 values (one per target: coef is 2×2, features × targets), got a Float64Array of 2',
    );
    expect(make({ ...parts(), xMean: [0, 0] })).toThrow(/^RidgeModel xMean: expected a Float32Array of 2 values \(one per feature: .*\), got an array of 2$/);
    expect(make({ ...parts(), coef: f32(4) })).toThrow(/^RidgeModel coef: expected a matrix \{ data: Float32Array, rows, cols \}, got a Float32Array of 4$/);
    expect(make({ ...parts(), xScale: f32(3, 1) })).toThrow(ShapeError);
    expect(make({ ...parts(), xScale: f32(3, 1) })).toThrow('RidgeModel xScale: has 3 values, expected 2 (one per feature: coef is 2×2, features × targets)');
    expect(make({ ...parts(), bestScores: f32(1) })).toThrow(/^RidgeModel bestScores: has 1 values, expected 2 \(one per target/);
    expect(make({ ...parts(), coef: { data: f32(3), rows: 2, cols: 2 } })).toThrow(/^RidgeModel coef: data has 3 elements but the shape 2×2 needs 4$/);
    expect(make({ ...parts(), cvScores: { data: f32(4), rows: 2, cols: 2 } })).toThrow(ShapeError);
    expect(make({ ...parts(), cvScores: { data: f32(4), rows: 2, cols: 2 } })).toThrow(
      'RidgeModel cvScores: is 2×2, expected 1×2 (one row per alpha of settings.alphas, one column per target)',
    );
  });

  it('refuses settings that save() could not write or load() would refuse, by name', () => {
    const settings = (s: object) => ({ ...parts(), settings: { ...parts().settings, ...s } });
    expect(make(settings({ standardize: undefined }))).toThrow(/^RidgeModel settings\.standardize: expected true or false, got undefined$/);
    expect(make(settings({ score: 'mse' }))).toThrow(/^RidgeModel settings\.score: expected 'r2', 'pearson', got 'mse'$/);
    expect(make(settings({ foldKind: 'random' }))).toThrow(/^RidgeModel settings\.foldKind: expected 'contiguous', 'groups', 'custom'/);
    expect(make(settings({ nFolds: 2.5 }))).toThrow(/^RidgeModel settings\.nFolds: expected an integer >= 0, got 2\.5$/);
    expect(make(settings({ alphas: [] }))).toThrow(/^RidgeModel settings\.alphas: expected a non-empty array of the alphas searched/);
    expect(make(settings({ alphas: [10, -1] }))).toThrow(/settings\.alphas: .*, got -1 at position 1$/);
    expect(make(settings({ nfolds: 5 }))).toThrow(/^RidgeModel settings: unknown setting 'nfolds' \(did you mean 'nFolds'\?\)/);
    expect(make({ ...parts(), settings: 'r2' })).toThrow(/^RidgeModel settings: expected an object \{ alphas, nFolds, foldKind, score, fitIntercept, standardize \}, got string "r2"$/);
  });

  it('refuses parts whose numbers contradict each other, as load() refuses such a file (they predicted NaN or loaded nowhere)', () => {
    const with3 = () => ({
      ...parts(),
      bestAlphas: Float32Array.of(1, 100),
      bestScores: Float32Array.of(0.5, 0.25),
      cvScores: { data: Float32Array.of(0.5, 0.125, 0.25, 0.125, 0, 0.25), rows: 3, cols: 2 },
      settings: { ...parts().settings, alphas: [1, 10, 100] },
    });
    expect(new RidgeModel(with3()).nTargets).toBe(2);
    const refused = (p: unknown, cls: new (m: string) => Error, message: string) => {
      const e = (() => {
        try {
          make(p)();
        } catch (err) {
          return err as Error;
        }
        throw new Error('expected the parts to be refused');
      })();
      expect(e).toBeInstanceOf(cls);
      expect(e.message).toBe(message);
    };
    // the prediction's numbers: finite, no zero scale
    refused({ ...parts(), coef: { data: Float32Array.of(0.5, NaN, 0.5, 0.5), rows: 2, cols: 2 } }, NonFiniteError, 'RidgeModel: coef holds NaN at index 1; a ridge model must be finite');
    refused({ ...parts(), intercept: Float32Array.of(0, Infinity) }, NonFiniteError, 'RidgeModel: intercept holds Infinity at index 1; a ridge model must be finite');
    refused({ ...parts(), xScale: Float32Array.of(1, 0) }, InvalidArgumentError, 'RidgeModel: xScale is 0 at index 1; predictions divide by it');
    // the settings against the prediction
    refused(
      { ...parts(), xMean: Float32Array.of(0, 0.5), settings: { ...parts().settings, fitIntercept: false } },
      InvalidArgumentError,
      'RidgeModel: xMean is 0.5 at index 1, but settings.fitIntercept is false: expected 0 everywhere (a model fitted without an intercept does not centre X)',
    );
    refused(
      { ...parts(), xScale: Float32Array.of(2, 1) },
      InvalidArgumentError,
      'RidgeModel: xScale is 2 at index 0, but settings.standardize is false: expected 1 everywhere (a model fitted without standardisation does not scale X)',
    );
    // the choice against the grid and the CV scores
    refused({ ...with3(), bestAlphas: Float32Array.of(1, 5) }, InvalidArgumentError, 'RidgeModel: bestAlphas is 5 at index 1, expected one of settings.alphas [1, 10, 100] (the alpha chosen for target 1)');
    refused(
      { ...with3(), bestScores: Float32Array.of(0.75, 0.25) },
      InvalidArgumentError,
      'RidgeModel: bestScores is 0.75 at index 0, expected 0.5, the largest score of column 0 of cvScores (the best mean CV score of target 0)',
    );
    refused(
      { ...with3(), bestAlphas: Float32Array.of(10, 100) },
      InvalidArgumentError,
      'RidgeModel: bestAlphas is 10 at index 0, row 1 of cvScores, which scores 0.25 for target 0; expected a row of the best score, 0.5',
    );
    refused(
      { ...with3(), cvScores: { data: Float32Array.of(0.5, NaN, 0.25, NaN, 0, NaN), rows: 3, cols: 2 } },
      InvalidArgumentError,
      'RidgeModel: cvScores has no score in column 1 (NaN in every row); a fitted target has one at least',
    );
  });

  it('a model whose parts are right predicts and saves', async () => {
    const m = new RidgeModel(parts());
    expect(Array.from(m.predict({ data: f32(2, 1), rows: 1, cols: 2 }).data)).toEqual([1, 1]);
    const file = path.join(tempDir('bl-parts-'), 'm.safetensors');
    await m.save(file);
    expect((await RidgeModel.load(file)).settings).toEqual(parts().settings);
  });
});

describe('RidgeCV bad input', () => {
  const { x, y } = planted(20, 3, 2, 4);
  it('X or Y whose data is not a Float32Array is an InvalidArgumentError (a wrong type, not a shape) naming it', async () => {
    const x64 = { data: Float64Array.from(x.data), rows: 20, cols: 3 } as unknown as Matrix;
    await expect(new RidgeCV({ alphas: [1] }).fit(x64, y)).rejects.toThrow(InvalidArgumentError);
    await expect(new RidgeCV({ alphas: [1] }).fit(x64, y)).rejects.toThrow(
      'RidgeCV.fit: X: data is a Float64Array of 60 values, Float32Array expected (a matrix {data: Float32Array, rows, cols}; Float32Array.from converts)',
    );
    const yArray = { data: Array.from(y.data), rows: 20, cols: 2 } as unknown as Matrix;
    await expect(new RidgeCV({ alphas: [1] }).fit(x, yArray)).rejects.toThrow(/^RidgeCV\.fit: Y: data is an array of 40 values, Float32Array expected/);
    await expect(new RidgeCV({ alphas: [1] }).fit(null as unknown as Matrix, y)).rejects.toThrow(/^RidgeCV\.fit: X: expected a matrix \{data: Float32Array, rows, cols\}, got null$/);
    // a shape that disagrees with its data stays a ShapeError
    await expect(new RidgeCV({ alphas: [1] }).fit({ data: x.data, rows: 3, cols: 3 }, y)).rejects.toThrow(ShapeError);
  });
  it.each([
    ['alpha <= 0', () => new RidgeCV({ alphas: [1, 0] }), InvalidArgumentError, /alpha/],
    ['negative alpha', () => new RidgeCV({ alphas: [-1] }), InvalidArgumentError, /> 0/],
    ['one fold', () => new RidgeCV({ folds: 1 }), InvalidArgumentError, /folds/],
  ])('%s', (_l, make, cls, msg) => {
    expect(make).toThrow(cls);
    expect(make).toThrow(msg);
  });
  it('shape mismatch', async () => {
    await expect(new RidgeCV().fit(x, { data: new Float32Array(19 * 2), rows: 19, cols: 2 })).rejects.toThrow(ShapeError);
  });
  it('data on a detached buffer (transferred away) is said to be detached, not a shape that needs more elements', async () => {
    const model = await new RidgeCV({ alphas: [1] }).fit(x, y);
    const data = x.data.slice(0, 6);
    structuredClone(data.buffer, { transfer: [data.buffer] });
    const gone = { data, rows: 2, cols: 3 };
    // (was a ShapeError: 'data has 0 elements but the shape 2×3 needs 6')
    const detached = /: data's ArrayBuffer was detached \(transferred by postMessage or structuredClone\): it holds no values; pass a copy \(data\.slice\(\)\) to keep one$/;
    await expect(model.predictAsync(gone)).rejects.toThrow(InvalidArgumentError);
    await expect(model.predictAsync(gone)).rejects.toThrow(detached);
    expect(() => model.predict(gone)).toThrow(detached);
    await expect(new RidgeCV({ alphas: [1] }).fit(gone, y)).rejects.toThrow(/^RidgeCV\.fit: X: data's ArrayBuffer was detached/);
    // an empty matrix of its own buffer is no detached one
    expect(() => model.predict({ data: new Float32Array(0), rows: 0, cols: 3 })).not.toThrow(/detached/);
  });
  it('empty arrays', async () => {
    await expect(new RidgeCV().fit({ data: new Float32Array(0), rows: 0, cols: 3 }, y)).rejects.toThrow(/empty/);
  });
  it('data length not matching the shape', async () => {
    await expect(new RidgeCV().fit({ data: new Float32Array(5), rows: 20, cols: 3 }, y)).rejects.toThrow(/needs 60/);
  });
  it('NaN in X names the position', async () => {
    const bad = { ...x, data: Float32Array.from(x.data) };
    bad.data[7] = NaN;
    await expect(new RidgeCV({ alphas: [1] }).fit(bad, y)).rejects.toThrow(NonFiniteError);
    await expect(new RidgeCV({ alphas: [1] }).fit(bad, y)).rejects.toThrow(/X contains NaN at row 2, column 1/);
  });
  it('NaN in X at several places names the first, however the scan is split across threads', async () => {
    // 4096 rows: one scan chunk per engine thread; the first NaN ends a chunk, the second starts the next, which
    // its thread reaches first in time (whatever the thread count: 2048 is a chunk boundary for 2, 4, 8, 16)
    const n = 4096, cols = 8;
    const big = { data: new Float32Array(n * cols).map((_, i) => Math.sin(i)), rows: n, cols };
    big.data[2047 * cols + 5] = NaN;
    big.data[2048 * cols] = NaN;
    big.data[(n - 1) * cols] = NaN;
    const yy = { data: new Float32Array(n).map((_, i) => Math.cos(i)), rows: n, cols: 1 };
    for (let i = 0; i < 5; i++) await expect(new RidgeCV({ alphas: [1] }).fit(big, yy)).rejects.toThrow(/X contains NaN at row 2047, column 5:/);
  });
  it('Inf in Y', async () => {
    const bad = { ...y, data: Float32Array.from(y.data) };
    bad.data[3] = Infinity;
    await expect(new RidgeCV({ alphas: [1] }).fit(x, bad)).rejects.toThrow(/Y contains Inf/);
  });
  it('more folds than samples', async () => {
    await expect(new RidgeCV({ folds: 21 }).fit(x, y)).rejects.toThrow(/21 folds but only 20 samples/);
  });
  it('groups of the wrong length', async () => {
    await expect(new RidgeCV({ groups: [1, 2, 3] }).fit(x, y)).rejects.toThrow(/groups has 3 entries but X has 20 samples/);
  });
  it('cuda on a CPU-only build', async () => {
    await expect(new RidgeCV({ backend: 'cuda' }).fit(x, y)).rejects.toThrow(/without CUDA/);
  });
});

describe('RidgeCV runs off the JS thread', () => {
  it('reports the scoring of a single target batch fold by fold (or alpha by alpha), never going back', async () => {
    // one batch: scoring is most of a fit, and per batch only it showed the decomposition's share, then 100%
    for (const [n, p, cvMethod] of [[200, 400, 'exact'], [400, 150, 'exact'], [200, 400, 'per-fold'], [400, 150, 'per-fold']] as const) {
      const { x, y } = planted(n, p, 300, 3);
      const events: { fraction: number; stage: string }[] = [];
      await new RidgeCV({ alphas: [1, 10, 100, 1000], folds: 5, cvMethod }).fit(x, y, { onProgress: (e) => events.push(e) });
      const cv = events.filter((e) => e.stage === 'cv').map((e) => e.fraction);
      // 5 folds (the primal exact form: 4 alphas), each further than the last, between the decomposition and the end
      expect(cv.length, `${n}×${p} ${cvMethod}`).toBeGreaterThanOrEqual(4);
      for (let i = 1; i < cv.length; i++) expect(cv[i]).toBeGreaterThan(cv[i - 1]);
      expect(cv[0]).toBeGreaterThan(0.3);
      expect(cv[cv.length - 1]).toBeLessThan(1);
      for (let i = 1; i < events.length; i++) expect(events[i].fraction).toBeGreaterThanOrEqual(events[i - 1].fraction);
    }
  });

  it("gives the setup's decomposition the share of the progress that the route's cost model gives it", async () => {
    // The exact kernel route decomposes XXᵀ (n × n) once, then scores every target: with 4 targets the
    // decomposition is nearly the whole fit, with 3,000 a part of it (it was 5% of the progress either way).
    const setupShare = async (t: number) => {
      const { x, y } = planted(400, 300, t, 5);
      const events: { fraction: number; stage: string }[] = [];
      await new RidgeCV({ alphas: [1, 10, 100], folds: 5, solver: 'exact-kernel' }).fit(x, y, { onProgress: (e) => events.push(e) });
      const decompose = events.filter((e) => e.stage === 'decompose');
      return decompose[decompose.length - 1].fraction;
    };
    const few = await setupShare(4), many = await setupShare(3000);
    expect(few).toBeGreaterThan(0.5);
    expect(many).toBeGreaterThan(0.05);
    expect(many).toBeLessThan(few - 0.2);
  });

  it('reports progress, keeps the event loop responsive, and can be cancelled', async () => {
    const { x, y } = planted(600, 400, 800, 9);
    const stages = new Set<string>();
    let last = 0;
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const t0 = Date.now();
    const model = await new RidgeCV({ alphas: [1, 10, 100], targetBatch: 100 }).fit(x, y, {
      onProgress: (p) => {
        stages.add(p.stage);
        expect(p.fraction).toBeGreaterThanOrEqual(last - 1e-9);
        last = p.fraction;
      },
    });
    const elapsed = Date.now() - t0;
    clearInterval(timer);
    expect(model.nTargets).toBe(800);
    expect(stages.has('cv+refit')).toBe(true);
    // The timer fired throughout: at least a third of the 5 ms slots it could have.
    expect(ticks).toBeGreaterThan(Math.floor(elapsed / 5 / 3));

    const ac = new AbortController();
    const fit = new RidgeCV({ alphas: [1, 10, 100], targetBatch: 10 }).fit(x, y, {
      signal: ac.signal,
      onProgress: (p) => {
        if (p.stage === 'cv+refit') ac.abort();
      },
    });
    await expect(fit).rejects.toThrow(CancelledError);
    const aborted = new AbortController();
    aborted.abort();
    await expect(new RidgeCV().fit(x, y, { signal: aborted.signal })).rejects.toThrow(CancelledError);
  });
});

describe('RidgeCV options are validated once, by name', () => {
  it.each([
    ['memoryBudget NaN', { memoryBudget: NaN }, /memoryBudget: expected a finite number > 0, got NaN/],
    ['memoryBudget 0', { memoryBudget: 0 }, /memoryBudget: expected a finite number > 0, got 0/],
    ['memoryBudget -1', { memoryBudget: -1 }, /memoryBudget/],
    // (floored once: 0.5 ran as a 1-byte budget, 1e9 + 0.5 as 1e9)
    ['memoryBudget fractional', { memoryBudget: 1e9 + 0.5 }, /^RidgeCV memoryBudget: expected a whole number of bytes, got 1000000000\.5 \(round a size converted from GiB\)$/],
    ['memoryBudget below a byte', { memoryBudget: 0.5 }, /memoryBudget: expected a whole number of bytes, got 0\.5/],
    ['targetBatch 1.5', { targetBatch: 1.5 }, /targetBatch: expected an integer >= 1, got 1.5/],
    ['targetBatch Infinity', { targetBatch: Infinity }, /targetBatch/],
    ['folds 2.5', { folds: 2.5 }, /folds: expected an integer in 2\.\.1048576, got 2.5/],
    ['foldIndex fractional', { foldIndex: [0, 1, 0.5] }, /foldIndex: expected integers >= 0, got 0.5 at position 2/],
    ['groups fractional', { groups: [1, 2.5] }, /groups: expected 32-bit integer labels, got 2.5 at position 1/],
    ['score', { score: 'mse' as 'r2' }, /score: expected 'r2', 'pearson', got 'mse'/],
    ['solver', { solver: 'fastest' as 'exact-kernel' }, /solver: expected 'per-fold-primal'/],
    ['alphas not an array', { alphas: 5 as unknown as number[] }, /alphas: expected an array of numbers/],
    // (a wrong type is named with its type, as the README says)
    ['alphas a string', { alphas: '10' as unknown as number[] }, /^RidgeCV alphas: expected an array of numbers, got string "10"$/],
    ['standardize a string', { standardize: 'yes' as unknown as boolean }, /^RidgeCV standardize: expected true or false, got string "yes"$/],
  ])('%s', (_label, options, msg) => {
    expect(() => new RidgeCV(options)).toThrow(InvalidArgumentError);
    expect(() => new RidgeCV(options)).toThrow(msg);
  });
  it.each([
    ['a misspelt option, with the one meant', { alpha: [1] }, /^RidgeCV: unknown option 'alpha' \(did you mean 'alphas'\?\); known: alphas, folds, .*cvMethod, solver$/],
    ['every unknown option at once', { alpha: [1], foldz: 3, colour: 'red' }, /unknown options 'alpha' \(did you mean 'alphas'\?\), 'foldz' \(did you mean 'folds'\?\), 'colour'; known:/],
    ['alphas null (not the default grid)', { alphas: null }, /^RidgeCV alphas: expected an array of numbers, got null$/],
    ['folds null', { folds: null }, /^RidgeCV folds: expected an integer in 2\.\.1048576, got null$/],
    ['score null', { score: null }, /^RidgeCV score: expected 'r2', 'pearson', got null$/],
    ['an alpha given as a string', { alphas: [1, '10'] }, /^RidgeCV alphas: every alpha must be finite and > 0, got string "10" at position 1$/],
    // (stored as float32, these were reported as Infinity and 0)
    ['an alpha above float32\'s range', { alphas: [10, 1e39, 1e40] }, /^RidgeCV alphas: every alpha must be finite and > 0 in float32 \(1\.4e-45 to 3\.4e38\), got 1e\+39 at position 1, which is Infinity in float32$/],
    ['an alpha below float32\'s range', { alphas: [1e-50, 1e-49] }, /^RidgeCV alphas: every alpha must be finite and > 0 in float32 \(1\.4e-45 to 3\.4e38\), got 1e-50 at position 0, which is 0 in float32$/],
    // (as --alphas, configs and HTTP refuse it: it was fitted, with two rows of cvScores for one alpha)
    ['an alpha listed twice', { alphas: [1, 1, 10] }, /^RidgeCV alphas: the alphas must be distinct, got 1 at positions 0 and 1$/],
    ['an alpha listed twice in a typed array', { alphas: Float64Array.of(10, 100, 10) }, /^RidgeCV alphas: the alphas must be distinct, got 10 at positions 0 and 2$/],
    ['memoryBudget as a string', { memoryBudget: '1e9' }, /memoryBudget: expected a finite number > 0, got string "1e9"$/],
    ['a foldIndex entry as a string', { foldIndex: [0, '1'] }, /foldIndex: expected integers >= 0, got string "1" at position 1$/],
  ])('refuses %s', (_label, options, msg) => {
    const make = () => new RidgeCV(options as unknown as RidgeCVOptions);
    expect(make).toThrow(InvalidArgumentError);
    expect(make).toThrow(msg);
  });
  it("refuses a fit control that is not one: a signal that is not an AbortSignal, onProgress not a function, an unknown key", async () => {
    const { x, y } = planted(20, 3, 2, 4);
    const fit = (control: unknown) => new RidgeCV({ alphas: [1] }).fit(x, y, control as FitControl);
    await expect(fit({ signal: {} })).rejects.toThrow(InvalidArgumentError);
    await expect(fit({ signal: {} })).rejects.toThrow(/^RidgeCV\.fit signal: expected an AbortSignal, got an object$/);
    await expect(fit({ signal: 'stop' })).rejects.toThrow(/signal: expected an AbortSignal, got string "stop"/);
    await expect(fit({ onProgress: 1 })).rejects.toThrow(/^RidgeCV\.fit onProgress: expected a function, got 1$/);
    await expect(fit({ onprogress: () => {} })).rejects.toThrow(/^RidgeCV\.fit: unknown option 'onprogress' \(did you mean 'onProgress'\?\); known: onProgress, signal$/);
    await expect(fit(null)).rejects.toThrow(InvalidArgumentError);
    // undefined members are left out
    expect((await fit({ signal: undefined, onProgress: undefined })).nTargets).toBe(2);
  });
  it('names foldIndex when one of its folds is empty, or when it has one fold only', async () => {
    const { x, y } = planted(20, 3, 2, 4);
    const fit = (foldIndex: number[]) => new RidgeCV({ alphas: [1], foldIndex }).fit(x, y);
    await expect(fit(new Array(20).fill(7))).rejects.toThrow(InvalidArgumentError);
    await expect(fit(new Array(20).fill(7))).rejects.toThrow(
      /^RidgeCV foldIndex: expected the fold of each sample as 0\.\.k-1 with every fold holding samples; its largest value is 7 \(so 8 folds\) but folds 0, 1, 2, 3, 4, 5, 6 have none$/,
    );
    await expect(fit(Array.from({ length: 20 }, (_, i) => (i < 10 ? 0 : 2)))).rejects.toThrow(/foldIndex: .* but fold 1 has none$/);
    await expect(fit(new Array(20).fill(0))).rejects.toThrow(/^RidgeCV foldIndex: expected at least 2 folds/);
    expect((await fit(Array.from({ length: 20 }, (_, i) => i % 4))).nTargets).toBe(2);
  });
  it('refuses foldIndex together with folds or groups, naming both (it fitted with foldIndex\'s folds, the other ignored)', async () => {
    const { x, y } = planted(20, 3, 2, 4);
    const fiveFolds = Array.from({ length: 20 }, (_, i) => i % 5);
    for (const [name, extra] of [['folds', { folds: 3 }], ['groups', { groups: Array.from({ length: 20 }, (_, i) => i >> 1) }]] as const) {
      const make = () => new RidgeCV({ alphas: [1], foldIndex: fiveFolds, ...extra });
      expect(make).toThrow(InvalidArgumentError);
      expect(make).toThrow(new RegExp(`^RidgeCV: foldIndex and ${name} were both given; foldIndex sets the folds itself .* so ${name} would be ignored: give one of them$`));
    }
    // alone, each is taken as given
    expect((await new RidgeCV({ alphas: [1], foldIndex: fiveFolds }).fit(x, y)).settings.nFolds).toBe(5);
    expect((await new RidgeCV({ alphas: [1], folds: 3 }).fit(x, y)).settings.nFolds).toBe(3);
    const grouped = await new RidgeCV({ alphas: [1], folds: 4, groups: Array.from({ length: 20 }, (_, i) => i >> 1) }).fit(x, y);
    expect([grouped.settings.nFolds, grouped.settings.foldKind]).toEqual([4, 'groups']);
  });
  it('refuses a solver beside a route or cvMethod it does not take, naming both; accepts one that agrees or is auto', async () => {
    const make = (o: RidgeCVOptions) => () => new RidgeCV(o);
    expect(make({ solver: 'exact-kernel', route: 'primal' })).toThrow(InvalidArgumentError);
    expect(make({ solver: 'exact-kernel', route: 'primal' })).toThrow(
      /^RidgeCV: solver 'exact-kernel' takes route 'kernel' but route 'primal' was given; leave route out \(or 'auto'\) with a solver, or give the solver that matches it$/,
    );
    expect(make({ solver: 'per-fold-primal', cvMethod: 'exact' })).toThrow(/^RidgeCV: solver 'per-fold-primal' takes cvMethod 'per-fold' but cvMethod 'exact' was given;/);
    const { x, y } = planted(20, 3, 2, 4);
    for (const o of [{ route: 'kernel', cvMethod: 'exact' }, { route: 'auto', cvMethod: 'auto' }] as const) {
      expect((await new RidgeCV({ alphas: [1], solver: 'exact-kernel', ...o }).fit(x, y)).info?.solver).toBe('exact-kernel');
    }
  });
  it('refuses a foldIndex label of at least its length (k folds need k samples) before allocating by it', async () => {
    const { x, y } = planted(20, 3, 2, 4);
    const labels = (first: number) => Array.from({ length: 20 }, (_, i) => (i === 0 ? first : i % 2));
    // 1e9 used to allocate by the label and abort the process; 2**31 wrapped to a negative fold in an Int32Array
    for (const first of [1e9, 2 ** 31, 20]) {
      const make = () => new RidgeCV({ alphas: [1], foldIndex: labels(first) });
      expect(make).toThrow(InvalidArgumentError);
      expect(make).toThrow(`RidgeCV foldIndex: expected fold numbers 0..k-1 with k at most its 20 entries (one per sample), got ${first} at position 0`);
    }
    // 20 folds of one sample (leave-one-out) pass this check and are refused at fit, where fold sizes are known
    await expect(new RidgeCV({ alphas: [1], foldIndex: Array.from({ length: 20 }, (_, i) => i) }).fit(x, y)).rejects.toThrow(
      /^RidgeCV foldIndex: fold 0 holds 1 sample; each validation fold needs 2 samples at least/,
    );
  });
  it('refuses validation folds of one sample (leave-one-out), whose score is undefined, naming the fold and what to use', async () => {
    const { x, y } = planted(20, 3, 2, 4);
    // (these scored 0 at every alpha, so every target chose the largest alpha, with no warning)
    await expect(new RidgeCV({ alphas: [1, 10], folds: 20 }).fit(x, y)).rejects.toThrow(
      'RidgeCV folds: fold 0 holds 1 sample; each validation fold needs 2 samples at least (a score over one sample is undefined): use at most 10 folds for 20 samples',
    );
    await expect(new RidgeCV({ alphas: [1, 10], folds: 11 }).fit(x, y)).rejects.toThrow(InvalidArgumentError);
    expect((await new RidgeCV({ alphas: [1, 10], folds: 10 }).fit(x, y)).nTargets).toBe(2);
    const groups = Array.from({ length: 20 }, (_, i) => (i < 18 ? Math.floor(i / 2) : 9 + i - 17)); // pairs, then 2 singletons
    await expect(new RidgeCV({ alphas: [1, 10], folds: 11, groups }).fit(x, y)).rejects.toThrow(/^RidgeCV folds \(of whole groups\): fold \d+ holds 1 sample/);
  });
  it('setThreads refuses negative and fractional counts, and counts above MAX_ENGINE_THREADS', () => {
    expect(() => setThreads(-1)).toThrow(/^setThreads threads: expected an integer in 0\.\.4096, got -1$/);
    expect(() => setThreads(1.5)).toThrow(InvalidArgumentError);
    // (1e9 returned 4096: the engine clamped it in silence)
    expect(MAX_ENGINE_THREADS).toBe(4096);
    expect(() => setThreads(1e9)).toThrow(InvalidArgumentError);
    expect(() => setThreads(4097)).toThrow(/^setThreads threads: expected an integer in 0\.\.4096, got 4097$/);
  });
  it('alphas at the ends of float32\'s range are kept as float32 holds them', async () => {
    const { x, y } = planted(30, 4, 2, 3);
    const m = await new RidgeCV({ alphas: [1e-45, 3.4e38] }).fit(x, y);
    for (const a of m.bestAlphas) expect([Math.fround(1e-45), Math.fround(3.4e38)]).toContain(a);
  });
  it('the alpha grid is copied at construction: changing the caller\'s array later changes nothing', async () => {
    const alphas = [1, 10, 100];
    const ridge = new RidgeCV({ alphas });
    alphas[0] = -5;
    const { x, y } = planted(30, 4, 2, 3);
    const m = await ridge.fit(x, y);
    expect(m.settings.alphas).toEqual([1, 10, 100]);
  });
});

describe('RidgeCV routes by name', () => {
  it('every route of the engine gives the brute-force CV scores', async () => {
    const { x, y } = planted(48, 20, 4, 17);
    const folds = Array.from({ length: 48 }, (_, i) => Math.floor(i / 12));
    const ref = refCv(x.data, y.data, 48, 20, 4, ALPHAS, folds, 4);
    for (const solver of ['per-fold-primal', 'per-fold-kernel', 'exact-primal', 'exact-kernel'] as const) {
      const m = await new RidgeCV({ alphas: ALPHAS, folds: 4, solver, eigPrecision: 'float64' }).fit(x, y);
      expect(m.info?.solver).toBe(solver);
      expect(m.info?.backend).toBe('cpu');
      for (let i = 0; i < ref.cv.length; i++) expect(Math.abs(m.cvScores.data[i] - ref.cv[i])).toBeLessThan(2e-4);
    }
  });
});

describe('RidgeCV memory budget', () => {
  // (the exact kernel route keeps X̃'s buffer, no longer read after its setup, as the folds' projection stack where it
  // is no larger than the stack: a wide X̃ held as a small stack raised the scoring's peak by X̃'s size, 0.7 of 3.2 MB here)
  it('the exact kernel route frees a wide X̃ after its setup: the scoring peak does not hold it', async () => {
    const y = planted(60, 10, 4000, 3).y;
    const fit = async (p: number) =>
      (await new RidgeCV({ alphas: [1, 10, 100], folds: 5, solver: 'exact-kernel' }).fit(planted(60, p, 1, 5).x, y)).info!;
    const narrow = await fit(300), wide = await fit(3000);
    expect(narrow.nBatches).toBe(1);
    expect(wide.nBatches).toBe(1);
    // (the kernel route's scoring buffers do not depend on p; the wide fit's refit forms X̃ in panels of 60 × 128 floats)
    expect(wide.peakBytes).toBeLessThanOrEqual(narrow.peakBytes + 100_000);
  });

  it('refuses a budget below the fixed footprint, naming it; stays within one above it', async () => {
    const { x, y } = planted(200, 150, 300, 5);
    await expect(new RidgeCV({ alphas: [1, 10], memoryBudget: 50_000 }).fit(x, y)).rejects.toThrow(OutOfMemoryError);
    await expect(new RidgeCV({ alphas: [1, 10], memoryBudget: 50_000 }).fit(x, y)).rejects.toThrow(/below this fit's fixed footprint of/);
    const whole = await new RidgeCV({ alphas: [1, 10] }).fit(x, y);
    const info = whole.info!;
    const budget = info.fixedBytes + (info.batchBytes / info.targetBatch) * 40;
    const tight = await new RidgeCV({ alphas: [1, 10], memoryBudget: budget }).fit(x, y);
    expect(tight.info!.nBatches).toBeGreaterThan(1);
    expect(tight.info!.peakBytes).toBeLessThanOrEqual(budget);
    expect(tight.bestAlphas).toEqual(whole.bestAlphas);
  });

  it("a budget's refusal says so (reason 'budget': the same fit is refused again); a failed allocation is 'allocation'", async () => {
    const { x, y } = planted(200, 150, 300, 5);
    const e = await new RidgeCV({ alphas: [1, 10], memoryBudget: 50_000 }).fit(x, y).then(
      () => null,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(OutOfMemoryError);
    expect((e as OutOfMemoryError).reason).toBe('budget');
    // the addon's mapping: its `.reason` kept; an OutOfMemory without one (an older engine) is the retryable kind
    const native = (reason?: string) => Object.assign(new Error('x'), { code: 'OutOfMemory', ...(reason ? { reason } : {}) });
    expect((fromNative(native('budget')) as OutOfMemoryError).reason).toBe('budget');
    expect((fromNative(native('allocation')) as OutOfMemoryError).reason).toBe('allocation');
    expect((fromNative(native()) as OutOfMemoryError).reason).toBe('allocation');
    expect(new OutOfMemoryError('x').reason).toBe('allocation');
  });
});

describe('RidgeCV outputs are finite or the fit fails', () => {
  it('an overflowing fit (X around 1e30) is a NonFiniteError, not a NaN model', async () => {
    const { x, y } = planted(40, 5, 3, 8);
    const big = { ...x, data: x.data.map((v) => v * 1e30) };
    await expect(new RidgeCV({ alphas: [1, 10] }).fit(big, y)).rejects.toThrow(NonFiniteError);
    await expect(new RidgeCV({ alphas: [1, 10] }).fit(big, y)).rejects.toThrow(/overflowed float32/);
  });
  it('Y around 1e38 (finite in float32, not its products) is a NonFiniteError too', async () => {
    const { x, y } = planted(40, 5, 3, 8);
    // Positive X and Y near float32's limit, no centring: XᵀY is ≥ 40 × 5e37, past 3.4e38.
    const px = { ...x, data: x.data.map((v) => Math.abs(v) + 1) };
    const big = { ...y, data: y.data.map((v) => Math.min(3e38, (Math.abs(v) + 1) * 5e37)) };
    await expect(new RidgeCV({ alphas: [1, 10], fitIntercept: false }).fit(px, big)).rejects.toThrow(NonFiniteError);
    await expect(new RidgeCV({ alphas: [1, 10], fitIntercept: false }).fit(px, big)).rejects.toThrow(/not finite .* overflowed/);
  });
});

describe('RidgeCV progress and cancellation', () => {
  it('a small fit delivers every progress event before it resolves', async () => {
    const { x, y } = planted(50, 6, 4, 2);
    for (let run = 0; run < 5; run++) {
      const events: string[] = [];
      let resolved = false;
      let late = 0;
      const m = await new RidgeCV({ alphas: [1, 10] }).fit(x, y, {
        onProgress: (p) => {
          if (resolved) late++;
          events.push(p.stage);
        },
      });
      resolved = true;
      await new Promise((r) => setTimeout(r, 20));
      expect(m.nTargets).toBe(4);
      expect(late).toBe(0);
      expect(events[0]).toBe('prepare');
      expect(events[events.length - 1]).toBe('done');
    }
  });

  it('a decomposition reports its progress while it runs, between its blocks, for every route', async () => {
    // (orders of 512 and up take the blocked eigensolver: 1,200 features per fold, 1,500 samples)
    const { x, y } = planted(1500, 1200, 4, 6);
    for (const solver of ['per-fold-primal', 'exact-kernel', 'exact-primal'] as const) {
      const seen: { fraction: number; stage: string }[] = [];
      await new RidgeCV({ alphas: [1, 10, 100], solver }).fit(x, y, { onProgress: (p) => seen.push(p) });
      const decompose = seen.filter((p) => p.stage === 'decompose');
      // a few events per decomposition (its reduction's panels, its back-transform's blocks), not one
      expect(decompose.length, solver).toBeGreaterThan(solver === 'per-fold-primal' ? 100 : 30);
      for (let i = 1; i < seen.length; i++) expect(seen[i].fraction).toBeGreaterThanOrEqual(seen[i - 1].fraction);
    }
  });

  it("with several target batches the exact kernel route's leverages have their share of the progress", async () => {
    // (formed before the first batch then, not fold by fold inside its scoring: the cost model gave
    // them none, and the NSD-shaped fit sat at one fraction for 30 s while they ran)
    const { x, y } = planted(1000, 800, 64, 8);
    const seen: { fraction: number; stage: string }[] = [];
    await new RidgeCV({ alphas: [1, 10, 100], solver: 'exact-kernel', targetBatch: 16 }).fit(x, y, { onProgress: (p) => seen.push(p) });
    const leverage = seen.filter((p) => p.stage === 'leverage');
    expect(leverage.length).toBeGreaterThanOrEqual(4);
    expect(leverage[leverage.length - 1].fraction - leverage[0].fraction).toBeGreaterThan(0.01);
    for (let i = 1; i < seen.length; i++) expect(seen[i].fraction).toBeGreaterThanOrEqual(seen[i - 1].fraction);
  });

  it('an abort stops a long fit within its current large operation, not at the next target batch', async () => {
    // One target batch and several seconds of decompositions: a batch-level check would let it finish.
    const { x, y } = planted(1500, 1200, 16, 4);
    for (const solver of ['per-fold-primal', 'exact-kernel'] as const) {
      const ac = new AbortController();
      const seen: { fraction: number; stage: string }[] = [];
      const fit = new RidgeCV({ alphas: [1, 10, 100], solver }).fit(x, y, {
        signal: ac.signal,
        onProgress: (p) => {
          seen.push(p);
          if (p.fraction > 0 && !ac.signal.aborted) ac.abort();
        },
      });
      await expect(fit).rejects.toThrow(CancelledError);
      // (stopped before any scoring: the last stage reported is the decompositions', whatever share of
      // the progress the route's cost model gives them)
      const last = seen[seen.length - 1];
      expect(['prepare', 'decompose']).toContain(last.stage);
      expect(seen.some((p) => p.stage === 'cv' || p.stage === 'cv+refit')).toBe(false);
    }
  });
});

describe('RidgeModel.predict: checked inputs, empty inputs, async', () => {
  it('NaN in X is a NonFiniteError naming the first bad position', async () => {
    const { x, y } = planted(30, 4, 2, 1);
    const m = await new RidgeCV({ alphas: [1] }).fit(x, y);
    const bad = { ...x, data: Float32Array.from(x.data) };
    bad.data[4 * 7 + 2] = NaN;
    expect(() => m.predict(bad)).toThrow(NonFiniteError);
    expect(() => m.predict(bad, { label: 'x.npy: X' })).toThrow(/x.npy: X contains NaN at row 7, column 2/);
    await expect(m.predictAsync(bad)).rejects.toThrow(/row 7, column 2/);
  });

  it('predictAsync checks a large X for NaN in its job: a promise that rejects with predict()\'s error', async () => {
    const { x, y } = planted(30, 4, 2, 1);
    const m = await new RidgeCV({ alphas: [1] }).fit(x, y);
    // 1.2 M values: scanned in slices between which the loop runs (predict() scans them in one piece)
    const rows = 300_000;
    const big = { data: new Float32Array(rows * 4), rows, cols: 4 };
    big.data[4 * (rows - 2) + 3] = Infinity;
    // (the scan runs on the job's thread, s24-h8. The test counted the event loop's turns until the call settled and
    // wanted more than one: a race with the job, whose scan of 1.2 M values can end before the loop's first turn —
    // it failed so in a CI run. The call must not throw synchronously: it returns a promise that rejects.)
    let promise: Promise<unknown> | undefined;
    expect(() => (promise = m.predictAsync(big))).not.toThrow();
    const failure = await promise!.catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(NonFiniteError);
    expect((failure as Error).message).toBe(`predictAsync: X contains Infinity at row ${rows - 2}, column 3: inputs must be finite`);
    expect(() => m.predict(big)).toThrow(`predict: X contains Infinity at row ${rows - 2}, column 3: inputs must be finite`);
  });

  it('predictAsync reports its progress tile by tile, and an abort while it runs rejects it with CancelledError', async () => {
    const { x, y } = planted(200, 50, 30, 3);
    const m = await new RidgeCV({ alphas: [1, 10] }).fit(x, y);
    const seen: PredictProgress[] = [];
    const whole = await m.predictAsync(x, { onProgress: (p) => seen.push(p) });
    expect(Array.from(whole.data)).toEqual(Array.from(m.predict(x).data));
    expect(seen).toEqual([{ fraction: 1, stage: 'predict' }]);
    // (aborted from its progress event: after the engine started and before the promise settles, whichever
    // check sees it first, the engine's after its tile or the call's before it resolves — never a result)
    const ac = new AbortController();
    const run = m.predictAsync(x, { signal: ac.signal, onProgress: () => ac.abort() });
    await expect(run).rejects.toThrow(CancelledError);
    await expect(run).rejects.toThrow(/cancelled/);
  });

  it("a cancelled engine call's CancelledError carries the signal's reason as its cause", async () => {
    const { x, y } = planted(200, 50, 30, 3);
    const m = await new RidgeCV({ alphas: [1, 10] }).fit(x, y);
    const causeOf = async (run: Promise<unknown>): Promise<unknown> => {
      const e = await run.then(
        () => null,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(CancelledError);
      return (e as Error).cause;
    };
    // aborted while the engine runs (the engine's own CancelledError), with a reason of the caller's
    const mine = new Error('my reason');
    const ac = new AbortController();
    expect(await causeOf(m.predictAsync(x, { signal: ac.signal, onProgress: () => ac.abort(mine) }))).toBe(mine);
    const fitting = new AbortController();
    const fit = new RidgeCV({ alphas: [1, 10, 100], targetBatch: 10 }).fit(x, y, {
      signal: fitting.signal,
      onProgress: (p) => p.stage === 'cv+refit' && fitting.abort('stop the fit'),
    });
    expect(await causeOf(fit)).toBe('stop the fit');
    // aborted before the start: abort() without a reason, and a timeout, told apart by the cause's name
    const plain = new AbortController();
    plain.abort();
    expect(((await causeOf(m.predictAsync(x, { signal: plain.signal }))) as DOMException).name).toBe('AbortError');
    const timeout = AbortSignal.timeout(1);
    await new Promise((r) => setTimeout(r, 30));
    expect(((await causeOf(new RidgeCV().fit(x, y, { signal: timeout }))) as DOMException).name).toBe('TimeoutError');
  });

  it('sync predict honours a signal already aborted, as predictAsync does, with its reason as the cause', async () => {
    const { x, y } = planted(30, 4, 2, 1);
    const m = await new RidgeCV({ alphas: [1] }).fit(x, y);
    const ac = new AbortController();
    const why = new Error('not any more');
    ac.abort(why);
    let thrown: unknown;
    try {
      m.predict(x, { signal: ac.signal });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(CancelledError);
    expect((thrown as Error).message).toBe('RidgeModel.predict: aborted before it started');
    expect((thrown as Error).cause).toBe(why);
    await expect(m.predictAsync(x, { signal: ac.signal })).rejects.toThrow('RidgeModel.predictAsync: aborted before it started');
    // (a live signal, and none, predict)
    expect(m.predict(x, { signal: new AbortController().signal }).rows).toBe(30);
  });

  it("refuses unknown predict options with the one meant, as RidgeCV's options are, and checks label and signal", async () => {
    const { x, y } = planted(30, 4, 2, 1);
    const m = await new RidgeCV({ alphas: [1] }).fit(x, y);
    const opts = (o: unknown) => o as { label?: string };
    expect(() => m.predict(x, opts({ lable: 'x' }))).toThrow(InvalidArgumentError);
    expect(() => m.predict(x, opts({ lable: 'x' }))).toThrow(/^RidgeModel\.predict: unknown option 'lable' \(did you mean 'label'\?\); known: label, signal$/);
    await expect(m.predictAsync(x, opts({ sigal: new AbortController().signal }))).rejects.toThrow(
      /^RidgeModel\.predictAsync: unknown option 'sigal' \(did you mean 'signal'\?\); known: label, signal, onProgress$/,
    );
    // onProgress is predictAsync's (sync predict runs on the calling thread, with nothing to report to meanwhile)
    expect(() => m.predict(x, opts({ onProgress: () => {} }))).toThrow(/^RidgeModel\.predict: unknown option 'onProgress'/);
    await expect(m.predictAsync(x, opts({ onProgress: 3 }))).rejects.toThrow(/^RidgeModel\.predictAsync onProgress: expected a function, got 3$/);
    expect(() => m.predict(x, opts({ label: 5 }))).toThrow(/^RidgeModel\.predict label: expected a string \(how errors name X\), got 5$/);
    await expect(m.predictAsync(x, opts({ signal: {} }))).rejects.toThrow(/^RidgeModel\.predictAsync signal: expected an AbortSignal, got an object$/);
    expect(() => m.predict(x, opts(null))).toThrow(/^RidgeModel\.predict: options must be an object \(\{ label, signal \}\), got null$/);
    // the known ones, and none, still predict
    expect(m.predict(x, { label: 'x.npy', signal: undefined }).rows).toBe(30);
    expect((await m.predictAsync(x, { label: 'x.npy', signal: new AbortController().signal })).rows).toBe(30);
    expect(m.predict(x).rows).toBe(30);
  });

  it('X with 0 rows predicts an empty matrix, sync and async', async () => {
    const { x, y } = planted(30, 4, 3, 1);
    const m = await new RidgeCV({ alphas: [1] }).fit(x, y);
    const empty = { data: new Float32Array(0), rows: 0, cols: 4 };
    const p = m.predict(empty);
    expect(p.rows).toBe(0);
    expect(p.cols).toBe(3);
    expect(p.data.length).toBe(0);
    expect(p.data.buffer.byteLength).toBe(0);
    const q = await m.predictAsync(empty);
    expect(q.data.length).toBe(0);
  });

  it('a model file with NaN coefficients or an all-zero x_scale is refused at load, naming the tensor', async () => {
    const { x, y } = planted(30, 4, 2, 1);
    const m = await new RidgeCV({ alphas: [1] }).fit(x, y);
    const dir = tempDir('bl-badmodel-');
    await m.save(path.join(dir, 'ok.safetensors'));
    const f = await import('../../ts/io/safetensors.js').then((mod) => mod.readSafetensors(path.join(dir, 'ok.safetensors')));
    const write = async (name: string, patch: (t: Record<string, Float32Array>) => void) => {
      const tensors: Record<string, { data: Float32Array; shape: number[] }> = {};
      const data: Record<string, Float32Array> = {};
      for (const [k, t] of Object.entries(f.tensors)) data[k] = Float32Array.from(t.data as Float32Array);
      patch(data);
      for (const [k, t] of Object.entries(f.tensors)) tensors[k] = { data: data[k], shape: t.shape };
      await writeSafetensors(path.join(dir, name), tensors, f.metadata);
      return path.join(dir, name);
    };
    const nanCoef = await write('nan.safetensors', (t) => (t.coef[5] = NaN));
    await expect(RidgeModel.load(nanCoef)).rejects.toThrow(FormatError);
    await expect(RidgeModel.load(nanCoef)).rejects.toThrow(/tensor 'coef' holds NaN at index 5/);
    const zeroScale = await write('zero.safetensors', (t) => t.x_scale.fill(0));
    await expect(RidgeModel.load(zeroScale)).rejects.toThrow(/tensor 'x_scale' is 0 at index 0/);
  });

  it('a model file whose metadata disagrees with its tensors is refused at load, naming the file and the field', async () => {
    const { x, y } = planted(30, 4, 2, 1);
    const m = await new RidgeCV({ alphas: [1, 10, 100] }).fit(x, y);
    const { dir, file: f, write: writeCopy } = await alteredCopies(m, 'bl-badmeta-');
    const write = (name: string, tensors: Record<string, TensorCopy>, metadata: Record<string, string> = {}) =>
      writeCopy(name, (t) => Object.assign(t, tensors), metadata);
    const refused = (file: string, message: string, field: string) => expectRefused((p) => RidgeModel.load(p), file, message, field);
    // 7 values for 2 targets: cvScores.rows was 3.5
    await refused(await write('cv7.safetensors', { cv_scores: { data: new Float32Array(7), shape: [7] } }), "tensor 'cv_scores' has 7 elements, not a whole number of rows of the 2 targets", 'cv_scores');
    await refused(
      await write('cv4.safetensors', { cv_scores: { data: new Float32Array(8), shape: [4, 2] } }),
      "tensor 'cv_scores' has 4 rows, expected 3 (one per alpha of metadata 'alphas')",
      'cv_scores',
    );
    await refused(await write('alphas2.safetensors', {}, { alphas: '[1,10]' }), "tensor 'cv_scores' has 3 rows, expected 2 (one per alpha of metadata 'alphas')", 'cv_scores');
    await refused(await write('alphas0.safetensors', {}, { alphas: '[1,-10,100]' }), "metadata 'alphas' must be a non-empty list of numbers > 0", '__metadata__');
    await refused(await write('score.safetensors', {}, { score: 'bogus' }), `metadata 'score' must be 'r2' or 'pearson', got "bogus"`, '__metadata__');
    await refused(await write('folds.safetensors', {}, { folds: '{"n":4,"kind":"random"}' }), "metadata 'folds' must be an object { n: a count, kind: 'contiguous', 'groups' or 'custom' }", '__metadata__');
    await refused(await write('intercept.safetensors', { intercept: { data: new Float32Array(3), shape: [3] } }), "tensor 'intercept' has 3 elements, expected 2", 'intercept');
    await refused(await write('xmean.safetensors', { x_mean: { data: new Float32Array(5), shape: [5] } }), "tensor 'x_mean' has 5 elements, expected 4", 'x_mean');
    await refused(await write('xscale.safetensors', { x_scale: { data: new Float32Array(3).fill(1), shape: [3] } }), "tensor 'x_scale' has 3 elements, expected 4", 'x_scale');
    await refused(await write('intercept-yes.safetensors', {}, { fit_intercept: 'yes' }), `metadata 'fit_intercept' must be 'true' or 'false', got "yes"`, '__metadata__');
    await refused(await write('standardize-1.safetensors', {}, { standardize: '1' }), `metadata 'standardize' must be 'true' or 'false', got "1"`, '__metadata__');
    // absent (a file written elsewhere): RidgeCV's defaults, as for 'score' and 'folds' — not false for both
    const { fit_intercept: _, standardize: __, ...bare } = f.metadata;
    const noFlags = path.join(dir, 'noflags.safetensors');
    await writeSafetensors(noFlags, Object.fromEntries(Object.entries(f.tensors).map(([k, t]) => [k, { data: t.data, shape: t.shape }])), bare);
    expect((await RidgeModel.load(noFlags)).settings).toMatchObject({ fitIntercept: true, standardize: false });
    const standardized = await new RidgeCV({ alphas: [1, 10], fitIntercept: false, standardize: true }).fit(x, y);
    await standardized.save(path.join(dir, 'std.safetensors'));
    expect((await RidgeModel.load(path.join(dir, 'std.safetensors'))).settings).toMatchObject({ fitIntercept: false, standardize: true });
    // the untouched file loads as it was saved
    expect((await RidgeModel.load(await write('same.safetensors', {}))).settings).toEqual(m.settings);
  });

  // review C #11: a model whose metadata said version '99' predicted normally
  it('a model file of another format version is refused at load, naming the file, the key and the version read', async () => {
    const { x, y } = planted(30, 4, 2, 1);
    const m = await new RidgeCV({ alphas: [1, 10, 100] }).fit(x, y);
    const { dir, file: f, write } = await alteredCopies(m, 'bl-version-');
    const refused = (file: string, message: string) => expectRefused((p) => RidgeModel.load(p), file, message, '__metadata__');
    expect(f.metadata.version).toBe('1');
    await refused(
      await write('v99.safetensors', undefined, { version: '99' }),
      `metadata 'version' is "99"; this brainlatent reads brainlatent.ridge version '1' (the file was written by a newer brainlatent: upgrade brainlatent to load it, or load it with the one that wrote it)`,
    );
    await refused(await write('vx.safetensors', undefined, { version: '1.0' }), `metadata 'version' is "1.0"; this brainlatent reads brainlatent.ridge version '1'`);
    // absent (a file of the same layout written elsewhere): read as this version
    const { version: _, ...bare } = f.metadata;
    const noVersion = path.join(dir, 'noversion.safetensors');
    await writeSafetensors(noVersion, Object.fromEntries(Object.entries(f.tensors).map(([k, t]) => [k, { data: t.data, shape: t.shape }])), bare);
    expect((await RidgeModel.load(noVersion)).settings).toEqual(m.settings);
  });

  // a lab keeps models for years and copies them between machines: a flipped bit in coef passed every check and
  // predicted other numbers in silence
  it("a model file whose coef was damaged after it was saved is refused at load (its CRC-32), naming the file and the tensor", async () => {
    const { x, y } = planted(30, 4, 2, 1);
    const m = await new RidgeCV({ alphas: [1, 10, 100] }).fit(x, y);
    const dir = tempDir('bl-crc-');
    const saved = path.join(dir, 'm.safetensors');
    await m.save(saved);
    const bytes = readFileSync(saved);
    const n = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.toString('utf8', 8, 8 + n)) as Record<string, { data_offsets: [number, number] }>;
    // coef[1]'s lowest mantissa bit: a value one float32 step away, finite, nothing else contradicts it
    bytes[8 + n + header.coef.data_offsets[0] + 4] ^= 0x01;
    const damaged = path.join(dir, 'damaged.safetensors');
    writeFileSync(damaged, bytes);
    await expectRefused((p) => RidgeModel.load(p), damaged, /^.*damaged\.safetensors: tensor 'coef' fails its checksum \(CRC-32 [0-9a-f]{8}, metadata 'tensor_crc32' records [0-9a-f]{8}\)/, 'coef');
    expect(Array.from((await RidgeModel.load(saved)).coef.data)).toEqual(Array.from(m.coef.data));
  });

  it('a model file whose chosen alphas, best scores or settings contradict its tensors is refused at load, naming the file and the key', async () => {
    const { x, y } = planted(30, 4, 2, 1);
    const m = await new RidgeCV({ alphas: [1, 10, 100] }).fit(x, y);
    const { dir, file: f, write: writeCopy } = await alteredCopies(m, 'bl-contradict-');
    const tensor = (name: string, patch: (d: Float32Array) => void) => {
      const data = Float32Array.from(f.tensors[name].data as Float32Array);
      patch(data);
      return { [name]: { data, shape: f.tensors[name].shape } };
    };
    const write = (name: string, tensors: Record<string, TensorCopy>, metadata: Record<string, string> = {}) =>
      writeCopy(name, (t) => Object.assign(t, tensors), metadata);
    const refused = (file: string, message: string, field: string) => expectRefused((p) => RidgeModel.load(p), file, message, field);
    // a best alpha outside the grid (it loaded, and the alpha histograms counted it nowhere)
    await refused(
      await write('alpha5.safetensors', tensor('best_alphas', (d) => (d[1] = 5))),
      "tensor 'best_alphas' is 5 at index 1, expected one of metadata 'alphas' [1, 10, 100] (the alpha chosen for target 1)",
      'best_alphas',
    );
    // a best score that is not the largest CV score of its target, above or below it
    const best0 = f32(m.bestScores[0]);
    await refused(
      await write('score.safetensors', tensor('best_scores', (d) => (d[0] += 0.5))),
      `tensor 'best_scores' is ${f32(Math.fround(m.bestScores[0] + 0.5))} at index 0, expected ${best0}, the largest score of column 0 of 'cv_scores' (the best mean CV score of target 0)`,
      'best_scores',
    );
    await refused(await write('score-low.safetensors', tensor('best_scores', (d) => (d[0] -= 0.01))), `tensor 'best_scores' is ${f32(Math.fround(m.bestScores[0] - 0.01))} at index 0, expected ${best0}, the largest score of column 0 of 'cv_scores' (the best mean CV score of target 0)`, 'best_scores');
    // an alpha of the grid, but not the best-scoring one
    const col0 = [0, 1, 2].map((r) => m.cvScores.data[r * 2]);
    const worst = col0.indexOf(Math.min(...col0));
    expect(col0[worst]).toBeLessThan(m.bestScores[0] - 1e-4);
    const alphaWorst = [1, 10, 100][worst];
    await refused(
      await write('choice.safetensors', tensor('best_alphas', (d) => (d[0] = alphaWorst))),
      `tensor 'best_alphas' is ${alphaWorst} at index 0, row ${worst} of 'cv_scores', which scores ${f32(col0[worst])} for target 0; expected a row of the best score, ${best0}`,
      'best_alphas',
    );
    // no score at all for a target
    await refused(
      await write('nan.safetensors', tensor('cv_scores', (d) => [0, 1, 2].forEach((r) => (d[r * 2 + 1] = NaN)))),
      "tensor 'cv_scores' has no score in column 1 (NaN in every row); a fitted target has one at least",
      'cv_scores',
    );
    // a best score one float32 step from its CV score (a writer that rounded them apart) loads
    const nudged = await write('ulp.safetensors', tensor('best_scores', (d) => (d[0] = Math.fround(d[0] * (1 + 2 ** -23)))));
    expect((await RidgeModel.load(nudged)).bestScores[0]).not.toBe(m.bestScores[0]);
    // fit_intercept 'false' with a centred X or Y, standardize 'false' with a scaled X: the prediction is not that fit's
    await refused(
      await write('ic.safetensors', {}, { fit_intercept: 'false' }),
      `tensor 'x_mean' is ${f32(m.xMean[0])} at index 0, but metadata 'fit_intercept' is 'false': expected 0 everywhere (a model fitted without an intercept does not centre X)`,
      'x_mean',
    );
    const noIntercept = await new RidgeCV({ alphas: [1, 10, 100], fitIntercept: false, standardize: true }).fit(x, y);
    await noIntercept.save(path.join(dir, 'noic.safetensors'));
    const g = await readSafetensors(path.join(dir, 'noic.safetensors'));
    expect(Array.from(noIntercept.xMean)).toEqual([0, 0, 0, 0]);
    expect(Array.from(noIntercept.intercept)).toEqual([0, 0]);
    const rewrite = async (name: string, patch: Record<string, { data: Float32Array; shape: number[] }>, metadata: Record<string, string> = {}) => {
      const file = path.join(dir, name);
      const all = Object.fromEntries(Object.entries(g.tensors).map(([k, t]) => [k, { data: t.data, shape: t.shape }]));
      await writeSafetensors(file, { ...all, ...patch }, { ...g.metadata, ...metadata });
      return file;
    };
    await refused(
      await rewrite('noic-intercept.safetensors', { intercept: { data: Float32Array.of(0, 0.25), shape: [2] } }),
      "tensor 'intercept' is 0.25 at index 1, but metadata 'fit_intercept' is 'false': expected 0 everywhere (a model fitted without an intercept does not centre Y)",
      'intercept',
    );
    await refused(
      await rewrite('noic-std.safetensors', {}, { standardize: 'false' }),
      `tensor 'x_scale' is ${f32(noIntercept.xScale[0])} at index 0, but metadata 'standardize' is 'false': expected 1 everywhere (a model fitted without standardisation does not scale X)`,
      'x_scale',
    );
    // 'true' claims nothing of the values (X may come centred, a constant column is left unscaled), and a file that
    // leaves the keys out claims nothing: RidgeCV's defaults, not checked against its tensors
    expect((await RidgeModel.load(await rewrite('noic-true.safetensors', {}, { fit_intercept: 'true' }))).settings.fitIntercept).toBe(true);
    const { fit_intercept: _, standardize: __, ...bare } = g.metadata;
    const noFlags = path.join(dir, 'noic-bare.safetensors');
    await writeSafetensors(noFlags, Object.fromEntries(Object.entries(g.tensors).map(([k, t]) => [k, { data: t.data, shape: t.shape }])), bare);
    expect((await RidgeModel.load(noFlags)).settings).toMatchObject({ fitIntercept: true, standardize: false });
    expect((await RidgeModel.load(path.join(dir, 'noic.safetensors'))).settings).toEqual(noIntercept.settings);
  });

  it('predictAsync gives predict()\'s result and keeps the event loop running', async () => {
    const { x, y } = planted(60, 400, 3, 6);
    const m0 = await new RidgeCV({ alphas: [10] }).fit(x, y);
    // A wide model: 2,000 × 400 inputs through 400 × 8,000 coefficients (6.4 GFLOP).
    const t = 8000;
    const coef = new Float32Array(400 * t).map((_, i) => ((i * 2654435761) % 1000) / 1000 - 0.5);
    const model = new RidgeModel({ ...m0, coef: { data: coef, rows: 400, cols: t }, intercept: new Float32Array(t), bestAlphas: new Float32Array(t).fill(10), bestScores: new Float32Array(t), cvScores: { data: new Float32Array(t), rows: 1, cols: t }, settings: m0.settings });
    const big = { data: new Float32Array(2000 * 400).map((_, i) => ((i * 40503) % 997) / 997 - 0.5), rows: 2000, cols: 400 };
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const asyncResult = await model.predictAsync(big);
    const asyncTicks = ticks;
    ticks = 0;
    const syncResult = model.predict(big);
    const syncTicks = ticks;
    clearInterval(timer);
    // (compared by a loop: toEqual on 16M elements is slow)
    let same = asyncResult.data.length === syncResult.data.length;
    for (let i = 0; same && i < syncResult.data.length; i++) same = asyncResult.data[i] === syncResult.data[i];
    expect(same).toBe(true);
    // The synchronous call holds the event loop for its whole length; the async one does not.
    expect(syncTicks).toBe(0);
    expect(asyncTicks).toBeGreaterThan(3);
  });
});
