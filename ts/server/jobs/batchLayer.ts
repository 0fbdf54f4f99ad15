/**
 * Jobs on the batch layer. A reconstruct or encode config becomes a batch of one subject × one analysis whose run
 * folder is the config's own `out` (the batch's plan and summary go to a hidden folder under the root), and a
 * manifest is a batch as it stands. `runBatch` then runs it on this machine: a shared extraction, every stage a
 * job of its own on a pool of worker processes, img2img split into shards, transient failures retried.
 *
 * Progress: a batch of one reports the stage of its analysis that is running (its shards' mean fraction for
 * img2img) as the job's stage; a manifest reports the batch as one stage whose fraction is the finished share.
 */
import { join } from 'node:path';

import { analysisStages, planBatch, planNodes } from '../../batch/graph.js';
import { batchHash, type ResolvedBatch } from '../../batch/manifest.js';
import { cancelBatch } from '../../batch/inspect.js';
import { runBatch } from '../../batch/runBatch.js';
import { batchStatus, initialJobs, jobShare, type JobInfo } from '../../batch/status.js';
import type { EncodeConfig } from '../../config/encode.js';
import { CancelledError } from '../../errors.js';
import type { ReconstructConfig } from '../../pipeline/config.js';
import type { BatchQueue } from './JobRunner.js';
import type { JobControl } from './types.js';
import { JobOutcomeError } from './jobErrors.js';


const RETRY = { attempts: 3, backoffMs: 2000 };

export function batchOfOne(id: string, kind: 'reconstruct' | 'encode', config: ReconstructConfig | EncodeConfig, batchesDir: string): ResolvedBatch {
  const subjects = [
    {
      name: `subj${String(config.nsd.subject).padStart(2, '0')}`,
      subject: config.nsd.subject,
      root: config.nsd.root,
      analyses: [{ name: kind, kind, config, sharding: { images: 64, seeds: 1 } }],
    },
  ];
  const out = join(batchesDir, id);
  const batch = { id, out, subjects, retry: RETRY };
  return { ...batch, hash: batchHash(batch) };
}

/**
 * How much of a job's share an earlier run made: all of it for a job skipped as done before, the samples it kept of an
 * interrupted run's for one that ran (its count's `reused`), none otherwise. Not this batch's work, so not in its rate.
 */
const reusedShare = (j: JobInfo) =>
  j.state === 'skipped' ? 1 : j.count?.reused && j.count.total > 0 ? Math.min(jobShare(j), j.count.reused / j.count.total) : 0;

/**
 * Reports a batch of one's progress as its analysis's stages, in order. A stage is announced only once it is
 * known whether it runs: its jobs decide that themselves (a job whose outputs are there already ends 'skipped'
 * at once), so a stage whose jobs are waiting, or started but have reported nothing yet, is not announced. It
 * is announced 'running' at its first progress (or its first job done or failed), 'skipped' when every one of
 * its jobs was, and once all its jobs are done or skipped its end is reported ('done', with its jobs' wall time).
 */
