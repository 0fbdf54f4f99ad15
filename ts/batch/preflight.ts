/**
 * A batch's checks before anything is queued or run: each subject × analysis's own preflight (the checks of
 * `reconstruct --dry-run` and `encode --dry-run`: model folder, NSD data, the U-Net's latent size, the sessions'
 * betas, …), made on this machine. Workers may see paths this machine does not (docs/batch.md): an NSD root or a
 * model folder that does not exist here is reported as such, and the caller says how to skip the checks. Then the
 * runs' images together, on each file system that several of them write on (sharedSpaceCheck).
 */
import { existsSync } from 'node:fs';

import type { EncodeConfig } from '../config/encode.js';
import { BrainlatentError } from '../errors.js';
import type { ReconstructConfig } from '../pipeline/config.js';
import { sharedSpaceCheck, type PlannedImages } from '../pipeline/outputSpace.js';
import type { BatchNode, SubjectPlan } from './graph.js';
import type { ResolvedAnalysis, ResolvedBatch } from './manifest.js';
import { counted } from '../plural.js';

export interface BatchProblem {
  subject: string;
  analysis: string;
  problem: string;
  /** The problem is a path (NSD root, model folder) that does not exist on this machine. */
  missingHere: boolean;
  /**
   * The problem is a run folder holding another config's run: its remedy (in the problem) is --force, and skipping
   * the checks would not help, since the analysis's job refuses that folder too.
   */
  otherRun?: boolean;
  /** The problem is of several runs' images together on one file system (each run's own job checks only its own). */
  together?: boolean;
}

/** The folders an analysis reads everything else from: without them here, its preflight can say nothing more. */
type CheckedAnalysis = Pick<ResolvedAnalysis, 'kind' | 'config'>;

/** An analysis's NSD root and, if it uses one, its model folder (the service leaves a job missing them here to its workers). */
export function rootPaths(a: CheckedAnalysis): { what: string; path: string }[] {
  if (a.kind === 'reconstruct') {
    const c = a.config as ReconstructConfig;
    return [
      { what: 'NSD root', path: c.nsd.root },
      { what: 'model folder', path: c.model.dir },
    ];
  }
  const c = a.config as EncodeConfig;
  const usesModel = c.model !== null && c.featureSets.some((s) => s.kind !== 'file');
  return [{ what: 'NSD root', path: c.nsd.root }, ...(usesModel ? [{ what: 'model folder', path: c.model as string }] : [])];
}

/** The batch command whose checks or jobs meet a run folder of another config: each names its own --force. */
export type BatchCommand = 'run' | 'submit' | 'plan' | 'retry' | 'job';

/**
 * How a batch resolves a run folder that holds another config's run (runFolderConflict's remedy), in the words of
 * the command that met it: a batch has no --out (the manifest names the folders), and its --force replaces such a
 * folder's run. `batch run --force` and `batch submit --force` apply to a batch not in the queues yet (a submitted
 * subject that failed is resubmitted by `batch retry`, not by a submit); `batch retry --force` to the failed subjects
 * of a submitted one; an extract job may have been started by any of them. `batch` names the batch in the example.
 */
export function batchFolderRemedy(command: BatchCommand, batch = 'NAME'): string {
  const apply = {
    run: "run the batch with --force ('batch run MANIFEST --force')",
    submit: "submit the batch with --force ('batch submit MANIFEST --redis URL --force')",
    plan: "run or submit the batch with --force ('batch run MANIFEST --force', 'batch submit MANIFEST --redis URL --force'; 'batch plan MANIFEST --force' lists what they replace)",
    retry: `retry the batch with --force ('batch retry ${batch} --redis URL --force')`,
    job: `run the batch again with --force ('batch run MANIFEST --force'; a batch submitted through Redis: 'batch retry ${batch} --redis URL --force')`,
  }[command];
  return `to apply this config, ${apply}: it replaces them, files of yours there stay; or give the analysis another name to keep them`;
}

/** What the checks of a batch may be told: --force (a run folder of another config is to be replaced, not refused). */
export interface BatchCheckOptions {
  force?: boolean;
  /** The command that checks, whose remedy a run folder of another config names (batchFolderRemedy; default 'run'). */
  command?: BatchCommand;
  /** That remedy in other words than a command's (the service's batch job names its body's fields); overrides `command`. */
  remedy?: string;
}

