/**
 * Runs one job of the graph: the same function serves the local pool and the BullMQ workers. A job whose
 * outputs are complete (its marker matches the config and every output is as it wrote it) is skipped, unless a job it
 * depends on ran in this batch; an img2img shard's marker also names the stages before img2img as they were when
 * it ran (the shard's job is not told that they ran again). Markers are written last, so an interrupted job is redone.
 */
import { existsSync } from 'node:fs';
import { appendFile, mkdir, readFile, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, relative } from 'node:path';

import { CancelledError, InvalidArgumentError } from '../errors.js';
import { writeJsonAtomic } from '../io/atomicWrite.js';
import { createOnce } from '../io/createOnce.js';
import { inputIdentities, type InputIdentity } from '../io/fileIdentity.js';
import type { OrtUse } from '../native/ortUse.js';
import { configHash, type ReconstructConfig } from '../pipeline/config.js';
import { PreflightError } from '../pipeline/errors.js';
import { removeUncachedFeatures, UNCACHED_FEATURES } from '../pipeline/uncachedFeatures.js';
import { withModelRoots } from '../sd/modelRoots.js';
import type { OutputRecord } from '../pipeline/outputRecords.js';
import type { Img2ImgShard, StageContext } from '../pipeline/stages.js';
import type { BatchNode } from './graph.js';
import { shardLabel, shardNodeId } from './graph.js';
import { withJobFolder } from './jobFolder.js';
import { batchFolderRemedy } from './preflight.js';
import type { JobCount } from './status.js';

// The stage code (the engine, ONNX Runtime, HDF5) is imported when a job needs it, so a job process starts
// quickly and holds only what its jobs use.
const pipelineStages = () => import('../pipeline/stages.js');
const runFolder = () => import('../pipeline/runFolder.js');
const stageInputs = () => import('../pipeline/stageInputs.js');
const img2imgProgress = () => import('../pipeline/img2imgProgress.js');
const stageRunner = () => import('../pipeline/stageRunner.js');
const outputRecords = () => import('../pipeline/outputRecords.js');
const runVersions = () => import('../pipeline/runVersions.js');
const ortUse = () => import('../native/ortUse.js');

export interface NodeControl {
  /**
   * Fraction of this job done (0..1), what it is doing, and the items it counts (an img2img shard's samples, with
   * those an interrupted run made: `reused`).
   */
  progress: (fraction: number, message?: string, count?: JobCount) => void;
  signal?: AbortSignal;
  /** A job this one depends on ran (was not skipped) in this batch: redo this one too. */
  depsRan: boolean;
  /**
   * Which of the jobs this one depends on ran in this batch (ids): an img2img merge counts the U-Net work of those
   * shards only (the others' markers hold an earlier run's). Absent: none is known to have.
   */
  ranDeps?: readonly string[];
  /**
   * The batch submission this job belongs to (`<batch>@<submitted at>`: submitPlan's call, or the local runner's run),
   * written into an img2img shard's marker: a merge counts the shards whose marker names its own submission as run
   * by it, whatever their jobs reported (one that computed its images while Redis was away could not record it, ran
   * again and was skipped on its marker). Absent (a job queued by a version that did not say): the merge counts ranDeps only.
   */
  submission?: string;
  /**
   * The run folders' locks the job's runner holds for the whole batch (run folder → the lock's token; the local
   * runner's, lockPlanFolders): a job in a folder named here runs under that lock, and takes none of its own. Told
   * per job rather than through the environment: a job process is told of exactly its own runner's locks, and a
   * process it starts inherits none of them.
   */
  runnerLocks?: Readonly<Record<string, string>>;
}

export interface NodeResult {
  status: 'done' | 'skipped';
  seconds: number;
  summary?: Record<string, unknown>;
  /**
   * Through BullMQ: the jobs of the subject's analysis that ran (were not skipped) in this batch, down the chain of
   * jobs under this one, this one included (the worker adds it; dependenciesRan reads it). A chain links each job
   * to the one before it, not to every job it depends on: a decoders job learns from its features job's result that
   * the extraction under it ran, even when the features job itself was skipped.
   */
  ran?: string[];
}