export function singleProgress(stages: readonly string[], control: JobControl) {
  let last = '';
  /** Stages whose end (done or skipped) has been reported. */
  const ended = new Set<string>();
  const ok = (j: JobInfo) => j.state === 'done' || j.state === 'skipped';
  const emit = (stage: string, fraction: number, message: string | undefined, status: 'running' | 'skipped' | 'done', seconds?: number, reused = 0) => {
    const key = `${stage}:${fraction.toFixed(4)}:${reused.toFixed(4)}:${message ?? ''}:${status}`;
    if (key === last) return;
    last = key;
    control.progress({
      stage, index: stages.indexOf(stage) + 1, stages: stages.length, fraction, message, status,
      ...(seconds === undefined ? {} : { seconds }),
      ...(reused > 0 ? { reusedFraction: reused } : {}),
    });
  };
  return (jobs: JobInfo[]) => {
    for (const stage of stages) {
      const group = jobs.filter((j) => j.stage === stage);
      if (group.length === 0) continue;
      if (group.every(ok)) {
        if (ended.has(stage)) continue;
        ended.add(stage);
        if (group.every((j) => j.state === 'skipped')) emit(stage, 1, undefined, 'skipped');
        else {
          const ran = group.filter((j) => j.state === 'done');
          const from = Math.min(...ran.map((j) => j.startedAt ?? Infinity));
          const to = Math.max(...ran.map((j) => j.finishedAt ?? -Infinity));
          emit(stage, 1, undefined, 'done', Number.isFinite(from) && Number.isFinite(to) && to >= from ? (to - from) / 1000 : undefined);
        }
        continue;
      }
      // the first stage still under way: shown once one of its jobs has reported work (or has ended not skipped)
      const known = group.some((j) => j.state === 'done' || j.state === 'failed' || (j.state === 'active' && (j.fraction > 0 || j.message !== undefined)));
      if (!known) return;
      // only done (or skipped) shards are complete: a stopped, failed or never-run one counts the part it finished
      // (its last fraction; 0 when it never ran), so a cancelled job's last progress is the share actually made
      // (img2img's shards, without their merge: a join that only checks them, not one of the shards)
      const sharded = group.some((j) => j.shard !== undefined);
      const parts = sharded ? group.filter((j) => j.shard !== undefined) : group;
      const fraction = parts.reduce((a, j) => a + jobShare(j), 0) / parts.length;
      // what an earlier run made of it (shards done before, a resumed shard's kept samples): the job's rate leaves it out
      const reused = parts.reduce((a, j) => a + reusedShare(j), 0) / parts.length;
      // `k/n shards` for one shard too (its own message after it: `0/1 shards · seed 0`), as for many
      const own = parts.length === 1 && parts[0].message ? ` · ${parts[0].message}` : '';
      const message = sharded || parts.length > 1 ? `${shardsMessage(parts)}${own}` : parts[0].message;
      emit(stage, fraction, message, 'running', undefined, reused);
      return;
    }
  };
}

/** `k/n shards`, k the done (or skipped) ones, then those that ended otherwise: `3/6 shards (1 stopped, 2 not run)`. */
function shardsMessage(group: JobInfo[]): string {
  const complete = group.filter((j) => j.state === 'done' || j.state === 'skipped').length;
  const ended = new Map<string, number>();
  for (const j of group) {
    const what = j.state === 'cancelled' ? (j.startedAt === undefined ? 'not run' : 'stopped') : j.state === 'failed' || j.state === 'blocked' ? j.state : null;
    if (what) ended.set(what, (ended.get(what) ?? 0) + 1);
  }
  return `${complete}/${group.length} shards${ended.size ? ` (${[...ended].map(([k, n]) => `${n} ${k}`).join(', ')})` : ''}`;
}

/**
 * A whole manifest's progress as one stage: batchStatus's progress, its done (or skipped) jobs and the part the others
 * finished (jobShare) over all its jobs, the share `batch status` and `batch watch` show.
 */
function batchProgress(control: JobControl, startedAt: number, id: string) {
  return (jobs: JobInfo[]) => {
    const s = batchStatus(id, jobs, startedAt);
    const done = s.counts.done + s.counts.skipped;
    const failed = s.counts.failed + s.counts.blocked;
    control.progress({
      stage: 'batch',
      index: 1,
      stages: 1,
      fraction: s.progress,
      message: `${done}/${jobs.length} jobs done, ${s.counts.active} running${failed ? `, ${failed} failed or blocked` : ''}${s.counts.cancelled ? `, ${s.counts.cancelled} cancelled` : ''}`,
    });
  };
}

/**
 * The U-Net evaluations and seconds of the img2img shards that ran in this batch, to the steps/s metric, once. Only
 * the shards' (their merge job's summary repeats their sum), and only those done now: a resumed run's skipped shards
 * were counted by the job that ran them, and a stopped one reports nothing, so a rate is this run's work over its time.
 */
