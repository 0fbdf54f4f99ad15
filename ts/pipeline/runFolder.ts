/**
 * The run folder: run.json (config, hash, versions), one marker per finished stage (stages/<name>.json,
 * written last, so an interrupted stage is redone), and the naming of every output. Every file in it is written
 * atomically (ts/io/atomicWrite); the folder is locked while a run uses it (`lockRunFolder`), and `--force`
 * removes the previous run's outputs (and only those) before the new run writes anything (`clearRunFolder`).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, readdir, readFile, rm, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';

import { InvalidArgumentError } from '../errors.js';
import { optionalPackageInstalled } from '../optionalDependencies.js';
import { removeStaleTemporaries, writeJsonAtomic } from '../io/atomicWrite.js';
import { identityChange, inputIdentities, type InputIdentity } from '../io/fileIdentity.js';
import { currentCommand, lockFolder, type FolderLock, type LockOptions } from '../io/folderLock.js';
import { configHash, type ReconstructConfig } from './config.js';
import { outputRecordChange, outputRecords, type OutputRecord } from './outputRecords.js';
import { runFiles, topEntries, type RunFiles } from './runFiles.js';
import { packageVersion } from './runVersions.js';
import { removeUncachedFeatures } from './uncachedFeatures.js';

export const STAGES = ['extract', 'features', 'decoders', 'zonly', 'img2img', 'evaluate', 'report'] as const;
export type StageName = (typeof STAGES)[number];

/** The run.json layout writeManifest writes, the one a run resumes from. */
export const RUN_VERSION = 1;

export interface RunManifest<C = ReconstructConfig> {
  format: 'brainlatent-run';
  version: typeof RUN_VERSION;
  configHash: string;
  createdAt: string;
  config: C;
  /** The process that last ran the run's command here (runVersions.ts): brainlatent, Node, BLAS, engine threads, ONNX Runtime. */
  versions: Record<string, string>;
  /** What computed each stage, from the stages' markers (StageMarker.ranWith; ts/pipeline/stageVersions.ts). */
  stageVersions?: StageVersionsSummary;
  /**
   * Set when the run failed (or was stopped) in a stage (runRecord.ts' recordRunFailure): `stageVersions` then lists
   * the stages that finished before it. Gone once the run is started again (writeManifest), or, in a batch, once a job
   * of that stage is done.
   */
  failed?: RunFailure;
}

/** run.json's record of a failed run: the stage (a batch's img2img shard: `img2img[<shard>]`), the error's class and message, when (ISO time). */
export interface RunFailure {
  stage: string;
  error: string;
  at: string;
}

/**
 * Run.json's account of what computed each finished stage: the values every stage's record shares (`same`) and, per
 * stage, those that differ (a stage run in parts, an img2img merged from shards: per part, `img2img[<part>]`). A stage
 * whose marker has no record (written before records were kept) is listed in `notRecorded`.
 */
export interface StageVersionsSummary {
  same: Record<string, string>;
  stages: Record<string, Record<string, string>>;
  notRecorded?: string[];
}

/** What run.json holds while --force empties the folder: the old run is gone, the new one not yet started. */
interface ClearingMarker {
  format: 'brainlatent-run';
  clearing: true;
  previousConfigHash: string | null;
  startedAt: string;
  /** The files (relative paths) the clearing removes: an interrupted one is finished from this list. */
  removing?: string[];
}

/**
 * The version of what a stage computes, for the stages whose results changed with the code for the same
 * config: a marker (or an interrupted stage's record) of another recipe is not reused, so a resumed run
 * never mixes results of the two. Others are 1. Bump a stage's number when its outputs change for the same
 * inputs, not on a refactor.
 * - features 2, img2img 2: a sample's noise keyed by the image's 73k id instead of its place in the run (7b13fda, 8228bfe).
 * - ceiling 2 (encode): the noise term is the mean over test images of 1/n, not 1/mean(n).
 * - maps 2 (encode): regions.csv's median_r averages the two middle values for an even voxel count.
 * - maps 3 (encode): regions.csv counts the voxels over the ceiling and has mean r / mean √NC; log10 alpha maps,
 *   a joint model's R², alpha and γ maps.
 * - banded.* 2 (encode): a joint model also writes its alphas and held-out R² (and those without each set).
 * - fit.* 2, banded.* 3, maps 4 (encode): r and R² (and a joint model's partition) are NaN, not 0, where the test betas
 *   are constant; regions.csv leaves those voxels out of its means and counts them (constant_voxels).
 * A key '<prefix>.*' is the recipe of every stage '<prefix>.<name>' that has none of its own.
 */
