/**
 * The local default: the whole job graph on this machine, no Redis. A job starts when the jobs it depends on
 * have finished, on a free process of the pool. Transient failures are retried with exponential backoff;
 * input errors are not, and they stop only the jobs that depend on the failed one (that subject), while the
 * other subjects go on. The run folders of the plan are locked for the whole run, before any job starts
 * (lockPlanFolders): a folder that another run holds refuses the run at once, and nothing else runs in them meanwhile.
 */
import os from 'node:os';

import type { BatchNode, BatchPlan } from './graph.js';
import { planNodes, submissionId } from './graph.js';
import { PoolJobError, ProcessPool } from './pool.js';
import { lockPlanFolders } from './jobFolder.js';
import { MAX_TIMER_MS } from '../ridge/options.js';
import { jobProcessEnv } from './jobThreads.js';
import { batchStatus, jobInfo, oneLine, resultUnet, resultWarnings, type BatchEvent, type BatchStatus, type JobInfo } from './status.js';

export interface LocalRunOptions {
  /** Jobs at once (worker processes). Default: half the cores, at least 1. */
  concurrency?: number;
  onEvent?: (e: BatchEvent) => void;
  signal?: AbortSignal;
  /** Environment of the worker processes (default: this process's). */
  env?: NodeJS.ProcessEnv;
}

/**
 * The wait before a job's next attempt: retry.backoffMs doubled per attempt made, at most setTimeout's MAX_TIMER_MS
 * (a longer delay fired after 1 ms: 5000 ms at the 20th attempt is 2^19 × 5000, past it, and the retry came at once).
 */
export const retryDelayMs = (backoffMs: number, attempts: number): number => Math.min(MAX_TIMER_MS, backoffMs * 2 ** (attempts - 1));

export const defaultConcurrency = () => Math.max(1, Math.floor((os.availableParallelism?.() ?? os.cpus().length) / 2));

export async function runLocal(plan: BatchPlan, options: LocalRunOptions = {}): Promise<BatchStatus> {
  const locks = await lockPlanFolders(plan);
  try {
    return await runLocked(plan, locks.tokens, options);
  } finally {
    await locks.release();
  }
}

