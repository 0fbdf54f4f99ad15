/**
 * What a batch looks like from outside, the same whichever runner runs it: every job's state, events as they
 * change, and the summary per subject × stage (done, skipped, failed with the reason) with rates and an ETA.
 */
import type { BatchNode, BatchPlan } from './graph.js';
import { planNodes } from './graph.js';

export type BatchJobState = 'waiting' | 'active' | 'done' | 'skipped' | 'failed' | 'blocked' | 'cancelled';

export interface JobInfo {
  id: string;
  subject: string;
  analysis: string | null;
  stage: string;
  shard?: string;
  queue: string;
  state: BatchJobState;
  /** 0..1 within the job. */
  fraction: number;
  message?: string;
  /** Why it failed (the first line of the error), which job it waited for, or (waiting) why its last attempt failed. */
  reason?: string;
  /**
   * Attempts used so far, as `retry.attempts` counts them: runs that ended (done or failed) and the one running. A
   * run that a closing worker returned to the queue, or that stalled (its worker died; see `stalls`), uses none.
   */
  attempts: number;
  startedAt?: number;
  finishedAt?: number;
  /** Seconds of work (the job's own clock). */
  seconds?: number;
  /** The worker that runs (or ran) it, and how often it stalled (its worker died or lost the lock). */
  worker?: string;
  stalls?: number;
  /** What the job found suspicious but not wrong (its result's `summary.warnings`: the betas job's session gaps). */
  warnings?: string[];
  /**
   * The U-Net work a job that ran did (an img2img shard's, from its result's summary; its merge job's is their sum
   * over the shards that ran in this batch): evaluations of one latent (images × the engine's U-Net calls, × 2 with guidance) and
   * seconds of U-Net time. Absent for a skipped job and one that ran no sampler.
   */
  unet?: { evaluations: number; seconds: number };
  /**
   * The items its last progress counted (an img2img shard's samples): `reused`, of `done`, are those an interrupted
   * run had made, which this run kept: in its fraction, not this run's work (a rate leaves them out).
   */
  count?: JobCount;
}

/** Items a job's progress counts: done of total, `reused` of done made by an earlier run. */
export interface JobCount {
  done: number;
  total: number;
  reused?: number;
}

/** A count as a job's progress carries it (a stage's StageCount less its unit; `reused` only when some were). */
export function jobCount(c: JobCount): JobCount {
  return { done: c.done, total: c.total, ...(c.reused ? { reused: c.reused } : {}) };
}

/** A job's progress read back from Redis: a count with numbers where they belong. */
export function isJobCount(v: unknown): v is JobCount {
  const c = v as Partial<JobCount> | null;
  return typeof c === 'object' && c !== null && Number.isFinite(c.done) && Number.isFinite(c.total) && (c.reused === undefined || Number.isFinite(c.reused));
}

export interface BatchEvent {
  batch: string;
  /**
   * 'job': a job changed state or reported progress; 'batch': the batch's state (at every read of a watch); 'redis'
   * (watchBatch only): Redis stopped answering, or answers again.
   */
  type: 'job' | 'batch' | 'redis';
  job?: JobInfo;
  state?: BatchState;
  /** A 'redis' event: whether Redis answers now, and a line saying so (of a stall: the RedisUnreachableError's message). */
  redis?: { answering: boolean; message: string };
  at: number;
}

export type BatchState = 'running' | 'done' | 'failed' | 'cancelled';

export interface BatchStatus {
  batch: string;
  state: BatchState;
  jobs: JobInfo[];
  counts: Record<BatchJobState, number>;
  /**
   * Share of the batch made (jobShare: a job done or skipped counts whole, any other the part its last fraction says,
   * so a batch that ends failed or cancelled does not reach 1), jobs per minute, and seconds to go: the jobs left at
   * that rate, but never less than the largest of the subjects' ETAs (`subjects`).
   */
  progress: number;
  jobsPerMinute: number | null;
  etaSeconds: number | null;
  startedAt: number | null;
  /** Per subject, in batch order: its share done and when it should finish (see subjectProgress). */
  subjects: SubjectProgress[];
}

export interface SubjectProgress {
  subject: string;
  /** 'running' while any of its jobs is waiting or active; otherwise done, failed (a job failed or was blocked) or cancelled. */
  state: BatchState;
  /** Its jobs' share made (jobShare), weighted by their expected seconds: below 1 when it ended failed or cancelled. */
  progress: number;
  /** Seconds until it should be finished (0 when it is), null before any job has done work to measure. */
  etaSeconds: number | null;
}

/**
 * The reason of a job stopped or refused because its batch was cancelled (both runners). Through BullMQ such a job
 * is failed (BullMQ has no cancelled state): its `failedReason`, and the `failedReason` of QueueEvents' 'failed'
 * event, is exactly this (docs/batch.md).
 */