/** What a finished img2img shard leaves: written last, so its outputs are complete when it exists. */
interface ShardMarker {
  shard: Img2ImgShard;
  configHash: string;
  /** img2img's recipe version (runFolder's STAGE_RECIPES); absent in markers from before, read as 1. */
  recipe?: number;
  /**
   * What the shard was made from: the key of the markers of the stages before img2img (img2imgUpstreamKey), taken
   * before it ran. Absent in markers from before (then the marker must be newer than those markers).
   */
  upstream?: string;
  /** The submission whose job made it (NodeControl.submission); absent in markers from before, or of a job not told it. */
  submission?: string;
  seconds: number;
  outputs: string[];
  /**
   * Its PNGs as it wrote them (size, time, hash: pipeline/outputRecords.ts), so that one truncated or overwritten
   * since reruns the shard (and the merge) rather than being recorded as the stage's; absent in markers from before,
   * whose PNGs are only checked to exist.
   */
  outputFiles?: Record<string, OutputRecord>;
  summary?: Record<string, unknown>;
  /** What computed it (runVersions.ts' stageVersions: the job's process and host); absent in markers from before. */
  ranWith?: Record<string, string>;
}

export const shardMarkerPath = (config: ReconstructConfig, shard: Img2ImgShard) => join(config.out, 'stages', 'img2img.shards', `${shardLabel(shard)}.json`);

async function readJson<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return null;
  }
}

/**
 * A shard's marker when its images are current: of this config and recipe, its outputs all there, and made from the
 * decoders and z-only images there are now (a stage before img2img that ran again since, in this batch or another,
 * makes the shard stale whether or not anything told its job so: through BullMQ a shard's job has no children).
 */
async function shardDone(config: ReconstructConfig, shard: Img2ImgShard): Promise<ShardMarker | null> {
  const file = shardMarkerPath(config, shard);
  const m = await readJson<ShardMarker>(file);
  const { paths, stageRecipe } = await runFolder();
  if (!m || m.configHash !== configHash(config) || (m.recipe ?? 1) !== stageRecipe('img2img') || !m.outputs.every((o) => existsSync(join(config.out, o)))) return null;
  if (m.outputFiles && typeof m.outputFiles === 'object' && (await (await outputRecords()).outputRecordChange(config.out, m.outputFiles)) !== null) return null;
  const { img2imgUpstreamKey, IMG2IMG_UPSTREAM } = await img2imgProgress();
  if (m.upstream !== undefined) return m.upstream === (await img2imgUpstreamKey(config)) ? m : null;
  // a marker from before the key was recorded: current when written after every upstream stage's marker
  const written = (await stat(file)).mtimeMs;
  for (const s of IMG2IMG_UPSTREAM) {
    const t = await stat(paths(config.out).stage(s)).then((x) => x.mtimeMs, () => null);
    if (t === null || t > written) return null;
  }
  return m;
}

/**
 * What a single-process run's img2img marker records beside its outputs (stageRunner's runStage), where the shards
 * show it true, so that a later reconstruct keeps the intact blocks of a stage rerun for a damaged sample
 * (img2imgIntactUnits) as after its own run. Its depKey (what it read of the stages before it) only when every shard's
 * marker records that it was made from those stages as they are now (shardDone has compared them; a shard marker
 * from before that key is current by its time alone, which is no key). Its inputs (files read from outside the run
 * folder) only while img2img reads none: the shards do not record what they read.
 */