async function runLocked(plan: BatchPlan, runnerLocks: Record<string, string>, options: LocalRunOptions): Promise<BatchStatus> {
  const nodes = planNodes(plan);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const info = new Map(nodes.map((n) => [n.id, jobInfo(n)]));
  const ran = new Map<string, boolean>();
  const dependents = new Map<string, string[]>();
  for (const n of nodes) for (const d of n.deps) dependents.set(d, [...(dependents.get(d) ?? []), n.id]);
  const startedAt = Date.now();
  const submission = submissionId(plan.id, startedAt);
  const emit = (j: JobInfo) => options.onEvent?.({ batch: plan.id, type: 'job', job: { ...j }, at: Date.now() });
  const concurrency = options.concurrency ?? defaultConcurrency();
  const pool = new ProcessPool(concurrency, jobProcessEnv(options.env ?? process.env, concurrency));
  const ready: BatchNode[] = [];
  const waitingRetry = new Set<NodeJS.Timeout>();
  let running = 0;

  const depsFinished = (n: BatchNode) => n.deps.every((d) => ['done', 'skipped'].includes(info.get(d)!.state));
  // the subject's shared extraction and shared features fill caches; they do not make a run folder's stages
  // stale (a features stage that links shared features checks the entries' keys itself)
  const fillsCache = (d: string) => ['betas', 'sharedFeatures'].includes(byId.get(d)!.work.kind);
  const depsRan = (n: BatchNode) => n.deps.some((d) => ran.get(d) === true && !fillsCache(d));
  // the jobs it depends on that ran in this batch (an img2img merge counts the U-Net work of those shards only)
  const ranDeps = (n: BatchNode) => n.deps.filter((d) => ran.get(d) === true);
  for (const n of nodes) if (n.deps.length === 0) ready.push(n);

  /** Every job downstream of a failed one is blocked with the reason. */
  const block = (id: string, reason: string) => {
    for (const d of dependents.get(id) ?? []) {
      const j = info.get(d)!;
      if (j.state !== 'waiting') continue;
      Object.assign(j, { state: 'blocked', reason, finishedAt: Date.now() });
      emit(j);
      block(d, reason);
    }
  };

  return await new Promise<BatchStatus>((resolveBatch) => {
    let finishing = false;
    const finish = async () => {
      if (finishing) return;
      finishing = true;
      options.signal?.removeEventListener('abort', cancelAll);
      await pool.close();
      const status = batchStatus(plan.id, [...info.values()], startedAt);
      options.onEvent?.({ batch: plan.id, type: 'batch', state: status.state, at: Date.now() });
      resolveBatch(status);
    };
    const cancelAll = () => {
      for (const t of waitingRetry) clearTimeout(t);
      waitingRetry.clear();
      ready.length = 0;
      for (const j of info.values()) {
        if (j.state === 'waiting') {
          Object.assign(j, { state: 'cancelled', reason: 'batch cancelled', finishedAt: Date.now() });
          emit(j);
        }
      }
      // nothing may be running (a job waiting for its retry was all there was): then the batch ends here
      pump();
    };

    const pump = () => {
      while (ready.length && pool.idle > 0 && !options.signal?.aborted) start(ready.shift()!);
      if (options.signal?.aborted) ready.length = 0;
      if (running === 0 && ready.length === 0 && waitingRetry.size === 0) void finish();
    };

    const start = (n: BatchNode) => {
      const j = info.get(n.id)!;
      Object.assign(j, { state: 'active', fraction: 0, count: undefined, attempts: j.attempts + 1, startedAt: Date.now(), reason: undefined });
      // counted before its event: a listener that aborts the batch on it must not find it finished
      running++;
      emit(j);
      pool
        .run(
          n,
          { depsRan: depsRan(n), ranDeps: ranDeps(n), runnerLocks, submission },
          (fraction, message, count) => {
            // (its count stays once it is done: the samples it reused are still not this run's work)
            Object.assign(j, { fraction, message, count });
            emit(j);
          },
          options.signal,
          plan.jobTimeoutMs,
        )
        .then(
          (r) => {
            ran.set(n.id, r.status === 'done');
            Object.assign(j, { state: r.status, fraction: 1, seconds: r.seconds, finishedAt: Date.now(), message: undefined, ...resultWarnings(r), ...resultUnet(r) });
            emit(j);
            for (const d of dependents.get(n.id) ?? []) {
              const dn = byId.get(d)!;
              if (info.get(d)!.state === 'waiting' && depsFinished(dn)) ready.push(dn);
            }
          },
          (e: unknown) => {
            const input = e instanceof PoolJobError ? e.input : false;
            const reason = `${(e as Error).name}: ${oneLine((e as Error).message)}`;
            // the time this attempt ran, failed or stopped (a done job's comes from its result)
            const seconds = (Date.now() - (j.startedAt ?? Date.now())) / 1000;
            if (options.signal?.aborted) {
              Object.assign(j, { state: 'cancelled', reason: 'batch cancelled', seconds, finishedAt: Date.now() });
              emit(j);
            } else if (!input && j.attempts < plan.retry.attempts) {
              // transient: back off and try again (delay doubles per attempt)
              Object.assign(j, { state: 'waiting', reason: `attempt ${j.attempts} failed (${reason}); retrying` });
              const t = setTimeout(() => {
                waitingRetry.delete(t);
                ready.push(n);
                pump();
              }, retryDelayMs(plan.retry.backoffMs, j.attempts));
              waitingRetry.add(t);
              // after the timer is known: a listener that aborts on this event cancels the retry with the rest
              emit(j);
            } else {
              Object.assign(j, { state: 'failed', reason, seconds, finishedAt: Date.now() });
              emit(j);
              block(n.id, `${n.id} failed`);
            }
          },
        )
        .finally(() => {
          running--;
          pump();
        });
    };
    // a signal aborted before the run starts fires no event: every job is cancelled now
    if (options.signal?.aborted) cancelAll();
    else {
      options.signal?.addEventListener('abort', cancelAll, { once: true });
      pump();
    }
  });
}
