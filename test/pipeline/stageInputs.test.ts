/**
 * A stage's marker records the files it read from outside the run folder (a feature file, the model folder, the
 * atlases): a file overwritten since, or a model folder replaced, reruns that stage and what depends on it, and the
 * dry run says why. The config hash (the run folder's identity) still names only their paths.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { EncodeConfigInput } from '../../ts/config/encode.js';
import { resolveEncodeConfig } from '../../ts/config/encode.js';
import { buildDemoWorld } from '../../ts/demo/world.js';
import { featureNetworkModel } from '../../ts/demo/models.js';
import { encode, encodeStages } from '../../ts/encoding/encode.js';
import { identityChange, inputIdentities } from '../../ts/io/fileIdentity.js';
import { readNifti, readNiftiHeader, writeNifti } from '../../ts/io/nifti.js';
import { readNpy, writeNpy } from '../../ts/io/npy.js';
import { nsdTrialTable, readNsdDesign } from '../../ts/nsd/expdesign.js';
import { betasDir, betasPath, roiPath } from '../../ts/nsd/paths.js';
import { planNsdSessions } from '../../ts/nsd/sessionPlan.js';
import { configHash, resolveConfig, type ReconstructConfig, type ReconstructConfigInput } from '../../ts/pipeline/config.js';
import { markStage, stageState } from '../../ts/pipeline/runFolder.js';
import { reconstruct } from '../../ts/pipeline/reconstruct.js';
import { reconstructStageInputs } from '../../ts/pipeline/stageInputs.js';
import { synthNsd, type SynthNsdResult } from '../../ts/synth/nsd.js';
import { unetDeclaredSizes } from '../../ts/sd/onnxSignature.js';
import { externalize } from '../helpers/externalData.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-stage-inputs-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Moves a file's modification time on, as a rewrite a second later would. */
const later = (path: string, seconds = 10) => {
  const t = Date.now() / 1000 + seconds;
  utimesSync(path, t, t);
};

