/**
 * Runs a pipeline's stages in a run folder: a stage whose marker matches the config, whose outputs are as it wrote
 * them (runFolder's stageState) and whose input files (`inputs`) are as they were is skipped, unless one of the stages it depends on runs (then it runs
 * too, unless what it reads of them is unchanged: its depKey, by default the keys of their outputs, stageDepKey) or
 * ran since it did (its marker records another key); `force` runs everything. Each
 * finished stage writes its marker last, so an interrupted stage is redone. Used by encode(); the stages of
 * a job graph run the same definitions one at a time (`runStage`).
 */
import { CancelledError } from '../errors.js';
import { inputIdentities } from '../io/fileIdentity.js';
import { recordingOrtUse } from '../native/ortUse.js';
import { markStage, readStageMarker, stageState, upstreamKey } from './runFolder.js';
import { stageVersions } from './runVersions.js';

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
  /**
   * A key of the content of what it made, recorded in its marker (StageMarker.outputKey) for the stages after it: an
   * extraction's data. Made again the same, the stages keyed on it are skipped; see StageDef.keysOutputs.
   */
  outputKey?: string;
  /** Clean-up once the stage's marker is written: what must outlive the stage until its marker says it is done. */
  afterMarker?: () => Promise<void>;
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
  /**
   * Its run returns a key of its outputs' content (StageResult.outputKey: an extract stage's): run again with the same
   * outputs, the stages after it find their default depKey unchanged and are skipped (the dry run says they may be).
   */
  keysOutputs?: boolean;
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
  /**
   * On a stage's first 'running' report, when it ran before and its own record no longer holds: why it runs again
   * ("decoders/z.safetensors: 1,234 bytes, the stage recorded 56,789", "…/feat.npy changed since it ran"; the dry
   * run's "(again: …)"). Absent for a first run and for a stage that runs because one before it runs.
   */
  again?: string;
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
 * too, and whose record of what it read of them (depKey) is that of their outputs now: a stage before it that ran
 * again since (in a run interrupted before this one) makes it run. A stage that ran before and runs again says why.
 * Stages come in dependency order.
 */
export async function planStages(config: RunConfig, stages: StageDef[], force = false): Promise<Map<string, StagePlan>> {
  const plan = new Map<string, StagePlan>();
  const byId = new Map(stages.map((s) => [s.id, s]));
  for (const s of stages) {
    const unknown = s.deps.filter((d) => !plan.has(d));
    if (unknown.length) throw new Error(`stage ${s.id} depends on ${unknown.join(', ')}, which come later or do not exist`);
    if (force) {
      plan.set(s.id, { skip: false });
      continue;
    }
    const state = await stageState(config, s.id, s.inputs);
    const running = s.deps.filter((d) => !plan.get(d)!.skip);
    if (!state.done) plan.set(s.id, { skip: false, why: state.why });
    else if (running.length === 0) {
      const holds = await holdsAfter(config, s, false);
      plan.set(s.id, holds ? { skip: true, done: true } : { skip: false, why: `what it reads of ${s.deps.join(', ')} changed since it ran` });
    }
    // (whether it does depends on what that stage writes: the dry run cannot know)
    else plan.set(s.id, { skip: false, done: true, why: `${running[0]} runs${depKeyNote(s, running, (d) => byId.get(d)!, plan)}` });
  }
  return plan;
}

/**
 * The dry run's note on a finished stage that runs because `running` (stages it depends on) run: when it may be
 * skipped after all. A stage with its own depKey, when the images it reads are the same; with the default key (their
 * outputs), when each of them may make the same outputs (keysOutputs) or be skipped itself (its own record holds).
 */
function depKeyNote(s: StageDef, running: string[], def: (id: string) => StageDef, plan: Map<string, StagePlan>): string {
  if (s.depKey) return DEP_KEY_NOTE;
  return running.every((d) => def(d).keysOutputs || plan.get(d)!.done) ? SAME_OUTPUTS_NOTE : '';
}

