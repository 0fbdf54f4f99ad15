import { describe, expect, it } from 'vitest';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { BandedRidgeCV, dirichletGammas, type BandedRidgeCVOptions } from '../../ts/ridge/BandedRidgeCV.js';
import { BandedRidgeModel } from '../../ts/ridge/BandedRidgeModel.js';
import { partitionVariance } from '../../ts/encoding/variancePartition.js';
import { CancelledError, FormatError, InvalidArgumentError, NonFiniteError, ShapeError } from '../../ts/errors.js';
import { readSafetensors, writeSafetensors } from '../../ts/io/safetensors.js';
import type { Matrix } from '../../ts/matrix.js';
import { alteredCopies, expectRefused } from '../helpers/modelFiles.js';
import { rng } from '../helpers/random.js';
import { refCv, refFit } from '../helpers/ridgeReference.js';
import { tempDir } from '../helpers/tempDir.js';

/** Two bands; target j is driven by band (j % 3) (2 = both). */
function data(n: number, pa: number, pb: number, t: number, seed: number): { a: Matrix; b: Matrix; y: Matrix } {
  const g = rng(seed);
  const a = new Float32Array(n * pa).map(() => g());
  const b = new Float32Array(n * pb).map(() => g() + 0.3);
  const y = new Float32Array(n * t);
  const wa = new Float64Array(pa * t).map(() => g()), wb = new Float64Array(pb * t).map(() => g());
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < t; j++) {
      let s = 0.5;
      if (j % 3 !== 1) for (let k = 0; k < pa; k++) s += a[i * pa + k] * wa[k * t + j];
      if (j % 3 !== 0) for (let k = 0; k < pb; k++) s += b[i * pb + k] * wb[k * t + j];
      y[i * t + j] = s + 2 * g();
    }
  }
  return { a: { data: a, rows: n, cols: pa }, b: { data: b, rows: n, cols: pb }, y: { data: y, rows: n, cols: t } };
}

