/**
 * Runs a pipeline's stages in a run folder: a stage whose marker matches the config, whose outputs exist and whose
 * input files (`inputs`) are as they were is skipped, unless one of the stages it depends on runs (then it runs
 * too, unless what it reads of them is unchanged: `depKey`); `force` runs everything. Each
 * finished stage writes its marker last, so an interrupted stage is redone. Used by encode(); the stages of
 * a job graph run the same definitions one at a time (`runStage`).
 */
import { CancelledError } from '../errors.js';
import { inputIdentities } from '../io/fileIdentity.js';
import { depKeyHolds, markStage, readStageMarker, stageState } from './runFolder.js';

/** Items done in a stage, when it counts them (images, sessions): the progress bar's rate is in that unit. */
export interface StageCount {
  done: number;
  total: number;
  unit: string;
  /** Of `done`, items an earlier run made and this one reused (a resumed img2img): not this run's work, so not in its rate. */
  reused?: number;
}

/** What a running stage is given: a progress callback and the run's signal. */
export interface StageRunContext {
  progress: (fraction: number, message?: string, count?: StageCount) => void;
  signal?: AbortSignal;
}

/** What a stage returns: the files it wrote and a summary for its marker and the report. */
export interface StageResult {
  /** Files written, relative to the run folder. */
  outputs: string[];
  summary?: Record<string, unknown>;
}

/** One stage of a pipeline (see `encodeStages`): its id, the stages it reads from, and how it runs. */
export interface StageDef {
  /** Unique in the run; also the marker's name (stages/<id>.json) and a job id part: letters, digits, '.', '_', '+', '-'. */
  id: string;
  /** Stages whose outputs this one reads. */
  deps: string[];
  /** One line for the plan. */
  describe: string;
  /**
   * Files and folders the stage reads from outside the run folder (a feature file, the model folder): their
   * identities (size, mtime; a folder's files) are recorded in its marker, and a change reruns it (stageState).
   */
  inputs?: string[];
  /**
   * For a stage that reads less of the stages before it than their outputs, the key of what it reads (a features
   * stage: the set of images whose features it computes, imageSetKey; not the betas the extraction also wrote),
   * recorded in its marker. When a stage it depends on runs again, it runs only if this key changed: new betas of
   * the same images leave the features as they are. Called once those stages have finished.
   */
  depKey?: () => Promise<string>;
  run: (ctx: StageRunContext) => Promise<StageResult>;
}

/** Progress of a stage: its id, its number among the stages, how far it is within it, and what it counts. */
export interface StageProgress {
  stage: string;
  /** Stage number (1-based) and count. */
  index: number;
  stages: number;
  /** Within the stage, 0..1. */
  fraction: number;
  message?: string;
  count?: StageCount;
  status: 'running' | 'skipped' | 'done';
}

/**
 * What a stage did in a run: ran, skipped (its outputs were already there), or planned (a dry run). `S` is the
 * stage's name: `StageName` in a reconstruction's result, any stage id (extract, fit.z, …) in an encoding's.
 */
export interface StageReport<S extends string = string> {
  stage: S;
  status: 'ran' | 'skipped' | 'planned';
  seconds: number;
  summary?: Record<string, unknown>;
}

type RunConfig = { out: string };

/** What the plan does with a stage: skip it or run it, and why it runs again when it ran before. */
export interface StagePlan {
  skip: boolean;
  /** Why a stage that ran before runs again: "latent.npy changed since it ran", "fit.lat runs", … */
  why?: string;
  /**
   * Its own record holds (marker, outputs, input files): it runs only for a stage it depends on that runs, and then
   * not if that stage was skipped after all, or if what it reads of it is unchanged (depKey). runStages decides.
   */
  done?: boolean;
}

/**
 * Which stages would be skipped: finished ones (stageState, with their inputs) whose dependencies are all skipped
 * too; a stage that ran before and runs again says why. Stages come in dependency order.
 */
export async function planStages(config: RunConfig, stages: StageDef[], force = false): Promise<Map<string, StagePlan>> {
  const plan = new Map<string, StagePlan>();
  for (const s of stages) {
    const unknown = s.deps.filter((d) => !plan.has(d));
    if (unknown.length) throw new Error(`stage ${s.id} depends on ${unknown.join(', ')}, which come later or do not exist`);
    if (force) {
      plan.set(s.id, { skip: false });
      continue;
    }
    const state = await stageState(config, s.id, s.inputs);
    const rerun = s.deps.find((d) => !plan.get(d)!.skip);
    if (!state.done) plan.set(s.id, { skip: false, why: state.why });
    else if (!rerun) plan.set(s.id, { skip: true, done: true });
    // (whether it does depends on what that stage writes: the dry run cannot know)
    else plan.set(s.id, { skip: false, done: true, why: `${rerun} runs${s.depKey ? DEP_KEY_NOTE : ''}` });
  }
  return plan;
}

