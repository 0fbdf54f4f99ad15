import { readFileSync, rmSync, utimesSync, writeFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelledError, FormatError, InvalidArgumentError, MissingFileError, ShapeError } from '../../ts/errors.js';
import { geometryFromAffine, niftiGeometry, readNifti, writeNifti } from '../../ts/io/nifti.js';
import { voxelToWorld } from '../../ts/io/niftiHeader.js';
import { extractionProblems, extractNsd, parseSessions } from '../../ts/nsd/extract.js';
import { maskGridMismatch } from '../../ts/nsd/grid.js';
import { nsdTrialTable, readNsdDesign } from '../../ts/nsd/expdesign.js';
import { readNsdExtraction, writeNsdExtraction } from '../../ts/nsd/output.js';
import { betasPath, expdesignPath, roiPath } from '../../ts/nsd/paths.js';
import { hasPython, runPython } from '../io/python.js';
import { makeMiniNsd } from './mini.js';

let mini: Awaited<ReturnType<typeof makeMiniNsd>>;
let root: string;
beforeAll(async () => {
  mini = await makeMiniNsd();
  root = mini.root;
});
afterAll(() => mini?.cleanup());

/** Count train/test trials and images the way Brain-Diffuser's prepare_nsddata.py does, in numpy. */
async function pythonSplitCounts(sessions: number, T: number): Promise<number[]> {
  const out = await runPython(
    `import sys, numpy as np, scipy.io as sio
d = sio.loadmat(sys.argv[1]); mo = d['masterordering'].ravel().astype(int); si = d['subjectim'].astype(int); sh = d['sharedix'].ravel().astype(int)
n = ${sessions} * ${T}
ids = si[0, mo[:n] - 1] - 1
test = np.isin(ids + 1, sh)
print(int((~test).sum()), int(test.sum()), len(np.unique(ids[~test])), len(np.unique(ids[test])))`,
    expdesignPath(root),
  );
  return out.trim().split(' ').map(Number);
}