describe('stage markers: the files a stage read', () => {
  const config = { out: join(tmp, 'run') } as ReconstructConfig;
  const feat = join(tmp, 'feat.npy');
  const model = join(tmp, 'model');

  it('a file changed since the stage ran (same size, new mtime), one added to or removed from a folder, reruns it, saying why', async () => {
    mkdirSync(join(config.out, 'stages'), { recursive: true });
    writeFileSync(join(config.out, 'out.npy'), 'x');
    writeFileSync(feat, 'features 1');
    mkdirSync(join(model, 'unet'), { recursive: true });
    writeFileSync(join(model, 'unet', 'model.onnx'), 'unet');
    const inputs = [feat, model];
    await markStage(config, { stage: 'fit.f', seconds: 1, outputs: ['out.npy'], inputs: await inputIdentities(inputs) });
    expect(await stageState(config, 'fit.f', inputs)).toEqual({ done: true });
    writeFileSync(feat, 'features 2');
    later(feat);
    expect(await stageState(config, 'fit.f', inputs)).toEqual({ done: false, why: `${resolve(feat)} changed since it ran` });
    await markStage(config, { stage: 'fit.f', seconds: 1, outputs: ['out.npy'], inputs: await inputIdentities(inputs) });
    expect((await stageState(config, 'fit.f', inputs)).done).toBe(true);
    writeFileSync(join(model, 'unet', 'weights.pb'), 'w');
    expect(await stageState(config, 'fit.f', inputs)).toEqual({ done: false, why: `${join(resolve(model), 'unet', 'weights.pb')} is new since it ran` });
    rmSync(join(model, 'unet', 'weights.pb'));
    await markStage(config, { stage: 'fit.f', seconds: 1, outputs: ['out.npy'], inputs: await inputIdentities(inputs) });
    rmSync(join(model, 'unet', 'model.onnx'));
    expect((await stageState(config, 'fit.f', inputs)).why).toBe(`${join(resolve(model), 'unet', 'model.onnx')} is gone since it ran`);
    rmSync(model, { recursive: true });
    expect((await stageState(config, 'fit.f', inputs)).why).toBe(`${resolve(model)} is gone since it ran`);
    // a path that was missing when the stage ran and is there now
    await markStage(config, { stage: 'fit.f', seconds: 1, outputs: ['out.npy'], inputs: await inputIdentities(inputs) });
    expect((await stageState(config, 'fit.f', inputs)).done).toBe(true);
    mkdirSync(model);
    writeFileSync(join(model, 'model_index.json'), '{}');
    expect((await stageState(config, 'fit.f', inputs)).why).toBe(`${join(resolve(model), 'model_index.json')} is new since it ran`);
  });

  it('a marker written before inputs were recorded is taken as it was; other reasons are named too', async () => {
    const marker = JSON.parse(readFileSync(join(config.out, 'stages', 'fit.f.json'), 'utf8'));
    const { inputs: _, ...old } = marker;
    writeFileSync(join(config.out, 'stages', 'fit.f.json'), JSON.stringify(old));
    expect(await stageState(config, 'fit.f', [feat])).toEqual({ done: true });
    rmSync(join(config.out, 'out.npy'));
    expect(await stageState(config, 'fit.f', [feat])).toEqual({ done: false, why: 'out.npy is missing' });
    expect(await stageState(config, 'fit.never', [feat])).toEqual({ done: false });
  });

  it('identities: the same files give the same list; a folder is walked in order, its files named', async () => {
    const dir = join(tmp, 'walk');
    mkdirSync(join(dir, 'b'), { recursive: true });
    writeFileSync(join(dir, 'b', 'y'), 'y');
    writeFileSync(join(dir, 'a'), 'a');
    const ids = await inputIdentities([dir, join(tmp, 'absent')]);
    expect(ids.map((e) => e.path)).toEqual([join(dir, 'a'), join(dir, 'b', 'y'), join(tmp, 'absent')]);
    expect(ids[2]).toEqual({ path: join(tmp, 'absent'), missing: true });
    expect(await inputIdentities([dir, join(tmp, 'absent')])).toEqual(ids);
    expect(identityChange(ids, ids)).toBeNull();
  });
});

describe('reconstruct: the stages that read the model and the NSD files', () => {
  it('features reads the model folder, the stimuli and the captions; extract the design, the betas and both regions', async () => {
    const c = resolveConfig({ out: '/runs/r', nsd: { root: '/nsd', subject: 2 }, model: { dir: '/models/sd' }, decoders: { z: { roi: 'streams:early' }, c: { roi: '/masks/ventral.nii.gz' } } });
    const features = await reconstructStageInputs(c, 'features');
    expect(features[0]).toBe('/models/sd');
    expect(features).toContain(join('/nsd', 'nsddata_stimuli', 'stimuli', 'nsd', 'nsd_stimuli.hdf5'));
    const extract = await reconstructStageInputs(c, 'extract');
    expect(extract).toEqual(expect.arrayContaining([betasPath('/nsd', 2, 1, 'hdf5'), betasPath('/nsd', 2, 37, 'nifti'), roiPath('/nsd', 2, 'streams'), '/masks/ventral.nii.gz']));
    // the betas files the extraction reads, not the folder (an ncsnr.nii.gz written beside them is not an input)
    expect(extract).not.toContain(betasDir('/nsd', 2));
    expect((await reconstructStageInputs(resolveConfig({ out: '/r', nsd: { root: '/nsd', subject: 2, sessions: '2-3', format: 'nifti' }, model: { dir: '/m' } }), 'extract')).filter((p) => p.includes('betas_session'))).toEqual([
      betasPath('/nsd', 2, 2, 'nifti'),
      betasPath('/nsd', 2, 3, 'nifti'),
    ]);
    expect(await reconstructStageInputs(c, 'img2img')).toEqual([]);
    // the evaluation reads its feature networks
    expect(await reconstructStageInputs(c, 'evaluate')).toEqual([]);
    const nets = resolveConfig({ out: '/r', nsd: { root: '/nsd', subject: 2 }, model: { dir: '/m' }, evaluation: { networks: [{ name: 'a', path: '/nets/a.onnx', inputSize: 224, metric: 'identification' }] } });
    expect(await reconstructStageInputs(nets, 'evaluate')).toEqual(['/nets/a.onnx']);
  });

  // (before, only model.onnx: a weights.pb replaced kept the old metrics)
  it("evaluate reads each feature network's external data files too", async () => {
    const dir = join(tmp, 'net-ext');
    mkdirSync(dir, { recursive: true });
    const net = join(dir, 'model.onnx');
    writeFileSync(net, featureNetworkModel());
    await externalize(net, 'weights.pb');
    const c = resolveConfig({ out: '/r', nsd: { root: '/nsd', subject: 2 }, model: { dir: '/m' }, evaluation: { networks: [{ name: 'a', path: net, inputSize: 16, metric: 'identification' }, { name: 'b', path: '/nets/none.onnx', inputSize: 16, metric: 'identification' }] } });
    expect(await reconstructStageInputs(c, 'evaluate')).toEqual([net, join(dir, 'weights.pb'), '/nets/none.onnx']);
  });
});