async function mergedStageKeys(config: ReconstructConfig, markers: readonly ShardMarker[], inputPaths: readonly string[]): Promise<{ depKey?: string; inputs?: InputIdentity[] }> {
  const { reconstructStageDeps } = await pipelineStages();
  const key = await (await stageRunner()).stageDepKey(config, reconstructStageDeps(config, 'img2img'));
  return {
    ...(key !== undefined && markers.every((m) => m.upstream === key) ? { depKey: key } : {}),
    ...(inputPaths.length === 0 ? { inputs: [] } : {}),
  };
}

/**
 * Whether a current shard marker holds work of the merge's own submission: its job ran (was not skipped) in it, or
 * its marker names it (the job computed the shard, could not record that while Redis was away, ran again and was
 * skipped on the marker). A marker without a submission (from before, or of a job not told it) counts by its job only.
 */
export function ranInThisSubmission(marker: { submission?: string }, shardJobId: string, ctl: Pick<NodeControl, 'ranDeps' | 'submission'>): boolean {
  if (ctl.ranDeps?.includes(shardJobId)) return true;
  return ctl.submission !== undefined && marker.submission === ctl.submission;
}

/**
 * run.json's `versions` in a batch: the process of the job that claimed the folder (its extract stage). The other
 * stages may run in other workers' processes, on other machines: what computed each is in its marker (`ranWith`,
 * with the ONNX Runtime its models ran on) and in run.json's `stageVersions` (recordRunStages).
 */
async function versions(): Promise<Record<string, string>> {
  return { ...(await runVersions()).runVersions(), hostname: hostname(), runner: 'brainlatent batch' };
}

/** What computed a stage this job ran: this process, and the ONNX Runtime the stage's models ran on (`uses`). */
async function ranWith(uses: readonly OrtUse[]): Promise<Record<string, string>> {
  return (await runVersions()).stageVersions(uses);
}

/**
 * Rewrites run.json's `stageVersions` from the stage markers of the job's analysis (its stage ids: a reconstruction's
 * STAGES, an encoding's encodeStages), after each of its jobs but a shard's, run or skipped, and drops a `failed`
 * record of the job's stage. Jobs of one folder may end side by side: the rewrites take run.json's lock (runRecord.ts),
 * so the last one reads every marker written before it, and none is lost.
 */
async function recordRunStages(node: BatchNode): Promise<void> {
  if (node.work.kind === 'shard') return;
  const of = await analysisStages(node);
  if (of === null) return;
  await (await import('../pipeline/runRecord.js')).recordStageVersions(of.config, of.stages, node.stage);
}

/**
 * Records in run.json that the job's stage failed (or was stopped), with its error: `failed` (an img2img shard's as
 * `img2img[<shard>]`), and `stageVersions` from the markers of the analysis's other stages. Jobs of no analysis
 * (betas, shared features) record nothing there.
 */
async function recordRunFailed(node: BatchNode, e: unknown): Promise<void> {
  const of = await analysisStages(node);
  if (of === null) return;
  const stage = node.shard ? `${node.stage}[${node.shard}]` : node.stage;
  // (its own marker, if any, is an earlier run's)
  await (await import('../pipeline/runRecord.js')).recordRunFailure(of.config, of.stages.filter((s) => s !== node.stage), stage, e);
}

/** The analysis whose run folder a job works in, and its stage ids (a reconstruction's STAGES, an encoding's encodeStages); null for a subject's jobs. */
async function analysisStages(node: BatchNode): Promise<{ config: { out: string }; stages: readonly string[] } | null> {
  const w = node.work;
  const analysis =
    w.kind === 'stage' || w.kind === 'merge' || w.kind === 'shard'
      ? { kind: 'reconstruct' as const, config: w.config }
      : w.kind === 'encodeStage'
        ? { kind: 'encode' as const, config: w.config }
        : w.kind === 'featuresLink'
          ? w.consumer
          : null;
  if (analysis === null) return null;
  const { STAGES } = await runFolder();
  const stages = analysis.kind === 'reconstruct' ? STAGES : (await import('../encoding/stages.js')).encodeStages(analysis.config).map((s) => s.id);
  return { config: analysis.config, stages };
}

