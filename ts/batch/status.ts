/**
 * What a batch looks like from outside, the same whichever runner runs it: every job's state, events as they
 * change, and the summary per subject × stage (done, skipped, failed with the reason) with rates and an ETA.
 */
import type { BatchNode, BatchPlan } from './graph.js';
import { planNodes } from './graph.js';

export type JobState = 'waiting' | 'active' | 'done' | 'skipped' | 'failed' | 'blocked' | 'cancelled';

export interface JobInfo {
  id: string;
  subject: string;
  analysis: string | null;
  stage: string;
  shard?: string;
  queue: string;
  state: JobState;
  /** 0..1 within the job. */
  fraction: number;
  message?: string;
  /** Why it failed (the first line of the error), or which job it waited for. */
  reason?: string;
  /** Attempts started so far. */
  attempts: number;
  startedAt?: number;
  finishedAt?: number;
  /** Seconds of work (the job's own clock). */
  seconds?: number;
  /** The worker that runs (or ran) it, and how often it stalled (its worker died or lost the lock). */
  worker?: string;
  stalls?: number;
}

export interface BatchEvent {
  batch: string;
  /** 'job': a job changed state or reported progress; 'batch': the batch finished. */
  type: 'job' | 'batch';
  job?: JobInfo;
  state?: BatchState;
  at: number;
}

export type BatchState = 'running' | 'done' | 'failed' | 'cancelled';

export interface BatchStatus {
  batch: string;
  state: BatchState;
  jobs: JobInfo[];
  counts: Record<JobState, number>;
  /** Fraction of jobs finished (done, skipped, failed, blocked), jobs per minute, seconds to go at that rate. */
  progress: number;
  jobsPerMinute: number | null;
  etaSeconds: number | null;
  startedAt: number | null;
}

/** One cell of the summary: a stage of an analysis of a subject (an img2img cell covers its shards). */
export interface SummaryCell {
  subject: string;
  analysis: string | null;
  stage: string;
  state: JobState;
  jobs: number;
  finished: number;
  fraction: number;
  seconds: number;
  reason?: string;
}

export function jobInfo(n: BatchNode): JobInfo {
  return { id: n.id, subject: n.subject, analysis: n.analysis, stage: n.stage, shard: n.shard, queue: n.queue, state: 'waiting', fraction: 0, attempts: 0 };
}

export const initialJobs = (plan: BatchPlan): JobInfo[] => planNodes(plan).map(jobInfo);

const FINISHED: JobState[] = ['done', 'skipped', 'failed', 'blocked', 'cancelled'];
export const isFinished = (s: JobState) => FINISHED.includes(s);

export function batchStatus(batch: string, jobs: JobInfo[], startedAt: number | null, now = Date.now()): BatchStatus {
  const counts = { waiting: 0, active: 0, done: 0, skipped: 0, failed: 0, blocked: 0, cancelled: 0 } as Record<JobState, number>;
  for (const j of jobs) counts[j.state]++;
  const finished = jobs.filter((j) => isFinished(j.state)).length;
  const partial = jobs.filter((j) => j.state === 'active').reduce((a, j) => a + j.fraction, 0);
  const progress = jobs.length ? (finished + partial) / jobs.length : 1;
  const running = counts.active + counts.waiting > 0;
  let state: BatchState = 'running';
  if (!running) state = counts.cancelled ? 'cancelled' : counts.failed || counts.blocked ? 'failed' : 'done';
  // the rate counts jobs that did work; skipped ones finish in milliseconds and would inflate it
  const worked = jobs.filter((j) => j.state === 'done' && j.finishedAt !== undefined);
  const minutes = startedAt === null ? 0 : (now - startedAt) / 60_000;
  const jobsPerMinute = minutes > 0 && worked.length ? (worked.length + partial) / minutes : null;
  const left = jobs.length - finished - partial;
  const etaSeconds = state !== 'running' ? 0 : jobsPerMinute ? (60 * left) / jobsPerMinute : null;
  return { batch, state, jobs, counts, progress, jobsPerMinute, etaSeconds, startedAt };
}

const PRECEDENCE: JobState[] = ['failed', 'cancelled', 'blocked', 'active', 'waiting', 'done', 'skipped'];

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
    const failed = js.find((j) => j.state === 'failed') ?? js.find((j) => j.state === 'blocked');
    return {
      subject: js[0].subject,
      analysis: js[0].analysis,
      stage: js[0].stage,
      state,
      jobs: js.length,
      finished: js.filter((j) => isFinished(j.state)).length,
      fraction: js.reduce((a, j) => a + (isFinished(j.state) ? 1 : j.state === 'active' ? j.fraction : 0), 0) / js.length,
      seconds: js.reduce((a, j) => a + (j.seconds ?? 0), 0),
      reason: failed?.reason,
    };
  });
}

/** The summary as text: one line per subject × stage. */
export function formatSummary(cells: SummaryCell[]): string {
  const rows = cells
    .filter((c) => c.stage !== 'subject')
    .map((c) => {
      const what = `${c.subject}  ${c.analysis ? `${c.analysis}/` : ''}${c.stage}`;
      const count = c.jobs > 1 ? ` (${c.finished}/${c.jobs} jobs)` : '';
      const secs = c.seconds > 0 ? ` ${c.seconds.toFixed(1)} s` : '';
      return `${what.padEnd(34)} ${c.state}${count}${secs}${c.reason ? `: ${c.reason}` : ''}`;
    });
  return rows.join('\n');
}

/** First line of an error message, for tables. */
export const firstLine = (s: string) => s.split('\n').find((l) => l.trim()) ?? s;