export const CANCELLED_REASON = 'batch cancelled';

/** Whether a BullMQ job's `failedReason` (or a 'failed' event's) is a cancel by `batch cancel`, not a failure. */
export const isCancelledReason = (failedReason: string | undefined | null): boolean => failedReason === CANCELLED_REASON;

/**
 * How much of a job is made: 1 once done (or skipped); otherwise the part it finished, its last fraction (0 when it
 * never ran). A stopped or failed job is not complete (its finished samples are kept and reused, the rest is not),
 * so a cancelled or failed batch stays below 100%: `batch status`, `batch watch` and the service's batch job agree.
 */
export const jobShare = (j: JobInfo): number => (j.state === 'done' || j.state === 'skipped' ? 1 : j.fraction);

const stageKey = (j: JobInfo) => `${j.analysis ?? ''}\u0000${j.stage}`;

/**
 * Per-subject progress and ETA from the work measured so far. A job's expected cost is the mean seconds of the
 * finished jobs of its stage (any subject), else the mean of all finished jobs. The workers are taken to go on
 * at the batch's measured pace (work-seconds done per wall second since it started) and, as the queues are
 * first in, first out, to finish the subjects in batch order: a subject is done once its own remaining work and
 * that of the unfinished subjects before it are. A subject's chain of stages is also a floor: its ETA is never
 * below its own remaining work divided by the jobs it can run at once (one, except for shards).
 */
export function subjectProgress(jobs: JobInfo[], startedAt: number | null, now = Date.now()): SubjectProgress[] {
  const worked = jobs.filter((j) => j.state === 'done' && j.seconds !== undefined);
  const byStage = new Map<string, { sum: number; n: number }>();
  for (const j of worked) {
    const g = byStage.get(stageKey(j)) ?? { sum: 0, n: 0 };
    g.sum += j.seconds!;
    g.n++;
    byStage.set(stageKey(j), g);
  }
  const overall = worked.length ? worked.reduce((a, j) => a + j.seconds!, 0) / worked.length : null;
  const cost = (j: JobInfo) => {
    const g = byStage.get(stageKey(j));
    // joins (the control queue) do no work of their own
    return g ? g.sum / g.n : j.queue === 'control' ? 0 : (overall ?? 1);
  };
  const elapsed = startedAt === null ? 0 : (now - startedAt) / 1000;
  const doneWork = worked.reduce((a, j) => a + j.seconds!, 0) + jobs.filter((j) => j.state === 'active').reduce((a, j) => a + j.fraction * cost(j), 0);
  const pace = elapsed > 0 && overall !== null ? doneWork / elapsed : null; // work-seconds per wall second
  const subjects = [...new Set(jobs.map((j) => j.subject))];
  let before = 0;
  return subjects.map((subject) => {
    const js = jobs.filter((j) => j.subject === subject);
    const total = js.reduce((a, j) => a + cost(j), 0);
    const made = js.reduce((a, j) => a + cost(j) * jobShare(j), 0);
    // the work still to run (for the ETA): a failed, blocked or cancelled job runs no more
    const left = js.reduce((a, j) => a + (isFinished(j.state) ? 0 : cost(j) * (1 - (j.state === 'active' ? j.fraction : 0))), 0);
    const counts = new Set(js.map((j) => j.state));
    const running = counts.has('active') || counts.has('waiting');
    const state: BatchState = running ? 'running' : counts.has('cancelled') ? 'cancelled' : counts.has('failed') || counts.has('blocked') ? 'failed' : 'done';
    let etaSeconds: number | null = running ? null : 0;
    if (running && pace) {
      before += left;
      // its longest remaining chain: shards of one stage run side by side, an analysis's stages one after
      // another, the subject's analyses side by side after its shared jobs
      const chain = new Map<string, number>();
      for (const j of js) if (!isFinished(j.state)) chain.set(stageKey(j), Math.max(chain.get(stageKey(j)) ?? 0, cost(j) * (1 - (j.state === 'active' ? j.fraction : 0))));
      const perAnalysis = new Map<string, number>();
      for (const [k, v] of chain) perAnalysis.set(k.split('\u0000')[0], (perAnalysis.get(k.split('\u0000')[0]) ?? 0) + v);
      const shared = perAnalysis.get('') ?? 0;
      perAnalysis.delete('');
      const floor = shared + Math.max(0, ...perAnalysis.values());
      etaSeconds = Math.max(before / pace, floor);
    }
    return { subject, state, progress: total > 0 ? made / total : js.reduce((a, j) => a + jobShare(j), 0) / js.length, etaSeconds };
  });
}