export const STAGE_RECIPES: Readonly<Record<string, number>> = { features: 2, img2img: 2, ceiling: 2, maps: 4, 'fit.*': 2, 'banded.*': 3 };

/** The recipe version of stage `stage` (1 unless STAGE_RECIPES says otherwise, for it or for its '<prefix>.*'). */
export const stageRecipe = (stage: string): number => STAGE_RECIPES[stage] ?? STAGE_RECIPES[`${stage.split('.')[0]}.*`] ?? 1;

export interface StageMarker {
  /** A reconstruct stage, or another pipeline's stage id (encode: extract, fit.z, …). */
  stage: string;
  configHash: string;
  /** The stage's recipe version when it ran (STAGE_RECIPES); markers written before versions existed have none, read as 1. */
  recipe?: number;
  seconds: number;
  finishedAt: string;
  outputs: string[];
  /**
   * What it wrote as it left it, by output path (of its `outputs`, the regular files): size, modification time and a
   * content hash (small files) or fingerprint (large ones) (outputRecords.ts says which and why). An output truncated, overwritten or
   * replaced since makes the stage run again. Absent in markers written before these were recorded: their outputs
   * are only checked to exist, as then (stageState).
   */
  outputFiles?: Record<string, OutputRecord>;
  summary?: Record<string, unknown>;
  /**
   * The files the stage read from outside the run folder (a feature file, the model folder: its `inputs`), as
   * they were when it started; absent in markers written before these were recorded (such a marker is not checked).
   */
  inputs?: InputIdentity[];
  /**
   * For a stage that reads less of the stages before it than their outputs (a features stage reads the extraction's
   * image ids, not its betas): the key of what it read (imageSetKey), taken before it ran. When those stages run
   * again and the key is unchanged, the stage's outputs still hold and it is skipped (StageDef.depKey).
   */
  depKey?: string;
  /**
   * A key of the content of what the stage made, for the stages after it (an extract stage's: the extraction's
   * betas, row ids, voxels and counts, and its image list; StageResult.outputKey). The same content gives the same
   * key whenever it was made: an extraction run again over a betas file copied without its times (`cp`, `rsync`
   * without -t) makes the same key, and the stages after it, keyed on it (upstreamKey), are skipped. Absent for stages
   * that record none (their marker itself stands for what they made) and in markers from before.
   */
  outputKey?: string;
  /**
   * What computed it (runVersions.ts' stageVersions): brainlatent, Node, platform, host, BLAS, engine threads and the
   * ONNX Runtime its models ran on ('not used' when none ran). A stage skipped keeps its record: the process that
   * computed it. Absent in markers from before, and where the stage ran in parts (`ranWithParts`).
   */
  ranWith?: Record<string, string>;
  /**
   * A stage whose parts were computed by other jobs (a batch's img2img, merged from its shards; a features stage
   * linked from the shared z and c entries): each part's record, by the part's name; null for a part whose record is
   * not there (a shard marker or shared entry from before).
   */
  ranWithParts?: Record<string, Record<string, string> | null>;
}

/**
 * The key of a set of images (73k ids; order and repeats do not matter): what a features stage's outputs depend on
 * of the extraction. New betas of the same trials leave it as it is; a session added or gone changes it.
 */
export function imageSetKey(ids: Iterable<number>): string {
  const sorted = [...new Set(ids)].sort((a, b) => a - b);
  return createHash('sha256').update(`images:${sorted.join(',')}`).digest('hex').slice(0, 20);
}