type AnalysisProblem = Pick<BatchProblem, 'problem' | 'missingHere' | 'otherRun'>;

/** A pair's own checks: its problems and warnings, and (a reconstruction that passed them) the images it writes. */
interface AnalysisChecks {
  problems: AnalysisProblem[];
  warnings: string[];
  images?: PlannedImages;
}

async function analysisChecks(a: CheckedAnalysis, batch: string, options: BatchCheckOptions = {}): Promise<AnalysisChecks> {
  const missing = rootPaths(a).filter((p) => !existsSync(p.path));
  if (missing.length) return { problems: missing.map((p) => ({ problem: `${p.what} ${p.path} does not exist on this machine`, missingHere: true })), warnings: [] };
  const folder = { force: options.force, remedy: options.remedy ?? batchFolderRemedy(options.command ?? 'run', batch) };
  try {
    if (a.kind === 'reconstruct') {
      const pre = await (await import('../pipeline/preflight.js')).preflight(a.config as ReconstructConfig, folder);
      return { problems: [], warnings: pre.warnings, ...(pre.images ? { images: pre.images } : {}) };
    }
    return { problems: [], warnings: (await (await import('../encoding/preflight.js')).preflightEncode(a.config as EncodeConfig, folder)).warnings };
  } catch (e) {
    const problems = (e as { problems?: unknown }).problems;
    // (a run folder of another config is the one problem that ends with the remedy given to runFolderConflict)
    const problem = (p: unknown): AnalysisProblem => ({ problem: String(p), missingHere: false, ...(String(p).endsWith(folder.remedy) ? { otherRun: true } : {}) });
    if (Array.isArray(problems)) return { problems: problems.map(problem), warnings: [] };
    return { problems: [{ problem: (e as Error).message, missingHere: false }], warnings: [] };
  }
}

/** What a batch's checks found: problems (nothing may run) and warnings (suspicious, not wrong), each by subject × analysis. */
export interface BatchChecks {
  problems: BatchProblem[];
  /** E.g. a session missing between sessions with betas, with nsd.sessions null (missingHere is false). */
  warnings: BatchProblem[];
}

/**
 * The images of the runs that passed their own checks, together on each file system that several of them write on
 * (sharedSpaceCheck: a batch's subjects under one root may each fit and all of them not): a problem or warning for
 * each run of a file system they overfill, the same words for all of them (formatProblems lists it once).
 */
async function sharedSpace(runs: { subject: string; analysis: string; images: PlannedImages }[], into: BatchChecks): Promise<void> {
  if (runs.length < 2) return;
  let found;
  try {
    found = await sharedSpaceCheck(runs.map((r) => r.images));
  } catch {
    return; // (a file system that cannot say its free space: each run's own check said so)
  }
  for (const f of found) {
    for (const i of f.runs) {
      const who = { subject: runs[i].subject, analysis: runs[i].analysis, missingHere: false };
      if (f.problem) into.problems.push({ ...who, problem: f.problem, together: true });
      if (f.warning) into.warnings.push({ ...who, problem: f.warning });
    }
  }
}

/** Every subject × analysis's preflight problems and warnings, in batch order; then those of their images together. */
export async function checkBatch(batch: ResolvedBatch, options: BatchCheckOptions = {}): Promise<BatchChecks> {
  const out: BatchChecks = { problems: [], warnings: [] };
  const images: { subject: string; analysis: string; images: PlannedImages }[] = [];
  for (const s of batch.subjects) {
    for (const a of s.analyses) {
      const r = await analysisChecks(a, batch.id, options);
      for (const p of r.problems) out.problems.push({ subject: s.name, analysis: a.name, ...p });
      for (const w of r.warnings) out.warnings.push({ subject: s.name, analysis: a.name, problem: w, missingHere: false });
      if (r.images) images.push({ subject: s.name, analysis: a.name, images: r.images });
    }
  }
  await sharedSpace(images, out);
  return out;
}

/** Every subject × analysis's preflight problems, in batch order (none: the batch can be queued). */
export async function preflightBatch(batch: ResolvedBatch, options: BatchCheckOptions = {}): Promise<BatchProblem[]> {
  return (await checkBatch(batch, options)).problems;
}