describe('NSD extraction on the miniature NSD', () => {
  it('split counts match an independent count (scipy, BD formula) and the sessions default to those present', async () => {
    const ex = await extractNsd({ root, subject: 1, roi: 'nsdgeneral', averageTest: false });
    const c = ex.manifest.counts;
    expect(ex.manifest.inputs.sessions).toEqual([1, 2, 3]);
    expect(c.trainTrials + c.testTrials).toBe(180);
    expect(ex.train.rows).toBe(c.trainTrials);
    expect(ex.test.rows).toBe(c.testTrials);
    expect(ex.trainImageIds.length).toBe(ex.train.rows);
    if (hasPython('scipy', 'numpy')) {
      expect([c.trainTrials, c.testTrials, c.trainImages, c.testImages]).toEqual(await pythonSplitCounts(3, 60));
    }
    const design = await readNsdDesign(root);
    const shared = new Set(design.sharedix);
    expect(Array.from(ex.testImageIds).every((id) => shared.has(id))).toBe(true);
    expect(Array.from(ex.trainImageIds).some((id) => shared.has(id))).toBe(false);
    const reps = Object.entries(c.testRepetitions).reduce((a, [k, n]) => a + Number(k) * n, 0);
    expect(reps).toBe(c.testTrials);
  });

  it('values are the raw int16 ÷ 300 exactly, at the right voxel and trial, from .nii.gz and .hdf5 alike', async () => {
    const nii = await extractNsd({ root, subject: 1, roi: 'streams:early,ventral', format: 'nifti', averageTest: false });
    const h5 = await extractNsd({ root, subject: 1, roi: 'streams:early,ventral', format: 'hdf5', averageTest: false });
    expect(h5.train.data).toEqual(nii.train.data);
    expect(h5.test.data).toEqual(nii.test.data);
    const design = await readNsdDesign(root);
    const table = nsdTrialTable(design, 1, [1, 2, 3], 60);
    const [X, Y] = nii.manifest.grid;
    const raw = await Promise.all([1, 2, 3].map((s) => readNifti(betasPath(root, 1, s, 'nifti'))));
    const nVox = raw[0].data.length / 60;
    let trainRow = 0;
    for (let t = 0; t < table.imageId.length; t++) {
      if (table.test[t]) continue;
      const s = table.session[t] - 1;
      for (let j = 0; j < nii.train.cols; j += 7) {
        const [x, y, z] = [nii.voxels[3 * j], nii.voxels[3 * j + 1], nii.voxels[3 * j + 2]];
        const v = raw[s].data[table.position[t] * nVox + x + X * (y + Y * z)];
        expect(nii.train.data[trainRow * nii.train.cols + j]).toBe(Math.fround(v / 300));
      }
      expect(nii.trainImageIds[trainRow]).toBe(table.imageId[t]);
      trainRow++;
    }
  });

  it('averaging repetitions: one row per image in first-appearance order, the mean of its trials', async () => {
    const single = await extractNsd({ root, subject: 1, roi: 'streams:early', averageTest: false });
    const avg = await extractNsd({ root, subject: 1, roi: 'streams:early', averageTrain: true });
    const firstOrder = (ids: Int32Array) => [...new Set(ids)];
    expect(Array.from(avg.testImageIds)).toEqual(firstOrder(single.testImageIds));
    expect(Array.from(avg.trainImageIds)).toEqual(firstOrder(single.trainImageIds));
    const V = avg.test.cols;
    avg.testImageIds.forEach((id, r) => {
      const rows = [...single.testImageIds.keys()].filter((k) => single.testImageIds[k] === id);
      for (const j of [0, 5, V - 1]) {
        const mean = rows.reduce((a, k) => a + single.test.data[k * V + j], 0) / rows.length;
        expect(avg.test.data[r * V + j]).toBeCloseTo(mean, 5);
      }
    });
  });

  it('z-scoring with training statistics (ddof 1) and per session', async () => {
    const tr = await extractNsd({ root, subject: 1, roi: 'streams:ventral', zscore: 'train' });
    const { mean, sd } = colStats(tr.train.data, tr.train.rows, tr.train.cols, 1);
    for (let j = 0; j < tr.train.cols; j++) {
      expect(Math.abs(mean[j])).toBeLessThan(1e-5);
      expect(sd[j]).toBeCloseTo(1, 4);
    }
    const ses = await extractNsd({ root, subject: 1, roi: 'streams:ventral', zscore: 'session', averageTest: false });
    // Train and test rows of session 1 together have zero mean per voxel.
    const design = await readNsdDesign(root);
    const table = nsdTrialTable(design, 1, [1, 2, 3], 60);
    const V = ses.train.cols;
    const sum = new Float64Array(V);
    let tr0 = 0;
    let te0 = 0;
    for (let t = 0; t < 60; t++) {
      const src = table.test[t] ? ses.test.data.subarray(te0 * V, ++te0 * V) : ses.train.data.subarray(tr0 * V, ++tr0 * V);
      src.forEach((v, j) => (sum[j] += v));
    }
    sum.forEach((s) => expect(Math.abs(s / 60)).toBeLessThan(1e-4));
  });

  it('z-scoring conventions: ddof 0 is scikit-learn StandardScaler (Takagi & Nishimoto), ddof 1 Brain-Diffuser (the default)', async () => {
    const roi = 'streams:ventral';
    const raw = await extractNsd({ root, subject: 1, roi });
    const tn = await extractNsd({ root, subject: 1, roi, zscore: 'train', ddof: 0 });
    const bd = await extractNsd({ root, subject: 1, roi, zscore: 'train' });
    expect(tn.manifest.options.ddof).toBe(0);
    expect(bd.manifest.options.ddof).toBe(1);
    const { rows: n, cols: V } = raw.train;
    // float64 reference from the raw betas: mean and population SD of the training rows
    const { mean, sd: sd0 } = colStats(raw.train.data, n, V, 0);
    const check = (got: Float32Array, from: Float32Array, sd: (j: number) => number) => {
      let worst = 0;
      for (let i = 0; i < from.length; i++) {
        const j = i % V;
        worst = Math.max(worst, Math.abs(got[i] - (from[i] - mean[j]) / sd(j)));
      }
      return worst;
    };
    expect(check(tn.train.data, raw.train.data, (j) => sd0[j])).toBeLessThan(1e-4);
    expect(check(tn.test.data, raw.test.data, (j) => sd0[j])).toBeLessThan(1e-4);
    const k = Math.sqrt(n / (n - 1)); // sample SD = population SD · √(n / (n − 1))
    expect(check(bd.train.data, raw.train.data, (j) => sd0[j] * k)).toBeLessThan(1e-4);
    expect(check(bd.test.data, raw.test.data, (j) => sd0[j] * k)).toBeLessThan(1e-4);
    const rawFile = (name: string, a: Float32Array) => {
      const f = join(mini.tmp, name);
      writeFileSync(f, Buffer.from(a.buffer, a.byteOffset, a.byteLength));
      return f;
    };
    if (hasPython('numpy', 'sklearn')) {
      // scikit-learn's own StandardScaler, fitted on the raw training rows, applied to the test rows
      const out = await runPython(
        `import sys, json, numpy as np
from sklearn.preprocessing import StandardScaler
tr = np.fromfile(sys.argv[1], dtype=np.float32).reshape(${n}, ${V})
te = np.fromfile(sys.argv[2], dtype=np.float32).reshape(-1, ${V})
print(json.dumps(StandardScaler().fit(tr.astype(np.float64)).transform(te.astype(np.float64)).ravel().tolist()))`,
        rawFile('zs-train.f32', raw.train.data),
        rawFile('zs-test.f32', raw.test.data),
      );
      const sk = JSON.parse(out) as number[];
      expect(sk.length).toBe(tn.test.data.length);
      expect(Math.max(...sk.map((v, i) => Math.abs(v - tn.test.data[i])))).toBeLessThan(1e-4);
    }
    await expect(extractNsd({ root, subject: 1, roi, zscore: 'train', ddof: 2 as 0 })).rejects.toThrow(new InvalidArgumentError('extractNsd ddof: expected 0 or 1, got 2'));
  });

  it('refuses an unknown option (a misspelt averageTrain would otherwise extract single trials in silence)', async () => {
    const typo = { root, subject: 1, roi: 'nsdgeneral', averageTrian: true } as unknown as Parameters<typeof extractNsd>[0];
    await expect(extractNsd(typo)).rejects.toThrow(/extractNsd: unknown option 'averageTrian' \(did you mean 'averageTrain'\?\)/);
    const ddofName = { root, subject: 1, roi: 'nsdgeneral', zscore: 'train', zscoreDdof: 0 } as unknown as Parameters<typeof extractNsd>[0];
    await expect(extractNsd(ddofName)).rejects.toThrow(/unknown option 'zscoreDdof'.*known: .*ddof/);
  });

  it('region specs: labels by name and number, prf groups, user mask files', async () => {
    const streams = (await readNifti(roiPath(root, 1, 'streams'))).data;
    const count = (pred: (v: number) => boolean) => streams.filter(pred).length;
    const a = await extractNsd({ root, subject: 1, roi: 'streams:early' });
    const b = await extractNsd({ root, subject: 1, roi: 'streams:1' });
    expect(a.train.cols).toBe(count((v) => v === 1));
    expect(b.voxels).toEqual(a.voxels);
    const gen = await extractNsd({ root, subject: 1, roi: 'nsdgeneral' });
    expect(gen.train.cols).toBe(count((v) => v > 0));
    const prf = (await readNifti(roiPath(root, 1, 'prf-visualrois'))).data;
    const v1 = await extractNsd({ root, subject: 1, roi: 'prf-visualrois:V1' });
    expect(v1.train.cols).toBe(prf.filter((v) => v === 1 || v === 2).length);
    const userMask = join(mini.tmp, 'mine.nii.gz');
    const { header } = await readNifti(roiPath(root, 1, 'streams'));
    const mine = new Int16Array(streams.length);
    mine[streams.findIndex((v) => v === 5)] = 1;
    mine[streams.findLastIndex((v) => v === 1)] = 3;
    await writeNifti(userMask, { dims: header.dims, datatype: 'int16', ...niftiGeometry(header) }, mine);
    const u = await extractNsd({ root, subject: 1, roi: userMask });
    expect(u.train.cols).toBe(2);
  });

  it('the planted model is in the data: early/ventral betas follow the truth file', async () => {
    const truth = JSON.parse(readFileSync(mini.truthPath, 'utf8'));
    const ex = await extractNsd({ root, subject: 1, roi: 'streams:early,ventral', averageTrain: true });
    const feats = truth.features;
    const col = new Map<string, number>();
    for (let j = 0; j < ex.train.cols; j++) col.set(`${ex.voxels[3 * j]},${ex.voxels[3 * j + 1]},${ex.voxels[3 * j + 2]}`, j);
    let r = 0;
    const voxels = truth.subjects['1'].voxels;
    for (const v of voxels) {
      const j = col.get(`${v.x},${v.y},${v.z}`)!;
      const pred: number[] = [];
      const obs: number[] = [];
      ex.trainImageIds.forEach((id, row) => {
        const f = feats[v.space][id - 1];
        pred.push((v.features.reduce((a: number, k: number, i: number) => a + v.weights[i] * f[k], 0) - v.mean) / v.sd);
        obs.push(ex.train.data[row * ex.train.cols + j]);
      });
      r += corr(pred, obs);
    }
    expect(voxels.length).toBe(ex.train.cols);
    expect(r / voxels.length).toBeGreaterThan(0.6);
  });
});