/** One cell of the summary: a stage of an analysis of a subject (an img2img cell covers its shards). */
export interface SummaryCell {
  subject: string;
  analysis: string | null;
  stage: string;
  state: BatchJobState;
  jobs: number;
  /** Its jobs that have ended: done, skipped, failed, blocked or cancelled (run or not). */
  finished: number;
  /** Its jobs by what happened to them (only those present): done, skipped, running, waiting, failed, blocked, stopped (cancelled while running), not run (cancelled before it started). */
  counts: Partial<Record<CellCount, number>>;
  fraction: number;
  /** Seconds of work: its jobs' own clocks summed (jobs that ran side by side count each). */
  seconds: number;
  reason?: string;
  /** Its jobs' warnings, each once (see JobInfo.warnings); absent without any. */
  warnings?: string[];
}

/** The states a summary cell counts its jobs in: "stopped" was cancelled while running, "not run" cancelled before it started. */
export type CellCount = 'done' | 'skipped' | 'running' | 'waiting' | 'failed' | 'blocked' | 'stopped' | 'not run';
const CELL_COUNTS: CellCount[] = ['done', 'skipped', 'running', 'waiting', 'failed', 'blocked', 'stopped', 'not run'];

/** What a job of a cell counts as: a cancelled job that had started was stopped; one removed before it started did not run. */
function cellCount(j: JobInfo): CellCount {
  if (j.state === 'cancelled') return j.startedAt === undefined ? 'not run' : 'stopped';
  return j.state === 'active' ? 'running' : j.state;
}

function countCell(js: JobInfo[]): Partial<Record<CellCount, number>> {
  const counts: Partial<Record<CellCount, number>> = {};
  for (const j of js) counts[cellCount(j)] = (counts[cellCount(j)] ?? 0) + 1;
  return Object.fromEntries(CELL_COUNTS.filter((k) => counts[k]).map((k) => [k, counts[k]]));
}

/**
 * A cell's jobs in words, for a cell of several jobs: `(4 jobs)` when all are done (or skipped), `(4 jobs not run)`
 * when they are alike otherwise, and `(4 jobs: 2 done, 2 not run)` when they differ; '' for a cell of one job.
 */
export function formatCellCount(c: Pick<SummaryCell, 'jobs' | 'counts'>): string {
  if (c.jobs <= 1) return '';
  const parts = Object.entries(c.counts) as [CellCount, number][];
  if (parts.length === 1) return parts[0][0] === 'done' || parts[0][0] === 'skipped' ? `(${c.jobs} jobs)` : `(${c.jobs} jobs ${parts[0][0]})`;
  return `(${c.jobs} jobs: ${parts.map(([k, n]) => `${n} ${k}`).join(', ')})`;
}

/** A finished job's warnings, from its result's `summary.warnings` (runNode): `{ warnings }`, or nothing without any. */
export function resultWarnings(r: { summary?: Record<string, unknown> }): Pick<JobInfo, 'warnings'> {
  const w = r.summary?.warnings;
  return Array.isArray(w) && w.length ? { warnings: w.map(String) } : {};
}

/** A finished job's U-Net work, from its result's `summary.unetEvaluations` and `unetSeconds`: `{ unet }`, or nothing. */
export function resultUnet(r: { status?: string; summary?: Record<string, unknown> }): Pick<JobInfo, 'unet'> {
  const evaluations = Number(r.summary?.unetEvaluations);
  const seconds = Number(r.summary?.unetSeconds);
  return r.status === 'done' && evaluations > 0 && seconds >= 0 ? { unet: { evaluations, seconds } } : {};
}

export function jobInfo(n: BatchNode): JobInfo {
  return { id: n.id, subject: n.subject, analysis: n.analysis, stage: n.stage, shard: n.shard, queue: n.queue, state: 'waiting', fraction: 0, attempts: 0 };
}

export const initialJobs = (plan: BatchPlan): JobInfo[] => planNodes(plan).map(jobInfo);

const FINISHED: BatchJobState[] = ['done', 'skipped', 'failed', 'blocked', 'cancelled'];
export const isFinished = (s: BatchJobState) => FINISHED.includes(s);

