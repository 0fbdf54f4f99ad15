/**
 * Runs a job in a child process of its own, so the service's event loop never stalls on a job's JavaScript
 * (building the demo world, writing reports) and a native crash costs that job only. Cancelling sends `abort`
 * (the job stops at its next step or batch and exits); a child that has not exited `killAfterMs` later is killed.
 */
import { fork } from 'node:child_process';
import { getPriority, setPriority } from 'node:os';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { BrainlatentError, CancelledError } from '../../errors.js';
import { packageRoot } from '../../native/binding.js';
import type { PublicError } from '../publicError.js';
import type { JobControl, StageUpdate } from './executeJob.js';
import type { JobSpec } from './JobRunner.js';

/** How much lower than the service's a job's CPU priority is (nice steps). */
const JOB_NICENESS = 10;

export type ChildRequest = { type: 'run'; spec: JobSpec } | { type: 'abort'; reason: string };
export type ChildReply =
  | { type: 'progress'; progress: StageUpdate }
  | { type: 'unet'; calls: number; seconds: number }
  | { type: 'result'; result: Record<string, unknown> }
  | { type: 'error'; error: PublicError; cancelled: boolean; result?: Record<string, unknown> };

/** A failure reported by a job's process (its message is already fit for clients). */
export class JobFailedError extends BrainlatentError {
  readonly problems?: string[];
  /** What the job produced before it failed, if anything (a batch's summary). */
  readonly result?: Record<string, unknown>;
  constructor(e: PublicError, result?: Record<string, unknown>) {
    super(e.message, e.name);
    this.name = e.name;
    if (e.problems) this.problems = e.problems;
    if (result) this.result = result;
  }
}

/** The compiled child entry (dist/server/jobs/jobChild.js), also when this module runs from the TypeScript sources. */
function childPath(): string {
  const here = join(dirname(fileURLToPath(import.meta.url)), 'jobChild.js');
  return existsSync(here) ? here : join(packageRoot, 'dist', 'server', 'jobs', 'jobChild.js');
}

export function runInChild(spec: JobSpec, control: JobControl, options: { cwd?: string; killAfterMs?: number } = {}): Promise<Record<string, unknown>> {
  const killAfterMs = options.killAfterMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const child = fork(childPath(), [], { cwd: options.cwd, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    // jobs yield the CPU to the service itself (its processes inherit the priority), so requests stay prompt
    try {
      if (child.pid) setPriority(child.pid, Math.min(19, getPriority(child.pid) + JOB_NICENESS));
    } catch {
      // not permitted here: the job runs at the service's priority
    }
    let outcome: ChildReply | null = null;
    let killer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      if (child.connected) child.send({ type: 'abort', reason: String((control.signal.reason as Error)?.message ?? 'cancelled') } satisfies ChildRequest);
      killer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    };
    child.on('message', (m: ChildReply) => {
      if (m.type === 'progress') control.progress(m.progress);
      else if (m.type === 'unet') control.unet?.(m.calls, m.seconds);
      else outcome = m;
    });
    child.once('exit', (code, signal) => {
      clearTimeout(killer);
      control.signal.removeEventListener('abort', onAbort);
      const o = outcome as ChildReply | null;
      if (o?.type === 'result') resolve(o.result);
      else if (o?.type === 'error') reject(o.cancelled ? new CancelledError(o.error.message) : new JobFailedError(o.error, o.result));
      else if (control.signal.aborted) reject(new CancelledError(`cancelled (the job's process ended with ${signal ?? `code ${code}`})`));
      else reject(new JobFailedError({ name: 'WorkerExit', message: `the job's process died (exit code ${code}, signal ${signal})` }));
    });
    child.once('error', reject);
    control.signal.addEventListener('abort', onAbort, { once: true });
    child.send({ type: 'run', spec } satisfies ChildRequest);
    if (control.signal.aborted) onAbort();
  });
}