describe('NSD cache', () => {
  it('writes on the first run, reloads on the second, and redoes after a source file changes', async () => {
    const cacheDir = join(mini.tmp, 'cache');
    const first = await extractNsd({ root, subject: 1, roi: 'streams:early', cacheDir });
    expect(first.fromCache).toBe(false);
    const second = await extractNsd({ root, subject: 1, roi: 'streams:early', cacheDir });
    expect(second.fromCache).toBe(true);
    expect(second.train).toEqual(first.train);
    expect(second.testImageIds).toEqual(first.testImageIds);
    expect(second.manifest.key).toBe(first.manifest.key);
    const other = await extractNsd({ root, subject: 1, roi: 'streams:early', cacheDir, zscore: 'train' });
    expect(other.fromCache).toBe(false);
    const f = betasPath(root, 1, 2, 'hdf5');
    utimesSync(f, new Date(), new Date(Date.now() + 5000));
    const third = await extractNsd({ root, subject: 1, roi: 'streams:early', cacheDir });
    expect(third.fromCache).toBe(false);
    expect(readdirSync(cacheDir).filter((d) => d.startsWith('.'))).toEqual([]);
  });

  it('nothing is cached when extraction fails part-way', async () => {
    const cacheDir = join(mini.tmp, 'cache-fail');
    const bad = betasPath(root, 1, 3, 'nifti');
    const copy = readFileSync(bad);
    writeFileSync(bad, copy.subarray(0, copy.length >> 1));
    try {
      await expect(extractNsd({ root, subject: 1, roi: 'streams:early', format: 'nifti', cacheDir })).rejects.toThrow(/betas_session03\.nii\.gz: .*truncated/);
      expect(existsSync(cacheDir) ? readdirSync(cacheDir) : []).toEqual([]);
    } finally {
      writeFileSync(bad, copy);
    }
  });

  it('an abort stops the extraction after the session being read: CancelledError, nothing cached', async () => {
    const cacheDir = join(mini.tmp, 'cache-abort');
    const ac = new AbortController();
    const done: number[] = [];
    const onProgress = (e: { done: number }) => {
      done.push(e.done);
      if (e.done === 1) ac.abort();
    };
    const run = extractNsd({ root, subject: 1, roi: 'streams:early', cacheDir, onProgress, signal: ac.signal });
    await expect(run).rejects.toThrow(new CancelledError('extractNsd: cancelled after 1 of 3 sessions; nothing written to the cache'));
    expect(done).toEqual([1]);
    expect(existsSync(cacheDir) ? readdirSync(cacheDir) : []).toEqual([]);
    // one aborted before the start reads no session; a signal that is not an AbortSignal is refused
    await expect(extractNsd({ root, subject: 1, roi: 'streams:early', onProgress, signal: ac.signal })).rejects.toThrow('cancelled after 0 of 3 sessions');
    expect(done).toEqual([1]);
    // the signal's reason is the cause, as in the engine's CancelledError (test/cancelCause.test.ts)
    await expect(extractNsd({ root, subject: 1, roi: 'streams:early', signal: ac.signal })).rejects.toHaveProperty('cause', ac.signal.reason);
    await expect(extractNsd({ root, subject: 1, roi: 'streams:early', signal: {} as AbortSignal })).rejects.toThrow(
      new InvalidArgumentError('extractNsd signal: expected an AbortSignal, got an object'),
    );
  });

  // (review C: a file given as the root was said not to exist)
  it('a root that is a file is named as one; a root that is not there as missing', async () => {
    const file = join(mini.tmp, 'root-is-a-file.npy');
    writeFileSync(file, 'x');
    const [p] = await extractionProblems({ root: file, subject: 1, roi: 'streams:early' });
    expect(p.option).toBe('root');
    expect(p.error).toBeInstanceOf(InvalidArgumentError);
    expect(p.error.message).toBe(`NSD root ${file} is a file, not a folder (expected the folder holding nsddata/ and nsddata_betas/)`);
    const [q] = await extractionProblems({ root: join(mini.tmp, 'no-root'), subject: 1, roi: 'streams:early' });
    expect(q.error).toBeInstanceOf(MissingFileError);
    expect(q.error.message).toBe(`NSD root ${join(mini.tmp, 'no-root')} does not exist (expected the folder holding nsddata/ and nsddata_betas/)`);
  });

  it('a cacheDir that is a file, or below one, is refused before any session is read', async () => {
    const file = join(mini.tmp, 'cache-is-a-file.npy');
    writeFileSync(file, 'x');
    let progress = 0;
    const onProgress = () => void progress++;
    await expect(extractNsd({ root, subject: 1, roi: 'streams:early', cacheDir: file, onProgress })).rejects.toThrow(
      new InvalidArgumentError(`extractNsd cacheDir: expected a folder for completed extractions, got ${file}, a file`),
    );
    await expect(extractNsd({ root, subject: 1, roi: 'streams:early', cacheDir: join(file, 'nsd'), onProgress })).rejects.toThrow(
      `extractNsd cacheDir: expected a folder for completed extractions, got ${join(file, 'nsd')}, which lies below ${file}, a file`,
    );
    expect(progress).toBe(0);
  });

  it('the output folder round-trips', async () => {
    const ex = await extractNsd({ root, subject: 1, roi: 'streams:early' });
    const dir = join(mini.tmp, 'out');
    await writeNsdExtraction(dir, ex);
    const back = await readNsdExtraction(dir);
    expect(back.train).toEqual(ex.train);
    expect(back.voxels).toEqual(ex.voxels);
    expect(back.manifest.counts).toEqual(ex.manifest.counts);
    // a manifest of a newer layout is refused naming the file, the field and the version read (review C #11's gap:
    // any version was read as this one)
    const manifest = join(dir, 'manifest.json');
    writeFileSync(manifest, JSON.stringify({ ...JSON.parse(readFileSync(manifest, 'utf8')), version: 2 }));
    const newer = (await readNsdExtraction(dir).catch((e: unknown) => e)) as FormatError;
    expect(newer).toBeInstanceOf(FormatError);
    expect(newer.message).toBe(
      `${manifest}: version 2; this brainlatent reads NSD extraction manifests of version 1 (the extraction was written by a newer brainlatent: extract again, or read it with that one)`,
    );
    expect(newer.field).toBe('version');
  });
});