export function batchStatus(batch: string, jobs: JobInfo[], startedAt: number | null, now = Date.now()): BatchStatus {
  const counts = { waiting: 0, active: 0, done: 0, skipped: 0, failed: 0, blocked: 0, cancelled: 0 } as Record<BatchJobState, number>;
  for (const j of jobs) counts[j.state]++;
  const finished = jobs.filter((j) => isFinished(j.state)).length;
  const partial = jobs.filter((j) => j.state === 'active').reduce((a, j) => a + j.fraction, 0);
  const progress = jobs.length ? jobs.reduce((a, j) => a + jobShare(j), 0) / jobs.length : 1;
  const running = counts.active + counts.waiting > 0;
  let state: BatchState = 'running';
  if (!running) state = counts.cancelled ? 'cancelled' : counts.failed || counts.blocked ? 'failed' : 'done';
  // the rate counts jobs that did work; skipped ones finish in milliseconds and would inflate it
  const worked = jobs.filter((j) => j.state === 'done' && j.finishedAt !== undefined);
  const minutes = startedAt === null ? 0 : (now - startedAt) / 60_000;
  const jobsPerMinute = minutes > 0 && worked.length ? (worked.length + partial) / minutes : null;
  const left = jobs.length - finished - partial;
  const subjects = subjectProgress(jobs, startedAt, now);
  // jobs left at the job rate counts a short job as a long one: never below the last subject's ETA (weighted by each
  // stage's measured seconds), or the batch would end before a subject still running
  const byJobs = jobsPerMinute ? (60 * left) / jobsPerMinute : null;
  const bySubjects = subjects.map((p) => p.etaSeconds).filter((t): t is number => t !== null);
  const etaSeconds = state !== 'running' ? 0 : byJobs === null && !bySubjects.length ? null : Math.max(byJobs ?? 0, ...bySubjects);
  return { batch, state, jobs, counts, progress, jobsPerMinute, etaSeconds, startedAt, subjects };
}

const PRECEDENCE: BatchJobState[] = ['failed', 'cancelled', 'blocked', 'active', 'waiting', 'done', 'skipped'];

/** The summary per subject × stage, in plan order. */
export function summarize(jobs: JobInfo[]): SummaryCell[] {
  const cells = new Map<string, { jobs: JobInfo[] }>();
  for (const j of jobs) {
    const key = `${j.subject}\u0000${j.analysis ?? ''}\u0000${j.stage}`;
    if (!cells.has(key)) cells.set(key, { jobs: [] });
    cells.get(key)!.jobs.push(j);
  }
  return [...cells.values()].map(({ jobs: js }) => {
    const states = new Set(js.map((j) => j.state));
    // a stage with some shards done and others waiting is running, not waiting
    let state = PRECEDENCE.find((s) => states.has(s))!;
    if (state === 'waiting' && js.some((j) => isFinished(j.state))) state = 'active';
    if (state === 'done' && js.every((j) => j.state === 'skipped' || j.state === 'done') && js.some((j) => j.state === 'skipped') && !js.some((j) => j.state === 'done')) state = 'skipped';
    // (else a job waiting to be retried: why its last attempt failed)
    const failed = js.find((j) => j.state === 'failed') ?? js.find((j) => j.state === 'blocked') ?? js.find((j) => j.state === 'waiting' && j.reason);
    const warnings = [...new Set(js.flatMap((j) => j.warnings ?? []))];
    return {
      subject: js[0].subject,
      analysis: js[0].analysis,
      stage: js[0].stage,
      state,
      jobs: js.length,
      finished: js.filter((j) => isFinished(j.state)).length,
      counts: countCell(js),
      fraction: js.reduce((a, j) => a + (isFinished(j.state) ? 1 : j.state === 'active' ? j.fraction : 0), 0) / js.length,
      seconds: js.reduce((a, j) => a + (j.seconds ?? 0), 0),
      reason: failed?.reason,
      ...(warnings.length ? { warnings } : {}),
    };
  });
}

/** The summary as text: one line per subject × stage, and a line under it per warning of the stage. */
export function formatSummary(cells: SummaryCell[]): string {
  const rows = cells
    .filter((c) => c.stage !== 'subject')
    .map((c) => {
      const what = `${c.subject}  ${c.analysis ? `${c.analysis}/` : ''}${c.stage}`;
      const count = c.jobs > 1 ? ` ${formatCellCount(c)}` : '';
      // (a stage of several jobs: their seconds summed, which side-by-side jobs make more than the wall time; review s44)
      const secs = c.seconds > 0 ? ` ${c.seconds.toFixed(1)} s${c.jobs > 1 ? ' of job time' : ''}` : '';
      const warnings = (c.warnings ?? []).map((w) => `\n${''.padEnd(35)}warning: ${w}`).join('');
      return `${what.padEnd(34)} ${c.state}${count}${secs}${c.reason ? `: ${c.reason}` : ''}${warnings}`;
    });
  return rows.join('\n');
}

/**
 * An error message on one line, for tables, logs and reasons: its lines trimmed and joined. Not only the first
 * line: a check that lists its problems ('cannot start the reconstruction:' then one line per problem) says
 * nothing without them. Problems are joined by '; ' without their list marks: 'cannot start the
 * reconstruction: the z decoder …; model.dir: not found'.
 */
export function oneLine(s: string): string {
  const lines = s.split('\n').map((l) => l.trim()).filter(Boolean);
  if (lines.length === 0) return s;
  const [head, ...rest] = lines;
  if (rest.length === 0) return head;
  const items = rest.map((l) => l.replace(/^[-*•]\s+/, ''));
  return `${head}${head.endsWith(':') ? ' ' : '; '}${items.join('; ')}`;
}
