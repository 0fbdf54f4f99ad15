/**
 * `await encode(config, {onProgress, signal, force, dryRun})`: voxel-wise encoding models in a run folder.
 * The config is validated before anything is read; the stages (ts/encoding/stages.ts) run in order, each
 * skipped when its outputs exist for this config (resume) unless `force`; `dryRun` says what would run.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { checkControl } from '../callbackOptions.js';
import { EncodeConfigSchema, resolveEncodeConfig, type EncodeConfig, type EncodeConfigInput } from '../config/encode.js';
import { InvalidArgumentError } from '../errors.js';
import type { VoxelMask } from '../io/voxelMask.js';
import type { Matrix } from '../matrix.js';
import { ortUsesSoFar, recordingOrtUse } from '../native/ortUse.js';
import { configHash } from '../pipeline/config.js';
import { clearingInterrupted, clearingPlan, clearRunFolder, lockRunFolder, writeManifest } from '../pipeline/runFolder.js';
import { runOutputOverlaps } from '../pipeline/runFolderInputs.js';
import { ortVersions, runVersions } from '../pipeline/runVersions.js';
import { recordRunFailure } from '../pipeline/runRecord.js';
import { stageVersionsSummary } from '../pipeline/stageVersions.js';
import { formatSeconds, loadAverage, type StageEstimate } from '../pipeline/probe.js';
import { planStages, runStages, type StageProgress, type StageReport } from '../pipeline/stageRunner.js';
import { estimateEncodeStages } from './estimate.js';
import { preflightEncode } from './preflight.js';
import { removeLeftUnetCopies } from './unetCopies.js';
import { bandedMapKey, mapFile } from './mapFiles.js';
import { REPORT_FILES } from './report.js';
import { missingDependenciesWarnings } from '../report/optionalParts.js';
import type { RegionRow } from './regions.js';
import { encodePaths } from './runPaths.js';
import { bandedMaps, encodeStages, readEncodeOutputs, readMapRecords } from './stages.js';

export type { EncodeConfig, EncodeConfigInput } from '../config/encode.js';
export { alignFeatures, encodeExtractOptions, encodeStages } from './stages.js';

/** Progress of a stage: its id (extract, embed, fit.z, …), its number among the stages, and how far it is. */
export interface EncodeProgress extends StageProgress {
  /** What the stage is doing ('' when it says nothing). */
  detail: string;
}

export interface EncodeOptions {
  onProgress?: (p: EncodeProgress) => void;
  signal?: AbortSignal;
  /** Redo every stage even when its outputs exist (and replace another run's outputs). */
  force?: boolean;
  /** Only say what would run: the plan, nothing written. */
  dryRun?: boolean;
  /**
   * Called with each warning of the preflight (a session missing between sessions with betas) before any stage runs,
   * and of the stages (voxels whose test betas are constant: their r and R² are NaN; report.html written without its
   * brain viewer: @niivue/niivue is not installed) after them; they are in the result too.
   */
  onWarning?: (message: string) => void;
  /**
   * Called before any stage runs with each note of the preflight: what the run will leave out though nothing is
   * wrong (no noise ceiling under noiseCeiling 'auto' without ncsnr.nii.gz); a dry run's plan lists them as 'note: …'.
   */
  onNote?: (message: string) => void;
  /** Names the config in the messages that name its fields (a file name; default 'config'): the command passes --config's. */
  source?: string;
}

export interface FeatureSetResult {
  name: string;
  description: string;
  features: number;
  /** Held-out Pearson r per voxel (NaN where the voxel's test betas are constant: no variance to explain). */
  r: Float32Array;
  /** Held-out R² per voxel (NaN there too). */
  r2: Float32Array;
  bestAlphas: Float32Array;
  route: string;
  meanR: number;
  map: string;
  mosaic: string;
  regions: RegionRow[];
}

