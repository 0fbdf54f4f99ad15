/**
 * The service's record of its jobs, fed by whichever runner runs them: each job's view, its event log for
 * Server-Sent Events (every state and stage change and the final event are kept, so a client that connects late
 * or reconnects with Last-Event-ID still sees every stage in order; progress is kept as the latest value only),
 * listeners, and the rate and ETA of the running stage.
 */
import { resolve, sep } from 'node:path';

import { RateEstimator } from '../../cli/progress.js';
import { shownDeep, shownWith, type PublicError } from '../publicError.js';
import { isFinal, JOB_STATES, type JobEvent, type JobKind, type JobProgress, type JobState, type JobView, type StageUpdate } from './types.js';

export interface LoggedEvent {
  /** Increasing per job: the SSE id, for Last-Event-ID. */
  seq: number;
  event: JobEvent;
}

/** A subscriber to one job's events (JobBoard.subscribe). */
export type JobListener = (e: LoggedEvent) => void;

interface Entry {
  view: JobView;
  /** The run folder (absolute). */
  dir: string;
  log: LoggedEvent[];
  latestProgress: LoggedEvent | null;
  seq: number;
  listeners: Set<JobListener>;
  rate: RateEstimator;
  stageStartedAt: number;
  /** When the running stage last reported progress (the board's clock): a view's rate and ETA age from it. */
  progressAt: number;
  stageSkipped: boolean;
  /** The current stage's duration has been recorded (it reported 'done'). */
  stageTimed: boolean;
}

/** `a` and `b` are one folder, or one holds the other (by path segments: 'runs/a' does not hold 'runs/ab'). */
export function overlaps(a: string, b: string): boolean {
  const [x, y] = [resolve(a), resolve(b)];
  const within = (inner: string, outer: string) => inner === outer || inner.startsWith(outer.endsWith(sep) ? outer : outer + sep);
  return within(x, y) || within(y, x);
}

/** How many finished jobs the board remembers (the oldest are forgotten first; their run folders stay). */
export const KEEP_FINISHED = 1000;

export class JobBoard {
  private readonly jobs = new Map<string, Entry>();
  /** Called when a stage ends after running (not skipped): for the stage-duration metric. */
  onStageTime?: (kind: JobKind, stage: string, seconds: number) => void;
  /** Rewrites a job's error and every string of its result for clients (the service's: the server's paths under the root made root-relative). */
  showText?: (text: string) => string;

  /** @param clock seconds on a monotonic clock (a test's own, to read a job as of a time it sets) */
  constructor(private readonly clock: () => number = () => performance.now() / 1000) {}

  add(view: Omit<JobView, 'state' | 'submittedAt' | 'progress'>, dir: string): JobView {
    const full: JobView = { ...view, state: 'queued', submittedAt: new Date().toISOString(), progress: null };
    const e: Entry = { view: full, dir, log: [], latestProgress: null, seq: 0, listeners: new Set(), rate: new RateEstimator(), stageStartedAt: 0, progressAt: 0, stageSkipped: false, stageTimed: false };
    this.jobs.set(view.id, e);
    this.push(e, { event: 'state', data: this.copy(e) });
    this.forgetOld();
    return this.copy(e);
  }

  has(id: string): boolean {
    return this.jobs.has(id);
  }

  get(id: string): JobView | undefined {
    const e = this.jobs.get(id);
    return e ? this.copy(e) : undefined;
  }

  /** The job's run folder (absolute), for the file routes. */
  dir(id: string): string | undefined {
    return this.jobs.get(id)?.dir;
  }

  list(filter: { state?: JobState; kind?: JobKind } = {}): JobView[] {
    return [...this.jobs.values()]
      .filter((e) => (!filter.state || e.view.state === filter.state) && (!filter.kind || e.view.kind === filter.kind))
      .map((e) => this.copy(e));
  }

  counts(): Record<JobState, number> {
    const c = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    for (const e of this.jobs.values()) c[e.view.state]++;
    return c;
  }

