/**
 * The seam between the routes and whatever runs jobs. The routes validate a body, resolve its paths inside the
 * root and hand a JobSpec to a runner; the runner runs it (in this process, or on the batch layer's queue) and
 * reports to the JobBoard, from which the routes read views and events.
 */
import { randomBytes } from 'node:crypto';

import type { JobBoard } from './jobBoard.js';
import type { JobKind, JobView } from './types.js';

export interface JobSpec {
  /** Unique, and usable as a batch id (letters, digits, '-'). */
  id: string;
  kind: JobKind;
  /** The run folder (absolute, inside the root). */
  out: string;
  /** The run folder as clients see it (relative to the root). */
  outShown: string;
  /** The kind's validated input, its paths absolute and inside the root. */
  input: unknown;
  /**
   * The service's root (absolute): the job's model files must lie inside it, links followed, wherever the job runs
   * (its nodes carry it to a `brainlatent worker` of the queue: modelRoots.ts). Absent: no service's restriction.
   */
  modelRoots?: string[];
  /** Reconstruct, encode and batch jobs: through BullMQ on this Redis instead of this machine's process pool. */
  queue?: BatchQueue;
}

/** The shared queue of the batch layer: a Redis, and how many job processes this service gives it. */
export interface BatchQueue {
  /** redis://host:port/db */
  redis: string;
  /** Job processes this service runs for the queue while one of its jobs waits (0: only `brainlatent worker`s work). */
  workers: number;
}

export interface RunnerReadiness {
  ok: boolean;
  detail: string;
}

export interface JobRunner {
  readonly board: JobBoard;
  /** Queues a job; throws QueueFullError when too many wait, JobConflictError when its folder is busy. */
  submit(spec: JobSpec): Promise<JobView>;
  /** Stops a queued job at once, a running one at its next step or batch; the view as it stands. */
  cancel(id: string): Promise<JobView | undefined>;
  /** Jobs waiting to start. */
  queueDepth(): number | Promise<number>;
  /** Whether jobs can run (e.g. Redis reachable). */
  ready(): Promise<RunnerReadiness>;
  /**
   * Stops taking jobs; lets running jobs finish for up to `deadlineMs`, then cancels them (each stops at a step
   * boundary and leaves only complete files); queued jobs are cancelled. Resolves when nothing runs.
   */
  close(deadlineMs: number): Promise<void>;
}

export const newJobId = (kind: JobKind) => `${kind}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