/**
 * What the stages after `stage` read of it: `outputs <key>` when its marker records a key of its outputs' content
 * (StageMarker.outputKey), else the marker as written (a stage that ran again wrote another, its finishing time at
 * least); '' when it has none.
 */
async function outputIdentity(config: { out: string }, stage: string): Promise<string> {
  const text = await readFile(paths(config.out).stage(stage), 'utf8').catch(() => '');
  try {
    const m = JSON.parse(text) as Partial<StageMarker> | null;
    if (typeof m?.outputKey === 'string') return `outputs ${m.outputKey}`;
  } catch {
    // (an unreadable marker: its text)
  }
  return text;
}

/** Each of `stages` with what the stages after it read of it (outputIdentity), in that order. */
export async function outputIdentities(config: { out: string }, stages: readonly string[]): Promise<[string, string][]> {
  return Promise.all(stages.map(async (s): Promise<[string, string]> => [s, await outputIdentity(config, s)]));
}

/**
 * The key of what a stage reads of the stages it depends on (`stages`): their outputs' content keys where their
 * markers record one (an extraction), else their markers. An extraction run again that made the same data leaves
 * it as it was; any stage that ran again and records no content key changes it. A stage's default depKey
 * (stageRunner's stageDepKey).
 */
export async function upstreamKey(config: { out: string }, stages: readonly string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const [s, identity] of await outputIdentities(config, stages)) hash.update(`\0${s}\0`).update(identity);
  return hash.digest('hex').slice(0, 32);
}

/** True when the stage's marker records `key` as what it read of the stages before it (StageMarker.depKey). */
export async function depKeyHolds(config: { out: string }, stage: string, key: string): Promise<boolean> {
  return (await readStageMarker(config, stage))?.depKey === key;
}

export const paths = (out: string) => ({
  run: join(out, 'run.json'),
  stage: (s: string) => join(out, 'stages', `${s}.json`),
  ids: join(out, 'data', 'image_ids.json'),
  zFeatures: join(out, 'features', 'z.npy'),
  cFeatures: join(out, 'features', 'c.npy'),
  featureIds: join(out, 'features', 'image_ids.npy'),
  decoder: (t: 'z' | 'c') => join(out, 'decoders', `${t}.safetensors`),
  decoded: (t: 'z' | 'c') => join(out, 'decoded', `${t}.npy`),
  decoderSummary: join(out, 'decoders', 'summary.json'),
  /** Per-target accuracy of a decoder on the test images (r between decoded and true feature). */
  targetAccuracy: (t: 'z' | 'c') => join(out, 'decoders', `${t}_target_r.npy`),
  images: join(out, 'images'),
  /** Names as in the reference code: {imgidx:05}_org.png, {imgidx:05}_{k:03}.png; z-only {imgidx:05}_z.png. imgidx = 73k id − 1. */
  original: (id: number) => join(out, 'images', `${String(id - 1).padStart(5, '0')}_org.png`),
  zonly: (id: number) => join(out, 'images', `${String(id - 1).padStart(5, '0')}_z.png`),
  sample: (id: number, k: number) => join(out, 'images', `${String(id - 1).padStart(5, '0')}_${String(k).padStart(3, '0')}.png`),
  metricsCsv: join(out, 'metrics.csv'),
  metricsJson: join(out, 'metrics.json'),
  perImageCsv: join(out, 'metrics_per_image.csv'),
  report: join(out, 'report.html'),
});

/** A run.json that is not a run's record to read: the refusal, naming the file and what to do. */
interface Foreign {
  foreign: string;
}
const isForeign = (m: unknown): m is Foreign => m !== null && typeof m === 'object' && 'foreign' in m;

/**
 * run.json as a run wrote it; Foreign when the file is something else (a user's own run.json, a config) or a run's
 * record damaged past reading (cut short, a flipped byte, an edit).
 */
