#!/usr/bin/env node
// The measurement behind RECOMMENDED_SAMPLES (ts/bench/samplersOptions.ts; docs/sampler.md "Choosing --samples"):
// at each --samples n, exact sampling's sliced W2 (64 exact sets, as `bench samplers`) against three samplers at 20
// steps, each scored on disjoint blocks of n of its 512 samples (block 0 is what the bench itself scores at n).
// Samples are generated as ts/bench/samplers.ts does: the demo world, trailing spacing, set_alpha_to_one, z = 0 at
// strength 1, c = 0, guidance 1, Philox seeds 77. Needs `node scripts/compile-ts.mjs` first (it imports dist/).
//   node scripts/bench-samples-calibration.mjs [--cache DIR] [n …]     (default n: 16 32 64 128 256 512; ~6 min)
import { existsSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

const dist = new URL('../dist/', import.meta.url);
const { buildDemoWorld } = await import(new URL('demo/world.js', dist));
const { Diffusion } = await import(new URL('sd/Diffusion.js', dist));
const { readMixture, mixtureWeights } = await import(new URL('bench/samplerWorld.js', dist));
const { DistributionScorer } = await import(new URL('bench/samplerDistribution.js', dist));
const { pairedSe, sampleSd } = await import(new URL('bench/mixtureSlicedW2.js', dist));
const { SAMPLES_SEED } = await import(new URL('bench/samplersResult.js', dist));

const args = process.argv.slice(2);
const at = args.indexOf('--cache');
const cache = at >= 0 ? args.splice(at, 2)[1] : join(os.tmpdir(), 'brainlatent-bench-world');
const sizes = args.length ? args.map(Number) : [16, 32, 64, 128, 256, 512];
const N = Math.max(...sizes);
const modelDir = join(cache, 'model');
// the same world as `bench samplers` builds into its cache
if (!existsSync(join(modelDir, 'unet', 'model.onnx'))) await buildDemoWorld({ out: cache, imageSize: 64, sessions: 4, trialsPerSession: 48, testImages: 8 });
const mix = await readMixture(modelDir);
const sd = await Diffusion.load(modelDir, { intraOpThreads: 1 });
const textDim = sd.info.condDim > 0 ? sd.info.condDim : 768;
const sdT = await Diffusion.load(modelDir, { intraOpThreads: 1, schedule: { ...sd.schedule, timestepSpacing: 'trailing', setAlphaToOne: true } });
const d = mix.d;
const side = Math.round(Math.sqrt(d / 4));
const w = mixtureWeights(mix, new Float32Array(77 * textDim), 77);
const runs = [['dpmpp2m-sde', 20], ['euler-ancestral', 20], ['ddim', 20]];
const samples = [];
try {
  for (const [scheduler, steps] of runs) {
    const r = await sdT.img2img({
      strength: 1, guidance: 1, scheduler, steps, batchSize: 64, seeds: SAMPLES_SEED,
      z: { data: new Float32Array(N * d), shape: [N, 4, side, side] },
      c: { data: new Float32Array(N * 77 * textDim), shape: [N, 77, textDim] },
    });
    samples.push(Float64Array.from(r.latents.data));
  }
} finally {
  sdT.dispose();
  sd.dispose();
}
const mean = (v) => v.reduce((a, x) => a + x, 0) / v.length;
const f = (x) => (Number.isFinite(x) ? x.toFixed(3) : '—');
const names = runs.map(([s, n]) => `${s} ${n}`);
for (const n of sizes) {
  const scorer = new DistributionScorer(mix, w, n);
  const exact = scorer.exactSampling();
  const blocks = Math.min(16, Math.floor(N / n));
  const scores = samples.map((x) => Array.from({ length: blocks }, (_, j) => scorer.score(x.subarray(j * n * d, (j + 1) * n * d))));
  const out = [`n ${n}: exact sampling ${f(exact.slicedW2.mean)} ± ${f(exact.slicedW2.sd)} (mean ± SD of ${exact.sets} sets)`];
  scores.forEach((sc, k) => {
    const v = sc.map((s) => s.slicedW2);
    out.push(`${names[k]}: block 0 ${f(v[0])} ± ${f(sc[0].slicedW2Se)}; ${blocks} blocks mean ${f(mean(v))}, SD ${f(sampleSd(v))}`);
  });
  for (let k = 1; k < runs.length; k++) {
    const dv = scores[k].map((s, j) => s.slicedW2 - scores[0][j].slicedW2);
    out.push(`${names[k]} − ${names[0]}: block 0 ${f(dv[0])} ± ${f(pairedSe(scores[k][0].replicates, scores[0][0].replicates))} (paired SE); blocks mean ${f(mean(dv))}`);
  }
  console.log(out.join('\n  '));
}