  /**
   * A job not yet finished whose run folder is `dir`, inside it or holds it, if any: two jobs must not write one
   * folder, nor one write inside the other's.
   */
  activeIn(dir: string): JobView | undefined {
    for (const e of this.jobs.values()) if (!isFinal(e.view.state) && overlaps(e.dir, dir)) return this.copy(e);
    return undefined;
  }

  started(id: string): void {
    const e = this.jobs.get(id);
    if (!e || e.view.state !== 'queued') return;
    e.view.state = 'running';
    e.view.startedAt = new Date().toISOString();
    this.push(e, { event: 'state', data: this.copy(e) });
  }

  /**
   * Progress of the running job: a stage change is logged as a 'stage' event (its status 'skipped' when the
   * stage's first update says so), the rest as 'progress'. A stage's duration goes to onStageTime when it reports
   * 'done', else when the next stage begins or the job ends done; never for a skipped stage.
   */
  progress(id: string, p: StageUpdate): void {
    const e = this.jobs.get(id);
    if (!e || e.view.state !== 'running') return;
    const now = this.clock();
    const prev = e.view.progress;
    // a progress callback of an earlier stage can arrive after the next stage began (engine threads report late)
    if (prev && p.index < prev.index) return;
    if (!prev || prev.stage !== p.stage || prev.index !== p.index) {
      if (prev) this.stageEnded(e, now);
      e.stageSkipped = p.status === 'skipped';
      e.stageTimed = false;
      e.stageStartedAt = now;
      e.rate = new RateEstimator();
      this.push(e, { event: 'stage', data: { id, stage: p.stage, index: p.index, stages: p.stages, status: p.status === 'skipped' ? 'skipped' : 'running' } });
    } else if (p.status === 'skipped') {
      // (announced as running, then found done already: its event cannot be taken back, but it is not timed)
      e.stageSkipped = true;
    }
    const fraction = Math.max(0, Math.min(1, p.fraction));
    // the CLI's rule (RateEstimator): from the stage's first progress of this job's own work; samples a resumed
    // img2img reused count in the fraction, not in the rate
    // (a share of the fraction reused, without a count: as a count of 1 whose reused part is that share)
    const count = p.count ?? (p.reusedFraction ? { done: NaN, total: 1, reused: Math.min(p.reusedFraction, fraction) } : undefined);
    e.rate.add(now, fraction, count?.done, count?.reused, count?.total);
    const rate = e.rate.fractionRate();
    const eta = e.rate.eta();
    const progress: JobProgress = {
      stage: p.stage,
      index: p.index,
      stages: p.stages,
      fraction,
      rate: Number.isFinite(rate) ? rate : null,
      etaSeconds: Number.isFinite(eta) ? eta : fraction >= 1 ? 0 : null,
      ...(p.message ? { message: p.message } : {}),
    };
    e.view.progress = progress;
    e.progressAt = now;
    if (p.status === 'done') this.stageEnded(e, now, p.seconds);
    e.seq++;
    e.latestProgress = { seq: e.seq, event: { event: 'progress', data: { id, ...progress } } };
    for (const l of e.listeners) l(e.latestProgress);
  }

  /**
   * A cancelled job's process has ended, but its batch's cancel has not reached Redis: the job stays running (its run
   * folder claimed) with `message` as its `cancelPending`, until finish().
   */
  cancelPending(id: string, message: string): void {
    const e = this.jobs.get(id);
    if (!e || e.view.state !== 'running') return;
    e.view.cancelPending = this.showText ? this.showText(message) : message;
    this.push(e, { event: 'state', data: this.copy(e) });
  }

