// Runs inside a fresh consumer project that installed the packed tarball (scripts/consumer-check.mjs):
// everything through `import ... from 'brainlatent'`, as a user's service would. Each check asserts
// real values; the figures go to results.json so the driver can compare a prebuilt and a source build.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { buildInfo, CancelledError, Diffusion, readNifti, RidgeCV, runDemo, writeNifti, writeSdFixture } from 'brainlatent';

const work = mkdtempSync(join(tmpdir(), 'bl-consumer-'));
const results = {};

// Where the engine came from (a prebuild, or a source build in build/Release).
const info = buildInfo();
results.engine = info;
console.log(`engine: ${JSON.stringify(info)}`);

// A .nii.gz written and read back: through ISA-L's inflate where libisal.so.2 is installed (info.gunzip), else zlib.
{
  const vol = Int16Array.from({ length: 20 * 16 * 12 * 9 }, (_, i) => ((i * 7919) % 2001) - 1000);
  const file = join(work, 'vol.nii.gz');
  await writeNifti(file, { dims: [20, 16, 12, 9], datatype: 'int16' }, vol);
  const back = await readNifti(file);
  assert.deepEqual(Array.from(back.data.subarray(0, 50)), Array.from(vol.subarray(0, 50)));
  assert.equal(back.data.length, vol.length);
  for (let i = 0; i < vol.length; i++) if (back.data[i] !== vol[i]) assert.fail(`vol.nii.gz value ${i}: ${back.data[i]}, expected ${vol[i]}`);
  results.gunzip = info.gunzip;
  console.log(`nifti .gz round trip ok; gunzip: ${info.gunzip.available ? `ISA-L ${info.gunzip.version}` : `zlib (${info.gunzip.reason})`}`);
}

// Seeded data: y = x·w + noise.
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
  };
}
function planted(n, p, t, seed) {
  const r = rng(seed);
  const x = new Float32Array(n * p).map(() => r());
  const w = new Float64Array(p * t).map(() => r());
  const y = new Float32Array(n * t);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < t; k++) {
      let s = 0.3 * r();
      for (let j = 0; j < p; j++) s += x[i * p + j] * w[j * t + k];
      y[i * t + k] = s;
    }
  return { x: { data: x, rows: n, cols: p }, y: { data: y, rows: n, cols: t } };
}

// 1. RidgeCV: fit, then check the coefficients against a float64 ridge solve at each chosen alpha.
{
  const { x, y } = planted(120, 10, 6, 1);
  const model = await new RidgeCV({ alphas: [0.01, 1, 100], folds: 4 }).fit(x, y);
  const n = x.rows, p = x.cols, t = y.cols;
  const mean = (m, j) => { let s = 0; for (let i = 0; i < n; i++) s += m.data[i * m.cols + j]; return s / n; };
  const xm = Array.from({ length: p }, (_, j) => mean(x, j));
  const ym = Array.from({ length: t }, (_, k) => mean(y, k));
  let worst = 0;
  for (let k = 0; k < t; k++) {
    const alpha = model.bestAlphas[k];
    // (XcᵀXc + αI) w = Xcᵀyc by Gaussian elimination in float64
    const a = Array.from({ length: p }, () => new Float64Array(p + 1));
    for (let i = 0; i < n; i++)
      for (let j = 0; j < p; j++) {
        const xij = x.data[i * p + j] - xm[j];
        for (let l = 0; l < p; l++) a[j][l] += xij * (x.data[i * p + l] - xm[l]);
        a[j][p] += xij * (y.data[i * t + k] - ym[k]);
      }
    for (let j = 0; j < p; j++) a[j][j] += alpha;
    for (let c = 0; c < p; c++)
      for (let r = c + 1; r < p; r++) {
        const f = a[r][c] / a[c][c];
        for (let l = c; l <= p; l++) a[r][l] -= f * a[c][l];
      }
    const w = new Float64Array(p);
    for (let r = p - 1; r >= 0; r--) {
      let s = a[r][p];
      for (let l = r + 1; l < p; l++) s -= a[r][l] * w[l];
      w[r] = s / a[r][r];
    }
    for (let j = 0; j < p; j++) worst = Math.max(worst, Math.abs(model.coef.data[j * t + k] - w[j]) / Math.max(1, Math.abs(w[j])));
  }
  assert.ok(worst < 1e-4, `RidgeCV coefficients differ from the float64 solve by ${worst}`);
  const pred = model.predict(x);
  assert.equal(pred.rows, n);
  assert.equal(pred.cols, t);
  let ss = 0, st = 0;
  for (let i = 0; i < n * t; i++) { ss += (pred.data[i] - y.data[i]) ** 2; st += (y.data[i] - ym[i % t]) ** 2; }
  const r2 = 1 - ss / st;
  assert.ok(r2 > 0.9, `training R² ${r2}`);
  results.ridge = { bestAlphas: Array.from(model.bestAlphas), coefError: worst, trainR2: r2 };
  console.log(`ridge: coefficients match the float64 solve (max rel. error ${worst.toExponential(2)}), training R² ${r2.toFixed(4)}`);
}