export interface BandedResult {
  name: string;
  sets: string[];
  r: Float32Array;
  /** Held-out R² of the joint model per voxel, as measured; and of the model without each set (with partitioning; else empty). */
  r2: Float32Array;
  r2Without: Record<string, Float32Array>;
  /** The alpha chosen per voxel, shared by the sets (set i's penalty is alpha/γᵢ). */
  bestAlphas: Float32Array;
  /** Unique held-out R² per set (variance partitioning), and the shared part. */
  unique: Record<string, Float32Array>;
  shared: Float32Array;
  /** Chosen band weights γ per voxel, voxels × sets. */
  bandWeights: Matrix;
  maps: Record<string, string>;
}

export interface EncodeResult {
  out: string;
  config: EncodeConfig;
  configHash: string;
  voxels: number;
  /** Distinct training images. */
  trainImages: number;
  /** Rows of the fits: the training images, or with nsd.averageTrain false their trials (an image's repetitions each a row). */
  trainRows: number;
  testImages: number;
  mask: VoxelMask;
  noiseCeiling: Float32Array | null;
  /** Every fitted table, then every banded model (its joint r). */
  featureSets: FeatureSetResult[];
  banded: BandedResult[];
  /** Atlases of `regions` left out of the region table (one on another grid than the mask; absent ones are refused). */
  atlasesMissing: string[];
  /** Maps, mosaics, regions.csv, encoding.json, report.html and its viewer, relative to `out`. */
  files: string[];
  /** What each stage did (ran, skipped; planned in a dry run). */
  stages: StageReport[];
  /** Dry run: the plan in words (the results are then empty). */
  plan?: string[];
  /** Dry run: each stage's estimated time (by stage id) and what it was measured from. */
  estimates?: Record<string, StageEstimate>;
  /**
   * The preflight's warnings (a session missing between sessions with betas) and the stages' (voxels whose test betas
   * are constant, their r and R² NaN; the report without its viewer); absent in a result read back by encodeResult.
   */
  warnings?: string[];
  /** The preflight's notes (no noise ceiling under 'auto'); absent in a result read back by encodeResult. */
  notes?: string[];
}

/**
 * Voxel-wise encoding models: features of every stimulus → every voxel of the mask, ridge with per-voxel
 * alphas by grouped CV on the training images, held-out Pearson r on the test images, region table, NIfTI
 * maps, mosaics and a report; banded ridge with variance partitioning for joint sets.
 */
export async function encode(input: EncodeConfigInput | EncodeConfig, options: EncodeOptions = {}): Promise<EncodeResult> {
  checkControl(options, 'encode', ['onProgress', 'onWarning']);
  const c = resolveEncodeConfig(input, options.source);
  // a run folder that overlaps an input is refused before the lock creates it or anything is written (dry runs too)
  // (and so is an extraction cache, nsd.cacheDir, that overlaps one)
  const overlaps = await runOutputOverlaps(EncodeConfigSchema, c);
  if (overlaps.length) throw new InvalidArgumentError(overlaps.join('\n'));
  if (options.dryRun) return runEncode(c, options);
  // A run holds its folder's lock from before it looks at the folder until it returns: a second run refuses, naming this one.
  const lock = await lockRunFolder(c.out);
  try {
    // U-Net copies that earlier builds' runs left in the OS temp folder (GBs each; this build writes none): removed at
    // the start of every run, not only at the next exposure of the U-Net's layers, which a run without U-Net features
    // (or one resumed past them) never reaches; never one a live process of this host may be using (unetCopies.ts)
    await removeLeftUnetCopies();
    return await runEncode(c, options);
  } finally {
    await lock.release();
  }
}