/** planStages' verdicts alone: true for a stage to skip. */
export async function planSkips(config: RunConfig, stages: StageDef[], force = false): Promise<Map<string, boolean>> {
  return new Map([...(await planStages(config, stages, force))].map(([id, p]) => [id, p.skip]));
}

/** The dry run's note on a stage with a depKey that a stage before it reruns. */
export const DEP_KEY_NOTE = '; not if the images it reads are the same';

/** The dry run's note on a stage whose dependencies run but may make the same outputs (an extraction run again). */
export const SAME_OUTPUTS_NOTE = '; not if they make the same outputs';

/**
 * The key of what `stage` reads of the stages it depends on: its own depKey (the images a features stage embeds),
 * else upstreamKey of its deps (their outputs' content keys, or their markers); none for a stage without deps.
 */
export async function stageDepKey(config: RunConfig, stage: Pick<StageDef, 'deps' | 'depKey'>): Promise<string | undefined> {
  if (stage.depKey) return stage.depKey();
  return stage.deps.length ? upstreamKey(config, stage.deps) : undefined;
}

/**
 * Whether a finished stage (its own record holds) still holds. When a stage it depends on ran (`depsRan`), only if
 * what it reads of them is unchanged (its marker records the same depKey). When none did, unless its marker records
 * another key than theirs now: one of them ran again since, in a run stopped before this stage (a marker from before
 * keys were recorded holds).
 */
export async function holdsAfter(config: RunConfig, stage: Pick<StageDef, 'id' | 'deps' | 'depKey'>, depsRan: boolean): Promise<boolean> {
  const recorded = (await readStageMarker(config, stage.id))?.depKey;
  if (!depsRan && recorded === undefined) return true;
  let key: string | undefined;
  try {
    key = await stageDepKey(config, stage);
  } catch {
    return false; // (what it reads cannot be read: it runs, and says why)
  }
  return key === undefined ? !depsRan : recorded === key;
}

/**
 * A finished stage (its own record holds) whose dependencies `ran` in this run: it still holds when none of them
 * ran after all (each was skipped on its own record or key), or when what it reads of them is unchanged (holdsAfter).
 */
export async function stillHolds(config: RunConfig, stage: StageDef, ran: ReadonlySet<string>): Promise<boolean> {
  return holdsAfter(config, stage, stage.deps.some((d) => ran.has(d)));
}

/**
 * Runs one stage and records it: its marker, with its inputs as they were when it started, what it read of the
 * stages before it (stageDepKey), its outputs' content key when it has one and what computed it (this process's
 * versions and the ONNX Runtime the stage ran its models on: runVersions.ts), once its outputs are all in place.
 */