// 2. Cancelling a fit with an AbortController, once it has started and before it starts.
{
  const { x, y } = planted(600, 400, 800, 2);
  const ac = new AbortController();
  let progressSeen = 0;
  const fit = new RidgeCV({ alphas: [1, 10, 100], targetBatch: 10 }).fit(x, y, {
    signal: ac.signal,
    onProgress: () => {
      progressSeen++;
      ac.abort(); // at the first progress report: the fit has started on the worker thread
    },
  });
  await assert.rejects(fit, CancelledError);
  assert.ok(progressSeen > 0, 'the fit reported progress before it was cancelled');
  const aborted = new AbortController();
  aborted.abort();
  await assert.rejects(new RidgeCV().fit(x, y, { signal: aborted.signal }), CancelledError);
  console.log('ridge: a fit aborted mid-way and one aborted before it started both reject with CancelledError');
}

// 2b. The ridge engine alone (`brainlatent/ridge`, the subpath export): the main entry's own classes.
{
  const ridgeOnly = await import('brainlatent/ridge');
  assert.equal(ridgeOnly.RidgeCV, RidgeCV);
  assert.equal(ridgeOnly.CancelledError, CancelledError);
  const { x, y } = planted(60, 5, 3, 3);
  const model = await new ridgeOnly.RidgeCV({ alphas: [1, 10] }).fit(x, y);
  assert.equal(model.nTargets, 3);
  assert.ok(typeof ridgeOnly.BandedRidgeCV === 'function' && typeof ridgeOnly.BandedRidgeModel === 'function');
  console.log("ridge: import('brainlatent/ridge') fits, and its classes are the main entry's");
}

// 3. img2img on a generated SD-layout fixture model, through the engine's ONNX Runtime.
{
  const dir = join(work, 'sd-fixture');
  await writeSdFixture(dir);
  const sd = await Diffusion.load(dir, { intraOpThreads: 1 });
  try {
    const count = 2, h = 32, w = 32;
    const data = new Uint8Array(count * h * w * 3).map((_, i) => (i * 37 + ((i / 97) | 0) * 11) % 256);
    const z = await sd.encodeImages({ data, count, height: h, width: w });
    const c = await sd.encodeText(['a photo of the cat', 'an image of the brain']);
    const uncond = await sd.encodeText(['']);
    const job = { z, c, uncond, guidance: 5, steps: 10, strength: 0.8, scheduler: 'ddim', seeds: 42 };
    const one = await sd.img2img({ ...job, batchSize: 1 });
    const two = await sd.img2img({ ...job, batchSize: 2 });
    assert.equal(one.latents.data.length, z.data.length);
    assert.ok(one.latents.data.every(Number.isFinite), 'img2img latents are finite');
    let diff = 0, moved = 0;
    for (let i = 0; i < one.latents.data.length; i++) {
      diff = Math.max(diff, Math.abs(one.latents.data[i] - two.latents.data[i]));
      moved = Math.max(moved, Math.abs(one.latents.data[i] - z.data[i]));
    }
    assert.ok(diff < 1e-5, `img2img differs between batch sizes 1 and 2 by ${diff}`);
    assert.ok(moved > 1e-3, 'img2img changed the latents');
    assert.equal(one.stats.unetCalls, 8 * 2);
    const images = await sd.decode(one.latents);
    assert.equal(images.count, count);
    results.img2img = { ort: sd.runtime?.version ?? null, latents: Array.from(one.latents.data.subarray(0, 16)), batchDiff: diff };
    console.log(`img2img: 2 images, 8 DDIM steps with guidance; batch size 1 and 2 agree to ${diff.toExponential(2)}`);
  } finally {
    sd.dispose();
  }
}

// 4. A tiny reconstruction: the demo world (miniature NSD, closed-form SD-layout models) end to end.
{
  const out = join(work, 'demo');
  const demo = await runDemo({ out, testImages: 12, seeds: 1, steps: 10 });
  const m = demo.run.metrics;
  assert.ok(m, 'the run has metrics');
  assert.ok(m.final.PixCorr > m.zonly.PixCorr, `img2img improves PixCorr (${m.zonly.PixCorr} → ${m.final.PixCorr})`);
  assert.ok(m.final['Pixels(2WI)'] >= 0.8, `final pixel 2WI ${m.final['Pixels(2WI)']}`);
  results.reconstruction = { zonly: m.zonly, final: m.final };
  console.log(`reconstruction: PixCorr z-only ${m.zonly.PixCorr.toFixed(3)} → final ${m.final.PixCorr.toFixed(3)}, pixel 2WI ${(100 * m.final['Pixels(2WI)']).toFixed(1)} %`);
}

writeFileSync(process.argv[2] ?? 'results.json', JSON.stringify(results, null, 2));
rmSync(work, { recursive: true, force: true });
console.log('consumer checks passed');