async function readRunJson(out: string): Promise<RunManifest | ClearingMarker | Foreign | null> {
  const p = paths(out).run;
  if (!existsSync(p)) return null;
  let text: string;
  try {
    text = await readFile(p, 'utf8');
  } catch {
    return { foreign: foreignRunJson(out) };  // (a folder of that name, say)
  }
  // (a record is written whole, by rename, so this is damage after the fact: named so, with the way back)
  const damaged = (why: string): Foreign | null => (/"format"\s*:\s*"brainlatent-run"/.test(text) ? { foreign: damagedRunJson(out, why) } : null);
  let m: Partial<RunManifest> | Partial<ClearingMarker> | null;
  try {
    m = JSON.parse(text) as Partial<RunManifest> | Partial<ClearingMarker> | null;
  } catch (e) {
    return damaged(`not valid JSON: ${(e as Error).message}`) ?? { foreign: foreignRunJson(out) };
  }
  // (parsed, the marker elsewhere than on top, a nested copy say, is not a run's record: never told to delete it)
  if (m === null || typeof m !== 'object' || m.format !== 'brainlatent-run') return { foreign: foreignRunJson(out) };
  if ('clearing' in m && m.clearing === true) return m as ClearingMarker;
  if (typeof (m as Partial<RunManifest>).configHash === 'string') return m as RunManifest;
  return damaged('it has no "configHash"') ?? { foreign: foreignRunJson(out) };
}

/** The error for a run.json that no run wrote: the folder is not ours to write, with or without --force. */
const foreignRunJson = (out: string) =>
  `${paths(out).run} exists but is not a brainlatent run manifest (a file of yours?): a run writes its manifest there; ` +
  'choose another --out (or move the file)';

/**
 * The error for a run's record damaged past reading: not replaced, even under --force (what it held, the run's
 * config, is gone); without it the stages' own markers still say what each wrote, and a run of the same config
 * resumes from them, each output checked against its record.
 */
const damagedRunJson = (out: string, why: string) =>
  `${paths(out).run} is a brainlatent run manifest that cannot be read (${why}): it was damaged after the run wrote it. ` +
  `Delete it and run the same config again to resume (every stage is checked against the records in ${join(out, 'stages')}), ` +
  'or choose another --out';

export async function readManifest(out: string): Promise<RunManifest | null> {
  const m = await readRunJson(out);
  return m && !isForeign(m) && !('clearing' in m) ? m : null;
}

/** True when a --force clearing of this folder was interrupted (the next run finishes it). */
export async function clearingInterrupted(out: string): Promise<boolean> {
  const m = await readRunJson(out);
  return m !== null && !isForeign(m) && 'clearing' in m && m.clearing === true;
}

/** What a folder holding another run's outputs is refused with, by default: the remedies of reconstruct and encode. */
export const RUN_FOLDER_REMEDY = 'use another --out, or --force to replace them';

export interface RunFolderConflictOptions {
  force?: boolean;
  /**
   * How to resolve a folder that holds another run's outputs, in the caller's words (default RUN_FOLDER_REMEDY,
   * reconstruct's and encode's flags): a batch has no --out, its run folders are named by the manifest.
   */
  remedy?: string;
}

/**
 * A folder's conflict with this config: null if it is empty, new, holds this same run, holds only another run's
 * run.json (no output of it yet), or was being cleared. With `force` only what --force cannot resolve: a run.json
 * that no run wrote.
 */