/** The subject × analysis pairs a check looks at, each with its analysis's config. */
type CheckedPair = { subject: string; analysis: string } & CheckedAnalysis;

const manifestPairs = (batch: ResolvedBatch): CheckedPair[] => batch.subjects.flatMap((s) => s.analyses.map((a) => ({ subject: s.name, analysis: a.name, kind: a.kind, config: a.config })));

/** A planned analysis's config, from the first of its jobs that carries one. */
function plannedConfig(steps: (BatchNode | { shards: BatchNode[] })[]): CheckedAnalysis['config'] | undefined {
  for (const step of steps) {
    for (const node of 'shards' in step ? step.shards : [step]) {
      const w = node.work;
      if (w.kind === 'stage' || w.kind === 'shard' || w.kind === 'merge' || w.kind === 'encodeStage') return w.config;
    }
  }
  return undefined;
}

/** The pairs of submitted subjects, from the batch's plan (analyses without a config, probes, have none). */
function plannedPairs(subjects: SubjectPlan[]): CheckedPair[] {
  return subjects.flatMap((s) =>
    s.analyses.flatMap((a) => {
      const config = plannedConfig(a.steps);
      return config ? [{ subject: s.name, analysis: a.name, kind: a.kind, config }] : [];
    }),
  );
}

/**
 * With --force, the run folders whose run is of another config and would be replaced: one line each, what goes
 * (the previous run's outputs; other files stay). Empty without any. A manifest's, or (`batch retry --force`) the
 * subjects of a submitted batch's plan.
 */
export async function forcedReplacements(batch: ResolvedBatch | SubjectPlan[]): Promise<string[]> {
  const { clearingPlan, runFolderConflict } = await import('../pipeline/runFolder.js');
  const out: string[] = [];
  for (const p of Array.isArray(batch) ? plannedPairs(batch) : manifestPairs(batch)) {
    // a conflict that --force resolves: another config's outputs (not a run.json of yours, which it refuses too)
    if ((await runFolderConflict(p.config)) === null || (await runFolderConflict(p.config, { force: true })) !== null) continue;
    const line = await clearingPlan(p.config.out);
    if (line) out.push(`${p.subject} × ${p.analysis}: ${line.replace(/^--force: first removes/, 'replaces')}`);
  }
  return out;
}

/**
 * The preflight problems of submitted subjects, from the batch's plan (`batch retry` checks the subjects it would
 * resubmit: a subject that failed on its inputs would otherwise be queued to fail again). `options.force`: as
 * `batch retry --force` resubmits them (a run folder of another config is to be replaced); a folder of another
 * config is refused naming retry's --force.
 */
export async function preflightPlanned(batch: string, subjects: SubjectPlan[], options: Omit<BatchCheckOptions, 'command'> = {}): Promise<BatchProblem[]> {
  const out: BatchChecks = { problems: [], warnings: [] };
  const images: { subject: string; analysis: string; images: PlannedImages }[] = [];
  for (const p of plannedPairs(subjects)) {
    const r = await analysisChecks(p, batch, { ...options, command: 'retry' });
    for (const problem of r.problems) out.problems.push({ subject: p.subject, analysis: p.analysis, ...problem });
    if (r.images) images.push({ subject: p.subject, analysis: p.analysis, images: r.images });
  }
  await sharedSpace(images, out);
  return out.problems;
}

/**
 * Who a problem concerns, in few words: the analyses that concern the same subjects together, in batch order —
 * `subj01, subj02 × recon, enc` (all four pairs), `subj01, subj02 × recon; subj02 × enc` (three).
 */
function affectedPairs(pairs: { subject: string; analysis: string }[]): string {
  const subjectsOf = new Map<string, string[]>();
  for (const p of pairs) {
    const subjects = subjectsOf.get(p.analysis) ?? [];
    if (!subjects.includes(p.subject)) subjects.push(p.subject);
    subjectsOf.set(p.analysis, subjects);
  }
  const analysesOf = new Map<string, { subjects: string[]; analyses: string[] }>();
  for (const [analysis, subjects] of subjectsOf) {
    const key = subjects.join('\n');
    const g = analysesOf.get(key);
    if (g) g.analyses.push(analysis);
    else analysesOf.set(key, { subjects, analyses: [analysis] });
  }
  return [...analysesOf.values()].map((g) => `${g.subjects.join(', ')} × ${g.analyses.join(', ')}`).join('; ');
}

