/**
 * A pool of job processes, shared by the local runner and the BullMQ worker: each child runs one job at a time
 * with runNode (native work in its own process, so a crash loses one attempt, not the batch, and the parent's
 * event loop stays free) and reports progress over IPC. A child never outlives its parent: on Linux the kernel
 * kills it when the parent dies (`setpriv --pdeathsig KILL`), and the child also kills itself when its IPC
 * channel closes or it is re-parented (any platform).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { OutOfMemoryReason } from '../errors.js';
import { packageRoot } from '../native/binding.js';
import type { SerializedError } from './errors.js';
import type { BatchNode } from './graph.js';
import type { NodeResult } from './runNode.js';
import { formatJobTimeout } from './jobTimeout.js';
import type { JobCount } from './status.js';

export type PoolRequest = { type: 'run'; node: BatchNode; depsRan: boolean; ranDeps?: string[]; runnerLocks?: Record<string, string>; submission?: string } | { type: 'abort'; reason?: string };

/**
 * What a job is told about the jobs it depends on (NodeControl's depsRan and ranDeps), of its runner's locks
 * (NodeControl's runnerLocks) and of the submission it belongs to (NodeControl's submission).
 */
export interface DepsRan {
  depsRan: boolean;
  ranDeps: string[];
  runnerLocks?: Record<string, string>;
  submission?: string;
}
export type PoolReply =
  | { type: 'progress'; fraction: number; message?: string; count?: JobCount }
  | { type: 'result'; result: NodeResult }
  | { type: 'error'; error: SerializedError };

/** A job that failed in a pool process: the child's error, or the child's death. */
export class PoolJobError extends Error {
  readonly input: boolean;
  /** The child's OutOfMemoryError's reason: 'budget' (an input error, not retried) or 'allocation' (retried). */
  readonly reason?: OutOfMemoryReason;
  constructor(e: SerializedError) {
    super(e.message);
    this.name = e.name;
    this.input = e.input;
    if (e.reason) this.reason = e.reason;
  }
}

/** The compiled child entry (dist/batch/poolWorker.js), also when this module runs from the TypeScript sources. */
export function poolWorkerPath(): string {
  const here = join(dirname(fileURLToPath(import.meta.url)), 'poolWorker.js');
  return existsSync(here) ? here : join(packageRoot, 'dist', 'batch', 'poolWorker.js');
}

/** util-linux's setpriv, which sets the parent-death signal before it becomes node (Linux only). */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => process.platform === 'linux' && existsSync(p));

/**
 * The most job processes a pool (a worker's `concurrency`, runBatch's local pool) runs at once. Each is a forked
 * Node process, about 85 MiB before its job loads the engine, a model or the betas (hundreds of MiB to GiBs more),
 * so 256 is some 21 GiB of bare runtimes: one job a core on the largest single machines. More only forked a process
 * for every job in the queues at once (1e9 was taken).
 */
export const MAX_JOB_PROCESSES = 256;

interface Slot {
  child: ChildProcess;
  busy: boolean;
}

/** What a caller sees of a running job: its process, and a way to stop it. */
export interface PoolRun {
  pid: number | undefined;
  result: Promise<NodeResult>;
  /** Asks the job to stop (its signal fires with `reason`); it rejects when it has. */
  abort(reason?: string): void;
}

export class ProcessPool {
  private slots: Slot[] = [];
  private closed = false;

  constructor(
    readonly size: number,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  private spawn(): Slot {
    const options = SETPRIV
      ? { execPath: SETPRIV, execArgv: ['--pdeathsig', 'KILL', '--', process.execPath, ...process.execArgv] }
      : {};
    const child = fork(poolWorkerPath(), [], { env: this.env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...options });
    const slot = { child, busy: false };
    child.once('exit', () => {
      this.slots = this.slots.filter((s) => s !== slot);
    });
    return slot;
  }

  get idle(): number {
    return this.size - this.slots.filter((s) => s.busy).length;
  }

  /** Pids of the pool's processes (busy or idle). */
  get pids(): number[] {
    return this.slots.map((s) => s.child.pid).filter((p): p is number => p !== undefined);
  }

  /**
   * Starts a job in a free child (one is started when needed); `result` rejects with PoolJobError. `timeoutMs`: the
   * batch's time limit per job (--job-timeout): past it the child is killed (SIGKILL: a job stuck in native code
   * answers no abort) and `result` rejects with a JobTimeoutError naming the job and the limit, a transient failure
   * (its retries apply).
   */
  start(node: BatchNode, deps: DepsRan, onProgress: (fraction: number, message?: string, count?: JobCount) => void, timeoutMs?: number): PoolRun {
    if (this.closed) return { pid: undefined, result: Promise.reject(new Error('pool closed')), abort: () => {} };
    let slot = this.slots.find((s) => !s.busy && s.child.connected);
    if (!slot) {
      slot = this.spawn();
      this.slots.push(slot);
    }
    const s = slot;
    s.busy = true;
    let settled = false;
    let timedOut = false;
    const result = new Promise<NodeResult>((resolve, reject) => {
      const limit =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              timedOut = true;
              s.child.kill('SIGKILL');
            }, timeoutMs);
      const cleanup = () => {
        settled = true;
        clearTimeout(limit);
        s.child.off('message', onMessage);
        s.child.off('exit', onExit);
        s.busy = false;
      };
      const onMessage = (m: PoolReply) => {
        if (m.type === 'progress') onProgress(m.fraction, m.message, m.count);
        else {
          cleanup();
          if (m.type === 'result') resolve(m.result);
          else reject(new PoolJobError(m.error));
        }
      };
      const onExit = (code: number | null, sig: string | null) => {
        cleanup();
        if (timedOut) {
          const message = `${node.id} ran past its time limit of ${formatJobTimeout(timeoutMs!)} (its batch's --job-timeout): its process (pid ${s.child.pid}) was killed`;
          reject(new PoolJobError({ name: 'JobTimeoutError', message, input: false }));
        } else reject(new PoolJobError({ name: 'WorkerExit', message: `the job's process died (exit code ${code}, signal ${sig})`, input: false }));
      };
      s.child.on('message', onMessage);
      s.child.once('exit', onExit);
      s.child.send({ type: 'run', node, depsRan: deps.depsRan, ranDeps: deps.ranDeps, runnerLocks: deps.runnerLocks, submission: deps.submission } satisfies PoolRequest);
    });
    return {
      pid: s.child.pid,
      result,
      abort: (reason?: string) => {
        if (!settled && s.child.connected) s.child.send({ type: 'abort', reason } satisfies PoolRequest);
      },
    };
  }

  /** Runs a job to its end; `signal` aborts it; `timeoutMs` as start's. */
  run(node: BatchNode, deps: DepsRan, onProgress: (fraction: number, message?: string, count?: JobCount) => void, signal?: AbortSignal, timeoutMs?: number): Promise<NodeResult> {
    const r = this.start(node, deps, onProgress, timeoutMs);
    const onAbort = () => r.abort(String(signal?.reason ?? 'aborted'));
    // a signal that fired already (e.g. from the job's own 'active' event) never fires again
    if (signal?.aborted) {
      onAbort();
      return r.result;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    return r.result.finally(() => signal?.removeEventListener('abort', onAbort));
  }

  /** Stops every child (a running job is killed: the caller has given up on it) and waits for them to exit. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.slots.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.child.exitCode !== null || s.child.signalCode !== null) return resolve();
            s.child.once('exit', () => resolve());
            s.child.kill('SIGKILL');
          }),
      ),
    );
    this.slots = [];
  }
}