describe('encode: a file feature set overwritten; the files each stage declares', () => {
  let nsd: SynthNsdResult;
  let every: Int32Array;
  beforeAll(async () => {
    nsd = await synthNsd({ out: join(tmp, 'nsd'), grid: [8, 8, 8], designSessions: 4, sessions: 3, trialsPerSession: 60, sharedImages: 10, imageSize: 16, formats: ['nifti'], seed: 5 });
    const { plan } = await planNsdSessions({ root: nsd.root, subject: 1, sessions: null, format: 'auto' }, await readNsdDesign(nsd.root));
    every = plan!.imageIds;
  }, 120_000);

  const latent = join(tmp, 'latent.npy');
  const writeLatent = (seed: number) => {
    const rows = every[every.length - 1];
    return writeNpy(latent, Float32Array.from({ length: rows * 4 }, (_, i) => Math.sin(seed * 1000 + i * 0.37)), [rows, 4]);
  };
  const config = (): EncodeConfigInput => ({ out: join(tmp, 'enc'), nsd: { root: nsd.root, subject: 1 }, featureSets: [{ name: 'lat', kind: 'file', path: latent }], noiseCeiling: 'none' });

  it('reruns the fit and what depends on it, with the new numbers, and the dry run says why', async () => {
    await writeLatent(1);
    const first = await encode(config());
    expect(first.stages.every((s) => s.status === 'ran')).toBe(true);
    const hash = configHash(resolveEncodeConfig(config()));
    await writeLatent(2); // same shape, same size: other numbers
    later(latent);
    const dry = await encode(config(), { dryRun: true });
    expect(dry.configHash).toBe(hash); // the run folder's identity is the config's, as before
    const lines = dry.plan!.filter((l) => /^(run |skip) /.test(l));
    expect(lines.map((l) => l.slice(0, 4).trim() + ' ' + l.split(/\s+/)[1])).toEqual(['skip extract', 'skip ceiling', 'run fit.lat', 'run maps', 'run report']);
    expect(lines[2]).toMatch(new RegExp(`\\(again: ${resolve(latent).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} changed since it ran\\)$`));
    expect(lines[3]).toMatch(/\(again: fit\.lat runs\)$/);
    const again = await encode(config());
    expect(again.stages.filter((s) => s.status === 'ran').map((s) => s.stage)).toEqual(['fit.lat', 'maps', 'report']);
    expect(again.featureSets[0].r).not.toEqual(first.featureSets[0].r);
    expect((await readNpy(join(tmp, 'enc', 'fits', 'lat', 'r.npy'))).data).toEqual(again.featureSets[0].r);
    // unchanged since: everything is skipped
    expect((await encode(config())).stages.every((s) => s.status === 'skipped')).toBe(true);
  });

  it('declares the model folder for embed and the feature stages, the atlases for the maps, a file set for its fit and banded stages', () => {
    const c = resolveEncodeConfig({
      out: join(tmp, 'enc-model'),
      nsd: { root: nsd.root, subject: 1 },
      model: join(tmp, 'sd'),
      featureSets: [{ name: 'z', kind: 'z' }, { name: 'zc', kind: 'zc', strength: 0.5, steps: 4 }, { name: 'lat', kind: 'file', path: latent }],
      banded: [{ name: 'both', sets: ['z', 'lat'] }],
      noiseCeiling: 'auto',
    });
    const inputs = new Map(encodeStages(c).map((s) => [s.id, s.inputs ?? []]));
    expect(inputs.get('embed')![0]).toBe(join(tmp, 'sd'));
    expect(inputs.get('features.zc')).toEqual([join(tmp, 'sd')]);
    expect(inputs.get('fit.lat')).toEqual([latent]);
    expect(inputs.get('fit.z')).toEqual([]);
    expect(inputs.get('banded.both')).toEqual([latent]);
    expect(inputs.get('ceiling')).toEqual([join(betasDir(nsd.root, 1), 'ncsnr.nii.gz')]);
    expect(inputs.get('extract')).toContain(betasPath(nsd.root, 1, 1, 'nifti'));
    expect(inputs.get('maps')).toContain(roiPath(nsd.root, 1, 'streams'));
    // the mask's volume, whose geometry the maps are written in
    expect(inputs.get('maps')).toContain(roiPath(nsd.root, 1, 'nsdgeneral'));
  });
});