/**
 * The distinct problems one per line, each once with the subject × analysis pairs it concerns (a model folder or an
 * NSD root that all of them use is one problem, not one per pair): `subj01, subj02 × recon, enc: model folder …`.
 */
export function formatProblems(problems: BatchProblem[]): string[] {
  const groups = new Map<string, BatchProblem[]>();
  for (const p of problems) groups.set(p.problem, [...(groups.get(p.problem) ?? []), p]);
  return [...groups].map(([problem, pairs]) => `${affectedPairs(pairs)}: ${problem}`);
}

/** The warnings one per line, each once with the subject × analysis pairs it concerns: `subj02 × recon, enc: subject 2: session 2 …`. */
export function formatWarnings(warnings: BatchProblem[]): string[] {
  return formatProblems(warnings);
}

/**
 * What to do about the problems, one line per kind found: a path missing here may exist where the workers run (skip
 * the checks); a run folder of another config is resolved as its problem says (--force), which skipping the checks
 * would not do; runs whose images overfill a file system together are made smaller or spread (skipping the checks
 * would let them fill it: each job checks its own run alone); anything else (a config value out of range, a model
 * that does not fit it) is to be fixed: the workers' jobs run the same checks and would fail on it, so skipping them
 * here is not suggested.
 */
export function preflightHints(problems: readonly BatchProblem[], skip: string): string[] {
  const hints: string[] = [];
  const others = problems.filter((p) => !p.missingHere && !p.otherRun && !p.together);
  if (problems.some((p) => p.missingHere)) {
    hints.push(`a path that does not exist on this machine may exist where the workers run (docs/batch.md): if the data and models live only there, skip these checks with ${skip} (the workers check again when they run the jobs)`);
  }
  if (others.length) {
    const it = others.length === 1 ? 'it' : 'them';
    const what = others.length < problems.length ? (others.length === 1 ? 'the other one' : 'the others') : it;
    hints.push(`fix ${what}: the workers' jobs run the same checks and would fail on ${it} too (${skip} would not help)`);
  }
  if (problems.some((p) => p.together)) {
    hints.push(`runs whose images together overfill a file system: fewer seeds or test images, or some of the runs elsewhere; ${skip} would let them fill it (each run's job checks only its own images)`);
  }
  if (problems.some((p) => p.otherRun)) {
    hints.push(`a run folder of another config: apply the remedy it names (--force replaces its run); ${skip} would not help, the analysis's job refuses that folder too`);
  }
  return hints;
}

/** The batch's inputs fail their preflight on this machine: nothing was queued or run. */
export class BatchPreflightError extends BrainlatentError {
  constructor(
    /** The batch as checked: the manifest's, or the subjects of a plan that a retry would resubmit. */
    batch: { id: string; subjects: { analyses: unknown[] }[] },
    readonly problems: BatchProblem[],
    /** What was not done (`nothing was submitted`), and how to skip the checks (`--no-preflight`). */
    context: { refused: string; skip: string },
  ) {
    // a problem that several pairs share (one missing model folder) is one problem, listed once with whom it concerns
    const lines = formatProblems(problems);
    const pairs = new Set(problems.map((p) => `${p.subject}\n${p.analysis}`)).size;
    const total = batch.subjects.reduce((n, s) => n + s.analyses.length, 0);
    super(
      `batch ${batch.id}: the preflight found ${counted(lines.length, 'problem')} in ${pairs} of ${counted(total, 'subject × analysis pair')}; ${context.refused}:\n` +
        `  - ${lines.join('\n  - ')}\n${preflightHints(problems, context.skip).join('\n')}`,
      'BatchPreflight',
    );
  }
}

/** Throws BatchPreflightError listing every problem, if there are any; else returns the warnings (formatWarnings words them). */
export async function requirePreflight(batch: ResolvedBatch, context: { refused: string; skip: string }, options: BatchCheckOptions = {}): Promise<BatchProblem[]> {
  const { problems, warnings } = await checkBatch(batch, options);
  if (problems.length) throw new BatchPreflightError(batch, problems, context);
  return warnings;
}