/** planStages' verdicts alone: true for a stage to skip. */
export async function planSkips(config: RunConfig, stages: StageDef[], force = false): Promise<Map<string, boolean>> {
  return new Map([...(await planStages(config, stages, force))].map(([id, p]) => [id, p.skip]));
}

/** The dry run's note on a stage with a depKey that a stage before it reruns. */
export const DEP_KEY_NOTE = '; not if the images it reads are the same';

/**
 * A finished stage (its own record holds) whose dependencies `ran` in this run: it still holds when none of them
 * ran after all (each was skipped on its own record or key), or when what it reads of them is unchanged (depKey).
 */
export async function stillHolds(config: RunConfig, stage: StageDef, ran: ReadonlySet<string>): Promise<boolean> {
  if (!stage.deps.some((d) => ran.has(d))) return true;
  return stage.depKey !== undefined && (await depKeyHolds(config, stage.id, await stage.depKey()));
}

/** Runs one stage and records it: its marker, with its inputs as they were when it started, once its outputs are all in place. */
export async function runStage(config: RunConfig, stage: StageDef, ctx: StageRunContext): Promise<StageReport> {
  const t0 = performance.now();
  const inputs = await inputIdentities(stage.inputs ?? []);
  // what it reads of the stages before it, before it reads it
  const depKey = stage.depKey ? await stage.depKey() : undefined;
  const r = await stage.run(ctx);
  const seconds = (performance.now() - t0) / 1000;
  await markStage(config, { stage: stage.id, seconds, outputs: r.outputs, summary: r.summary, inputs, ...(depKey === undefined ? {} : { depKey }) });
  return { stage: stage.id, status: 'ran', seconds, summary: r.summary };
}

/**
 * Runs the stages of the plan (planStages) in order; reports progress per stage. A stage planned to run only
 * because one it depends on runs (its own record holds) is decided when it comes: it is skipped when none of those
 * ran after all, or when what it reads of them is unchanged (stillHolds).
 */
export async function runStages(
  config: RunConfig,
  stages: StageDef[],
  plan: Map<string, StagePlan>,
  options: {
    onProgress?: (p: StageProgress) => void;
    signal?: AbortSignal;
    what?: string;
    /** Called with each stage's report as it is skipped or has run (its warnings, say, shown as they come). */
    onStage?: (report: StageReport) => void;
  } = {},
): Promise<StageReport[]> {
  const reports: StageReport[] = [];
  const ran = new Set<string>();
  for (const [i, stage] of stages.entries()) {
    if (options.signal?.aborted) throw new CancelledError(`${options.what ?? 'run'}: cancelled`);
    const base = { stage: stage.id, index: i + 1, stages: stages.length };
    const p = plan.get(stage.id);
    if (p?.skip || (p?.done && (await stillHolds(config, stage, ran)))) {
      const m = await readStageMarker(config, stage.id);
      reports.push({ stage: stage.id, status: 'skipped', seconds: 0, summary: m?.summary });
      options.onStage?.(reports[reports.length - 1]);
      options.onProgress?.({ ...base, fraction: 1, status: 'skipped' });
      continue;
    }
    options.onProgress?.({ ...base, fraction: 0, status: 'running' });
    const ctx: StageRunContext = {
      signal: options.signal,
      progress: (fraction, message, count) => options.onProgress?.({ ...base, fraction, message, count, status: 'running' }),
    };
    reports.push(await runStage(config, stage, ctx).catch((e: unknown) => Promise.reject(cancelledIn(e, stage.id, options))));
    ran.add(stage.id);
    options.onStage?.(reports[reports.length - 1]);
    options.onProgress?.({ ...base, fraction: 1, status: 'done' });
  }
  return reports;
}

/**
 * A stage stopped by the signal says which stage it was and that the finished ones are kept (the engine's own
 * message, "img2img cancelled before step 4 of 10", names neither the run nor the stage); other errors pass.
 */
function cancelledIn(e: unknown, stage: string, options: { signal?: AbortSignal; what?: string }): unknown {
  if (!(e instanceof CancelledError) && !options.signal?.aborted) return e;
  const why = e instanceof Error && e.message && !SAYS_ONLY_CANCELLED.test(e.message) ? ` (${e.message})` : '';
  return new CancelledError(`${options.what ?? 'run'}: cancelled in stage ${stage}${why}; the stages finished before it are kept, and the next run resumes at ${stage}`);
}

/**
 * Messages that say no more than that the stage was stopped: a stage's own check ("reconstruct: cancelled") and an
 * engine job the signal stopped before it started ("img2img: aborted before it started", ts/native/call.ts) — the
 * job after the one that was running (a Ctrl-C while a sample's PNGs were written), not where the stage was.
 */
const SAYS_ONLY_CANCELLED = /^(?:[\w.+-]+: )?(?:cancelled|aborted before it started)$/;