describe('encode: a changed ncsnr or atlas reruns the stage that reads it (and what depends on it), no other', () => {
  let nsd: SynthNsdResult;
  let every: Int32Array;
  const latent = join(tmp, 'latent-nc.npy');
  const out = join(tmp, 'enc-nc');
  beforeAll(async () => {
    nsd = await synthNsd({ out: join(tmp, 'nsd-nc'), grid: [8, 8, 8], designSessions: 4, sessions: 3, trialsPerSession: 60, sharedImages: 10, imageSize: 16, formats: ['nifti'], seed: 7 });
    const { plan } = await planNsdSessions({ root: nsd.root, subject: 1, sessions: null, format: 'auto' }, await readNsdDesign(nsd.root));
    every = plan!.imageIds;
    const rows = every[every.length - 1];
    await writeNpy(latent, Float32Array.from({ length: rows * 4 }, (_, i) => Math.sin(i * 0.37)), [rows, 4]);
  }, 120_000);

  const config = (): EncodeConfigInput => ({ out, nsd: { root: nsd.root, subject: 1 }, featureSets: [{ name: 'lat', kind: 'file', path: latent }], noiseCeiling: 'auto', regions: ['streams'] });
  /** Rewrites a volume of the subject's grid with new values (same grid and geometry), a while later. */
  const rewrite = async (path: string, values: (v: Float32Array) => Float32Array) => {
    const { header, data } = await readNifti(path);
    await writeNifti(path, { dims: header.dims.slice(0, 3), datatype: 'float32', srow: header.srow, sformCode: header.sformCode, pixdim: header.pixdim }, values(data));
    later(path);
  };
  const ran = (r: { stages: { stage: string; status: string }[] }) => r.stages.filter((s) => s.status === 'ran').map((s) => s.stage);
  const ncsnr = () => join(betasDir(nsd.root, 1), 'ncsnr.nii.gz');

  it('a new ncsnr.nii.gz reruns the ceiling, the maps and the report, with the new ceiling; the fits are kept', async () => {
    const ref = await readNiftiHeader(roiPath(nsd.root, 1, 'nsdgeneral'));
    await writeNifti(ncsnr(), { dims: ref.dims.slice(0, 3), datatype: 'float32', srow: ref.srow, sformCode: ref.sformCode, pixdim: ref.pixdim }, new Float32Array(8 * 8 * 8).fill(0.5));
    const first = await encode(config());
    expect(ran(first)).toEqual(['extract', 'ceiling', 'fit.lat', 'maps', 'report']);
    const nc1 = (await readNpy(join(out, 'data', 'noise_ceiling.npy'))).data as Float32Array;
    expect(nc1[0]).toBeGreaterThan(0);
    await rewrite(ncsnr(), (v) => v.map(() => 1.5)); // same datatype and size: other values
    const again = await encode(config());
    expect(ran(again)).toEqual(['ceiling', 'maps', 'report']);
    const nc2 = (await readNpy(join(out, 'data', 'noise_ceiling.npy'))).data as Float32Array;
    expect(nc2[0]).toBeGreaterThan(nc1[0]);
    expect(Array.from(again.noiseCeiling!)).toEqual(Array.from(nc2));
    expect((await encode(config())).stages.every((s) => s.status === 'skipped')).toBe(true);
  });

  it('a relabelled atlas reruns the maps and the report, with the new regions; nothing before them', async () => {
    const before = readFileSync(join(out, 'regions.csv'), 'utf8');
    // every labelled voxel of the streams atlas becomes 'early' (1)
    await rewrite(roiPath(nsd.root, 1, 'streams'), (v) => v.map((x) => (x > 0 ? 1 : x)));
    const dry = await encode(config(), { dryRun: true });
    expect(dry.plan!.filter((l) => /^run  \S/.test(l)).map((l) => l.split(/\s+/)[1])).toEqual(['maps', 'report']);
    const again = await encode(config());
    expect(ran(again)).toEqual(['maps', 'report']);
    const after = readFileSync(join(out, 'regions.csv'), 'utf8');
    expect(after).not.toEqual(before);
    expect(new Set(again.featureSets[0].regions.map((r) => r.region).filter((r) => r !== 'all'))).toEqual(new Set(['early']));
  });

  it("the mask's volume moved in space (its voxels the same) rewrites the maps in its geometry: the maps read it too", async () => {
    const roi = roiPath(nsd.root, 1, 'nsdgeneral');
    const { header, data } = await readNifti(roi);
    const srow = header.srow.map((row, i) => (i === 0 ? [...row.slice(0, 3), row[3] + 10] : row)) as typeof header.srow;
    await writeNifti(roi, { dims: header.dims.slice(0, 3), datatype: 'int16', srow, sformCode: header.sformCode, pixdim: header.pixdim }, Int16Array.from(data));
    later(roi);
    const again = await encode(config());
    // the extraction reruns (it reads the mask) and makes the same betas: the ceiling and the fit are kept
    expect(ran(again)).toEqual(['extract', 'maps', 'report']);
    const map = await readNiftiHeader(join(out, again.featureSets[0].map));
    expect(map.srow[0][3]).toBeCloseTo(srow[0][3], 5);
  });

  // (reviewer R4: the stale noise_ceiling.npy stayed, and the maps stage read it — NC and r/√NC maps, regions.csv's
  // ceiling columns and encoding.json's noiseCeiling: true, under a note saying there was no ceiling)
  it("ncsnr.nii.gz deleted ('auto'): no ceiling any more — its file, its maps and the ceiling columns go", async () => {
    const withCeiling = JSON.parse(readFileSync(join(out, 'data', 'maps.json'), 'utf8')) as { kind: string; file: string; mosaic: string }[];
    const ncRecords = withCeiling.filter((m) => m.kind === 'noise-ceiling' || m.kind === 'r-over-sqrt-nc');
    const ncMaps = ncRecords.map((m) => m.file);
    // (and their figures: mosaics/noise-ceiling.png and mosaics/z_r-over-sqrt-nc.png stayed — reviewer s24-R4)
    const ncMosaics = ncRecords.map((m) => m.mosaic);
    expect(ncMaps.length).toBeGreaterThan(0);
    for (const f of ncMosaics) expect(existsSync(join(out, f)), f).toBe(true);
    rmSync(ncsnr());
    const again = await encode(config());
    expect(ran(again)).toEqual(['ceiling', 'maps', 'report']);
    expect(again.noiseCeiling).toBeNull();
    expect(existsSync(join(out, 'data', 'noise_ceiling.npy'))).toBe(false);
    const maps = JSON.parse(readFileSync(join(out, 'data', 'maps.json'), 'utf8')) as { kind: string; file: string }[];
    expect(maps.filter((m) => m.kind === 'noise-ceiling' || m.kind === 'r-over-sqrt-nc')).toEqual([]);
    for (const f of [...ncMaps, ...ncMosaics]) expect(existsSync(join(out, f)), f).toBe(false);
    expect(JSON.parse(readFileSync(join(out, 'encoding.json'), 'utf8')).noiseCeiling).toBe(false);
  });
});