describe('BandedRidgeCV', () => {
  it('matches a float64 reference (brute-force CV per γ on X·S, refit, coef = S·W)', async () => {
    const n = 48, pa = 5, pb = 9, t = 6;
    const { a, b, y } = data(n, pa, pb, t, 3);
    const gammas = dirichletGammas(6, 2, [0.1, 1], 4);
    expect(gammas[0]).toEqual([0.5, 0.5]);
    const alphas = [0.5, 5, 50, 500];
    const foldIndex = Array.from({ length: n }, (_, i) => Math.floor((i * 4) / n));
    for (const route of ['primal', 'kernel'] as const) {
      const model = await new BandedRidgeCV({ alphas, gammas, foldIndex, route, eigPrecision: 'float64' }).fit({ a, b }, y);
      expect(model.info?.route).toBe(route);
      expect(model.bandNames).toEqual(['a', 'b']);
      // Reference: X·S per candidate, plain ridge CV.
      const p = pa + pb;
      const x = new Float64Array(n * p);
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < pa; k++) x[i * p + k] = a.data[i * pa + k];
        for (let k = 0; k < pb; k++) x[i * p + pa + k] = b.data[i * pb + k];
      }
      const best = new Float64Array(t).fill(-Infinity), bestG = new Int32Array(t), bestA = new Float64Array(t);
      gammas.forEach((g, gi) => {
        const xs = x.map((v, q) => v * Math.sqrt(g[q % p < pa ? 0 : 1]));
        const { cv, best: ba } = refCv(xs, y.data, n, p, t, alphas, foldIndex, 4);
        for (let j = 0; j < t; j++) {
          const s = cv[alphas.indexOf(ba[j]) * t + j];
          expect(model.gammaScores.data[gi * t + j]).toBeCloseTo(s, 4);
          if (s > best[j]) [best[j], bestG[j], bestA[j]] = [s, gi, ba[j]];
        }
      });
      expect(Array.from(model.bestGamma)).toEqual(Array.from(bestG));
      expect(Array.from(model.bestAlpha)).toEqual(Array.from(bestA));
      let err = 0, scale = 0;
      const rows = Array.from({ length: n }, (_, i) => i);
      for (let j = 0; j < t; j++) {
        const g = gammas[bestG[j]];
        const s = (q: number) => Math.sqrt(g[q < pa ? 0 : 1]);
        const xs = x.map((v, q) => v * s(q % p));
        const yj = Float64Array.from({ length: n }, (_, i) => y.data[i * t + j]);
        const f = refFit(xs, yj, p, 1, rows, bestA[j]);
        for (let q = 0; q < p; q++) {
          err = Math.max(err, Math.abs(model.coef.data[q * t + j] - s(q) * f.w[q]));
          scale = Math.max(scale, Math.abs(s(q) * f.w[q]));
        }
      }
      expect(err).toBeLessThan(1e-3 * scale);
      // Predictions of the model equal X·coef + intercept.
      const pred = model.predict({ a, b });
      expect(pred.rows).toBe(n);
      const split = model.predictSplit({ a, b });
      for (let q = 0; q < 10; q++) {
        const sum = split[0].data[q] + split[1].data[q] + model.intercept[q % t];
        expect(sum).toBeCloseTo(pred.data[q], 3);
      }
    }
  });

  it('recovers the band each target was built from, and partitions variance accordingly', async () => {
    const n = 400, t = 12;
    const { a, b, y } = data(n, 8, 8, t, 9);
    const trainRows = 300;
    const slice = (m: Matrix, r0: number, r1: number): Matrix => ({ data: m.data.slice(r0 * m.cols, r1 * m.cols), rows: r1 - r0, cols: m.cols });
    const vp = await partitionVariance(
      { a: slice(a, 0, trainRows), b: slice(b, 0, trainRows) },
      slice(y, 0, trainRows),
      { a: slice(a, trainRows, n), b: slice(b, trainRows, n) },
      slice(y, trainRows, n),
      { alphas: [1, 10, 100, 1000], nIter: 20, folds: 5 },
    );
    const w = vp.model.bandWeights();
    for (let j = 0; j < t; j++) {
      if (j % 3 === 0) {
        expect(w.data[j * 2]).toBeGreaterThan(0.8);
        expect(vp.unique[0][j]).toBeGreaterThan(0.1);
        expect(Math.abs(vp.unique[1][j])).toBeLessThan(0.05);
      } else if (j % 3 === 1) {
        expect(w.data[j * 2]).toBeLessThan(0.2);
        expect(vp.unique[1][j]).toBeGreaterThan(0.1);
        expect(Math.abs(vp.unique[0][j])).toBeLessThan(0.05);
      } else {
        expect(vp.unique[0][j]).toBeGreaterThan(0.05);
        expect(vp.unique[1][j]).toBeGreaterThan(0.05);
      }
      // Independent bands share (almost) nothing; a target fed by both loses a little to shrinkage.
      expect(Math.abs(vp.shared[j])).toBeLessThan(j % 3 === 2 ? 0.15 : 0.05);
    }
    expect(vp.model.bandAlphas().cols).toBe(2);
    // The convention: R² floored at 0 before partitioning, partition only where the joint model explains
    // variance; so no unique part exceeds the joint R², and none is invented where the joint model fails.
    for (let j = 0; j < t; j++) {
      const joint = vp.joint[j], pos = (r: number) => Math.max(0, r);
      if (joint <= 0) {
        expect(vp.unique[0][j]).toBeNaN();
        expect(vp.shared[j]).toBeNaN();
        continue;
      }
      for (let i = 0; i < 2; i++) {
        expect(vp.unique[i][j]).toBeCloseTo(joint - pos(vp.without[i][j]), 6);
        expect(vp.unique[i][j]).toBeLessThanOrEqual(joint + 1e-7);
      }
      expect(vp.shared[j]).toBeCloseTo(pos(vp.without[0][j]) + pos(vp.without[1][j]) - joint, 6);
    }
  });

  it('partitions only where the joint model predicts: pure-noise targets get NaN, not ±1', async () => {
    const n = 200, t = 6;
    const { a, b } = data(n, 8, 8, t, 4);
    // targets unrelated to either band: held-out R² of every model is ≤ 0 in most targets
    let s = 99;
    const noise = new Float32Array(n * t).map(() => ((s = (s * 1103515245 + 12345) >>> 0) / 4294967296) * 2 - 1);
    const y: Matrix = { data: noise, rows: n, cols: t };
    const slice = (m: Matrix, r0: number, r1: number): Matrix => ({ data: m.data.slice(r0 * m.cols, r1 * m.cols), rows: r1 - r0, cols: m.cols });
    const vp = await partitionVariance(
      { a: slice(a, 0, 150), b: slice(b, 0, 150) },
      slice(y, 0, 150),
      { a: slice(a, 150, n), b: slice(b, 150, n) },
      slice(y, 150, n),
      { alphas: [0.1, 1, 10], nIter: 5, folds: 5 },
    );
    for (let j = 0; j < t; j++) {
      if (vp.joint[j] > 0) continue;
      expect(vp.unique[0][j]).toBeNaN();
      expect(vp.unique[1][j]).toBeNaN();
    }
    for (const u of vp.unique) for (let j = 0; j < t; j++) if (Number.isFinite(u[j])) expect(Math.abs(u[j])).toBeLessThanOrEqual(1);
    expect(Array.from(vp.joint).some((r) => r <= 0)).toBe(true);
  });

  it('never picks an alpha below the float32 resolution of a singular Gram', async () => {
    // 40 features for 30 samples on the primal route: every γ-weighted XᵀX is singular
    const { a, b, y } = data(30, 20, 20, 4, 7);
    const m = await new BandedRidgeCV({ alphas: [1e-7, 10, 100], nIter: 5, folds: 3, route: 'primal' }).fit({ a, b }, y);
    for (const alpha of m.bestAlpha) expect(alpha).toBeGreaterThanOrEqual(10);
    await expect(new BandedRidgeCV({ alphas: [1e-7, 1e-6], nIter: 3, folds: 3, route: 'primal' }).fit({ a, b }, y)).rejects.toThrow(
      /float32 resolution/,
    );
  });

  it('save/load round trip is bit-exact and predicts the same', async () => {
    const { a, b, y } = data(50, 4, 3, 5, 4);
    const model = await new BandedRidgeCV({ alphas: [1, 10, 100], nIter: 6, folds: 5 }).fit({ a, b }, y);
    const file = join(tempDir('bl-banded-'), 'm.safetensors');
    await model.save(file);
    const back = await BandedRidgeModel.load(file);
    expect(back.bandNames).toEqual(['a', 'b']);
    expect(back.bandSizes).toEqual([4, 3]);
    for (const key of ['intercept', 'xMean', 'xScale', 'gammas', 'bestGamma', 'bestAlpha', 'bestScores'] as const) expect(back[key]).toEqual(model[key]);
    expect([back.fitIntercept, back.standardize]).toEqual([true, false]);
    expect(back.coef).toEqual(model.coef);
    expect(back.gammaScores).toEqual(model.gammaScores);
    expect(back.predict({ a, b }).data).toEqual(model.predict({ a, b }).data);
    await expect(BandedRidgeModel.load(join(tmpdir(), 'no-such-model.safetensors'))).rejects.toThrow();
  });

  it('records fit_intercept and standardize in the file, as RidgeCV\'s files do, and reads them back (absent: the defaults)', async () => {
    const { a, b, y } = data(40, 4, 3, 2, 9);
    const dir = tempDir('bl-banded-flags-');
    for (const [fitIntercept, standardize] of [[true, false], [false, true], [true, true], [false, false]]) {
      const model = await new BandedRidgeCV({ alphas: [1, 10], nIter: 3, folds: 4, fitIntercept, standardize }).fit({ a, b }, y);
      expect([model.fitIntercept, model.standardize]).toEqual([fitIntercept, standardize]);
      const file = join(dir, `m-${fitIntercept}-${standardize}.safetensors`);
      await model.save(file);
      const meta = (await readSafetensors(file)).metadata;
      expect([meta.fit_intercept, meta.standardize]).toEqual([String(fitIntercept), String(standardize)]);
      const back = await BandedRidgeModel.load(file);
      expect([back.fitIntercept, back.standardize]).toEqual([fitIntercept, standardize]);
      expect(back.predict({ a, b }).data).toEqual(model.predict({ a, b }).data);
    }
    // a file saved before they were recorded: RidgeCV's defaults, whatever its x_mean and x_scale (nothing claimed)
    const f = await readSafetensors(join(dir, 'm-false-true.safetensors'));
    const { fit_intercept: _, standardize: __, ...old } = f.metadata;
    const tensors = Object.fromEntries(Object.entries(f.tensors).map(([k, t]) => [k, { data: t.data, shape: t.shape }]));
    await writeSafetensors(join(dir, 'old.safetensors'), tensors, old);
    const back = await BandedRidgeModel.load(join(dir, 'old.safetensors'));
    expect([back.fitIntercept, back.standardize]).toEqual([true, false]);
    // a newer layout's version is refused, naming it (review C #11: the ridge model's was never checked)
    const v2 = join(dir, 'v2.safetensors');
    await writeSafetensors(v2, tensors, { ...f.metadata, version: '2' });
    const newer = await BandedRidgeModel.load(v2).then(() => null, (e: unknown) => e);
    expect(newer).toBeInstanceOf(FormatError);
    expect((newer as FormatError).message).toBe(
      `${v2}: metadata 'version' is "2"; this brainlatent reads brainlatent.banded-ridge version '1' (the file was written by a newer brainlatent: upgrade brainlatent to load it, or load it with the one that wrote it)`,
    );
    expect((newer as FormatError).field).toBe('__metadata__');
    // other text is refused naming the key
    for (const [key, value] of [['fit_intercept', 'yes'], ['standardize', '1']]) {
      const file = join(dir, `bad-${key}.safetensors`);
      await writeSafetensors(file, tensors, { ...f.metadata, [key]: value });
      const err = await BandedRidgeModel.load(file).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(FormatError);
      expect((err as FormatError).message).toBe(`${file}: metadata '${key}' must be 'true' or 'false', got "${value}"`);
      expect((err as FormatError).field).toBe('__metadata__');
    }
  });

  it('load refuses a best alpha outside the grid, a best score not the best of gamma_scores, and settings the tensors contradict', async () => {
    const { a, b, y } = data(40, 4, 3, 3, 5);
    const model = await new BandedRidgeCV({ alphas: [1, 10, 100], nIter: 4, folds: 4 }).fit({ a, b }, y);
    const { write } = await alteredCopies(model, 'bl-banded-contradict-');
    const refused = (file: string, message: string | RegExp, field: string) => expectRefused((f) => BandedRidgeModel.load(f), file, message, field);
    await refused(
      await write('alpha.safetensors', (t) => (t.best_alpha.data[2] = 3)),
      "tensor 'best_alpha' is 3 at index 2, expected one of metadata 'alphas' [1, 10, 100] (the alpha chosen for target 2)",
      'best_alpha',
    );
    await refused(await write('score.safetensors', (t) => (t.best_scores.data[0] += 0.5)), /: tensor 'best_scores' is \S+ at index 0, expected \S+, the largest score of column 0 of 'gamma_scores' \(the best mean CV score of target 0\)$/, 'best_scores');
    // best_gamma naming a candidate that scores less than the best for its target
    const t = model.nTargets, nGammas = model.gammaScores.rows;
    const j = 0, col = Array.from({ length: nGammas }, (_, r) => model.gammaScores.data[r * t + j]);
    const worse = col.findIndex((v) => v < model.bestScores[j] - 1e-4);
    expect(worse).toBeGreaterThanOrEqual(0);
    await refused(
      await write('gamma.safetensors', (t) => (t.best_gamma.data[j] = worse)),
      new RegExp(`: tensor 'best_gamma' is ${worse} at index 0, row ${worse} of 'gamma_scores', which scores \\S+ for target 0; expected a row of the best score, \\S+$`),
      'best_gamma',
    );
    await refused(
      await write('ic.safetensors', () => {}, { fit_intercept: 'false' }),
      /: tensor 'x_mean' is \S+ at index 0, but metadata 'fit_intercept' is 'false': expected 0 everywhere \(a model fitted without an intercept does not centre X\)$/,
      'x_mean',
    );
    await refused(
      await write('std.safetensors', (t) => (t.x_scale.data[3] = 2)),
      "tensor 'x_scale' is 2 at index 3, but metadata 'standardize' is 'false': expected 1 everywhere (a model fitted without standardisation does not scale X)",
      'x_scale',
    );
    // candidates left with no resolved alpha are NaN rows of gamma_scores: skipped
    // (4 candidates, 3 targets: one candidate at least is nobody's choice)
    const unused = Array.from({ length: nGammas }, (_, r) => r).find((r) => !model.bestGamma.includes(r));
    expect(unused).toBeDefined();
    const skipped = await write('skipped.safetensors', (s) => s.gamma_scores.data.fill(NaN, unused! * t, (unused! + 1) * t));
    expect((await BandedRidgeModel.load(skipped)).nTargets).toBe(3);
  });

  it('BandedRidgeCV.fit refuses a space or Y whose data is not a Float32Array as an InvalidArgumentError naming it', async () => {
    const { a, b, y } = data(30, 3, 2, 2, 4);
    const a64 = { ...a, data: Float64Array.from(a.data) } as unknown as Matrix;
    await expect(new BandedRidgeCV({ nIter: 2 }).fit({ a: a64, b }, y)).rejects.toThrow(InvalidArgumentError);
    // nIter is bounded (the draws are held nIter × bands): 1e20 reached the engine, whose message named no API
    expect(() => new BandedRidgeCV({ nIter: 1e20 })).toThrow(/^BandedRidgeCV nIter: expected an integer in 1\.\.1000000, got 100000000000000000000$/);
    await expect(new BandedRidgeCV({ nIter: 2 }).fit({ a: a64, b }, y)).rejects.toThrow(
      "BandedRidgeCV.fit: feature space 'a': data is a Float64Array of 90 values, Float32Array expected (a matrix {data: Float32Array, rows, cols}; Float32Array.from converts)",
    );
    await expect(new BandedRidgeCV({ nIter: 2 }).fit({ a, b }, { ...y, data: Float64Array.from(y.data) } as unknown as Matrix)).rejects.toThrow(
      /^BandedRidgeCV\.fit: Y: data is a Float64Array of 60 values, Float32Array expected/,
    );
  });

  it('predict and predictSplit refuse spaces of other widths than the fit\'s, naming the space and the fitted widths', async () => {
    const { a, b, y } = data(40, 4, 3, 2, 6);
    const model = await new BandedRidgeCV({ alphas: [1, 10], nIter: 3, folds: 4 }).fit({ a, b }, y);
    const fitted = "the model was fitted on 2 space\\(s\\): 'a' \\(4 features\\), 'b' \\(3 features\\)";
    const narrow: Matrix = { data: a.data.slice(0, 40 * 2), rows: 40, cols: 2 };
    for (const method of ['predict', 'predictSplit'] as const) {
      expect(() => model[method]({ a: narrow, b })).toThrow(ShapeError);
      expect(() => model[method]({ a: narrow, b })).toThrow(new RegExp(`^BandedRidgeModel\\.${method}: feature space 'a' has 2 features \\(columns\\), ${fitted}$`));
      // an array is positional: [b, a] has the widths the other way round
      expect(() => model[method]([b, a])).toThrow(new RegExp(`^BandedRidgeModel\\.${method}: feature space 'a' has 3 features \\(columns\\), ${fitted}$`));
      expect(() => model[method]([a])).toThrow(new RegExp(`^BandedRidgeModel\\.${method}: got an array of 1 space\\(s\\), ${fitted}, in that order$`));
    }
    expect(model.predictSplit({ a, b }).map((m) => [m.rows, m.cols])).toEqual([[40, 2], [40, 2]]);
  });

  it('predict and predictSplit match named spaces to the fit\'s band names, whatever their order, and refuse unknown or missing names', async () => {
    // two spaces of one width: matched by position, {b, a} used to predict with the bands swapped, and {x, y} passed
    const { a, b, y } = data(40, 4, 4, 3, 8);
    const model = await new BandedRidgeCV({ alphas: [1, 10], nIter: 3, folds: 4 }).fit({ a, b }, y);
    expect(model.bandNames).toEqual(['a', 'b']);
    const inOrder = model.predict({ a, b });
    expect(model.predict({ b, a }).data).toEqual(inOrder.data);
    expect(model.predict([a, b]).data).toEqual(inOrder.data);
    const split = model.predictSplit({ a, b });
    const swappedSplit = model.predictSplit({ b, a });
    expect(swappedSplit.map((m) => m.data)).toEqual(split.map((m) => m.data));
    // the swap does change the prediction: the test would not see a positional match otherwise
    expect(model.predict({ a: b, b: a }).data).not.toEqual(inOrder.data);
    const fitted = "; the model was fitted on 2 space\\(s\\): 'a' \\(4 features\\), 'b' \\(4 features\\)$";
    for (const method of ['predict', 'predictSplit'] as const) {
      const at = `^BandedRidgeModel\\.${method}: `;
      expect(() => model[method]({ x: a, y: b })).toThrow(InvalidArgumentError);
      expect(() => model[method]({ x: a, y: b })).toThrow(new RegExp(`${at}unknown space\\(s\\) 'x', 'y' and missing space\\(s\\) 'a', 'b'${fitted}`));
      expect(() => model[method]({ a })).toThrow(new RegExp(`${at}missing space\\(s\\) 'b'${fitted}`));
      expect(() => model[method]({ a, b, c: a })).toThrow(new RegExp(`${at}unknown space\\(s\\) 'c'${fitted}`));
    }
    // integer-like names: fit takes Object.keys' order ('2' before '10') and predict matches them by name
    const numeric = await new BandedRidgeCV({ alphas: [1, 10], nIter: 3, folds: 4 }).fit({ 10: a, 2: b }, y);
    expect(numeric.bandNames).toEqual(['2', '10']);
    expect(numeric.predict({ 2: b, 10: a }).data).toEqual(numeric.predict([b, a]).data);
    // an array fit names its bands band0, band1, …, which predict then accepts by name
    const positional = await new BandedRidgeCV({ alphas: [1, 10], nIter: 3, folds: 4 }).fit([a, b], y);
    expect(positional.bandNames).toEqual(['band0', 'band1']);
    expect(positional.predict({ band1: b, band0: a }).data).toEqual(positional.predict([a, b]).data);
    // names that repeat (a hand-made model) cannot be matched: the array form is asked for
    const twice = new BandedRidgeModel({ ...model, bandNames: ['a', 'a'] });
    expect(() => twice.predict({ a })).toThrow(/^BandedRidgeModel\.predict: the model's band names repeat 'a' \(a, a\), so spaces cannot be matched by name; pass an array in band order$/);
    expect(twice.predict([a, b]).data).toEqual(inOrder.data);
  });

  it('predict and predictSplit refuse NaN and Inf in a space, naming the space, row and column (as RidgeModel.predict does)', async () => {
    const { a, b, y } = data(40, 4, 3, 2, 7);
    const model = await new BandedRidgeCV({ alphas: [1, 10], nIter: 3, folds: 4 }).fit({ a, b }, y);
    const bad: Matrix = { data: b.data.slice(), rows: 40, cols: 3 };
    bad.data[5 * 3 + 2] = NaN;
    bad.data[9 * 3 + 1] = Infinity;
    const inf: Matrix = { data: a.data.slice(), rows: 40, cols: 4 };
    inf.data[3 * 4 + 1] = -Infinity;
    for (const method of ['predict', 'predictSplit'] as const) {
      expect(() => model[method]({ a, b: bad })).toThrow(NonFiniteError);
      expect(() => model[method]({ a, b: bad })).toThrow(`BandedRidgeModel.${method}: feature space 'b' contains NaN at row 5, column 2: inputs must be finite`);
      expect(() => model[method]([inf, b])).toThrow(`BandedRidgeModel.${method}: feature space 'a' contains -Infinity at row 3, column 1: inputs must be finite`);
    }
  });

  it('load refuses what RidgeModel.load refuses, and metadata or tensors that disagree, naming the file and the field', async () => {
    const { a, b, y } = data(40, 4, 3, 2, 5);
    const model = await new BandedRidgeCV({ alphas: [1, 10], nIter: 3, folds: 4 }).fit({ a, b }, y);
    const { write } = await alteredCopies(model, 'bl-banded-bad-');
    const refused = (file: string, message: string, field: string) => expectRefused((f) => BandedRidgeModel.load(f), file, message, field);
    // each of these used to load: predict NaN, predict -Infinity, bandWeights NaN, a self-contradictory predict error
    await refused(await write('nan.safetensors', (t) => (t.coef.data[5] = NaN)), "tensor 'coef' holds NaN at index 5; a banded model must be finite", 'coef');
    await refused(await write('scale.safetensors', (t) => (t.x_scale.data[2] = 0)), "tensor 'x_scale' is 0 at index 2; predictions divide by it", 'x_scale');
    await refused(await write('mean.safetensors', (t) => (t.x_mean.data[6] = Infinity)), "tensor 'x_mean' holds Infinity at index 6; a banded model must be finite", 'x_mean');
    await refused(
      await write('gamma.safetensors', (t) => (t.best_gamma.data[1] = 3)),
      "tensor 'best_gamma' is 3 at index 1, expected a row of 'gammas' (0..2)",
      'best_gamma',
    );
    await refused(await write('names.safetensors', () => {}, { band_names: '["a"]' }), "metadata 'band_names' must be a list of 2 names, one per band of 'band_sizes'", '__metadata__');
    await refused(await write('sizes.safetensors', () => {}, { band_sizes: '[4, 4]' }), "metadata 'band_sizes' [4, 4] does not add up to the 7 features of 'coef'", '__metadata__');
    await refused(await write('intercept.safetensors', (t) => (t.intercept = { data: new Float32Array(3), shape: [3] })), "tensor 'intercept' has 3 elements, expected 2", 'intercept');
    await refused(await write('xmean.safetensors', (t) => (t.x_mean = { data: new Float32Array(6), shape: [6] })), "tensor 'x_mean' has 6 elements, expected 7", 'x_mean');
    await refused(await write('xscale.safetensors', (t) => (t.x_scale = { data: new Float32Array(8).fill(1), shape: [8] })), "tensor 'x_scale' has 8 elements, expected 7", 'x_scale');
    await refused(await write('score.safetensors', () => {}, { score: 'bogus' }), `metadata 'score' must be 'r2' or 'pearson', got "bogus"`, '__metadata__');
    await refused(
      await write('gs.safetensors', (t) => (t.gamma_scores = { data: new Float32Array(4), shape: [2, 2] })),
      "tensor 'gamma_scores' has 2 rows, expected 3 (one per row of 'gammas')",
      'gamma_scores',
    );
    // the untouched file loads and predicts as the model does
    expect((await BandedRidgeModel.load(await write('same.safetensors', () => {}))).predict({ a, b }).data).toEqual(model.predict({ a, b }).data);
  });

  it('reports progress, honours abort, and names bad shapes', async () => {
    const { a, b, y } = data(60, 4, 4, 3, 1);
    const stages = new Set<string>();
    await new BandedRidgeCV({ nIter: 4, folds: 3 }).fit([a, b], y, { onProgress: (p) => stages.add(p.stage) });
    expect(stages.has('search')).toBe(true);
    const ctl = new AbortController();
    ctl.abort();
    await expect(new BandedRidgeCV({ nIter: 4 }).fit([a, b], y, { signal: ctl.signal })).rejects.toBeInstanceOf(CancelledError);
    const short: Matrix = { data: b.data.slice(0, 50 * 4), rows: 50, cols: 4 };
    await expect(new BandedRidgeCV().fit({ a, b: short }, y)).rejects.toThrow(/'b' has 50 samples but 'a' has 60/);
    // (an aborted signal before any work on the bands: their joining took 0.3 s at 20,000 × 4,000 first)
    await expect(new BandedRidgeCV().fit({ a, b: short }, y, { signal: ctl.signal })).rejects.toThrow(/^BandedRidgeCV\.fit: aborted before it started$/);
    await expect(new BandedRidgeCV({ gammas: [[1, 0, 0]] }).fit({ a, b }, y)).rejects.toBeInstanceOf(ShapeError);
  });

  it('BandedRidgeModel checks its parts at construction, naming the part (they failed later, in predict or save)', async () => {
    const { a, b, y } = data(40, 3, 2, 4, 2);
    const m = await new BandedRidgeCV({ alphas: [1, 10], nIter: 3, folds: 4 }).fit({ a, b }, y);
    const make = (patch: object) => () => new BandedRidgeModel({ ...m, ...patch } as ConstructorParameters<typeof BandedRidgeModel>[0]);
    expect(make({})().nTargets).toBe(4);
    expect(make({ intercept: undefined, bestGamma: undefined })).toThrow(InvalidArgumentError);
    expect(make({ intercept: undefined, bestGamma: undefined })).toThrow(/^BandedRidgeModel: missing parts intercept, bestGamma; a model needs bandNames, /);
    expect(make({ bestAlpha: new Float64Array(4) })).toThrow(/^BandedRidgeModel bestAlpha: expected a Float32Array of 4 values \(one per target: coef is 5×4, features × targets\), got a Float64Array of 4$/);
    expect(make({ xMean: new Float32Array(4) })).toThrow(ShapeError);
    expect(make({ xMean: new Float32Array(4) })).toThrow(/^BandedRidgeModel xMean: has 4 values, expected 5 \(one per feature/);
    expect(make({ bandSizes: [3, 3] })).toThrow(/^BandedRidgeModel bandSizes: \[3, 3\] adds up to 6 features, but coef has 5 \(rows\)$/);
    expect(make({ bandNames: ['a'] })).toThrow(/^BandedRidgeModel bandNames: expected an array of 2 names, one per band of bandSizes$/);
    expect(make({ gammas: new Float64Array(3) })).toThrow(/^BandedRidgeModel gammas: has 3 values, expected rows of the 2 band weights$/);
    expect(make({ bestGamma: new Int32Array(4).fill(3) })).toThrow(/^BandedRidgeModel bestGamma: is 3 at index 0, expected a row of gammas \(0\.\.2\)$/);
    expect(make({ gammaScores: { data: new Float32Array(8), rows: 2, cols: 4 } })).toThrow(/^BandedRidgeModel gammaScores: is 2×4, expected 3×4 \(one row per candidate of gammas/);
    expect(make({ score: 'mse' })).toThrow(/^BandedRidgeModel score: expected 'r2', 'pearson', got 'mse'$/);
    expect(make({ fitIntercept: 'true' })).toThrow(/^BandedRidgeModel fitIntercept: expected true or false, got string "true"$/);
    expect(make({ standardize: undefined })).toThrow(/^BandedRidgeModel: missing part standardize; a model needs /);
    expect(make({ bestAlphas: m.bestAlpha })).toThrow(/^BandedRidgeModel: unknown part 'bestAlphas' \(did you mean 'bestAlpha'\?\)/);
  });

  it('BandedRidgeModel refuses parts whose numbers contradict each other, as load() refuses such a file', async () => {
    const { a, b, y } = data(40, 3, 2, 4, 2);
    const m = await new BandedRidgeCV({ alphas: [1, 10], nIter: 3, folds: 4 }).fit({ a, b }, y);
    const make = (patch: object) => () => new BandedRidgeModel({ ...m, ...patch } as ConstructorParameters<typeof BandedRidgeModel>[0]);
    const nan = Float64Array.from(m.gammas);
    nan[1] = NaN;
    expect(make({ gammas: nan })).toThrow(NonFiniteError);
    expect(make({ gammas: nan })).toThrow(/^BandedRidgeModel: gammas holds NaN at index 1; a banded model must be finite$/);
    const coef = { ...m.coef, data: Float32Array.from(m.coef.data).fill(Infinity, 3, 4) };
    expect(make({ coef })).toThrow(/^BandedRidgeModel: coef holds Infinity at index 3; a banded model must be finite$/);
    expect(make({ bestAlpha: new Float32Array(4).fill(3) })).toThrow(InvalidArgumentError);
    expect(make({ bestAlpha: new Float32Array(4).fill(3) })).toThrow(/^BandedRidgeModel: bestAlpha is 3 at index 0, expected one of alphas \[1, 10\] \(the alpha chosen for target 0\)$/);
    const higher = Float32Array.from(m.bestScores).map((v, j) => (j === 0 ? v + 0.5 : v));
    expect(make({ bestScores: higher })).toThrow(/^BandedRidgeModel: bestScores is \S+ at index 0, expected \S+, the largest score of column 0 of gammaScores \(the best mean CV score of target 0\)$/);
    // a candidate that scores less than the best for target 0
    const t = m.nTargets;
    const worse = Array.from({ length: m.gammaScores.rows }, (_, r) => r).find((r) => m.gammaScores.data[r * t] < m.bestScores[0] - 1e-4);
    expect(worse).toBeDefined();
    const bestGamma = Int32Array.from(m.bestGamma).fill(worse!, 0, 1);
    expect(make({ bestGamma })).toThrow(new RegExp(`^BandedRidgeModel: bestGamma is ${worse} at index 0, row ${worse} of gammaScores, which scores \\S+ for target 0; expected a row of the best score, \\S+$`));
    // fitted with an intercept, so X was centred: not a model fitted without one
    expect(m.xMean.some((v) => v !== 0)).toBe(true);
    expect(make({ fitIntercept: false })).toThrow(/^BandedRidgeModel: xMean is \S+ at index \d+, but fitIntercept is false: expected 0 everywhere \(a model fitted without an intercept does not centre X\)$/);
    expect(make({ xScale: Float32Array.from(m.xScale).fill(2, 1, 2) })).toThrow(/^BandedRidgeModel: xScale is 2 at index 1, but standardize is false: expected 1 everywhere/);
  });

  it('costModel plans the route and memory the fit then reports, at the default budget and at tight ones, and the fit stays within it', async () => {
    // standardised with an intercept, as encode's banded fits: the plan is the fit's own; grouped folds
    const groups = Array.from({ length: 60 }, (_, i) => i >> 1);
    for (const [pa, pb, route] of [
      [90, 60, 'per-fold-kernel'],
      [4, 6, 'per-fold-primal'],
    ] as const) {
      const { a, b, y } = data(60, pa, pb, 30, 21);
      const base: BandedRidgeCVOptions = { alphas: [1, 100], nIter: 4, folds: 5, groups, standardize: true };
      const whole = new BandedRidgeCV(base).costModel(60, [pa, pb], 30);
      expect(whole.route).toBe(route);
      expect(whole.memory.nBatches).toBe(1);
      for (const batch of [undefined, 1, 7]) {
        const memoryBudget = batch === undefined ? undefined : Math.ceil(whole.memory.fixedBytes + whole.memory.bytesPerTarget * batch) + 1;
        const ridge = new BandedRidgeCV({ ...base, memoryBudget });
        const plan = ridge.costModel(60, [pa, pb], 30);
        const info = (await ridge.fit({ a, b }, y)).info!;
        expect([plan.route, plan.memory.fixedBytes, plan.memory.batchBytes, plan.memory.budgetBytes, plan.memory.targetBatch, plan.memory.nBatches]).toEqual([
          info.solver,
          info.fixedBytes,
          info.batchBytes,
          info.budgetBytes,
          info.targetBatch,
          info.nBatches,
        ]);
        expect(plan.memory.fits).toBe(true);
        if (batch !== undefined) expect(plan.memory.targetBatch).toBe(batch);
        expect(info.peakBytes).toBeLessThanOrEqual(plan.memory.fixedBytes + plan.memory.batchBytes);
      }
      // one byte short of the fixed part and one target: planned as not fitting, and refused by the fit
      const short = new BandedRidgeCV({ ...base, memoryBudget: Math.ceil(whole.memory.fixedBytes + whole.memory.bytesPerTarget) - 1 });
      expect(short.costModel(60, [pa, pb], 30).memory.fits).toBe(false);
      await expect(short.fit({ a, b }, y)).rejects.toThrow(/below this fit's fixed footprint/);
    }
    const m = new BandedRidgeCV({ gammas: [[1, 0], [0.5, 0.5]] });
    expect(() => m.costModel(60, [3, 4, 5], 10)).toThrow(/BandedRidgeCV.costModel: gammas must be rows of 3 band weights/);
    expect(() => m.costModel(60, [], 10)).toThrow(/BandedRidgeCV.costModel bandSizes: expected/);
    expect(() => m.costModel(60, [3, 2.5], 10)).toThrow(/bandSizes\[1\]: expected an integer >= 1, got 2.5/);
  });

  it('dirichletGammas checks its arguments, naming each', () => {
    expect(dirichletGammas(3, 2, [0.5], 1)).toHaveLength(3);
    expect(() => dirichletGammas(0, 2)).toThrow(/^dirichletGammas nSamples: expected an integer >= 1, got 0$/);
    expect(() => dirichletGammas(3, 1.5)).toThrow(/^dirichletGammas nBands: expected an integer >= 1, got 1\.5$/);
    expect(() => dirichletGammas(3, 2, [])).toThrow(/^dirichletGammas concentrations: expected a non-empty array/);
    expect(() => dirichletGammas(3, 2, [1, -1])).toThrow(/^dirichletGammas concentrations\[1\]: expected a finite number > 0, got -1$/);
    expect(() => dirichletGammas(3, 2, [1], -1)).toThrow(/^dirichletGammas seed: expected an integer in 0\.\.9007199254740991, got -1$/);
  });
  it('checks the rows of gammas at construction, naming the row and weight (a negative weight was refused only by fit)', () => {
    const make = (gammas: number[][]) => () => new BandedRidgeCV({ gammas });
    expect(make([[1.5, -0.5]])).toThrow(InvalidArgumentError);
    expect(make([[1.5, -0.5]])).toThrow(/^BandedRidgeCV gammas\[0\]\[1\]: expected a finite band weight >= 0, got -0\.5$/);
    expect(make([[0.5, 0.5], [NaN, 1]])).toThrow(/^BandedRidgeCV gammas\[1\]\[0\]: expected a finite band weight >= 0, got NaN$/);
    expect(make([[0.5, '0.5' as unknown as number]])).toThrow(/^BandedRidgeCV gammas\[0\]\[1\]: expected a finite band weight >= 0, got string/);
    expect(make([[0.5, 0.5], [0, 0]])).toThrow(/^BandedRidgeCV gammas\[1\]: every weight is 0; a row needs a positive one \(rows are normalised to sum 1\)$/);
    expect(make([[0.5, 0.5], [0.2, 0.3, 0.5]])).toThrow(ShapeError);
    expect(make([[0.5, 0.5], [0.2, 0.3, 0.5]])).toThrow(/^BandedRidgeCV gammas: row 1 has 3 band weights but row 0 has 2; every row weighs the same feature spaces$/);
    expect(make([[]])).toThrow(/^BandedRidgeCV gammas: row 0 is empty/);
    // rows that do not sum to 1 are taken (normalised by the fit), zeros beside a positive weight too
    expect(make([[0.5, 0.6], [0, 1]])).not.toThrow();
  });
  it('refuses gammas beside the options of the draws it replaces, foldIndex beside folds or groups, a solver beside another route', async () => {
    const make = (o: BandedRidgeCVOptions) => () => new BandedRidgeCV(o);
    // nIter 5 with one row of gammas searched that one row
    const draws: [string, BandedRidgeCVOptions][] = [['nIter', { nIter: 5 }], ['concentrations', { concentrations: [1] }], ['seed', { seed: 3 }]];
    for (const [name, extra] of draws) {
      expect(make({ gammas: [[0.5, 0.5]], ...extra })).toThrow(InvalidArgumentError);
      expect(make({ gammas: [[0.5, 0.5]], ...extra })).toThrow(
        new RegExp(`^BandedRidgeCV: gammas and ${name} were both given; gammas lists the candidates \\(1 here\\) in place of the Dirichlet draws that ${name} configures, so ${name} would be ignored: give one of them$`),
      );
    }
    const foldIndex = Array.from({ length: 60 }, (_, i) => i % 5);
    expect(make({ nIter: 2, foldIndex, folds: 3 })).toThrow(/^BandedRidgeCV: foldIndex and folds were both given;.* so folds would be ignored: give one of them$/);
    expect(make({ nIter: 2, foldIndex, groups: foldIndex })).toThrow(/^BandedRidgeCV: foldIndex and groups were both given;/);
    expect(make({ solver: 'per-fold-kernel', route: 'primal' })).toThrow(/^BandedRidgeCV: solver 'per-fold-kernel' takes route 'kernel' but route 'primal' was given;/);
    const { a, b, y } = data(60, 4, 4, 3, 1);
    const m = await new BandedRidgeCV({ alphas: [1, 10], gammas: [[0.5, 0.5], [0.9, 0.1]], foldIndex }).fit({ a, b }, y);
    expect([m.gammaScores.rows, m.nFolds]).toEqual([2, 5]);
    const drawn = await new BandedRidgeCV({ alphas: [1, 10], nIter: 5, seed: 3, folds: 3, solver: 'per-fold-kernel', route: 'kernel' }).fit({ a, b }, y);
    expect([drawn.gammaScores.rows, drawn.nFolds, drawn.info?.solver]).toEqual([5, 3, "per-fold-kernel"]);
  });
  it('refuses unknown and null options, a signal that is not an AbortSignal, and an empty fold of foldIndex, by name', async () => {
    const make = (o: unknown) => () => new BandedRidgeCV(o as BandedRidgeCVOptions);
    expect(make({ nIters: 5 })).toThrow(InvalidArgumentError);
    expect(make({ nIters: 5 })).toThrow(/^BandedRidgeCV: unknown option 'nIters' \(did you mean 'nIter'\?\); known: alphas, .*nIter, gammas, concentrations, seed, solver$/);
    expect(make({ alphas: null })).toThrow(/^BandedRidgeCV alphas: expected an array of numbers, got null$/);
    expect(make({ nIter: null })).toThrow(/^BandedRidgeCV nIter: expected an integer in 1\.\.1000000, got null$/);
    expect(make({ alphas: [1, '10'] })).toThrow(/got string "10" at position 1$/);
    // the seed is checked at construction, not first by the engine at fit
    expect(make({ seed: 2 ** 60 })).toThrow(InvalidArgumentError);
    expect(make({ seed: 2 ** 60 })).toThrow(/^BandedRidgeCV seed: expected an integer in 0\.\.9007199254740991, got 1152921504606847000$/);
    expect(make({ seed: -1 })).toThrow(/^BandedRidgeCV seed: expected an integer in 0\.\.9007199254740991, got -1$/);
    expect(new BandedRidgeCV({ seed: Number.MAX_SAFE_INTEGER }).options.seed).toBe(Number.MAX_SAFE_INTEGER);
    expect(make({ alphas: [1, 1e39] })).toThrow(/^BandedRidgeCV alphas: every alpha must be finite and > 0 in float32 .*got 1e\+39 at position 1, which is Infinity in float32$/);
    // (as --alphas, configs and HTTP refuse it: a repeated alpha is a typo, scored twice)
    expect(make({ alphas: [1, 10, 1] })).toThrow(InvalidArgumentError);
    expect(make({ alphas: [1, 10, 1] })).toThrow(/^BandedRidgeCV alphas: the alphas must be distinct, got 1 at positions 0 and 2$/);
    const { a, b, y } = data(60, 4, 4, 3, 1);
    await expect(new BandedRidgeCV({ nIter: 2 }).fit({ a, b }, y, { signal: {} as AbortSignal })).rejects.toThrow(/^BandedRidgeCV\.fit signal: expected an AbortSignal, got an object$/);
    await expect(new BandedRidgeCV({ nIter: 2, foldIndex: new Array(60).fill(7) }).fit({ a, b }, y)).rejects.toThrow(/^BandedRidgeCV foldIndex: .*largest value is 7 \(so 8 folds\) but folds 0, 1, 2, 3, 4, 5, 6 have none$/);
    // a label of at least the sample count is refused at construction, before anything is allocated by it
    const big = Array.from({ length: 60 }, (_, i) => (i === 5 ? 1e9 : i % 3));
    expect(make({ foldIndex: big })).toThrow(InvalidArgumentError);
    expect(make({ foldIndex: big })).toThrow(/^BandedRidgeCV foldIndex: expected fold numbers 0\.\.k-1 with k at most its 60 entries \(one per sample\), got 1000000000 at position 5$/);
  });
});