/** Runs a reconstruction stage (or one img2img shard) with the pipeline's own stage code. */
async function withStageContext<T>(node: BatchNode, config: ReconstructConfig, ctl: NodeControl, fn: (ctx: StageContext) => Promise<T>): Promise<T> {
  const { preflight } = await import('../pipeline/preflight.js');
  const { lazyDiffusion } = await import('../pipeline/lazyDiffusion.js');
  const pre = await preflight(config, { remedy: batchFolderRemedy('job', node.batch) });
  const model = lazyDiffusion(config);
  const ctx: StageContext = { config, pre, signal: ctl.signal, progress: ctl.progress, diffusion: model.get };
  try {
    return await fn(ctx);
  } finally {
    model.dispose();
  }
}

/**
 * What an analysis's extract job does first, before it writes the run's manifest, under the folder's lock (held by
 * its runner or by the job: withJobFolder): it claims the run folder. A folder
 * holding another config's run is refused (the job fails on its inputs, naming the batch's remedy) or, with the
 * batch's --force, cleared as `reconstruct --force` clears it: the previous run's outputs go, the user's own files
 * stay. A clearing that a kill interrupted is finished, as reconstruct and encode finish it. `batch` names the batch in
 * the remedy (a submitted batch's is `batch retry NAME --force`).
 */
async function claimRunFolder(config: { out: string }, force: boolean, what: string, batch: string): Promise<void> {
  const { clearingInterrupted, clearRunFolder, runFolderConflict } = await runFolder();
  const conflict = await runFolderConflict(config, { remedy: batchFolderRemedy('job', batch) });
  // (a run.json that no run wrote is refused with --force too)
  const unresolved = conflict !== null && (!force || (await runFolderConflict(config, { force: true })) !== null);
  if (unresolved) throw new PreflightError([conflict], what);
  if (conflict === null && !(await clearingInterrupted(config.out))) return;
  await clearRunFolder(config.out);
}

/**
 * An analysis's features stage from the shared entries: its ids (from its own extract stage) name the entries,
 * which are computed here if the shared job did not (a part nobody else needs), then linked into the run folder
 * under the names the stage's own outputs have, and the stage is marked done with the entries' keys.
 */