describe("encode: noiseCeiling 'estimate' reads the single test trials: changed ones rerun the ceiling, though their averages are the same", () => {
  let nsd: SynthNsdResult;
  const latent = join(tmp, 'latent-est.npy');
  const out = join(tmp, 'enc-est');
  /** A test image's trials (session file, volume index) in the sessions the run reads: one shown at least twice. */
  let reps: { file: string; position: number }[] = [];
  beforeAll(async () => {
    nsd = await synthNsd({ out: join(tmp, 'nsd-est'), grid: [8, 8, 8], designSessions: 4, sessions: 3, trialsPerSession: 60, sharedImages: 10, imageSize: 16, formats: ['nifti'], seed: 11 });
    const design = await readNsdDesign(nsd.root);
    const { plan } = await planNsdSessions({ root: nsd.root, subject: 1, sessions: null, format: 'auto' }, design);
    const table = nsdTrialTable(design, 1, plan!.sessions, plan!.trialsPerSession);
    const byImage = new Map<number, { file: string; position: number }[]>();
    for (let t = 0; t < table.imageId.length; t++) {
      if (!table.test[t]) continue;
      const list = byImage.get(table.imageId[t]) ?? [];
      list.push({ file: betasPath(nsd.root, 1, table.session[t], 'nifti'), position: table.position[t] });
      byImage.set(table.imageId[t], list);
    }
    reps = [...byImage.values()].find((l) => l.length >= 2)!;
    expect(reps).toBeDefined();
    const rows = plan!.imageIds[plan!.imageIds.length - 1];
    await writeNpy(latent, Float32Array.from({ length: rows * 4 }, (_, i) => Math.sin(i * 0.37)), [rows, 4]);
  }, 120_000);

  /**
   * Sets every voxel of the image's trials to `raw(k)` for its k-th trial (int16, read ÷ 300: 0, 300, 600 are
   * exactly 0, 1, 2, so the test average is bit for bit the same whatever the spread), each file a while later.
   */
  const setTrials = async (raw: (k: number) => number) => {
    for (const file of new Set(reps.map((r) => r.file))) {
      const { header, data } = await readNifti(file);
      const nVox = header.dims[0] * header.dims[1] * header.dims[2];
      reps.forEach((r, k) => {
        if (r.file === file) data.fill(raw(k), r.position * nVox, (r.position + 1) * nVox);
      });
      await writeNifti(file, { dims: header.dims.slice(0, 4), datatype: 'int16', srow: header.srow, sformCode: header.sformCode, pixdim: header.pixdim }, Int16Array.from(data));
      later(file, 10 + reps.length);
    }
  };
  const config = (o = out): EncodeConfigInput => ({ out: o, nsd: { root: nsd.root, subject: 1, zscore: 'none' }, featureSets: [{ name: 'lat', kind: 'file', path: latent }], noiseCeiling: 'estimate' });
  const ran = (r: { stages: { stage: string; status: string }[] }) => r.stages.filter((s) => s.status === 'ran').map((s) => s.stage);
  const ceiling = async (o = out) => Array.from((await readNpy(join(o, 'data', 'noise_ceiling.npy'))).data as Float32Array);

  it('declares the extraction\'s files for the ceiling under estimate (none under none)', () => {
    const stages = (noiseCeiling: string) => new Map(encodeStages(resolveEncodeConfig({ ...config(), noiseCeiling })).map((s) => [s.id, s.inputs ?? []]));
    const est = stages('estimate');
    expect(est.get('ceiling')).toEqual(est.get('extract'));
    expect(est.get('ceiling')).toContain(betasPath(nsd.root, 1, 1, 'nifti'));
    expect(stages('none').get('ceiling')).toEqual([]);
  });

  it('the trials spread otherwise around the same mean: the extraction makes the same averages, the ceiling is computed again', async () => {
    await setTrials((k) => (k === 0 ? 0 : k === 1 ? 600 : 300)); // 0, 2, 1, 1, …: mean 1, spread
    const first = await encode(config());
    expect(ran(first)).toEqual(['extract', 'ceiling', 'fit.lat', 'maps', 'report']);
    const nc1 = await ceiling();
    await setTrials(() => 300); // 1, 1, 1, …: mean 1, no spread
    const again = await encode(config());
    // the averages are the same: the fit is kept; the ceiling reads the single trials, and is that of a fresh run
    expect(ran(again)).toEqual(['extract', 'ceiling', 'maps', 'report']);
    const nc2 = await ceiling();
    expect(nc2).not.toEqual(nc1);
    await encode(config(join(tmp, 'enc-est-fresh')));
    expect(nc2).toEqual(await ceiling(join(tmp, 'enc-est-fresh')));
    expect((await encode(config())).stages.every((s) => s.status === 'skipped')).toBe(true);
  });
});

