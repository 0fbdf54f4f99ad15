/** What the service says about a job, whichever runner runs it (this process, or workers sharing a Redis queue). */
import type { PublicError } from '../publicError.js';

export type JobKind = 'reconstruct' | 'encode' | 'ridge-fit' | 'batch' | 'demo';
export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
export const JOB_STATES: readonly JobState[] = ['queued', 'running', 'done', 'failed', 'cancelled'];
export const isFinal = (s: JobState) => s === 'done' || s === 'failed' || s === 'cancelled';

export interface JobProgress {
  stage: string;
  /** 1-based position of the stage, and how many the job has. */
  index: number;
  stages: number;
  /** Within the stage, 0..1. */
  fraction: number;
  /**
   * Stage fraction per second of this run's own work over the recent window: null until two updates show progress,
   * while the stage makes none, and once the job has ended (any end state).
   */
  rate: number | null;
  /** Seconds to the end of the current stage at that rate: 0 at fraction 1, else null while `rate` is, and once the job has ended. */
  etaSeconds: number | null;
  /**
   * While running, once the stage has reported no progress for the rate's window (~20 s): seconds since it last
   * did (`rate` and `etaSeconds` are then null). Absent from progress events, which are sent at an update.
   */
  stalledSeconds?: number;
  message?: string;
}

export interface JobView {
  id: string;
  kind: JobKind;
  state: JobState;
  /** The run folder, relative to the service's root. */
  out: string;
  submittedAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** The job's stages in order. */
  stages: string[];
  progress: JobProgress | null;
  /** A summary of what the job produced (metrics, files), once done. */
  result?: Record<string, unknown>;
  error?: PublicError;
  /**
   * A job cancelled through Redis (`serve --redis`) whose process has ended without its batch's cancel reaching Redis
   * (it did not answer): why, and that the service retries it. The job stays `running`, its run folder claimed, until
   * Redis confirms the cancel; then it ends `cancelled`.
   */
  cancelPending?: string;
}

/** Server-Sent Event payloads, in the order a job produces them. */
export type JobEvent =
  | { event: 'state'; data: JobView }
  | { event: 'stage'; data: { id: string; stage: string; index: number; stages: number; status: 'running' | 'skipped' } }
  | { event: 'progress'; data: JobProgress & { id: string } }
  | { event: 'result'; data: JobView }
  | { event: 'error'; data: JobView };

/** A stage of a running job, as the job reports it. */
export interface StageUpdate {
  stage: string;
  index: number;
  stages: number;
  fraction: number;
  message?: string;
  /**
   * 'skipped': the stage's outputs were already there (announced as such, and left out of the stage-duration
   * metric); 'done': the stage has just ended (its duration is taken now, or is `seconds`).
   */
  status?: 'running' | 'skipped' | 'done';
  /** With 'done': the stage's wall time by the job's own clock (its jobs' start to end on the batch layer). */
  seconds?: number;
  /**
   * Items done in the stage, when it counts them. `reused`: of `done`, items an earlier run made (a resumed img2img's
   * samples), with `total` their share of the fraction: not this job's work, so not in its rate (as the CLI's bar).
   */
  count?: { done: number; total: number; reused?: number };
  /**
   * Without `count`: of `fraction`, the share an earlier run made (a batch of one's img2img: its shards skipped as done
   * before, the samples a resumed shard kept): in the fraction, not this job's work, so not in its rate.
   */
  reusedFraction?: number;
}

/** What a running job gets: its signal and where to report progress. */
export interface JobControl {
  signal: AbortSignal;
  progress(p: StageUpdate): void;
  /**
   * Samplers ran `calls` U-Net evaluations of one latent (images × the engine's U-Net calls, × 2 with guidance) in `seconds` of U-Net
   * time (for the steps/s metric); a job reports its work once, as it ends.
   */
  unet?(calls: number, seconds: number): void;
  /**
   * The job's batch is cancelled in Redis (the cancel was confirmed there), or was never submitted there. A queued job
   * cancelled without this call has its batch cancelled by the service itself (LocalJobRunner), once Redis answers.
   */
  batchCancelled?(): void;
}
