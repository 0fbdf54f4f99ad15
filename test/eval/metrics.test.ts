import { cpSync, lstatSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { featureNetworkModel } from '../../ts/demo/models.js';
import { FeatureNetwork } from '../../ts/eval/featureNetwork.js';
import { correlationDistance, correlationMatrix, pixelTwoWayIdentification, twoWayFromCorrelations, twoWayIdentification } from '../../ts/eval/identification.js';
import { CancelledError, FormatError, InvalidArgumentError, NonFiniteError, ShapeError } from '../../ts/errors.js';
import { averageMetrics, evaluateReconstructions, pixelFeatures, type MetricValue } from '../../ts/eval/evaluate.js';
import { MAX_METRIC_SIZE, pixCorr, ssim } from '../../ts/eval/pixel.js';
import { leftOutNote, metricsCsv } from '../../ts/eval/table.js';
import type { RgbImages } from '../../ts/sd/tensor.js';
import { externalize, relocate } from '../helpers/externalData.js';
import { linkIntoBlobs } from '../helpers/linkedModels.js';
import { pearson } from '../helpers/pearson.js';
import { rng } from '../helpers/random.js';
import { tempDir } from '../helpers/tempDir.js';
import { hasPython, runPython } from '../io/python.js';

function images(count: number, size: number, fill: (i: number, p: number) => number): RgbImages {
  const data = new Uint8Array(count * size * size * 3);
  for (let i = 0; i < count; i++) for (let p = 0; p < size * size * 3; p++) data[i * size * size * 3 + p] = fill(i, p);
  return { data, count, height: size, width: size };
}


describe('PixCorr and SSIM (native)', () => {
  it('PixCorr matches a plain Pearson r per image', async () => {
    const gt = images(3, 16, (i, p) => (p * (7 + i)) % 251);
    const rec = images(3, 16, (i, p) => ((p * (7 + i)) % 251) / 2 + ((p * 13) % 40));
    const r = await pixCorr(gt, rec, { size: 16 });
    for (let i = 0; i < 3; i++) {
      const n = 16 * 16 * 3;
      expect(r.values[i]).toBeCloseTo(pearson(gt.data.subarray(i * n, (i + 1) * n), rec.data.subarray(i * n, (i + 1) * n)), 10);
    }
    expect(r.mean).toBeCloseTo((r.values[0] + r.values[1] + r.values[2]) / 3, 12);
  });

  it('SSIM of constant gray images equals the closed form (2xy + C1)/(x² + y² + C1)', async () => {
    const a = images(1, 16, () => 255);
    const b = images(1, 16, () => 51);
    const s = await ssim(a, b, { size: 16 });
    // x = 1, y = 0.2 (gray of a uniform RGB value is the value itself)
    expect(s.values[0]).toBeCloseTo((2 * 0.2 + 1e-4) / (1 + 0.04 + 1e-4), 6);
    const same = await ssim(images(2, 20, (i, p) => (p * 31 + i) % 256), images(2, 20, (i, p) => (p * 31 + i) % 256), { size: 20 });
    expect(same.mean).toBeCloseTo(1, 10);
  });

  it('rejects mismatched batches naming both shapes', async () => {
    await expect(pixCorr(images(2, 8, () => 1), images(3, 8, () => 1))).rejects.toThrow(/2 ground-truth images but 3 reconstructions/);
  });

  it('refuses a size outside 1..MAX_METRIC_SIZE, naming the option and the limit', async () => {
    const a = images(1, 16, (i, p) => (p * 7) % 256);
    expect(MAX_METRIC_SIZE).toBe(4096);
    // (a bare RangeError from allocating the resized batch before)
    await expect(ssim(a, a, { size: 100000 })).rejects.toThrow(InvalidArgumentError);
    await expect(ssim(a, a, { size: 100000 })).rejects.toThrow(/^ssim size: expected an integer in 1\.\.4096, got 100000$/);
    await expect(pixCorr(a, a, { size: 0 })).rejects.toThrow(/^pixCorr size: expected an integer in 1\.\.4096, got 0$/);
    // (a string read as '16×16' in the resize's error)
    await expect(pixCorr(a, a, { size: '16' as unknown as number })).rejects.toThrow(/^pixCorr size: expected an integer in 1\.\.4096, got string/);
    await expect(evaluateReconstructions(a, a, { size: 4097 })).rejects.toThrow(/^evaluate size: expected an integer in 11\.\.4096, got 4097$/);
    // larger than the images is upsampling, as the run config's evaluation.size does for small stimuli
    expect((await pixCorr(a, a, { size: 40 })).mean).toBeCloseTo(1, 10);
  });

  it("SSIM's size starts at its window (11 px), and evaluate checks it before PixCorr runs", async () => {
    const a = images(1, 16, (i, p) => (p * 7) % 256);
    await expect(ssim(a, a, { size: 10 })).rejects.toThrow(new InvalidArgumentError('ssim size: 10 is smaller than the 11-px Gaussian window of sigma 1.5: use a size of at least 11 or a smaller sigma'));
    // (a smaller sigma, a smaller window: 8 px at sigma 0.5, as the engine takes them)
    expect((await ssim(a, a, { size: 8, sigma: 0.5 })).mean).toBeCloseTo(1, 10);
    // (evaluate ran PixCorr at size 5, then failed in the engine's ssim naming neither evaluate nor size)
    await expect(evaluateReconstructions(a, a, { size: 5 })).rejects.toThrow(new InvalidArgumentError('evaluate size: expected an integer in 11..4096, got 5'));
    // PixCorr alone has no window
    expect((await pixCorr(a, a, { size: 5 })).mean).toBeCloseTo(1, 10);
    expect((await ssim(a, a, { size: 11 })).mean).toBeCloseTo(1, 10);
  });

  it('SSIM refuses a sigma that is not a number in (0, 100] or whose window passes the size, and unknown options', async () => {
    const a = images(1, 16, (i, p) => (p * 7) % 256);
    const expected = "expected a number in (0, 100] (the Gaussian window's SD; 1.5 in the published protocol)";
    // (Infinity returned a number; '3' was the engine's TypeError naming neither ssim nor sigma; 1e9 ran out of memory)
    await expect(ssim(a, a, { size: 16, sigma: Infinity })).rejects.toThrow(new InvalidArgumentError(`ssim sigma: ${expected}, got Infinity`));
    await expect(ssim(a, a, { size: 16, sigma: '3' as unknown as number })).rejects.toThrow(new InvalidArgumentError(`ssim sigma: ${expected}, got string "3"`));
    await expect(ssim(a, a, { size: 16, sigma: 1e9 })).rejects.toThrow(new InvalidArgumentError(`ssim sigma: ${expected}, got 1000000000`));
    await expect(ssim(a, a, { size: 16, sigma: 0 })).rejects.toThrow(new InvalidArgumentError(`ssim sigma: ${expected}, got 0`));
    await expect(ssim(a, a, { size: 16, sigma: 3 })).rejects.toThrow(
      new InvalidArgumentError('ssim size: 16 is smaller than the 23-px Gaussian window of sigma 3: use a size of at least 23 or a smaller sigma'),
    );
    expect((await ssim(a, a, { size: 23, sigma: 3 })).mean).toBeCloseTo(1, 10);
    // (a misspelt option was ignored and the default used)
    await expect(ssim(a, a, { sizee: 3 } as unknown as { size: number })).rejects.toThrow(/^ssim: unknown option 'sizee' \(did you mean 'size'\?\); known: size, onProgress, signal, sigma$/);
    await expect(pixCorr(a, a, { sigma: 2 } as unknown as { size: number })).rejects.toThrow(/^pixCorr: unknown option 'sigma'; known: size, onProgress, signal$/);
  });

  it('says that images on a detached buffer were transferred away', async () => {
    const a = images(2, 8, (i, p) => p % 256);
    const gone = images(2, 8, (i, p) => p % 256);
    structuredClone(gone.data.buffer, { transfer: [gone.data.buffer as ArrayBuffer] });
    // (was 'data has 0 bytes but 2×8×8×3 needs 384')
    await expect(pixCorr(a, gone, { size: 8 })).rejects.toThrow(/^pixCorr: reconstructions: data's ArrayBuffer was detached/);
  });
});

/** `count` images of `size`² pseudo-random RGB (a fill function per pixel is seconds at this size). */
function noise(count: number, size: number, seed: number): RgbImages {
  const data = new Uint8Array(count * size * size * 3);
  let x = seed >>> 0;
  for (let k = 0; k < data.length; k++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    data[k] = x >>> 24;
  }
  return { data, count, height: size, width: size };
}

describe('PixCorr and SSIM: progress and abort', () => {
  it('SSIM aborted at its first progress event rejects with CancelledError, its engine work stopped short of the batch', async () => {
    // 160 pairs of 256² (~1 s of SSIM on two cores): before the metrics took a cancel token it ran all 160 and resolved
    const n = 160;
    const gt = noise(n, 256, 1);
    const rec = noise(n, 256, 2);
    const controller = new AbortController();
    const reason = new Error('stop the metrics');
    let most = 0;
    const run = ssim(gt, rec, {
      size: 256,
      signal: controller.signal,
      onProgress: (done, total) => {
        expect(total).toBe(n);
        most = Math.max(most, done);
        controller.abort(reason);
      },
    });
    await expect(run).rejects.toBeInstanceOf(CancelledError);
    await expect(run).rejects.toMatchObject({ cause: reason });
    // every progress event is delivered before the call settles: `most` is the pairs the engine finished
    expect(most).toBeGreaterThanOrEqual(1);
    expect(most).toBeLessThan(n);
  });

  it('reports the pairs done, increasing, ending at the batch, and resolves when not aborted', async () => {
    const gt = noise(12, 24, 3);
    const rec = noise(12, 24, 4);
    for (const metric of [pixCorr, ssim]) {
      const seen: number[] = [];
      const r = await metric(gt, rec, { size: 24, signal: new AbortController().signal, onProgress: (done) => seen.push(done) });
      expect(r.values.length).toBe(12);
      expect(seen.at(-1)).toBe(12);
      for (let k = 1; k < seen.length; k++) expect(seen[k]).toBeGreaterThan(seen[k - 1]);
    }
  });

  it('PixCorr, SSIM and the identification metrics refuse a bad signal or callback, and stop at an aborted signal', async () => {
    const gt = noise(2, 16, 5);
    const rec = noise(2, 16, 6);
    await expect(ssim(gt, rec, { size: 16, signal: 'soon' as unknown as AbortSignal })).rejects.toThrow(
      new InvalidArgumentError('ssim signal: expected an AbortSignal, got string "soon"'),
    );
    await expect(pixCorr(gt, rec, { size: 16, onProgress: 5 as unknown as () => void })).rejects.toThrow(/^pixCorr onProgress: expected a function, got 5$/);
    const aborted = AbortSignal.abort(new Error('gone'));
    const feats = { data: Float32Array.from({ length: 12 }, (_, k) => Math.sin(k)), rows: 4, cols: 3 };
    await expect(pixCorr(gt, rec, { size: 16, signal: aborted })).rejects.toBeInstanceOf(CancelledError);
    // (refused before the images are resized: pixCorr and ssim took 350 ms to reject three 64-px images)
    await expect(ssim(gt, rec, { size: 16, signal: aborted })).rejects.toThrow(/^ssim: aborted before it started/);
    await expect(twoWayIdentification(feats, feats, { signal: aborted })).rejects.toBeInstanceOf(CancelledError);
    await expect(correlationDistance(feats, feats, { signal: aborted })).rejects.toBeInstanceOf(CancelledError);
    await expect(correlationMatrix(feats, feats, { signal: {} as AbortSignal })).rejects.toBeInstanceOf(InvalidArgumentError);
    // (an aborted signal is refused before the features' finiteness scan, 0.1–0.2 s at 4,000 × 8,192: NaN features give no NonFiniteError)
    const nan = { data: Float32Array.of(NaN, 1, 2, 3, 4, 5), rows: 2, cols: 3 };
    await expect(twoWayIdentification(nan, nan, { signal: aborted })).rejects.toThrow(/^twoWayIdentification: aborted before it started$/);
    await expect(correlationMatrix(nan, nan, { signal: aborted })).rejects.toThrow(/^correlationMatrix: aborted before it started$/);
    // (a misspelt signal was ignored, and the abort with it)
    await expect(correlationMatrix(feats, feats, { sigal: aborted } as never)).rejects.toThrow(/^correlationMatrix: unknown option 'sigal' \(did you mean 'signal'\?\)/);
    await expect(pixelTwoWayIdentification(gt, rec, { signl: aborted } as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    // the evaluation hands its signal to each metric (before, it ignored it and resolved)
    await expect(evaluateReconstructions(gt, rec, { size: 16, signal: aborted })).rejects.toBeInstanceOf(CancelledError);
  });
});

describe('two-way identification', () => {
  it('twoWayFromCorrelations refuses an image count that is not one', () => {
    expect(() => twoWayFromCorrelations([1], NaN)).toThrow(new InvalidArgumentError('twoWayFromCorrelations n: expected an integer >= 0 (the images), got NaN'));
    expect(() => twoWayFromCorrelations([1, 2, 3, 4], 2.5)).toThrow(/^twoWayFromCorrelations n: expected an integer >= 0 \(the images\), got 2\.5$/);
  });

  it('counts, per reconstruction, the other ground truths that correlate less than its own (strict <)', () => {
    // r[i][j] = corr(gt_i, rec_j)
    const r = [
      [0.9, 0.1, 0.5],
      [0.2, 0.3, 0.5],
      [0.1, 0.8, 0.5],
    ];
    // j=0: own 0.9 > 0.2, 0.1 → 1; j=1: own 0.3 > 0.1, < 0.8 → 0.5; j=2: ties are not wins → 0
    const { perImage, accuracy } = twoWayFromCorrelations(r.flat(), 3);
    expect(Array.from(perImage)).toEqual([1, 0.5, 0]);
    expect(accuracy).toBeCloseTo(0.5, 12);
  });

  it('gives the known answer on constructed features', async () => {
    // centred, mutually orthogonal ground truths
    const g = [
      [1, -1, 0, 0],
      [0, 0, 1, -1],
      [1, 1, -1, -1],
    ];
    // rec0 = g0 (identified), rec1 = g2 + 0.5·g1 (beats g0 only), rec2 = g1 (own r = 0: no win)
    const rec = [g[0], g[2].map((v, k) => v + 0.5 * g[1][k]), g[1]];
    const m = (rows: number[][]) => ({ data: Float32Array.from(rows.flat()), rows: rows.length, cols: 4 });
    const wi = await twoWayIdentification(m(g), m(rec));
    expect(Array.from(wi.perImage)).toEqual([1, 0.5, 0]);
    expect(wi.accuracy).toBeCloseTo(0.5, 6);
    const same = await correlationDistance(m(g), m(g));
    expect(same.mean).toBeCloseTo(0, 6);
    const opposite = await correlationDistance(m(g), m(g.map((r) => r.map((v) => -v))));
    expect(opposite.mean).toBeCloseTo(2, 6);
  });
});

/**
 * The float64 reference of the identification metrics with a constant row: numpy's Pearson correlations (NaN for a
 * row of zero spread), and the rule of ts/eval/identification.ts, NaN comparisons left out.
 */
const CONSTANT_ROW_REFERENCE = `
import json, sys, numpy as np
d = json.loads(sys.argv[1])
g = np.array(d['gt'], dtype=np.float32).astype(np.float64).reshape(d['rows'], -1)
p = np.array(d['rec'], dtype=np.float32).astype(np.float64).reshape(d['rows'], -1)
def unit(a):
    c = a - a.mean(1, keepdims=True)
    s = np.sqrt((c * c).sum(1, keepdims=True))
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(s > 0, c / np.where(s > 0, s, 1), np.nan)
r = unit(g) @ unit(p).T
n = len(g)
per, left = [], 0
for j in range(n):
    own = r[j, j]
    others = [] if np.isnan(own) else [r[i, j] for i in range(n) if i != j and not np.isnan(r[i, j])]
    left += (n - 1) - len(others)
    per.append(sum(o < own for o in others) / len(others) if others else None)
scored = [v for v in per if v is not None]
dist = [None if np.isnan(r[j, j]) else 1 - r[j, j] for j in range(n)]
print(json.dumps({'perImage': per, 'accuracy': sum(scored) / len(scored), 'comparisonsLeftOut': left, 'distance': dist,
                  'meanDistance': float(np.mean([v for v in dist if v is not None]))}))
`;

describe('a constant row has no correlation: its comparisons are left out and counted, as PixCorr leaves it out', () => {
  const nulls = (a: Float64Array) => Array.from(a, (v) => (Number.isNaN(v) ? null : v));

  it('twoWayFromCorrelations leaves NaN entries out instead of counting them as lost comparisons', () => {
    // r[0][0] NaN: image 0 has no score (it was 0); r[1][0] NaN would have been image 0's loss, r[0][2] image 2's
    const r = [NaN, 0, NaN, NaN, 1, 0.2, 0.1, 0.3, 1];
    const wi = twoWayFromCorrelations(r, 3);
    // j=1: own 1 beats 0 and 0.3; j=2: own 1 beats 0.2 (r[0][2] left out)
    expect(nulls(wi.perImage)).toEqual([null, 1, 1]);
    expect(wi.accuracy).toBe(1);
    expect(wi.imagesLeftOut).toBe(1);
    expect(wi.comparisonsLeftOut).toBe(3);
  });

  it('twoWayIdentification and correlationDistance: a constant gt row and a constant reconstruction row, by hand', async () => {
    // the review's case: gt row 2 and rec row 2 are [2,2,2,2]; images 0 and 1 each win the one comparison they
    // can make (before: perImage [0.5, 0.5, 0], accuracy 0.33, and correlationDistance's mean NaN)
    const f = (d: number[]) => ({ data: Float32Array.from(d), rows: 3, cols: 4 });
    const gt = f([1, 2, 3, 4, 4, 1, 3, 2, 2, 2, 2, 2]);
    const rec = f([1, 2, 3, 4.5, 4, 1, 3, 2.5, 2, 2, 2, 2]);
    const wi = await twoWayIdentification(gt, rec);
    expect(nulls(wi.perImage)).toEqual([1, 1, null]);
    expect([wi.accuracy, wi.imagesLeftOut, wi.comparisonsLeftOut]).toEqual([1, 1, 4]);
    const cd = await correlationDistance(gt, rec);
    expect(Number.isNaN(cd.perImage[2])).toBe(true);
    expect(cd.imagesLeftOut).toBe(1);
    expect(cd.mean).toBeCloseTo((cd.perImage[0] + cd.perImage[1]) / 2, 12);
    expect(cd.perImage[0]).toBeCloseTo(1 - pearson(gt.data.subarray(0, 4), rec.data.subarray(0, 4)), 6);
  });

  it.skipIf(!hasPython('numpy'))('match the float64 numpy reference with a constant gt row and another constant reconstruction row', async () => {
    const n = 7, cols = 40;
    const g = rng(28);
    const gt = { data: Float32Array.from({ length: n * cols }, () => g()), rows: n, cols };
    const rec = { data: Float32Array.from(gt.data, (v) => v + 1.5 * g()), rows: n, cols };
    gt.data.fill(0.25, 2 * cols, 3 * cols);
    rec.data.fill(-1, 4 * cols, 5 * cols);
    const ref = JSON.parse(await runPython(CONSTANT_ROW_REFERENCE, JSON.stringify({ gt: Array.from(gt.data), rec: Array.from(rec.data), rows: n }))) as {
      perImage: (number | null)[];
      accuracy: number;
      comparisonsLeftOut: number;
      distance: (number | null)[];
      meanDistance: number;
    };
    const wi = await twoWayIdentification(gt, rec);
    expect(nulls(wi.perImage)).toEqual(ref.perImage);
    expect(ref.perImage[2]).toBeNull();
    expect(ref.perImage[4]).toBeNull();
    expect(wi.accuracy).toBeCloseTo(ref.accuracy, 12);
    expect(wi.imagesLeftOut).toBe(2);
    // images 2 and 4 lose all 6 of theirs; the other 5 each the one against gt row 2
    expect(wi.comparisonsLeftOut).toBe(ref.comparisonsLeftOut);
    expect(wi.comparisonsLeftOut).toBe(2 * 6 + 5);
    const cd = await correlationDistance(gt, rec);
    ref.distance.forEach((d, j) => (d === null ? expect(Number.isNaN(cd.perImage[j])).toBe(true) : expect(cd.perImage[j]).toBeCloseTo(d, 6)));
    expect(cd.mean).toBeCloseTo(ref.meanDistance, 6);
    expect(cd.imagesLeftOut).toBe(2);
  });

  it('evaluateReconstructions: a uniform-grey reconstruction is left out of PixCorr and Pixels(2WI) alike, and counted', async () => {
    // 4 images, reconstructions exact but image 0 a uniform grey: Pixels(2WI) gave it 0 (accuracy 0.75) while PixCorr skipped it
    const gt = noise(4, 16, 5);
    const rec = { ...gt, data: gt.data.slice() };
    rec.data.fill(128, 0, 16 * 16 * 3);
    const ev = await evaluateReconstructions(gt, rec, { size: 16 });
    const by = Object.fromEntries(ev.metrics.map((m) => [m.name, m]));
    expect(nulls(by['Pixels(2WI)'].perImage)).toEqual([null, 1, 1, 1]);
    expect(by['Pixels(2WI)'].value).toBe(1);
    expect(Number.isNaN(by.PixCorr.perImage[0])).toBe(true);
    expect(by.PixCorr.value).toBeCloseTo(1, 10);
    expect(ev.metrics.map((m) => [m.name, m.leftOut])).toEqual([['PixCorr', 1], ['SSIM', 0], ['Pixels(2WI)', 1]]);
    expect(leftOutNote([{ label: 'z-only', leftOut: Object.fromEntries(ev.metrics.map((m) => [m.name, m.leftOut ?? 0])) }], 4)).toBe(
      'Left out of the means, having no correlation (a uniform image or a constant feature row): PixCorr 1 of 4 images (z-only), Pixels(2WI) 1 of 4 images (z-only).',
    );
    expect(leftOutNote([{ label: 'final', leftOut: { PixCorr: 0 } }], 4)).toBe('');
    // its own 3 comparisons (r_00 undefined), none of the others'
    expect(ev.metrics.map((m) => m.comparisonsLeftOut)).toEqual([undefined, undefined, 3]);
  });

  it("a uniform ground truth drops a comparison from every other image's 2WI score: counted in the metric and named in the note", async () => {
    // 4 images, reconstructions exact, ground truth 0 a uniform grey: image 0 has no score (3 comparisons), and
    // images 1..3 each lose their comparison with ground truth 0 (3 more); the note said only '1 of 4 images'
    const gt = noise(4, 16, 6);
    gt.data.fill(128, 0, 16 * 16 * 3);
    const ev = await evaluateReconstructions(gt, { ...gt, data: gt.data.slice() }, { size: 16 });
    const wi = ev.metrics.find((m) => m.name === 'Pixels(2WI)')!;
    expect(nulls(wi.perImage)).toEqual([null, 1, 1, 1]);
    expect([wi.leftOut, wi.comparisonsLeftOut]).toEqual([1, 6]);
    const comparisons = (ms: MetricValue[]) => Object.fromEntries(ms.flatMap((m) => (m.comparisonsLeftOut === undefined ? [] : [[m.name, m.comparisonsLeftOut]])));
    const leftOut = (ms: MetricValue[]) => Object.fromEntries(ms.map((m) => [m.name, m.leftOut ?? 0]));
    // the seeds' final sums each seed's comparisons; an image scored by another seed is not left out, its comparisons are
    const final = averageMetrics([[wi], [{ ...wi, perImage: Float64Array.from([0.5, 1, 1, 1]), comparisonsLeftOut: 0 }]]);
    expect([final[0].leftOut, final[0].comparisonsLeftOut]).toEqual([0, 6]);
    expect(
      leftOutNote(
        [
          { label: 'z-only', leftOut: leftOut(ev.metrics), comparisons: comparisons(ev.metrics) },
          { label: 'final', leftOut: leftOut(final), comparisons: comparisons(final), summed: true },
        ],
        4,
      ),
    ).toBe(
      'Left out of the means, having no correlation (a uniform image or a constant feature row): PixCorr 1 of 4 images (z-only), ' +
        'Pixels(2WI) 1 of 4 images (z-only; 6 comparisons), Pixels(2WI) 0 of 4 images (final; 6 comparisons over the seeds).',
    );
  });
});

describe('identification metrics refuse non-finite features', () => {
  // 5 images × 3 features; a NaN made 2WI 0.3 (its correlations are NaN, and NaN < r is never a win) and the
  // correlation distance NaN, with nothing saying why
  const feats = (seed: number) => ({ data: Float32Array.from({ length: 15 }, (_, k) => Math.sin(seed * 7.1 + k * 1.3) + (k % 3) * 0.2), rows: 5, cols: 3 });

  it('twoWayIdentification, correlationDistance and correlationMatrix name the argument, row and column', async () => {
    const gt = feats(1);
    gt.data[1 * 3 + 2] = NaN;
    const rec = feats(2);
    rec.data[4 * 3 + 0] = Infinity;
    const fns = { twoWayIdentification, correlationDistance, correlationMatrix } as const;
    for (const [name, fn] of Object.entries(fns)) {
      await expect(fn(gt, feats(2))).rejects.toBeInstanceOf(NonFiniteError);
      await expect(fn(gt, feats(2))).rejects.toThrow(`${name}: gt (ground-truth features) contains NaN at row 1, column 2: inputs must be finite`);
      await expect(fn(feats(1), rec)).rejects.toThrow(`${name}: rec (reconstruction features) contains Infinity at row 4, column 0: inputs must be finite`);
    }
    // shapes are checked before values, and finite features still score
    await expect(twoWayIdentification(gt, { data: new Float32Array(12), rows: 4, cols: 3 })).rejects.toBeInstanceOf(ShapeError);
    await expect(correlationMatrix(feats(1), { data: new Float32Array(8), rows: 4, cols: 2 })).rejects.toThrow(/^correlationMatrix: features differ in width: 5×3 vs 4×2$/);
    expect((await twoWayIdentification(feats(1), feats(1))).accuracy).toBe(1);
    expect((await correlationDistance(feats(1), feats(1))).mean).toBeCloseTo(0, 6);
  });
});

describe('correlations of float and byte rows (review s35-r4: pixel 2WI held ~10 MB per test image; the engine now holds slices of columns, ctest test_metrics)', () => {
  it('the float and the byte rows give the float64 reference over 150 rows, constant rows NaN', async () => {
    const n = 150, w = 6, dim = w * w * 3;
    const gen = rng(11);
    const gt = images(n, w, () => Math.floor(gen() * 256));
    const rec = images(n, w, () => Math.floor(gen() * 256));
    gt.data.fill(77, 100 * dim, 101 * dim); // a uniform ground truth
    const ref = (a: Uint8Array, b: Uint8Array, i: number, j: number) => pearson(Array.from(a.subarray(i * dim, (i + 1) * dim)), Array.from(b.subarray(j * dim, (j + 1) * dim)));
    const r = await correlationMatrix(pixelFeatures(gt), pixelFeatures(rec));
    for (const [i, j] of [[0, 0], [63, 64], [64, 63], [130, 149], [149, 0], [7, 120]]) expect(Math.abs(r[i * n + j] - ref(gt.data, rec.data, i, j))).toBeLessThan(1e-5);
    expect(Number.isNaN(r[100 * n + 5])).toBe(true);
    const bytes = await pixelTwoWayIdentification(gt, rec);
    const floats = await twoWayIdentification(pixelFeatures(gt), pixelFeatures(rec));
    expect(Array.from(bytes.perImage)).toEqual(Array.from(floats.perImage));
    expect(bytes.comparisonsLeftOut).toBe(floats.comparisonsLeftOut);
    // (image 100 has no score: its 149 comparisons; and every other image loses its comparison with ground truth 100)
    expect(bytes.comparisonsLeftOut).toBe(2 * (n - 1));
  });
});

describe('feature networks given as ONNX', () => {
  it('extracts features with the demo network and identifies identical images perfectly', async () => {
    const dir = tempDir('bl-eval-');
    const path = join(dir, 'features.onnx');
    writeFileSync(path, featureNetworkModel());
    const net = await FeatureNetwork.open({ name: 'demo', path, inputSize: 32, metric: 'identification' });
    const imgs = images(4, 40, (i, p) => ((p >> 4) * (i + 3) * 37) % 256);
    const f = await net.features(imgs);
    expect(f.rows).toBe(4);
    expect(f.cols).toBe(16 * 4 * 4);
    await net.dispose();
    const ev = await evaluateReconstructions(imgs, imgs, { size: 40, networks: [{ name: 'demo', path, inputSize: 32, metric: 'identification' }] });
    const byName = Object.fromEntries(ev.metrics.map((m) => [m.name, m.value]));
    expect(byName.PixCorr).toBeCloseTo(1, 10);
    expect(byName['Pixels(2WI)']).toBe(1);
    expect(byName.demo).toBe(1);
    const csv = metricsCsv([{ method: 'self', source: 'test', metrics: ev.metrics }]);
    expect(csv.split('\n')[0]).toContain('PixCorr');
    expect(csv).toContain('Brain-Diffuser');
  });

  it('ground truth and reconstructions of different sizes, and a single image, evaluate (review s35-r4)', async () => {
    const dir = tempDir('bl-eval-sizes-');
    const path = join(dir, 'features.onnx');
    writeFileSync(path, featureNetworkModel());
    const networks = [{ name: 'demo', path, inputSize: 32, metric: 'identification' as const }, { name: 'dist', path, inputSize: 32, metric: 'distance' as const }];
    const gt = images(3, 32, (i, p) => ((p >> 3) * (i + 5) * 29) % 256);
    // the same pictures at twice the side: the pixels' 2WI compares them at `size`, as PixCorr and SSIM do
    const big = { data: new Uint8Array(3 * 64 * 64 * 3), count: 3, height: 64, width: 64 };
    for (let i = 0; i < 3; i++)
      for (let y = 0; y < 64; y++)
        for (let x = 0; x < 64; x++)
          for (let c = 0; c < 3; c++) big.data[((i * 64 + y) * 64 + x) * 3 + c] = gt.data[((i * 32 + (y >> 1)) * 32 + (x >> 1)) * 3 + c];
    const ev = await evaluateReconstructions(gt, big, { size: 32, networks });
    const byName = Object.fromEntries(ev.metrics.map((m) => [m.name, m.value]));
    expect(byName['Pixels(2WI)']).toBe(1);
    expect(byName.PixCorr).toBeCloseTo(1, 6);
    // one image: two-way identification has nothing to compare it with, the pixels' and the network's alike
    const one = { data: gt.data.slice(0, 32 * 32 * 3), count: 1, height: 32, width: 32 };
    const single = await evaluateReconstructions(one, one, { size: 32, networks });
    expect(single.metrics.map((m) => m.name)).toEqual(['PixCorr', 'SSIM', 'dist']);
  });

  it('reads a network whose external data links into a cache (ONNX Runtime alone refuses it), to the bit', async () => {
    const dir = tempDir('bl-eval-linked-');
    const plain = join(dir, 'plain', 'features.onnx');
    mkdirSync(dirname(plain));
    writeFileSync(plain, featureNetworkModel());
    await externalize(plain, 'features.onnx_data');
    const linked = join(dir, 'linked', 'features.onnx');
    cpSync(dirname(plain), dirname(linked), { recursive: true });
    await linkIntoBlobs(dirname(linked), join(dir, 'blobs'), (rel) => rel.endsWith('_data'));
    expect(lstatSync(join(dir, 'linked', 'features.onnx_data')).isSymbolicLink()).toBe(true);
    const imgs = images(3, 40, (i, p) => ((p >> 3) * (i + 5) * 29) % 256);
    const featuresOf = async (path: string) => {
      const net = await FeatureNetwork.open({ name: 'demo', path, inputSize: 32, metric: 'identification' });
      try {
        return (await net.features(imgs)).data;
      } finally {
        await net.dispose();
      }
    };
    const want = await featuresOf(plain);
    expect(Math.max(...Array.from(want, Math.abs))).toBeGreaterThan(0);
    expect(await featuresOf(linked)).toEqual(want);
  });

  it("refuses a network whose external data lies outside its folder ('..'), naming the file and the tensor", async () => {
    const dir = tempDir('bl-eval-outside-');
    const path = join(dir, 'net', 'features.onnx');
    mkdirSync(dirname(path));
    writeFileSync(path, featureNetworkModel());
    await externalize(path, 'features.onnx_data');
    renameSync(join(dir, 'net', 'features.onnx_data'), join(dir, 'features.onnx_data'));
    const [tensor] = await relocate(path, () => true, '../features.onnx_data');
    // failed before: onnxruntime-node's own message, not naming the location's problem this way
    const e = await FeatureNetwork.open({ name: 'demo', path, inputSize: 32, metric: 'identification' }).then(
      () => null,
      (x: unknown) => x as Error,
    );
    expect(e).toBeInstanceOf(FormatError);
    expect(e!.message).toContain(`${path}: tensor '${tensor}' (a graph initializer) keeps its data in '../features.onnx_data', a path that climbs out`);
  });

  it("refuses a bad inputSize, batchSize, mean or std before reading the file, naming the network and the option", async () => {
    const dir = tempDir('bl-eval-spec-');
    const path = join(dir, 'features.onnx');
    writeFileSync(path, featureNetworkModel());
    const open = (over: Record<string, unknown>) => FeatureNetwork.open({ name: 'demo', path, inputSize: 32, metric: 'identification', ...over });
    // (batchSize 0 looped forever in features(); -1 and 2.5 failed there as a RangeError and ONNX Runtime's TypeError)
    await expect(open({ batchSize: 0 })).rejects.toThrow(new InvalidArgumentError("FeatureNetwork.open 'demo' batchSize: expected an integer in 1..4096, got 0"));
    await expect(open({ batchSize: -1 })).rejects.toThrow(new InvalidArgumentError("FeatureNetwork.open 'demo' batchSize: expected an integer in 1..4096, got -1"));
    await expect(open({ batchSize: 2.5 })).rejects.toThrow(new InvalidArgumentError("FeatureNetwork.open 'demo' batchSize: expected an integer in 1..4096, got 2.5"));
    // (inputSize had no maximum, while the run config's is 4096)
    await expect(open({ inputSize: 4097 })).rejects.toThrow(new InvalidArgumentError("FeatureNetwork.open 'demo' inputSize: expected an integer in 8..4096, got 4097"));
    await expect(open({ inputSize: 4 })).rejects.toThrow(new InvalidArgumentError("FeatureNetwork.open 'demo' inputSize: expected an integer in 8..4096, got 4"));
    await expect(open({ std: [0.2, 0, 0.2] })).rejects.toThrow(new InvalidArgumentError("FeatureNetwork.open 'demo' std: expected 3 finite numbers > 0 (R, G, B), got 0 at position 1"));
    await expect(open({ mean: [0.5, 0.5] })).rejects.toThrow(new InvalidArgumentError("FeatureNetwork.open 'demo' mean: expected 3 finite numbers (R, G, B), got an array of 2"));
    await expect(open({ mean: [0.5, NaN, 0.5] })).rejects.toThrow(new InvalidArgumentError("FeatureNetwork.open 'demo' mean: expected 3 finite numbers (R, G, B), got NaN at position 1"));
    // an explicit null is no default: refused as any other wrong value (a null output was read as the first output)
    await expect(open({ batchSize: null })).rejects.toThrow(new InvalidArgumentError("FeatureNetwork.open 'demo' batchSize: expected an integer in 1..4096, got null"));
    await expect(open({ inputSize: null })).rejects.toThrow(new InvalidArgumentError("FeatureNetwork.open 'demo' inputSize: expected an integer in 8..4096, got null"));
    await expect(open({ mean: null })).rejects.toThrow(new InvalidArgumentError("FeatureNetwork.open 'demo' mean: expected 3 finite numbers (R, G, B), got null"));
    await expect(open({ std: null })).rejects.toThrow(new InvalidArgumentError("FeatureNetwork.open 'demo' std: expected 3 finite numbers > 0 (R, G, B), got null"));
    await expect(open({ output: null })).rejects.toThrow(new InvalidArgumentError("FeatureNetwork.open 'demo' output: expected an output's name (a non-empty string), got null"));
    // through the evaluation too, before any metric runs (a network with batchSize 0 hung it after PixCorr and SSIM;
    // checked at open, it failed after them; an identification network with one image was never checked)
    const imgs = images(2, 16, (i, p) => (p * (i + 3)) % 256);
    const evaluated = evaluateReconstructions(imgs, imgs, { size: 16, networks: [{ name: 'demo', path, inputSize: 32, metric: 'distance', batchSize: 0 }] });
    await expect(evaluated).rejects.toThrow(new InvalidArgumentError("evaluate network 'demo' batchSize: expected an integer in 1..4096, got 0"));
    await expect(evaluateReconstructions(imgs, imgs, { size: 16, networks: [null] as never })).rejects.toThrow(/^evaluate networks\[0\]: expected a network spec object, got null$/);
    await expect(evaluateReconstructions(imgs, imgs, { size: 16, networks: 'alexnet' as never })).rejects.toThrow(/^evaluate networks: expected an array of network specs, got string "alexnet"$/);
    const one = images(1, 16, (i, p) => p % 256);
    await expect(evaluateReconstructions(one, one, { size: 16, networks: [{ name: 'demo', path, inputSize: 32, metric: 'identification', batchSize: 0 }] })).rejects.toThrow(
      /^evaluate network 'demo' batchSize: expected an integer in 1\.\.4096, got 0$/,
    );
    const net = await open({ batchSize: 3, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
    expect((await net.features(images(4, 32, (i, p) => (p * (i + 1)) % 256))).rows).toBe(4);
    await net.dispose();
  });

  it('names a missing network file', async () => {
    await expect(FeatureNetwork.open({ name: 'AlexNet(2)', path: '/nope/alexnet.onnx', inputSize: 224, metric: 'identification' })).rejects.toThrow(
      /AlexNet\(2\).*\/nope\/alexnet.onnx does not exist/,
    );
  });
});