export function reportUnet(jobs: readonly JobInfo[], control: JobControl): void {
  const ran = jobs.filter((j) => j.shard !== undefined && j.state === 'done' && j.unet);
  const evaluations = ran.reduce((a, j) => a + j.unet!.evaluations, 0);
  const seconds = ran.reduce((a, j) => a + j.unet!.seconds, 0);
  if (evaluations > 0) control.unet?.(evaluations, seconds);
}

/**
 * Runs a batch on this machine's process pool, or with `queue` through BullMQ (submitted, then worked by this
 * service's `queue.workers` job processes and any `brainlatent worker`); resolves with its summary, throws
 * JobOutcomeError (with the summary) if jobs failed. Cancelling a queued batch cancels it in Redis: its waiting
 * jobs are removed and running ones stop at their next progress report, wherever they run.
 */
export async function runOnBatchLayer(batch: ResolvedBatch, single: 'reconstruct' | 'encode' | null, control: JobControl, queue?: BatchQueue): Promise<Record<string, unknown>> {
  const plan = await planBatch(batch);
  const jobs = new Map<string, JobInfo>(initialJobs(plan).map((j) => [j.id, j]));
  // a batch of one reports its analysis's own stages (an encode config's come from its feature sets)
  const report = single ? singleProgress(['betas', ...analysisStages(single, batch.subjects[0].analyses[0].config)], control) : batchProgress(control, Date.now(), plan.id);
  report([...jobs.values()]);
  let cancelling: Promise<unknown> | undefined;
  // only a cancel Redis answered is reported: without it the service cancels the batch itself once Redis answers (a
  // process killed while Redis stalls, or a cancel that found no batch yet while runBatch was still submitting it)
  const cancelQueued = () => {
    cancelling = cancelBatch(plan.id, { redis: queue!.redis }).then(
      () => control.batchCancelled?.(),
      (e: unknown) => console.error(`brainlatent serve: cancelling batch ${plan.id} in Redis failed: ${(e as Error).message}`),
    );
  };
  // (a job cancelled before it got here submits nothing: an abort listener added now would never fire)
  if (control.signal.aborted) {
    if (queue) control.batchCancelled?.();
    throw new CancelledError(`batch ${plan.id}: cancelled before it started`, { cause: control.signal.reason });
  }
  if (queue) control.signal.addEventListener('abort', cancelQueued, { once: true });
  let r;
  try {
    r = await runBatch(batch, {
      signal: control.signal,
      ...(queue ? { redis: queue.redis, concurrency: queue.workers } : {}),
      onEvent: (e) => {
        // Redis stalled or down while the batch runs (waited out), and back: in the service's log
        if (e.redis) console.error(`brainlatent serve: batch ${plan.id}: ${e.redis.message}${e.redis.answering ? '' : ': still waiting for it'}`);
        if (!e.job) return;
        jobs.set(e.job.id, e.job);
        report([...jobs.values()]);
      },
    });
    for (const j of r.jobs) jobs.set(j.id, j);
  } finally {
    control.signal.removeEventListener('abort', cancelQueued);
    await cancelling;
    // done, failed or cancelled: the U-Net work of the shards that ran in this batch (not those a resumed run skipped)
    reportUnet([...jobs.values()], control);
  }
  if (r.state === 'cancelled' || control.signal.aborted) throw new CancelledError(`batch ${plan.id} cancelled`, control.signal.aborted ? { cause: control.signal.reason } : undefined);
  const result: Record<string, unknown> = { batch: plan.id, state: r.state, counts: r.counts, summary: r.summary, jobs: planNodes(plan).length };
  if (r.state === 'failed') {
    const first = r.jobs.find((j) => j.state === 'failed');
    throw new JobOutcomeError(`${r.counts.failed} of ${r.jobs.length} jobs failed${first ? ` (first: ${first.id}: ${first.reason})` : ''}`, result);
  }
  return result;
}
