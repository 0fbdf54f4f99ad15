/**
 * A job runs in a process of its own (jobChild.ts), so the service's event loop never stalls on a job's
 * JavaScript (building the demo world, writing reports) and a native crash costs that job only. The service
 * never forks those processes itself: its job spawner (jobSpawner.ts, spawnerProcess.ts) does. This module is
 * the protocol between the three, and what a job's end means for its caller.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { BrainlatentError, CancelledError } from '../../errors.js';
import { packageRoot } from '../../native/binding.js';
import type { PublicError } from '../publicError.js';
import type { StageUpdate } from './executeJob.js';
import type { JobSpec } from './JobRunner.js';

/** The spawner → a job's process. */
export type ChildRequest = { type: 'run'; spec: JobSpec } | { type: 'abort'; reason: string };
/** A job's process → the spawner (relayed as is to the service). */
export type ChildReply =
  | { type: 'progress'; progress: StageUpdate }
  | { type: 'unet'; calls: number; seconds: number }
  /** The job's batch is cancelled in Redis, Redis having answered (JobControl.batchCancelled). */
  | { type: 'batchCancelled' }
  | { type: 'result'; result: Record<string, unknown> }
  | { type: 'error'; error: PublicError; cancelled: boolean; result?: Record<string, unknown> };

/** The service → its spawner. `id` is the service's number for the job's process. */
export type SpawnerRequest =
  | { type: 'start'; id: number; spec: JobSpec; cwd?: string; killAfterMs: number }
  | { type: 'abort'; id: number; reason: string };
/** The spawner → the service. `exit` is always the last message about a job (everything it sent came first). */
export type SpawnerReply =
  | { type: 'spawned'; id: number; pid: number }
  | { type: 'child'; id: number; reply: ChildReply }
  | { type: 'exit'; id: number; code: number | null; signal: NodeJS.Signals | null; spawnError?: string };

/** A failure reported by a job's process (its message is already fit for clients). */
export class JobFailedError extends BrainlatentError {
  readonly problems?: string[];
  /** An OutOfMemory's reason, as the job's process reported it ('budget' | 'allocation'). */
  readonly reason?: PublicError['reason'];
  /** What the job produced before it failed, if anything (a batch's summary). */
  readonly result?: Record<string, unknown>;
  constructor(e: PublicError, result?: Record<string, unknown>) {
    super(e.message, e.code ?? e.name);
    this.name = e.name;
    if (e.problems) this.problems = e.problems;
    if (e.reason) this.reason = e.reason;
    if (result) this.result = result;
  }
}

/** A compiled entry of this folder (dist/server/jobs/<name>.js), also when this module runs from the TypeScript sources. */
export function jobsEntry(name: 'jobChild' | 'spawnerProcess'): string {
  const here = join(dirname(fileURLToPath(import.meta.url)), `${name}.js`);
  return existsSync(here) ? here : join(packageRoot, 'dist', 'server', 'jobs', `${name}.js`);
}

/** What a job's process ending means: its result, or the error to reject with. */
export function jobOutcome(
  last: ChildReply | null,
  exit: { code: number | null; signal: NodeJS.Signals | null; spawnError?: string },
  aborted: boolean,
): { result: Record<string, unknown> } | { error: Error } {
  if (last?.type === 'result') return { result: last.result };
  if (last?.type === 'error') return { error: last.cancelled ? new CancelledError(last.error.message) : new JobFailedError(last.error, last.result) };
  if (exit.spawnError) return { error: new JobFailedError({ name: 'WorkerExit', message: `the job's process could not be started: ${exit.spawnError}` }) };
  if (aborted) return { error: new CancelledError(`cancelled (the job's process ended with ${exit.signal ?? `code ${exit.code}`})`) };
  return { error: new JobFailedError({ name: 'WorkerExit', message: `the job's process died (exit code ${exit.code}, signal ${exit.signal})` }) };
}

/**
 * Calls `done` once `child` has exited and its IPC channel has closed, when every message it sent has arrived.
 * ('close' says the same, but never comes when this side closed the channel.)
 */
export function whenGone(child: ChildProcess, done: (code: number | null, signal: NodeJS.Signals | null) => void): void {
  let exit: [number | null, NodeJS.Signals | null] | null = null;
  const check = () => {
    if (exit && !child.connected) done(...exit);
  };
  child.once('exit', (code, signal) => {
    exit = [code, signal];
    check();
  });
  child.once('disconnect', check);
}