export async function runFolderConflict(config: { out: string }, options: RunFolderConflictOptions = {}): Promise<string | null> {
  const m = await readRunJson(config.out);
  if (isForeign(m)) return m.foreign;
  if (m === null || 'clearing' in m || options.force) return null;
  // (a run of a newer layout was resumed as this one's: its record read, its outputs trusted)
  if (m.version !== undefined && m.version !== RUN_VERSION) {
    const newer = typeof m.version === 'number' && m.version > RUN_VERSION;
    return (
      `run folder ${config.out} holds a run whose ${paths(config.out).run} has version ${JSON.stringify(m.version)}; this brainlatent reads run records of version ${RUN_VERSION}` +
      `${newer ? ' (the run was written by a newer brainlatent: upgrade brainlatent to resume it, or resume it with the one that wrote it)' : ''}; ${options.remedy ?? RUN_FOLDER_REMEDY}`
    );
  }
  const hash = configHash(config);
  if (m.configHash !== hash) {
    // a run that failed before its first output (its extract stage refused the data, say) leaves only its
    // run.json: nothing of it to keep, so a corrected config takes the folder over
    const outputs = (await entriesToClear(config.out)).filter((e) => e !== 'run.json');
    if (outputs.length === 0) return null;
    return (
      `run folder ${config.out} holds another run's outputs (${outputs.join(', ')}; config ${m.configHash}, this config ${hash}); ` +
      (options.remedy ?? RUN_FOLDER_REMEDY)
    );
  }
  const newer = await newerRecipeStages(config.out, hash);
  if (newer.length) {
    const made = newer.map((n) => `${n.stage}: recipe ${n.recipe}${n.by ? `, by brainlatent ${n.by}` : ''}; this one makes ${n.current}`).join('; ');
    const by = [...new Set(newer.map((n) => n.by).filter((v): v is string => v !== undefined))];
    return (
      `run folder ${config.out} holds stages of this run that a newer brainlatent made (${made}): this brainlatent (${packageVersion()}) ` +
      `would redo them and replace their results; resume the run with ${by.length ? `brainlatent ${by.join(' or ')}` : 'the brainlatent that made them'} or newer, or ` +
      (options.remedy ?? RUN_FOLDER_REMEDY)
    );
  }
  return null;
}

/** A stage of a run that a newer brainlatent made: its recipe, this version's (`current`), the version its record names. */
export interface NewerStage {
  stage: string;
  recipe: number;
  current: number;
  by?: string;
}

/**
 * The finished stages of config `hash` in `out` whose markers hold a later recipe than this brainlatent's
 * (stageRecipe): results a newer version made, which this one would take for stale and redo, replacing them (and in a
 * batch whose workers run two versions, each would redo the other's), and an interrupted img2img's records of a later
 * recipe (their samples). `by`: the version its marker names (ranWith).
 */
export async function newerRecipeStages(out: string, hash: string): Promise<NewerStage[]> {
  const found: NewerStage[] = [];
  const names = await readdir(join(out, 'stages')).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
    const m = (await readStageMarker({ out }, name.slice(0, -'.json'.length))) as Partial<StageMarker> | null;
    if (m === null || typeof m !== 'object' || typeof m.stage !== 'string' || m.configHash !== hash || typeof m.recipe !== 'number') continue;
    if (m.recipe > stageRecipe(m.stage)) found.push({ stage: m.stage, recipe: m.recipe, current: stageRecipe(m.stage), by: typeof m.ranWith?.brainlatent === 'string' ? m.ranWith.brainlatent : undefined });
  }
  // an interrupted img2img's records of finished units (img2imgProgress.ts), which say their recipe since it is apart from their key
  const partial = join(out, 'stages', 'img2img.partial');
  for (const name of (await readdir(partial).catch(() => [] as string[])).filter((n) => n.endsWith('.json')).sort()) {
    const r = (await readFile(join(partial, name), 'utf8').then(
      (t) => JSON.parse(t) as unknown,
      () => null,
    )) as { configHash?: unknown; recipe?: unknown; brainlatent?: unknown } | null;
    if (r === null || typeof r !== 'object' || r.configHash !== hash || typeof r.recipe !== 'number' || r.recipe <= stageRecipe('img2img')) continue;
    found.push({ stage: `img2img (interrupted: ${name.slice(0, -'.json'.length)})`, recipe: r.recipe, current: stageRecipe('img2img'), by: typeof r.brainlatent === 'string' ? r.brainlatent : undefined });
  }
  return found;
}

/**
 * Null when run folder `config.out` holds this config's run (or no run.json yet); else why a job of this config's
 * run must not write there any more: another config's run (or its --force clearing) took the folder over after
 * this run started. `remedy` says what to do, in the caller's words.
 */