describe('NSD bad input', () => {
  it('a missing session file names it', async () => {
    await expect(extractNsd({ root, subject: 1, roi: 'nsdgeneral', sessions: '1-4' })).rejects.toThrow(MissingFileError);
    await expect(extractNsd({ root, subject: 1, roi: 'nsdgeneral', sessions: '1-4', format: 'nifti' })).rejects.toThrow(
      /session 4: betas file not found \(looked for .*betas_session04\.nii\.gz\)/,
    );
    await expect(extractNsd({ root, subject: 2, roi: 'nsdgeneral' })).rejects.toThrow(/^subject 2 has no betas in .* \(format 'auto': looked for .*subj02.*betas_session01\.hdf5 and the other sessions 1-37\); the root has betas for subject 1$/);
  });

  it('sessions asked for that have no betas are listed with the sessions that have', async () => {
    await expect(extractNsd({ root, subject: 1, roi: 'nsdgeneral', sessions: '1-37' })).rejects.toThrow(
      /session 4: betas file not found \(.*\); of the sessions asked for \(1-37\), 4-37 have no betas \(format 'auto'\); sessions with betas for subject 1: 1-3$/,
    );
    await expect(extractNsd({ root, subject: 1, roi: 'nsdgeneral', sessions: [2, 5] })).rejects.toThrow(/\(2, 5\), 5 has no betas .*: 1-3$/);
  });

  it('a region with no voxel, an unknown label, a mask on another grid', async () => {
    await expect(extractNsd({ root, subject: 1, roi: 'streams:9' })).rejects.toThrow(/streams\.nii\.gz labels 9: the mask has no voxel in the region/);
    await expect(extractNsd({ root, subject: 1, roi: 'streams:nowhere' })).rejects.toThrow(/no label "nowhere" in streams; known labels: .*early/);
    const other = join(mini.tmp, 'other-grid.nii.gz');
    await writeNifti(other, { dims: [10, 10, 10], datatype: 'uint8' }, new Uint8Array(1000).fill(1));
    await expect(extractNsd({ root, subject: 1, roi: other })).rejects.toThrow(ShapeError);
    const betas = betasPath(root, 1, 1, 'nifti');
    await expect(extractNsd({ root, subject: 1, roi: other, format: 'nifti' })).rejects.toThrow(
      `roi: the mask ${other} is on a 10×10×10 grid but subject 1's betas (${betas}) are on 20×24×16; expected a mask on the subject's grid`,
    );
  });

  // A mask with the subject's dimensions but another affine passed, and encode's maps took its geometry (2 mm
  // voxels for NSD's 1.8 mm): the affine (sform, else qform) must put every voxel within 1e-3 mm of the subject's.
  it("a mask with the subject's dimensions but another affine, from its sform or its qform; the same grid passes", async () => {
    const { header, data } = await readNifti(roiPath(root, 1, 'nsdgeneral'));
    const subject = voxelToWorld(header); // the synthetic subject: 1.8 mm voxels, centred
    expect(subject[0][0]).toBeCloseTo(1.8, 6);
    const scaled = subject.map((r) => [r[0] * (2 / 1.8), r[1] * (2 / 1.8), r[2] * (2 / 1.8), r[3]]);
    const mask = (name: string, g: object) => {
      const p = join(mini.tmp, name);
      return writeNifti(p, { dims: header.dims, datatype: 'int16', ...g }, Int16Array.from(data, (v) => (v > 0 ? 1 : 0))).then(() => p);
    };
    const other = await mask('other-affine.nii.gz', geometryFromAffine([...scaled, [0, 0, 0, 1]]));
    // the far corner, voxel (19, 23, 15): 0.2 mm × its index further along each axis
    const shift = Math.hypot(19 * 0.2, 23 * 0.2, 15 * 0.2).toPrecision(3);
    const [X, Y, Z] = header.dims;
    const said = (file: string, method: string, source: string) =>
      `roi: the mask ${file} has the ${X}×${Y}×${Z} dimensions of subject 1's betas (${source}) but another voxel-to-world affine: ` +
      `[2 0 0 ${+subject[0][3].toFixed(4)}; 0 2 0 ${+subject[1][3].toFixed(4)}; 0 0 2 ${+subject[2][3].toFixed(4)}] (its ${method}) against ` +
      `[1.8 0 0 ${+subject[0][3].toFixed(4)}; 0 1.8 0 ${+subject[1][3].toFixed(4)}; 0 0 1.8 ${+subject[2][3].toFixed(4)}]`;
    // NIfTI betas carry their own affine; HDF5 betas none, so a NIfTI of the subject on that grid stands in
    const nii = betasPath(root, 1, 1, 'nifti'), h5 = betasPath(root, 1, 1, 'hdf5');
    await expect(extractNsd({ root, subject: 1, roi: other, format: 'nifti' })).rejects.toThrow(
      `${said(other, 'sform', nii)} (the betas' sform); its voxels lie up to ${shift} mm from the subject's; expected a mask on the subject's grid`,
    );
    await expect(extractNsd({ root, subject: 1, roi: other, format: 'hdf5' })).rejects.toThrow(
      `${said(other, 'sform', h5)} (the sform of ${roiPath(root, 1, 'nsdgeneral')}, as HDF5 betas carry no affine); its voxels lie up to ${shift} mm`,
    );
    // sform code 0: the qform is the affine
    const qOther = await mask('qform-other.nii.gz', { ...geometryFromAffine([...scaled, [0, 0, 0, 1]]), sformCode: 0 });
    await expect(extractNsd({ root, subject: 1, roi: qOther, format: 'nifti' })).rejects.toThrow(said(qOther, 'qform', nii));
    const qSame = await mask('qform-same.nii.gz', { ...niftiGeometry(header), sformCode: 0, srow: [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]] });
    const ref = await extractNsd({ root, subject: 1, roi: 'nsdgeneral', format: 'nifti' });
    expect((await extractNsd({ root, subject: 1, roi: qSame, format: 'nifti' })).voxels).toEqual(ref.voxels);
    // half a voxel off: refused; 1e-4 mm off (float32 rounding of another writer): the same grid
    const moved = (d: number) => mask(`moved-${d}.nii.gz`, geometryFromAffine([...subject.map((r, i) => (i === 0 ? [r[0], r[1], r[2], r[3] + d] : r)), [0, 0, 0, 1]]));
    await expect(extractNsd({ root, subject: 1, roi: await moved(0.9), format: 'hdf5' })).rejects.toThrow(/its voxels lie up to 0\.900 mm from the subject's/);
    expect((await extractNsd({ root, subject: 1, roi: await moved(1e-4), format: 'hdf5' })).voxels).toEqual(ref.voxels);
    // no orientation at all (sform and qform codes 0): where its voxels are cannot be told
    const bare = await mask('bare.nii.gz', {});
    await expect(extractNsd({ root, subject: 1, roi: bare, format: 'nifti' })).rejects.toThrow(/\(its voxel sizes \(no sform or qform\)\) against/);
    // NSD's own atlases are the subject's files: their dimensions are checked, their affines taken as the subject's
    const region = { mask: { grid: [X, Y, Z] as [number, number, number] }, path: other, header: geometryFromAffine([...scaled, [0, 0, 0, 1]]) };
    const betas = { grid: [X, Y, Z] as [number, number, number], betasFile: nii, affine: { affine: subject, method: 'sform', file: nii } };
    expect(maskGridMismatch({ ...region, kind: 'atlas' }, betas, 'roi', 1)).toBeNull();
    expect(maskGridMismatch({ ...region, kind: 'file' }, betas, 'roi', 1)).toMatch(/another voxel-to-world affine/);
    expect(maskGridMismatch({ ...region, kind: 'file' }, { ...betas, affine: null }, 'roi', 1)).toBeNull(); // not known: dimensions only
  });

  it('bad options', async () => {
    expect(() => parseSessions('3-1')).toThrow(new InvalidArgumentError('sessions: range "3-1" runs backwards; a range goes from the lower session to the higher (1-3)'));
    expect(() => parseSessions(' , ')).toThrow(new InvalidArgumentError('sessions: " , " names no session; expected numbers and ranges such as "1-37" or "1-10,12"'));
    expect(parseSessions('1-3,7,2')).toEqual([1, 2, 3, 7]);
    // every option's error in one form, '<call> <option>: expected …, got …'; an explicit null is no default
    const nul = null as never;
    const cases: [Partial<Parameters<typeof extractNsd>[0]>, string][] = [
      [{ root: '' }, 'extractNsd root: expected the NSD folder (a path), got string ""'],
      [{ subject: 9 }, 'extractNsd subject: expected an integer in 1..8, got 9'],
      [{ subject: 1.5 }, 'extractNsd subject: expected an integer in 1..8, got 1.5'],
      [{ zscore: 'weird' as 'none' }, "extractNsd zscore: expected one of session, train, none, got 'weird'"],
      [{ zscore: nul }, 'extractNsd zscore: expected one of session, train, none, got null'],
      [{ ddof: nul }, 'extractNsd ddof: expected 0 or 1, got null'],
      [{ format: 'npy' as 'auto' }, "extractNsd format: expected one of auto, nifti, hdf5, got 'npy'"],
      [{ format: nul }, 'extractNsd format: expected one of auto, nifti, hdf5, got null'],
      [{ divisor: 0 }, 'extractNsd divisor: expected a finite number > 0, got 0'],
      [{ divisor: nul }, 'extractNsd divisor: expected a finite number > 0, got null'],
      [{ concurrency: nul }, 'extractNsd concurrency: expected an integer in 1..64, got null'],
      [{ sessions: [0, 3] }, 'extractNsd sessions: expected integers from 1 to 999 (NSD\'s run to 40) or a spec such as "1-37", got [0, 3]'],
      [{ sessions: nul }, 'extractNsd sessions: expected integers from 1 to 999 (NSD\'s run to 40) or a spec such as "1-37", got null'],
      [{ sessions: '3-1' }, 'extractNsd sessions: range "3-1" runs backwards; a range goes from the lower session to the higher (1-3)'],
    ];
    for (const [bad, message] of cases) {
      await expect(extractNsd({ root, subject: 1, roi: 'nsdgeneral', ...bad }), message).rejects.toThrow(new InvalidArgumentError(message));
    }
  });

  it('concurrency is bounded (1e9 spun the start loop for seconds, MAX_SAFE_INTEGER for ever); a count above the sessions reads them all', async () => {
    for (const bad of [1e9, Number.MAX_SAFE_INTEGER, 65, 0, 2.5]) {
      await expect(extractNsd({ root, subject: 1, roi: 'streams:early', concurrency: bad })).rejects.toThrow(
        new InvalidArgumentError(`extractNsd concurrency: expected an integer in 1..64, got ${bad}`),
      );
    }
    const wide = await extractNsd({ root, subject: 1, roi: 'streams:early', concurrency: 64 });
    const one = await extractNsd({ root, subject: 1, roi: 'streams:early', concurrency: 1 });
    expect(wide.train.data).toEqual(one.train.data);
  });

  it('a session beyond the design', async () => {
    const design = await readNsdDesign(root);
    expect(() => nsdTrialTable(design, 1, [5], 60)).toThrow(/session 5 is beyond the design: .* 4 sessions of 60/);
  });

  it('betas whose trials per session do not divide the design are refused, naming the file (not read as other images)', async () => {
    const design = await readNsdDesign(root);
    // the design's 240 trials are 4 sessions of 60: a 59-trial file read every session past the first off by one trial
    expect(() => nsdTrialTable(design, 1, [1], 59, '/x/betas_session01.hdf5')).toThrow(
      /\/x\/betas_session01\.hdf5 has 59 trials per session, but .* lists 240 trials, not a whole number of sessions of 59 .* the betas do not match the design/,
    );
    expect(() => nsdTrialTable(design, 1, [1], 61)).toThrow(/the betas files have 61 trials per session, but .* lists 240 trials/);
    expect(nsdTrialTable(design, 1, [1, 2], 60).imageId.length).toBe(120);
  });
});

function colStats(data: Float32Array, rows: number, cols: number, ddof: number) {
  const mean = new Float64Array(cols);
  const sd = new Float64Array(cols);
  for (let r = 0; r < rows; r++) for (let j = 0; j < cols; j++) mean[j] += data[r * cols + j] / rows;
  for (let r = 0; r < rows; r++) for (let j = 0; j < cols; j++) sd[j] += (data[r * cols + j] - mean[j]) ** 2;
  sd.forEach((s, j) => (sd[j] = Math.sqrt(s / (rows - ddof))));
  return { mean, sd };
}

function corr(a: number[], b: number[]): number {
  const ma = a.reduce((x, y) => x + y, 0) / a.length;
  const mb = b.reduce((x, y) => x + y, 0) / b.length;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < a.length; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}