async function runEncode(c: EncodeConfig, options: EncodeOptions): Promise<EncodeResult> {
  const hash = configHash(c);
  // A --force that a kill interrupted is finished first: nothing of the old run counts as done.
  const force = options.force || (await clearingInterrupted(c.out));
  const stages = encodeStages(c);
  const planned = await planStages(c, stages, force);
  const skip = new Map([...planned].map(([id, p]) => [id, p.skip]));
  // (the U-Net's layers are run through it only for the feature sets still to compute)
  const unetSetsToRun = new Set(c.featureSets.filter((s) => s.kind === 'unet' && !skip.get(`features.${s.name}`)).map((s) => s.name));
  // (and the model work it announces is that of the stages that will run)
  const stagesToRun = new Set(stages.filter((s) => !skip.get(s.id)).map((s) => s.id));
  const pre = await preflightEncode(c, { force, unetSetsToRun, stagesToRun, source: options.source });
  if (options.dryRun) {
    const est = await estimateEncodeStages(c, stages, skip, options.signal);
    const seconds = (id: string) => est.get(id)?.seconds ?? 0;
    const total = stages.reduce((a, s) => a + seconds(s.id), 0);
    const plan = [
      `run folder ${c.out} (config ${hash})`,
      ...(force ? [await clearingPlan(c.out)].filter((l): l is string => l !== null) : []),
      `subject ${c.nsd.subject}: ${pre.voxels} voxels in '${c.nsd.roi}'; ${pre.images} images with betas in the sessions read (of ${pre.designImages} in the subject's design)`,
      ...pre.warnings.map((w) => `warning: ${w}`),
      ...pre.notes.map((n) => `note: ${n}`),
      // a stage that ran before and runs again says why (an input file changed, a stage it reads runs)
      ...stages.map((s) => `${skip.get(s.id) ? 'skip' : 'run '} ${s.id.padEnd(24)} ${s.describe}${planned.get(s.id)?.why ? ` (again: ${planned.get(s.id)!.why})` : ''}`),
      ...pre.estimates,
      ...(pre.fits.length ? ['ridge fits, their memory planned from the shapes (ridge.memoryBudget):', ...pre.fits.map((l) => `  ${l}`)] : []),
      `estimates from short probes on this machine (load average ${loadAverage()}):`,
      ...stages.filter((s) => !skip.get(s.id)).map((s) => `  ${s.id.padEnd(24)} ~${formatSeconds(seconds(s.id)).padStart(7)}  ${est.get(s.id)?.basis ?? ''}`.trimEnd()),
      `total ~${formatSeconds(total)}`,
    ];
    return {
      out: c.out, config: c, configHash: hash, voxels: pre.voxels, trainImages: 0, trainRows: 0, testImages: 0, mask: pre.mask, noiseCeiling: null,
      featureSets: [], banded: [], atlasesMissing: [], files: [],
      stages: stages.map((s) => ({ stage: s.id, status: skip.get(s.id) ? 'skipped' : 'planned', seconds: seconds(s.id) })),
      plan,
      estimates: Object.fromEntries(est),
      warnings: pre.warnings,
      notes: pre.notes,
    };
  }
  pre.warnings.forEach((w) => options.onWarning?.(w));
  pre.notes.forEach((n) => options.onNote?.(n));
  // --force empties the folder of the old run's outputs before anything is written.
  if (force) await clearRunFolder(c.out);
  await writeManifest(c, runVersions());
  const { value: reports, uses } = await recordingOrtUse(() =>
    runStages(c, stages, planned, {
      signal: options.signal,
      what: 'encode',
      onProgress: options.onProgress && ((p) => options.onProgress!({ ...p, detail: p.message ?? '' })),
      // run.json says where and how it failed, and what computed the stages that finished
      onFailure: (stage, e, finished) => recordRunFailure(c, finished, stage, e, { ...runVersions(), ...ortVersions(ortUsesSoFar()) }),
    }),
  );
  // the ONNX Runtime this run's stages ran z, c and the U-Net on ('not used' when none ran one), and what computed
  // each stage (a stage kept from an earlier run: that run's process)
  await writeManifest(c, { ...runVersions(), ...ortVersions(uses) }, await stageVersionsSummary(c, stages.map((s) => s.id)));
  // what the stages recorded (the report's missing viewer; the maps' voxels with constant test betas), also when
  // skipped: the outputs still are as they said
  const stageWarnings = reports.flatMap((r) => [...missingDependenciesWarnings(r.summary), ...summaryWarnings(r.summary)]);
  stageWarnings.forEach((w) => options.onWarning?.(w));
  return { ...(await encodeResult(c)), stages: reports, warnings: [...pre.warnings, ...stageWarnings], notes: pre.notes };
}

