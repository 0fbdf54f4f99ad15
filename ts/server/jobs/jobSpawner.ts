/**
 * Runs jobs in processes of their own without forking the service. Starting a process blocks the thread that
 * forks it: the kernel copies the forking process's page tables and libuv waits for the child's exec. From a
 * service with models loaded (hundreds of MiB) that stalled the event loop 35–90 ms per job (`bench job-start`);
 * forking from a worker thread does not help, since the copy locks the whole process's memory map. So one small
 * process, the spawner (spawnerProcess.ts), is started once, while the service is still small, and forks every
 * job's process; the service only exchanges messages with it.
 *
 * Cancelling sends `abort` (the job stops at its next step or batch and exits); a job that has not exited
 * `killAfterMs` later is killed. A job's process that dies fails that job only. If the spawner itself dies, its
 * jobs fail (their processes see their channel close and stop at their next step), and the next job starts a
 * new spawner: the one fork the service then does on its event loop.
 */
import { fork, type ChildProcess } from 'node:child_process';

import { CancelledError } from '../../errors.js';
import { ClosedError } from '../workQueue.js';
import type { JobControl } from './executeJob.js';
import { jobOutcome, jobsEntry, JobFailedError, whenGone, type ChildReply, type SpawnerReply, type SpawnerRequest } from './jobProcess.js';
import type { JobSpec } from './JobRunner.js';

export interface JobSpawnerOptions {
  /** After a cancellation, how long a job's process may take to stop before it is killed (default 10 s). */
  killAfterMs?: number;
}

interface Running {
  control: JobControl;
  settle: (outcome: { result: Record<string, unknown> } | { error: Error }) => void;
  last: ChildReply | null;
  pid?: number;
}

/** How long a cancelled job's process has to exit before it is killed (the default of `killAfterMs`). */
export const JOB_KILL_AFTER_MS = 10_000;

export class JobSpawner {
  private proc: ChildProcess | null = null;
  private readonly running = new Map<number, Running>();
  private nextId = 1;
  private closed = false;
  private exited: Promise<void> = Promise.resolve();
  private readonly killAfterMs: number;

  constructor(options: JobSpawnerOptions = {}) {
    this.killAfterMs = options.killAfterMs ?? JOB_KILL_AFTER_MS;
  }

  /** Starts the spawner now, if it is not running (best while the service is small, before models load). */
  start(): void {
    if (this.closed) throw new ClosedError('jobs');
    if (!this.proc) this.proc = this.launch();
  }

  /** The spawner's pid (undefined until started). */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** The pids of the running jobs' processes. */
  jobPids(): number[] {
    return [...this.running.values()].flatMap((r) => (r.pid === undefined ? [] : [r.pid]));
  }

  /** Runs `spec` in a new process with `cwd` as its working folder; resolves with its result. */
  run(spec: JobSpec, control: JobControl, options: { cwd?: string } = {}): Promise<Record<string, unknown>> {
    try {
      this.start();
    } catch (e) {
      return Promise.reject(e);
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const onAbort = () => this.send({ type: 'abort', id, reason: String((control.signal.reason as Error)?.message ?? 'cancelled') });
      this.running.set(id, {
        control,
        last: null,
        settle: (o) => {
          control.signal.removeEventListener('abort', onAbort);
          this.running.delete(id);
          this.holdOpen();
          if ('result' in o) resolve(o.result);
          else reject(o.error);
        },
      });
      this.holdOpen();
      control.signal.addEventListener('abort', onAbort, { once: true });
      this.send({ type: 'start', id, spec, cwd: options.cwd, killAfterMs: this.killAfterMs });
      if (control.signal.aborted) onAbort();
    });
  }

  /**
   * Closes the spawner's channel; it cancels whatever still runs (jobs still running here end cancelled) and
   * exits once its jobs have. Resolves when it has.
   */
  async close(): Promise<void> {
    this.closed = true;
    // held open until it has exited, so that this resolves
    this.proc?.ref();
    if (this.proc?.connected) this.proc.disconnect();
    await this.exited;
  }

  private launch(): ChildProcess {
    // detached: a terminal's Ctrl-C reaches the service alone, which then cancels its jobs cleanly
    const proc = fork(jobsEntry('spawnerProcess'), [], { detached: true, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    proc.on('message', (m: SpawnerReply) => this.onMessage(m));
    let done!: () => void;
    this.exited = new Promise((r) => (done = r));
    const ended = (why: string) => {
      if (this.proc === proc) this.proc = null;
      // jobs it had not reported ended: their processes were told to stop when its channel closed
      for (const r of [...this.running.values()]) {
        r.settle(
          r.control.signal.aborted || this.closed
            ? { error: new CancelledError(`cancelled (${why})`) }
            : { error: new JobFailedError({ name: 'WorkerExit', message: `the service's job spawner ended (${why}); the job's process was told to stop` }) },
        );
      }
      done();
    };
    whenGone(proc, (code, signal) => ended(signal ? `signal ${signal}` : `exit code ${code}`));
    proc.on('error', (e) => {
      if (proc.pid === undefined) ended(`it could not be started: ${e.message}`);
    });
    this.proc = proc;
    this.holdOpen();
    return proc;
  }

  private onMessage(m: SpawnerReply): void {
    const r = this.running.get(m.id);
    if (!r) return;
    if (m.type === 'spawned') r.pid = m.pid;
    else if (m.type === 'exit') r.settle(jobOutcome(r.last, m, r.control.signal.aborted));
    else if (m.reply.type === 'progress') r.control.progress(m.reply.progress);
    else if (m.reply.type === 'unet') r.control.unet?.(m.reply.calls, m.reply.seconds);
    else if (m.reply.type === 'batchCancelled') r.control.batchCancelled?.();
    else r.last = m.reply;
  }

  private send(m: SpawnerRequest): void {
    if (this.proc?.connected) this.proc.send(m);
  }

  /** The spawner keeps the service's process alive only while jobs run (an idle one must not block its exit). */
  private holdOpen(): void {
    const proc = this.proc;
    if (!proc) return;
    if (this.running.size > 0) {
      proc.ref();
      proc.channel?.ref();
    } else {
      proc.unref();
      proc.channel?.unref();
    }
  }
}