async function linkSharedFeatures(w: Extract<BatchNode['work'], { kind: 'featuresLink' }>, ctl: NodeControl, seconds: () => number): Promise<NodeResult> {
  const sf = await import('./sharedFeatures.js');
  const { markStage, paths, readStageMarker, stageDone } = await runFolder();
  const { consumer, recipes, dir } = w;
  const config = consumer.config;
  const stage = sf.consumerStage(consumer);
  const ids = await sf.consumerIds(consumer);
  const keys = { z: await sf.entryKey(recipes.z, ids), c: await sf.entryKey(recipes.c, ids) };
  // the files the stage's own code reads (the model, the stimuli, the captions), recorded as encode() and reconstruct() record them
  const inputPaths =
    consumer.kind === 'reconstruct'
      ? await (await stageInputs()).reconstructStageInputs(consumer.config, stage)
      : (await import('../encoding/stageInputs.js')).encodeStageInputs(consumer.config, stage);
  const inputs = await inputIdentities(inputPaths);
  // the entries' keys name the images (and the recipe): after an extraction that ran, the links still hold when they are the same
  if (await stageDone(config, stage, inputPaths)) {
    const had = (await readStageMarker(config, stage))?.summary?.sharedFeatures as typeof keys | undefined;
    if (had?.z === keys.z && had?.c === keys.c) return { status: 'skipped', seconds: seconds() };
  }
  // an entry the cache cannot take (a damaged one this user cannot replace, a read-only cache folder) is computed
  // for this analysis alone, into a folder of its run folder, linked from there like an entry, then removed
  const uncached = join(config.out, UNCACHED_FEATURES);
  try {
    const z = await sf.ensureEntry(dir, recipes.z, ids, (f, m) => ctl.progress(f / 2, m), ctl.signal, uncached);
    const c = await sf.ensureEntry(dir, recipes.c, ids, (f, m) => ctl.progress(0.5 + f / 2, m), ctl.signal, uncached);
    await sf.assertEntryIds(z, ids);
    await sf.assertEntryIds(c, ids);
    const files: [string, string][] = [];
    let summary: Record<string, unknown>;
    const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
    if (consumer.kind === 'reconstruct') {
      const p = paths(config.out);
      files.push([z.data, p.zFeatures], [c.data, p.cFeatures], [z.ids, p.featureIds]);
      summary = { images: ids.length, zDim: size(z.shape), cDim: size(c.shape) };
    } else {
      const { encodePaths } = await import('../encoding/runPaths.js');
      const p = encodePaths(config.out);
      files.push([z.data, p.embedZ], [c.data, p.embedC], [z.ids, p.embedIds]);
      await writeJsonAtomic(p.embedShapes, { z: z.shape, c: c.shape });
      summary = { images: ids.length, z: z.shape, c: c.shape };
    }
    for (const [src, dest] of files) await sf.linkInto(src, dest);
    const outputs = [...files.map(([, d]) => d), ...(consumer.kind === 'encode' ? [(await import('../encoding/runPaths.js')).encodePaths(config.out).embedShapes] : [])].map((f) => relative(config.out, f));
    const computedHere = [z, c].filter((e) => e.computed).map((e) => e.key);
    // (what computed it: the process that computed each entry, as the entry records it, whichever job that was)
    const ranWithParts = { z: z.ranWith ?? null, c: c.ranWith ?? null };
    await markStage(config, { stage, seconds: seconds(), outputs, summary: { ...summary, sharedFeatures: keys, computedHere }, inputs, ranWithParts });
    // (why an entry was computed here uncached: the job's warnings, which batch status shows)
    const warnings = [z, c].flatMap((e) => (e.notCached ? [e.notCached] : []));
    return { status: 'done', seconds: seconds(), summary: { ...summary, computedHere, ...(warnings.length ? { warnings } : {}) } };
  } finally {
    // (moved aside, then deleted: a kill meanwhile leaves no part of a copy under its name; the next lock holder
    // removes whatever a kill left, and nothing ever reads it: pipeline/uncachedFeatures.ts)
    await removeUncachedFeatures(config.out);
  }
}

export { UNCACHED_FEATURES };

/**
 * The betas job's warnings: for each extraction that reads every session with betas (no sessions given), a
 * session missing between sessions that have them (sessionGapWarning), once per subject and root. Made whether the
 * extraction ran or came from the cache: the run reads those sessions either way.
 */
async function sessionGapWarnings(extractions: Extract<BatchNode['work'], { kind: 'betas' }>['extractions']): Promise<string[]> {
  const { extractionGapWarning } = await import('../nsd/sessionPlan.js');
  const out = new Set<string>();
  for (const o of extractions) {
    const w = await extractionGapWarning(o);
    if (w) out.add(w);
  }
  return [...out];
}

/** Why each of the extractions' cache folders that exists cannot be written in (a read-only shared cache), once each. */
async function readOnlyCaches(extractions: readonly { cacheDir?: string }[]): Promise<string[]> {
  const { readOnlyFolder } = await import('../io/outputProblem.js');
  const dirs = [...new Set(extractions.map((o) => o.cacheDir).filter((d): d is string => !!d))];
  return (await Promise.all(dirs.map(readOnlyFolder))).filter((why): why is string => why !== null);
}

/**
 * Runs a job held to its own service's model roots (none for a batch of the CLI's): never those of the process that
 * runs it, which may have run another service's job before or run one beside it. A job in a run folder runs under
 * the folder's lock, and only while the folder holds its config's run (withJobFolder).
 */