/** A stage summary's own `warnings` (the maps stage's: voxels whose test betas are constant). */
function summaryWarnings(summary: Record<string, unknown> | undefined): string[] {
  const w = summary?.warnings;
  return Array.isArray(w) ? w.filter((x): x is string => typeof x === 'string') : [];
}

/** The results of a finished encode run, read back from its folder. */
export async function encodeResult(input: EncodeConfigInput | EncodeConfig): Promise<Omit<EncodeResult, 'stages' | 'plan' | 'estimates'>> {
  const c = resolveEncodeConfig(input);
  const p = encodePaths(c.out);
  const o = await readEncodeOutputs(c);
  const ids = JSON.parse(readFileSync(p.ids, 'utf8')) as { train: number[]; test: number[] };
  // the maps as the run listed them (a folder from before that list: its encoding.json, old names and all)
  const records = await readMapRecords(c);
  const named = (kind: 'r' | 'banded-r', name: string) =>
    records.find((m) => m.kind === kind && (kind === 'r' ? m.featureSet : m.banded) === name) ?? mapFile(kind === 'r' ? { kind, featureSet: name } : { kind, banded: name });
  const fit = (name: string) => named('r', name);
  const joint = (name: string) => named('banded-r', name);
  const featureSets: FeatureSetResult[] = [
    ...o.fits.map((f) => ({
      name: f.table.name, description: f.info.description, features: f.info.features, r: f.r, r2: f.r2, bestAlphas: f.bestAlphas,
      route: f.info.route, meanR: f.info.meanR, map: fit(f.table.name).file, mosaic: fit(f.table.name).mosaic, regions: f.regions,
    })),
    ...o.banded.map((b) => ({
      name: b.spec.name, description: b.info.description, features: b.info.features, r: b.r, r2: b.r2, bestAlphas: b.bestAlphas,
      route: 'banded', meanR: b.info.meanR, map: joint(b.spec.name).file, mosaic: joint(b.spec.name).mosaic, regions: b.regions,
    })),
  ];
  const mapsOf = (b: (typeof o.banded)[number]) => {
    const listed = records.filter((m) => m.banded === b.spec.name).map((m) => [bandedMapKey(m), m.file]);
    return listed.length ? Object.fromEntries(listed) : bandedMaps(b);
  };
  const banded: BandedResult[] = o.banded.map((b) => ({
    name: b.spec.name, sets: b.spec.sets, r: b.r, r2: b.r2, r2Without: b.r2Without, bestAlphas: b.bestAlphas, unique: b.unique, shared: b.shared, bandWeights: b.weights, maps: mapsOf(b),
  }));
  const files = [
    ...records.flatMap((m) => [m.file, m.mosaic]),
    'regions.csv', 'encoding.json', 'report.html', join(REPORT_FILES, 'niivue.umd.js'), join(REPORT_FILES, 'NIIVUE-LICENSE.txt'),
  ].filter((f) => existsSync(join(c.out, f)));
  return {
    out: c.out, config: c, configHash: configHash(c), voxels: o.mask.indices.length, trainImages: new Set(ids.train).size, trainRows: ids.train.length,
    testImages: ids.test.length, mask: o.mask, noiseCeiling: o.ceiling, featureSets, banded, atlasesMissing: o.missingAtlases, files,
  };
}