export async function runFolderTakenOver(config: { out: string }, remedy: string): Promise<string | null> {
  const m = await readRunJson(config.out);
  if (m === null) return null;
  if (isForeign(m)) return m.foreign;
  const hash = configHash(config);
  if ('clearing' in m) {
    return (
      `run folder ${config.out} is being cleared for another run (a --force started ${m.startedAt}; it held config ${m.previousConfigHash ?? 'none'}, ` +
      `this job's config is ${hash}): another batch or run took the folder over; ${remedy}`
    );
  }
  if (m.configHash === hash) return null;
  return (
    `run folder ${config.out} now holds another config's run (its run.json: config ${m.configHash}, created ${m.createdAt}; this job's config is ${hash}): ` +
    `another batch or run took the folder over (--force) after this one started; ${remedy}`
  );
}

export async function writeManifest(config: { out: string }, versions: Record<string, string>, stageVersions?: StageVersionsSummary): Promise<void> {
  const m: RunManifest<unknown> = {
    format: 'brainlatent-run', version: RUN_VERSION, configHash: configHash(config), createdAt: new Date().toISOString(), config, versions,
    ...(stageVersions ? { stageVersions } : {}),
  };
  await writeJsonAtomic(paths(config.out).run, m);
}

/** Whether a stage is done, and when it ran before but is not, why (for a dry run's plan). */
export interface StageState {
  done: boolean;
  /** Set when a marker exists but does not hold: "latent.npy changed", "fits/z/r.npy is missing", … */
  why?: string;
}

/**
 * A stage is done when its marker matches the config and the stage's recipe, all its outputs exist as it wrote them
 * (the sizes, times and small files' hashes its marker records: outputRecords.ts), and the files it reads from
 * outside the run folder (`inputs`: paths, a folder for its files) are as they were when it ran: an output truncated
 * or overwritten, a feature file overwritten since, or a model folder replaced, makes it run again. The config hash
 * names only their paths (and stays the run folder's identity).
 */
export async function stageState(config: { out: string }, stage: string, inputs: readonly string[] = []): Promise<StageState> {
  const p = paths(config.out).stage(stage);
  if (!existsSync(p)) return { done: false };
  let m: StageMarker;
  try {
    m = JSON.parse(await readFile(p, 'utf8')) as StageMarker;
  } catch {
    return { done: false, why: 'its marker is unreadable' };
  }
  if (m === null || typeof m !== 'object' || !Array.isArray(m.outputs)) return { done: false, why: 'its marker is unreadable' };
  if (m.configHash !== configHash(config)) return { done: false, why: 'its marker is of another config' };
  if ((m.recipe ?? 1) !== stageRecipe(stage)) return { done: false, why: `its recipe changed (${m.recipe ?? 1} → ${stageRecipe(stage)})` };
  const missing = m.outputs.find((o) => !existsSync(join(config.out, o)));
  if (missing !== undefined) return { done: false, why: `${missing} is missing` };
  // A marker written before outputs were recorded cannot tell a damaged output from a good one: its outputs are taken
  // as they are, as they were then (--force redoes them). Rerunning every such stage once instead would cost a user
  // who upgrades hours of SD sampling and fits per run folder for outputs that are, almost always, intact.
  if (m.outputFiles !== null && typeof m.outputFiles === 'object') {
    const damaged = await outputRecordChange(config.out, m.outputFiles);
    if (damaged) return { done: false, why: damaged };
  }
  // a report written without its charts or viewer (a slim install) is redone once their packages are installed
  const without = (m.summary?.missingDependencies as { packages?: unknown } | undefined)?.packages;
  if (Array.isArray(without) && without.length && without.every((p) => typeof p === 'string' && optionalPackageInstalled(p))) {
    return { done: false, why: `it was written without ${without.join(', ')}, installed since` };
  }
  // a marker written before inputs were recorded cannot tell: it is taken as done, as it was (--force redoes it),
  // rather than every run folder from before redoing its model stages once
  if (!Array.isArray(m.inputs)) return { done: true };
  const change = identityChange(m.inputs, await inputIdentities(inputs));
  return change ? { done: false, why: `${change} since it ran` } : { done: true };
}

/** stageState's verdict alone. */
export async function stageDone(config: { out: string }, stage: string, inputs: readonly string[] = []): Promise<boolean> {
  return (await stageState(config, stage, inputs)).done;
}