describe('reconstruct: a feature network of the metrics replaced reruns the evaluation and the report, no other', () => {
  it('computes the metrics with the new network; the decoders and the images are kept', async () => {
    const world = await buildDemoWorld({ out: join(tmp, 'world'), imageSize: 64, sessions: 4, trialsPerSession: 60, testImages: 6 });
    const net = join(tmp, 'net.onnx');
    writeFileSync(net, featureNetworkModel(7));
    const config: ReconstructConfigInput = {
      ...world.config,
      out: join(tmp, 'recon'),
      model: { ...world.config.model, threads: 1 },
      img2img: { ...world.config.img2img, steps: 4, seeds: 1, rule: 'diffusers' },
      // (a distance: a number per image, which another network changes)
      evaluation: { ...world.config.evaluation, networks: [{ name: 'Net', path: net, inputSize: 64, metric: 'distance' }] },
    };
    const first = await reconstruct(config);
    expect(first.stages.every((s) => s.status === 'ran')).toBe(true);
    const metrics = () => JSON.parse(readFileSync(join(tmp, 'recon', 'metrics.json'), 'utf8')) as { perImage: { final: Record<string, number[]> } };
    const before = metrics().perImage.final;
    writeFileSync(net, featureNetworkModel(8)); // other weights
    later(net);
    // the dry run's report line counts the demo model's c (77 × its text encoder's width), without loading it
    // (reviewer R4: it said SD 1.x's 59,136 when only evaluate and report were to run)
    const dry = await reconstruct(config, { dryRun: true });
    const cTargets = 77 * (await unetDeclaredSizes(world.config.model.dir)).condDim!;
    expect(cTargets).not.toBe(77 * 768);
    expect(dry.estimates!.report.basis).toContain(`the c decoder's charts (${cTargets.toLocaleString('en')} targets)`);
    const again = await reconstruct(config);
    expect(again.stages.filter((s) => s.status === 'ran').map((s) => s.stage)).toEqual(['evaluate', 'report']);
    const after = metrics().perImage.final;
    expect(Object.keys(after)).toEqual(Object.keys(before));
    const name = Object.keys(after).find((k) => k.includes('Net'))!;
    expect(after[name]).not.toEqual(before[name]);
    expect(after.PixCorr).toEqual(before.PixCorr);
  }, 300_000);
});
