/**
 * One ground truth evaluated against several sets (a run's z-only images and each seed's): the networks see the
 * ground truth once, the metrics are those of evaluating each set alone; the feature networks' threads option; a
 * network's features past several ONNX calls, each call's images resized as it is made.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterEach, describe, expect, it, vi } from 'vitest';

import { featureNetworkModel } from '../../ts/demo/models.js';
import { Evaluation, evaluateReconstructions } from '../../ts/eval/evaluate.js';
import { FeatureNetwork } from '../../ts/eval/featureNetwork.js';
import { resizeImages } from '../../ts/eval/images.js';
import { InvalidArgumentError } from '../../ts/errors.js';
import { onnxruntimeNode } from '../../ts/native/onnxruntimeNode.js';
import type { RgbImages } from '../../ts/sd/tensor.js';
import { tempDir } from '../helpers/tempDir.js';

function images(count: number, size: number, seed: number): RgbImages {
  const data = new Uint8Array(count * size * size * 3);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    // (smooth structure per image, and noise)
    const p = Math.floor(i / 3) % (size * size), img = Math.floor(i / (size * size * 3));
    data[i] = ((p % size) * (img + 2) * 5 + Math.floor(p / size) * 3 + (s >>> 28)) & 0xff;
  }
  return { data, count, height: size, width: size };
}

function network(): string {
  const path = join(tempDir('bl-evaluation-'), 'features.onnx');
  writeFileSync(path, featureNetworkModel());
  return path;
}

afterEach(() => vi.restoreAllMocks());

describe('Evaluation', () => {
  it('runs each network on the ground truth once over several sets, with the metrics of each set evaluated alone', async () => {
    const path = network();
    const networks = [
      { name: 'ident', path, inputSize: 32, metric: 'identification' as const, batchSize: 3 },
      { name: 'dist', path, inputSize: 24, metric: 'distance' as const },
    ];
    const gt = images(7, 40, 1);
    const sets = [images(7, 40, 2), images(7, 40, 3), images(7, 40, 4)];
    const alone = [];
    for (const rec of sets) alone.push(await evaluateReconstructions(gt, rec, { size: 36, networks }));
    const seen: RgbImages[] = [];
    const features = FeatureNetwork.prototype.features;
    vi.spyOn(FeatureNetwork.prototype, 'features').mockImplementation(function (this: FeatureNetwork, imgs: RgbImages) {
      seen.push(imgs);
      return features.call(this, imgs);
    });
    const evaluation = new Evaluation(gt, { size: 36, networks, threads: 1 });
    for (const [i, rec] of sets.entries()) {
      const got = await evaluation.evaluate(rec);
      expect(got.metrics.map((m) => m.name)).toEqual(['PixCorr', 'SSIM', 'Pixels(2WI)', 'ident', 'dist']);
      expect(got.metrics).toEqual(alone[i].metrics);
    }
    // 2 networks × (the ground truth once + 3 sets)
    expect(seen.filter((s) => s === gt)).toHaveLength(2);
    expect(seen.filter((s) => s !== gt)).toHaveLength(6);
    // (the sets differ: their identification and distances are not all equal)
    expect(new Set(alone.map((a) => a.metrics[4].value)).size).toBe(3);
  });

  it('reports its progress through a set: each metric, and each network pass by ONNX call; the ground truth at the first set only', async () => {
    const path = network();
    const gt = images(7, 24, 1);
    const events: { fraction: number; step: string }[] = [];
    const evaluation = new Evaluation(gt, {
      size: 24,
      networks: [{ name: 'net', path, inputSize: 16, metric: 'identification', batchSize: 3 }],
      onProgress: (p) => events.push(p),
    });
    await evaluation.evaluate(images(7, 24, 2));
    // (the pixel metrics' own events by image pair: every fraction below their step's end)
    const pairs = events.filter((e) => / \d+ of 7 images$/.test(e.step) && /^(PixCorr|SSIM) /.test(e.step));
    expect(pairs.length).toBeGreaterThan(0);
    for (const e of pairs) expect(e.fraction).toBeLessThan(e.step.startsWith('SSIM') ? 0.4 : 0.2);
    for (let i = 1; i < events.length; i++) expect(events[i].fraction).toBeGreaterThanOrEqual(events[i - 1].fraction);
    const first = events.splice(0).filter((e) => !pairs.includes(e));
    expect(first.map((e) => e.step)).toEqual([
      'PixCorr', 'SSIM', 'Pixels(2WI)',
      'net: ground truth 3 of 7 images', 'net: ground truth 6 of 7 images', 'net: ground truth 7 of 7 images',
      'net: reconstructions 3 of 7 images', 'net: reconstructions 6 of 7 images', 'net: reconstructions 7 of 7 images',
    ]);
    // 5 steps: 3 metrics, 2 passes
    expect(first.map((e) => Number(e.fraction.toFixed(4)))).toEqual([0.2, 0.4, 0.6, 0.6857, 0.7714, 0.8, 0.8857, 0.9714, 1].map((f) => Number(f.toFixed(4))));
    await evaluation.evaluate(images(7, 24, 3));
    events.splice(0, events.length, ...events.filter((e) => !/^(PixCorr|SSIM) \d+ of/.test(e.step)));
    expect(events.map((e) => e.step)).toEqual(['PixCorr', 'SSIM', 'Pixels(2WI)', 'net: reconstructions 3 of 7 images', 'net: reconstructions 6 of 7 images', 'net: reconstructions 7 of 7 images']);
    expect(events.map((e) => Number(e.fraction.toFixed(4)))).toEqual([0.25, 0.5, 0.75, 0.8571, 0.9643, 1].map((f) => Number(f.toFixed(4))));
    expect(() => new Evaluation(gt, { onProgress: 'yes' as never })).toThrow(new InvalidArgumentError('evaluate onProgress: expected a function, got string "yes"'));
  });

  it('refuses a threads option that is not an integer in 0..1024, naming it', async () => {
    const gt = images(2, 16, 1);
    expect(() => new Evaluation(gt, { threads: -1 })).toThrow(new InvalidArgumentError('evaluate threads: expected an integer in 0..1024, got -1'));
    await expect(evaluateReconstructions(gt, gt, { threads: 1.5 })).rejects.toThrow('evaluate threads: expected an integer in 0..1024, got 1.5');
    const spec = { name: 'demo', path: network(), inputSize: 32, metric: 'identification' as const };
    await expect(FeatureNetwork.open(spec, { threads: 2000 })).rejects.toThrow("FeatureNetwork.open 'demo' threads: expected an integer in 0..1024, got 2000");
    await expect(FeatureNetwork.open(spec, { thread: 1 } as never)).rejects.toThrow(/FeatureNetwork.open 'demo'.*thread/);
  });

  it("hands the threads to ONNX Runtime's session: 0, its own choice, unless given", async () => {
    const ort = await onnxruntimeNode('test');
    const create = vi.spyOn(ort.InferenceSession, 'create');
    const path = network();
    const gt = images(3, 16, 1);
    await evaluateReconstructions(gt, gt, { size: 16, networks: [{ name: 'a', path, inputSize: 16, metric: 'distance' }], threads: 3 });
    await evaluateReconstructions(gt, gt, { size: 16, networks: [{ name: 'a', path, inputSize: 16, metric: 'distance' }] });
    expect(create.mock.calls.map((c) => (c[1] as { intraOpNumThreads?: number }).intraOpNumThreads)).toEqual([3, 0]);
  });

  it('turns spinning off as BRAINLATENT_ORT_SPINNING says (a batch pool of several jobs sets 0), and refuses another value', async () => {
    const ort = await onnxruntimeNode('test');
    const create = vi.spyOn(ort.InferenceSession, 'create');
    const spec = { name: 'a', path: network(), inputSize: 16, metric: 'distance' as const };
    const spinningOf = () => (create.mock.calls.at(-1)![1] as { extra?: { session?: { intra_op?: { allow_spinning?: string } } } }).extra?.session?.intra_op?.allow_spinning;
    try {
      for (const [env, expected] of [['0', '0'], ['1', '1'], ['', undefined]] as const) {
        process.env.BRAINLATENT_ORT_SPINNING = env;
        await (await FeatureNetwork.open(spec)).dispose();
        expect(spinningOf(), `BRAINLATENT_ORT_SPINNING=${env}`).toBe(expected);
      }
      delete process.env.BRAINLATENT_ORT_SPINNING;
      await (await FeatureNetwork.open(spec)).dispose();
      expect(spinningOf()).toBeUndefined();
      process.env.BRAINLATENT_ORT_SPINNING = 'off';
      await expect(FeatureNetwork.open(spec)).rejects.toThrow('BRAINLATENT_ORT_SPINNING: expected 0 or 1');
    } finally {
      delete process.env.BRAINLATENT_ORT_SPINNING;
    }
  });
});

describe('FeatureNetwork.features', () => {
  it('gives, past several calls of a last partial batch, the rows of one call per image at any thread count', async () => {
    const spec = { name: 'demo', path: network(), inputSize: 32, metric: 'identification' as const, batchSize: 4 };
    const imgs = images(11, 45, 9);
    const one = await FeatureNetwork.open({ ...spec, batchSize: 1 }, { threads: 1 });
    const batched = await FeatureNetwork.open(spec);
    try {
      const all = await batched.features(imgs);
      expect([all.rows, all.cols]).toEqual([11, 16 * 4 * 4]);
      for (let i = 0; i < 11; i++) {
        const side = 45 * 45 * 3;
        const row = await one.features({ data: imgs.data.subarray(i * side, (i + 1) * side), count: 1, height: 45, width: 45 });
        expect(Array.from(all.data.subarray(i * all.cols, (i + 1) * all.cols)), `image ${i}`).toEqual(Array.from(row.data));
      }
      // (resized to the input side per call: the same as resizing the whole batch first)
      const pre = await batched.features(resizeImages(imgs, 32));
      expect(Array.from(pre.data)).toEqual(Array.from(all.data));
    } finally {
      await one.dispose();
      await batched.dispose();
    }
  });
});