export async function readStageMarker(config: { out: string }, stage: string): Promise<StageMarker | null> {
  try {
    return JSON.parse(await readFile(paths(config.out).stage(stage), 'utf8')) as StageMarker;
  } catch {
    return null;
  }
}

/**
 * Records a finished stage. `inputs` are the identities of the files it read from outside the run folder, taken
 * (inputIdentities) before it read them: a file replaced while the stage ran is not recorded as what it read. Its
 * outputs are recorded as they are now (outputRecords: size, time, a small file's hash or a large one's
 * fingerprint), once all are in place; those still as `known` records of them say (the img2img merge's, from its
 * shards' markers) are not read again.
 */
export async function markStage(
  config: { out: string },
  marker: Omit<StageMarker, 'configHash' | 'finishedAt' | 'recipe' | 'outputFiles'>,
  known: Readonly<Record<string, unknown>> = {},
): Promise<void> {
  const outputFiles = await outputRecords(config.out, marker.outputs, known);
  const m: StageMarker = { ...marker, outputFiles, configHash: configHash(config), recipe: stageRecipe(marker.stage), finishedAt: new Date().toISOString() };
  await writeJsonAtomic(paths(config.out).stage(marker.stage), m);
}

/**
 * Locks the run folder (created if missing) for this process: a second run there refuses, naming this one; a lock
 * left by a killed run is taken over. Temporaries left by killed writers are removed once the lock is held, and so
 * is the folder a killed batch features job computed uncached features in (uncachedFeatures.ts).
 */
export async function lockRunFolder(out: string, command = currentCommand(), options: LockOptions = {}): Promise<FolderLock> {
  const lock = await lockFolder(out, command, options);
  try {
    await removeStaleTemporaries(out, { recursive: true });
    await removeUncachedFeatures(out);
  } catch (e) {
    await lock.release();
    throw e;
  }
  return lock;
}

/** The previous run's config as run.json holds it (null for a clearing marker or no run.json). */
const previousConfig = (m: RunManifest | ClearingMarker | null): unknown => (m !== null && !('clearing' in m) ? m.config : null);

/** The files clearRunFolder would remove, and the others (the user's), of a folder whose run.json is `current`. */
async function filesOf(out: string, current: RunManifest | ClearingMarker | null): Promise<RunFiles> {
  // a folder that never held a run is nobody's to clear
  if (current === null && !existsSync(join(out, 'stages'))) return { remove: [], keep: [] };
  const clearing = current !== null && 'clearing' in current ? current : null;
  // a clearing begun by a version that removed whole entries (its marker lists nothing) is finished as it began
  const whole = clearing && !Array.isArray(clearing.removing) ? LEGACY_RUN_ENTRIES : [];
  return runFiles(out, previousConfig(current), clearing?.removing ?? [], whole);
}

/** The top-level entries --force removed whole before it went file by file (a clearing they began is finished so). */
const LEGACY_RUN_ENTRIES = [
  'data', 'features', 'decoders', 'decoded', 'images', 'metrics.csv', 'metrics.json', 'metrics_per_image.csv', 'report.html', 'fits', 'banded',
  'maps', 'mosaics', 'report_files', 'regions.csv', 'encoding.json', 'demo-world.json',
];

/** The folders holding relative path `file`, innermost first ('a/b/c.npy': a/b, a). */
function ancestors(file: string): string[] {
  const out: string[] = [];
  for (let d = dirname(file); d !== '.' && d !== '/' && d !== ''; d = dirname(d)) out.push(d);
  return out;
}

/**
 * --force: removes the previous run's outputs before the new run writes anything. run.json is first replaced by a
 * "clearing" marker that lists the files to remove, so at no point does the folder hold a new run.json beside old
 * outputs (or claim to be the old run with outputs missing); a clearing interrupted by a kill is finished by the
 * next run in the folder, from that list. The caller holds the folder's lock. Only the files a run wrote go
 * (runFiles: those its stage markers list, and the names the pipelines give their outputs), then the folders that
 * leaves empty; a user's files stay wherever they are. A folder that never held a run (no run.json, no stages/)
 * is left as it is, and one whose run.json no run wrote is refused.
 */