export async function runStage(config: RunConfig, stage: StageDef, ctx: StageRunContext): Promise<StageReport> {
  const t0 = performance.now();
  const inputs = await inputIdentities(stage.inputs ?? []);
  // what it reads of the stages before it, before it reads it
  const depKey = await stageDepKey(config, stage);
  // (its last run's records of its outputs: those it keeps as they were, an img2img rerun's intact samples, are not read
  // again when it is recorded; a file rewritten has another time and is)
  const previous = (await readStageMarker(config, stage.id))?.outputFiles;
  // (the ONNX Runtime its models ran on, for the record of what computed it)
  const { value: r, uses } = await recordingOrtUse(() => stage.run(ctx));
  const seconds = (performance.now() - t0) / 1000;
  await markStage(
    config,
    {
      stage: stage.id, seconds, outputs: r.outputs, summary: r.summary, inputs, ranWith: stageVersions(uses),
      ...(depKey === undefined ? {} : { depKey }),
      ...(r.outputKey === undefined ? {} : { outputKey: r.outputKey }),
    },
    previous !== null && typeof previous === 'object' ? previous : {},
  );
  await r.afterMarker?.();
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
    /**
     * Called, and awaited, before the error of a stage that failed (or was stopped) is thrown: the stage, the error,
     * and the stages before it, which finished (run.json's record of a failed run: runRecord.ts).
     */
    onFailure?: (stage: string, error: unknown, finished: string[]) => Promise<void>;
  } = {},
): Promise<StageReport[]> {
  const reports: StageReport[] = [];
  const ran = new Set<string>();
  for (const [i, stage] of stages.entries()) {
    try {
      await runOrSkip(i, stage);
    } catch (e) {
      await options.onFailure?.(stage.id, e, stages.slice(0, i).map((s) => s.id));
      throw e;
    }
  }
  return reports;

  async function runOrSkip(i: number, stage: StageDef): Promise<void> {
    if (options.signal?.aborted) throw new CancelledError(`${options.what ?? 'run'}: cancelled`, { cause: options.signal.reason });
    const base = { stage: stage.id, index: i + 1, stages: stages.length };
    const p = plan.get(stage.id);
    if (p?.skip || (p?.done && (await stillHolds(config, stage, ran)))) {
      const m = await readStageMarker(config, stage.id);
      reports.push({ stage: stage.id, status: 'skipped', seconds: 0, summary: m?.summary });
      options.onStage?.(reports[reports.length - 1]);
      options.onProgress?.({ ...base, fraction: 1, status: 'skipped' });
      return;
    }
    // (a damaged output or a changed input file: said once, as the stage starts)
    options.onProgress?.({ ...base, fraction: 0, status: 'running', ...(p && !p.skip && !p.done && p.why ? { again: p.why } : {}) });
    const ctx: StageRunContext = {
      signal: options.signal,
      progress: (fraction, message, count) => options.onProgress?.({ ...base, fraction, message, count, status: 'running' }),
    };
    reports.push(await runStage(config, stage, ctx).catch((e: unknown) => Promise.reject(cancelledIn(e, stage.id, options))));
    ran.add(stage.id);
    options.onStage?.(reports[reports.length - 1]);
    options.onProgress?.({ ...base, fraction: 1, status: 'done' });
  }
}

/**
 * A stage stopped by the signal says which stage it was and that the finished ones are kept (the engine's own
 * message, "img2img cancelled before step 4 of 10", names neither the run nor the stage); other errors pass.
 */
function cancelledIn(e: unknown, stage: string, options: { signal?: AbortSignal; what?: string }): unknown {
  if (!(e instanceof CancelledError) && !options.signal?.aborted) return e;
  return new CancelledError(
    `${options.what ?? 'run'}: cancelled in stage ${stage}${cancelDetail(e)}; the stages finished before it are kept, and the next run resumes at ${stage}`,
    cancelCause(e, options.signal),
  );
}

/**
 * A `--dry-run` whose probe the signal stopped says which stage's estimate it was making, as a run names the stage
 * it stopped in (the job's own message, "pixCorr: aborted before it started", names neither); other errors pass.
 * The probes write nothing: no stage ran and nothing of the run was written.
 */
export function cancelledEstimating(e: unknown, stage: string, options: { signal?: AbortSignal; what: string }): unknown {
  if (!(e instanceof CancelledError) && !options.signal?.aborted) return e;
  return new CancelledError(`${options.what} --dry-run: cancelled while estimating stage ${stage}${cancelDetail(e)}; no stage ran and nothing was written`, cancelCause(e, options.signal));
}

/** The stopped work's own message in parentheses, where it says more than that it was stopped. */
function cancelDetail(e: unknown): string {
  return e instanceof Error && e.message && !SAYS_ONLY_CANCELLED.test(e.message) ? ` (${e.message})` : '';
}

/** (the signal's reason stays the cause, as the engine's CancelledError carries it) */
function cancelCause(e: unknown, signal?: AbortSignal): ErrorOptions | undefined {
  const cause = signal?.aborted ? signal.reason : e instanceof Error ? e.cause : undefined;
  return cause === undefined ? undefined : { cause };
}

/**
 * Messages that say no more than that the stage was stopped: a stage's own check ("reconstruct: cancelled") and an
 * engine job the signal stopped before it started ("img2img: aborted before it started", ts/native/call.ts) — the
 * job after the one that was running (a Ctrl-C while a sample's PNGs were written), not where the stage was.
 */
const SAYS_ONLY_CANCELLED = /^(?:[\w.+-]+: )?(?:cancelled|aborted before it started)$/;