export function runNode(node: BatchNode, ctl: NodeControl): Promise<NodeResult> {
  return withModelRoots(node.modelRoots ?? [], () =>
    withJobFolder(node, ctl.runnerLocks, async () => {
      let r: NodeResult;
      try {
        r = await runNodeWork(node, ctl);
      } catch (e) {
        // run.json says which stage failed and how (a retry that succeeds, or the extract job reclaiming the folder, clears it)
        await recordRunFailed(node, e);
        throw e;
      }
      await recordRunStages(node);
      return r;
    }),
  );
}

async function runNodeWork(node: BatchNode, ctl: NodeControl): Promise<NodeResult> {
  const t0 = performance.now();
  const seconds = () => (performance.now() - t0) / 1000;
  const w = node.work;
  switch (w.kind) {
    case 'subject':
      return { status: ctl.depsRan ? 'done' : 'skipped', seconds: 0 };
    case 'betas': {
      const { extractNsd } = await import('../nsd/extract.js');
      // this job only fills the cache for the analyses: a read-only one it cannot fill, and what it extracted was
      // thrown away, every miss extracted again by each analysis, unsaid (review s45)
      const readOnly = await readOnlyCaches(w.extractions);
      if (readOnly.length) {
        const warnings = readOnly.map((why) => `${why}: the subject's extractions are not prepared ahead; each analysis loads its own from the cache, or extracts what it lacks`);
        return { status: 'skipped', seconds: seconds(), summary: { extractions: w.extractions.length, extracted: 0, warnings } };
      }
      let fresh = 0;
      for (const [i, o] of w.extractions.entries()) {
        // (the job's signal: a cancelled batch does not wait for every session of the subject to be read)
        const r = await extractNsd({ ...o, signal: ctl.signal, onProgress: (e) => ctl.progress((i + e.done / e.total) / w.extractions.length, `${o.roi}: session ${e.session}`) });
        if (!r.fromCache) fresh++;
      }
      const warnings = await sessionGapWarnings(w.extractions);
      return { status: fresh ? 'done' : 'skipped', seconds: seconds(), summary: { extractions: w.extractions.length, extracted: fresh, ...(warnings.length ? { warnings } : {}) } };
    }
    case 'stage': {
      const { config, stage } = w;
      const { markStage, stageDone, writeManifest } = await runFolder();
      const { reconstructStageDeps, STAGE_RUNNERS } = await pipelineStages();
      const { holdsAfter, stageDepKey } = await stageRunner();
      const inputPaths = await (await stageInputs()).reconstructStageInputs(config, stage);
      const def = reconstructStageDeps(config, stage);
      // after a stage that ran, it still holds when what it reads of them is unchanged (features: the images; the others:
      // the extraction's content, made again the same from betas files with new times); a stage before it that ran
      // again since it did (in a batch stopped before it) makes it run
      if ((await stageDone(config, stage, inputPaths)) && (await holdsAfter(config, def, ctl.depsRan))) {
        return { status: 'skipped', seconds: seconds() };
      }
      if (stage === 'extract') {
        await claimRunFolder(config, w.force === true, 'the reconstruction', node.batch);
        await writeManifest(config, await versions());
      }
      const inputs = await inputIdentities(inputPaths);
      const key = await stageDepKey(config, def);
      const { value: r, uses } = await (await ortUse()).recordingOrtUse(() => withStageContext(node, config, ctl, (ctx) => STAGE_RUNNERS[stage](ctx)));
      await markStage(config, {
        stage, seconds: seconds(), outputs: r.outputs, summary: r.summary, inputs, ranWith: await ranWith(uses),
        ...(key === undefined ? {} : { depKey: key }),
        ...(r.outputKey === undefined ? {} : { outputKey: r.outputKey }),
      });
      return { status: 'done', seconds: seconds(), summary: r.summary };
    }
    case 'shard': {
      const { config, shard } = w;
      if (!ctl.depsRan && (await shardDone(config, shard))) return { status: 'skipped', seconds: seconds() };
      // what it is made from, before it reads it
      const upstream = await (await img2imgProgress()).img2imgUpstreamKey(config);
      const { img2imgShardStage } = await pipelineStages();
      const { value: r, uses } = await (await ortUse()).recordingOrtUse(() => withStageContext(node, config, ctl, (ctx) => img2imgShardStage(ctx, shard)));
      const { stageRecipe } = await runFolder();
      const marker: ShardMarker = {
        shard, configHash: configHash(config), recipe: stageRecipe('img2img'), upstream,
        ...(ctl.submission === undefined ? {} : { submission: ctl.submission }),
        seconds: seconds(), outputs: r.outputs, outputFiles: await (await outputRecords()).outputRecords(config.out, r.outputs), summary: r.summary,
        ranWith: await ranWith(uses),
      };
      await writeJsonAtomic(shardMarkerPath(config, shard), marker);
      await r.afterMarker?.();
      return { status: 'done', seconds: seconds(), summary: r.summary };
    }
    case 'merge': {
      // every shard has finished (the graph says so); check their markers and record the stage
      const { config } = w;
      const { markStage, paths, stageDone } = await runFolder();
      const inputPaths = await (await stageInputs()).reconstructStageInputs(config, 'img2img');
      if (!ctl.depsRan && (await stageDone(config, 'img2img', inputPaths))) return { status: 'skipped', seconds: seconds() };
      const markers: ShardMarker[] = [];
      for (const sh of w.shards) {
        const m = await shardDone(config, sh);
        if (!m) throw new Error(`img2img shard ${shardLabel(sh)} of ${config.out} has no complete outputs (its marker ${shardMarkerPath(config, sh)} is missing or stale)`);
        markers.push(m);
      }
      const ids = (JSON.parse(await readFile(paths(config.out).ids, 'utf8')) as { test: number[] }).test;
      const outputs = markers.flatMap((m) => m.outputs);
      const expected = ids.length * config.img2img.seeds;
      if (new Set(outputs).size !== expected) {
        throw new Error(`img2img shards of ${config.out} wrote ${new Set(outputs).size} images, expected ${ids.length} test images × ${config.img2img.seeds} seeds = ${expected}; the shard plan no longer fits the extraction: resubmit the batch`);
      }
      // what this run computed (a resumed run's others were made, and counted, before)
      const now = markers.filter((m, i) => ranInThisSubmission(m, shardNodeId(node.id, w.shards[i]), ctl));
      const sum = (key: string, of: ShardMarker[] = now) => of.reduce((a, m) => a + Number(m.summary?.[key] ?? 0), 0);
      const summary = {
        images: ids.length,
        seeds: config.img2img.seeds,
        shards: markers.length,
        shardsRun: now.length,
        samplesRun: sum('samplesRun'),
        reusedSamples: expected - sum('samplesRun'),
        unetEvaluations: sum('unetEvaluations'),
        unetSeconds: sum('unetSeconds'),
        shardSeconds: markers.reduce((a, m) => a + m.seconds, 0),
      };
      // (its records are the shards' (shardDone has just checked them): a PNG is read only where one moved since)
      const known = Object.assign({}, ...markers.map((m) => (m.outputFiles && typeof m.outputFiles === 'object' ? m.outputFiles : {}))) as Record<string, unknown>;
      // (what computed it: each shard's job, as its marker records it)
      const ranWithParts = Object.fromEntries(markers.map((m, i) => [shardLabel(w.shards[i]), m.ranWith && typeof m.ranWith === 'object' ? m.ranWith : null]));
      await markStage(config, { stage: 'img2img', seconds: summary.shardSeconds, outputs, summary, ranWithParts, ...(await mergedStageKeys(config, markers, inputPaths)) }, known);
      return { status: 'done', seconds: seconds(), summary };
    }
    case 'probe': {
      const file = join(w.out, `${node.id}.json`);
      if (!ctl.depsRan && existsSync(file)) return { status: 'skipped', seconds: seconds() };
      if (w.hang) {
        // (tests) logged, reported, then stuck for good: no abort, no IPC, as a call in native code that never returns
        await mkdir(w.out, { recursive: true });
        await appendFile(join(w.out, 'executions.log'), `${node.id} ${process.pid}\n`);
        ctl.progress(0.5, 'hanging');
        await new Promise((r) => setTimeout(r, 200)); // (the report leaves before the loop stops)
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
      }
      const steps = Math.max(1, Math.ceil(w.ms / 50));
      for (let i = 0; i < steps; i++) {
        if (ctl.signal?.aborted) throw new CancelledError(`${node.id}: ${String(ctl.signal.reason ?? 'cancelled')}`, { cause: ctl.signal.reason });
        await new Promise((r) => setTimeout(r, w.ms / steps));
        ctl.progress((i + 1) / steps);
      }
      if (w.fail) throw new InvalidArgumentError(`${node.id}: a probe told to fail`);
      // every execution is logged (a killed worker's job runs again); the output is published once, whole
      await mkdir(w.out, { recursive: true });
      await appendFile(join(w.out, 'executions.log'), `${node.id} ${process.pid}\n`);
      const published = await createOnce(file, JSON.stringify({ id: node.id, pid: process.pid, at: new Date().toISOString() }));
      if (published) await appendFile(join(w.out, 'published.log'), `${node.id} ${process.pid}\n`);
      return { status: published ? 'done' : 'skipped', seconds: seconds() };
    }
    case 'sharedFeatures': {
      // one entry per distinct list of images among the analyses (one, unless their extractions differ)
      const { fillEntry, plannedConsumerIds } = await import('./sharedFeatures.js');
      const lists = new Map<string, Int32Array>();
      for (const c of w.consumers) {
        const ids = await plannedConsumerIds(c);
        lists.set(ids.join(), ids);
      }
      const entries: string[] = [];
      const warnings: string[] = [];
      let computed = 0;
      for (const [i, ids] of [...lists.values()].entries()) {
        // (one the cache cannot take is not computed here: each analysis's features job computes its own)
        const e = await fillEntry(w.dir, w.recipe, ids, (f, m) => ctl.progress((i + f) / lists.size, m), ctl.signal);
        entries.push(e.key);
        if (!('dir' in e)) warnings.push(e.notCached);
        else if (e.computed) computed++;
      }
      const summary = { entries, computed, consumers: w.consumers.map((c) => c.config.out), ...(warnings.length ? { warnings } : {}) };
      return { status: computed ? 'done' : 'skipped', seconds: seconds(), summary };
    }
    case 'featuresLink':
      return linkSharedFeatures(w, ctl, seconds);
    case 'encodeStage': {
      // one stage of encode(), with its own stage code; the first also checks the inputs and claims the folder
      const { config, stage } = w;
      const { stageDone, writeManifest } = await runFolder();
      const { holdsAfter, runStage } = await stageRunner();
      const { encodeStages } = await import('../encoding/stages.js');
      const def = encodeStages(config).find((s) => s.id === stage);
      if (!def) throw new InvalidArgumentError(`${node.id}: the encode config has no stage '${stage}' (stages: ${encodeStages(config).map((s) => s.id).join(', ')})`);
      if ((await stageDone(config, stage, def.inputs)) && (await holdsAfter(config, def, ctl.depsRan))) {
        return { status: 'skipped', seconds: seconds() };
      }
      if (stage === 'extract') {
        await claimRunFolder(config, w.force === true, 'encode', node.batch);
        const { preflightEncode } = await import('../encoding/preflight.js');
        await preflightEncode(config, { remedy: batchFolderRemedy('job', node.batch) });
        await writeManifest(config, await versions());
      }
      const r = await runStage(config, def, { progress: ctl.progress, signal: ctl.signal });
      return { status: 'done', seconds: seconds(), summary: r.summary };
    }
  }
}