export async function clearRunFolder(out: string): Promise<void> {
  const current = await readRunJson(out);
  if (isForeign(current)) throw new InvalidArgumentError(current.foreign);
  const { remove } = await filesOf(out, current);
  const earlier = current !== null && 'clearing' in current ? (current.removing ?? []) : [];
  if (remove.length === 0) {
    // (a clearing killed after its last file: the folders it emptied go now)
    await removeEmptied(out, new Set(earlier.flatMap(ancestors)));
    return;
  }
  const previous = current === null ? null : 'clearing' in current ? current.previousConfigHash : current.configHash;
  const marker: ClearingMarker = {
    format: 'brainlatent-run', clearing: true, previousConfigHash: previous, startedAt: new Date().toISOString(),
    // (with what an earlier, interrupted attempt listed: a second kill must not forget the folders it emptied)
    removing: [...new Set([...earlier, ...remove])].filter((f) => f !== 'run.json').sort(),
  };
  await writeJsonAtomic(paths(out).run, marker);
  // Stage markers first: whatever survives a kill below is never mistaken for a finished stage.
  const order = [...remove.filter((f) => f.startsWith('stages/')), ...remove.filter((f) => !f.startsWith('stages/') && f !== 'run.json')];
  // (and the folders of what an interrupted clearing removed already: it may have been killed before their turn)
  const folders = new Set<string>(earlier.flatMap(ancestors));
  for (const f of order) {
    await rm(join(out, f), { force: true });
    for (const d of ancestors(f)) folders.add(d);
  }
  await removeEmptied(out, folders);
}

/** Removes those of `folders` (relative) left empty, deepest first: a folder holding a file of the user's stays. */
async function removeEmptied(out: string, folders: Set<string>): Promise<void> {
  for (const d of [...folders].sort((a, b) => b.split('/').length - a.split('/').length)) {
    await rmdir(join(out, d)).catch(() => undefined);
  }
}

/**
 * The top-level entries holding files clearRunFolder would remove (run.json: replaced by its clearing marker), and
 * the files of the user's in the folder that it would leave; none for a folder that never held a run.
 */
export async function clearingFiles(out: string): Promise<{ entries: string[]; kept: string[]; interrupted: boolean }> {
  const current = await readRunJson(out);
  const { remove, keep } = await filesOf(out, isForeign(current) ? null : current);
  const interrupted = current !== null && !isForeign(current) && 'clearing' in current;
  return { entries: topEntries(remove), kept: remove.length ? keep : [], interrupted };
}

/** The top-level entries holding files clearRunFolder would remove. */
export async function entriesToClear(out: string): Promise<string[]> {
  return (await clearingFiles(out)).entries;
}

/** How many of the user's files a message names before "and N more". */
const KEPT_NAMED = 6;

/** A dry run's line for --force: what would go first, and that nothing else would (naming what stays); null when there is nothing. */
export async function clearingPlan(out: string): Promise<string | null> {
  const { entries, kept, interrupted } = await clearingFiles(out);
  if (entries.length === 0) return null;
  // a link to a folder is not followed: what it points to is not the run folder's, whatever it holds
  const link = async (f: string) => ((await lstat(join(out, f)).catch(() => null))?.isSymbolicLink() ? `${f} (a link, not followed)` : f);
  const shown = await Promise.all(kept.slice(0, KEPT_NAMED).map(link));
  const named = shown.join(', ') + (kept.length > KEPT_NAMED ? ` and ${kept.length - KEPT_NAMED} more` : '');
  // (a --force that a kill interrupted is finished by any run there, with or without --force)
  const what = interrupted ? 'finishes an interrupted --force: first removes' : '--force: first removes';
  return (
    `${what} the previous run's outputs in ${out} (${entries.join(', ')}); other files there stay` +
    (kept.length ? ` (${kept.length} no run wrote: ${named})` : '')
  );
}