  /** The job ended: done with a result, failed with an error, or cancelled. */
  finish(id: string, state: 'done' | 'failed' | 'cancelled', outcome: { result?: Record<string, unknown>; error?: PublicError } = {}): void {
    const e = this.jobs.get(id);
    if (!e || isFinal(e.view.state)) return;
    if (state === 'done' && e.view.progress) this.stageEnded(e, this.clock());
    e.view.state = state;
    e.view.finishedAt = new Date().toISOString();
    // (what became of a pending cancel is the error's to say)
    delete e.view.cancelPending;
    // a result is shown as an error is (a failed batch's summary reasons name the server's folders), done or not
    if (outcome.result) e.view.result = this.showText ? shownDeep(outcome.result, this.showText) : outcome.result;
    if (outcome.error) e.view.error = this.showText ? shownWith(outcome.error, this.showText) : outcome.error;
    // an ended job has no rate and nothing left to wait for: a client must not read "ETA 2 min" on a cancelled one
    if (e.view.progress) e.view.progress = { ...e.view.progress, ...(state === 'done' ? { fraction: 1 } : {}), rate: null, etaSeconds: null };
    e.latestProgress = null;
    this.push(e, { event: state === 'done' ? 'result' : 'error', data: this.copy(e) });
    e.listeners.clear();
  }

  /**
   * Every logged event after `afterSeq` (and the latest progress, when newer), then live events until the job
   * ends. Returns null for an unknown job. The listener is not called after the final event.
   */
  subscribe(id: string, listener: JobListener, afterSeq = 0): { replay: LoggedEvent[]; final: boolean; unsubscribe: () => void } | null {
    const e = this.jobs.get(id);
    if (!e) return null;
    const replay = e.log.filter((l) => l.seq > afterSeq);
    if (e.latestProgress && e.latestProgress.seq > afterSeq) replay.push(e.latestProgress);
    replay.sort((a, b) => a.seq - b.seq);
    const final = isFinal(e.view.state);
    if (!final) e.listeners.add(listener);
    return { replay, final, unsubscribe: () => e.listeners.delete(listener) };
  }

  /** Listeners of every job (for closing streams at shutdown). */
  listenerCount(): number {
    let n = 0;
    for (const e of this.jobs.values()) n += e.listeners.size;
    return n;
  }

  /** The current stage has ended: its duration (`seconds` when the job measured it) is recorded once, unless it was skipped. */
  private stageEnded(e: Entry, now: number, seconds?: number): void {
    if (e.stageSkipped || e.stageTimed || !e.view.progress) return;
    e.stageTimed = true;
    this.onStageTime?.(e.view.kind, e.view.progress.stage, seconds ?? now - e.stageStartedAt);
  }

  private push(e: Entry, event: JobEvent): void {
    e.seq++;
    const logged = { seq: e.seq, event };
    e.log.push(logged);
    for (const l of e.listeners) l(logged);
  }

  /**
   * The job as clients see it now. A running stage's rate and ETA were measured at its last progress update: the
   * ETA counts down from then, and once the stage has reported nothing for the rate's window both are null and
   * `stalledSeconds` says for how long (a worker that died, a model still loading), not a pace that no longer holds.
   */
  private copy(e: Entry): JobView {
    const view = structuredClone(e.view);
    const p = view.progress;
    if (view.state !== 'running' || !p) return view;
    const idle = Math.max(0, this.clock() - e.progressAt);
    if (idle > e.rate.windowSeconds) {
      view.progress = { ...p, rate: null, etaSeconds: p.fraction >= 1 ? 0 : null, stalledSeconds: Math.floor(idle) };
    } else if (p.etaSeconds !== null) {
      view.progress = { ...p, etaSeconds: Math.max(0, p.etaSeconds - idle) };
    }
    return view;
  }

  private forgetOld(): void {
    let finished = 0;
    for (const e of this.jobs.values()) if (isFinal(e.view.state)) finished++;
    for (const [id, e] of this.jobs) {
      if (finished <= KEEP_FINISHED) break;
      if (isFinal(e.view.state)) {
        this.jobs.delete(id);
        finished--;
      }
    }
  }
}
