/**
 * `submitBatch`: the job graph as BullMQ flows. A flow is a tree (a parent waits for its children), so each
 * chain of stages is nested child-in-parent, and where one job fans out to many (a subject to its analyses
 * after the shared extraction, the z-only stage to its img2img shards) the joining job carries the fan-out
 * in its data and adds it as its own children when it first runs (BullMQ's "waiting children" pattern).
 * Job ids are deterministic, so submitting again adds nothing that exists.
 */
import type { ConnectionOptions, FlowJob, Job, JobsOptions, Queue } from 'bullmq';

import { loadRedisQueue } from '../optionalDependencies.js';
import { BatchError } from './errors.js';
import { planBatch, planNodes, QUEUES, submissionId, type BatchNode, type BatchPlan, type QueueClass, type SubjectPlan } from './graph.js';
import { recordBatch, undoRecord, type NameHolder } from './nameClaim.js';
import { openShortLivedRedis, PREFIX, requireRedis, shownRedisUrl, type BatchRecord } from './redis.js';
import { toResolved, writePlan, type ManifestInput } from './outputs.js';
import { checkJobTimeoutMs } from './jobTimeout.js';
import { liveState } from './liveLock.js';
import { liftSubjectMark } from './cancelMarks.js';
import { stampResubmission, unstampResubmission } from './resubmission.js';

/**
 * @internal What a job carries: its node, the submission that added it (submissionId; absent in jobs queued by a
 * version before it) and, for a join, the flows it adds when it first runs. (Internal: BullMQ's types stay out of the
 * public typings, tsconfig.build.json's stripInternal; a slim install has no bullmq.)
 */
export interface JobData {
  node: BatchNode;
  submission?: string;
  /** A work job's time limit in ms, its batch's as submitted (BatchPlan.jobTimeoutMs); absent: none. */
  timeoutMs?: number;
  spawn?: FlowJob[];
  spawned?: boolean;
}

/** A submission's plan and its id, which each of its jobs carries (the shards of a merge's fan-out too). */
interface Submission {
  plan: BatchPlan;
  id: string;
}

function jobOptions(plan: BatchPlan, node: BatchNode, child: boolean): JobsOptions {
  return {
    jobId: node.id,
    attempts: plan.retry.attempts,
    backoff: { type: 'exponential', delay: plan.retry.backoffMs },
    // a failed job fails the chain above it up to the subject, whose other work goes on
    ...(child ? { failParentOnFailure: true } : {}),
  };
}

function leaf(sub: Submission, n: BatchNode, children: FlowJob[] = [], spawn?: FlowJob[]): FlowJob {
  // (the joins, on the control queue, run in the worker itself: no process to kill)
  const limit = sub.plan.jobTimeoutMs !== undefined && n.queue !== 'control' ? { timeoutMs: sub.plan.jobTimeoutMs } : {};
  const data: JobData = { node: n, submission: sub.id, ...limit, ...(spawn ? { spawn } : {}) };
  return { name: n.stage, queueName: n.queue, data, opts: jobOptions(sub.plan, n, true), children };
}

/** An analysis's chain, innermost first: the last stage is the top of the tree. */
function chainFlow(sub: Submission, steps: SubjectPlan['analyses'][number]['steps']): FlowJob {
  let prev: FlowJob | null = null;
  let fan: BatchNode[] = [];
  for (const st of steps) {
    if ('shards' in st) {
      fan = st.shards;
      continue;
    }
    const spawn = st.work.kind === 'merge' ? fan.map((s) => leaf(sub, s)) : undefined;
    prev = leaf(sub, st, prev ? [prev] : [], spawn);
    fan = [];
  }
  return prev!;
}

/**
 * @internal (BullMQ's FlowJob stays out of the public typings.)
 * A subject's tree: its join runs after the shared jobs (the extraction, then the shared features on top of it,
 * one after another: a job has one parent), then adds the analyses' chains and waits for them. `submission`: the
 * id its jobs carry (submissionId).
 */
export function subjectFlow(plan: BatchPlan, s: SubjectPlan, submission: string): FlowJob {
  const sub: Submission = { plan, id: submission };
  const data: JobData = { node: s.root, submission, spawn: s.analyses.map((a) => chainFlow(sub, a.steps)) };
  let children = s.shared.filter((n) => n.deps.length === 0).map((n) => leaf(sub, n));
  for (const n of s.shared.filter((x) => x.deps.length > 0)) children = [leaf(sub, n, children)];
  return { name: 'subject', queueName: s.root.queue, data, opts: jobOptions(plan, s.root, false), children };
}

export interface SubmitOptions {
  /** redis://host:port/db */
  redis: string;
}

/** submitBatch's options beyond the Redis: `force` (planBatch's) and the batch's time limit per job. */
export interface SubmitBatchOptions extends SubmitOptions {
  force?: boolean;
  /**
   * The time limit of each work job, in ms (1000 to 2^31 − 1; `batch submit --job-timeout`): past it the worker kills
   * the job's process and fails the attempt with a JobTimeoutError naming the job and the limit; `retry.attempts`
   * apply. Kept with the batch (its plan, batch.json, which `batch retry` resubmits). Default: none.
   */
  jobTimeoutMs?: number;
}

/** A subject already in the queue: its join done or failed, one of its jobs running, or waiting to run. */
export type ExistingState = 'done' | 'failed' | 'running' | 'queued';

/** Where a subject already in the queue is, from its join's state and, while that waits, its jobs'. */
async function existingState(root: Job, queues: Record<QueueClass, Queue>, jobs: readonly BatchNode[]): Promise<ExistingState> {
  const state = await liveState(root, queues.control);
  if (state === 'completed') return 'done';
  if (state === 'failed') return 'failed';
  if (state === 'active') return 'running';
  const { Job } = (await loadRedisQueue()).bullmq;
  for (const n of jobs) {
    const job = await Job.fromId(queues[n.queue], n.id);
    if (job && (await liveState(job, queues[n.queue])) === 'active') return 'running';
  }
  return 'queued';
}

export interface SubmitResult {
  batch: string;
  jobs: number;
  /** Subjects added now; the others were already in the queue (finished, running or failed). */
  added: string[];
  existing: string[];
  /** Where each subject of `existing` is: done, failed (`batch retry` resubmits it), running (a job of it runs), queued. */
  existingStates: Record<string, ExistingState>;
  /** Subjects cut off by a cancel whose stopped job still runs: not added (submit again once it has stopped). */
  busy: string[];
}

/**
 * @internal (BullMQ's Queue stays out of the public typings.)
 * Removes every job of a subject whose tree is not whole (a cancel removes the unfinished jobs and leaves the
 * finished ones, and a job it stopped, without their parents; a new tree added over them would wait for ever on
 * the stopped job), dependents first, so that its tree can be added whole (finished stages are then skipped by
 * their markers). False, and nothing removed, while one of them still runs.
 */
export async function clearSubject(queues: (q: QueueClass) => Queue, jobs: { id: string; queue: QueueClass }[]): Promise<boolean> {
  const { Job } = (await loadRedisQueue()).bullmq;
  const left: Job[] = [];
  for (const r of [...jobs].reverse()) {
    const job = await Job.fromId(queues(r.queue), r.id);
    if (!job) continue;
    // (one whose worker is gone, its lock expired, runs nowhere: it goes with the others)
    if ((await liveState(job, queues(r.queue))) === 'active') return false;
    left.push(job);
  }
  try {
    for (const job of left) await job.remove();
  } catch {
    return false; // taken meanwhile (locked)
  }
  return true;
}

/**
 * The refusal of a plan whose name is another plan's: another manifest, or the same one with other model roots (a
 * service with another root folder, or the CLI with none), whose queued jobs are not held to this one's; or a
 * service's claim for another plan, whose job has not recorded it yet. (The roots are not named: they are another
 * service's folders.)
 */
function resubmittedAs(plan: BatchPlan, held: NameHolder, redis: string): BatchError {
  // the command as it is to be typed: --redis is required (the URL without its password, as every message shows it)
  const purge = `'brainlatent batch cancel ${plan.id} --redis ${shownRedisUrl(redis)} --purge'`;
  const undo = `give this one another name, or remove the old one with ${purge}`;
  if (held.by === 'claim') {
    return new BatchError(
      `batch '${plan.id}' is claimed by a service's job for another manifest, not submitted yet (plan ${held.hash}, this one ${plan.hash}; ` +
        `held by ${held.jobs.length === 1 ? 'job' : 'jobs'} ${held.jobs.join(', ')} of the service that accepted it); ` +
        `give this one another name, or wait for that job to end (one that ends before submitting frees the name); ` +
        `a claim left by a service that stopped before its job ran is removed with ${purge}`,
    );
  }
  const rec = held.record;
  if (plan.legacyHash !== undefined && rec.hash === plan.legacyHash) {
    return new BatchError(
      `batch '${plan.id}' was submitted before from this manifest by an earlier version of brainlatent, which took the relative paths of its ` +
        `analyses' configs (captions, networks, feature files, ids, ncsnr, masks) from the working folder, not from the manifest's (plan ${rec.hash}, now ${plan.hash}): ` +
        `its queued jobs still read them that way, so it is not resumed as this one; remove it with ${purge} and submit this manifest again ` +
        `(its run folders record the older config: add --force to redo them)`,
    );
  }
  const roots = (r: string[] | undefined) => JSON.stringify(r ?? []);
  if (roots(rec.modelRoots) !== roots(plan.modelRoots)) {
    return new BatchError(
      `batch '${plan.id}' was submitted before with other model roots (by a service with another root folder, or from the command line): ` +
        `its jobs do not hold their model files to this one's (plan ${rec.hash}, this one ${plan.hash}); ${undo}`,
    );
  }
  return new BatchError(`batch '${plan.id}' was submitted before from another manifest (plan ${rec.hash}, this one ${plan.hash}); ${undo}`);
}

export function batchRecord(plan: BatchPlan): BatchRecord {
  return {
    id: plan.id,
    hash: plan.hash,
    ...(plan.modelRoots?.length ? { modelRoots: plan.modelRoots } : {}),
    out: plan.out,
    submittedAt: new Date().toISOString(),
    subjects: plan.subjects.map((s) => ({ name: s.name, root: s.root.id })),
    jobs: planNodes(plan).map((n) => ({ id: n.id, queue: n.queue, subject: n.subject, analysis: n.analysis, stage: n.stage, ...(n.shard ? { shard: n.shard } : {}) })),
  };
}

/** Records the plan (in Redis and as <out>/batch.json) and adds its subjects (or `only` those) that are not in the queue yet. */
export async function submitPlan(plan: BatchPlan, options: SubmitOptions & { only?: string[]; stamped?: boolean }): Promise<SubmitResult> {
  const { FlowProducer, Queue } = (await loadRedisQueue()).bullmq;
  // one short-lived connection for the queues and the flows (BullMQ's own connections wait for ever): a Redis that is not
  // there, or stops answering mid-submit, fails here with RedisUnreachableError naming it (what was added stays added:
  // submitting again adds the rest)
  const redis = await openShortLivedRedis(options.redis);
  const connection = redis.client as unknown as ConnectionOptions;
  const queues = Object.fromEntries(QUEUES.map((q) => [q, new Queue(q, { connection, prefix: PREFIX })])) as Record<QueueClass, Queue>;
  const control = queues.control;
  const flows = new FlowProducer({ connection, prefix: PREFIX });
  // errors reach the calls that fail
  for (const q of Object.values(queues)) q.on('error', () => {});
  flows.on('error', () => {});
  try {
    // the name checked and recorded in one step: of two manifests submitted at once under one name, one is refused
    const record = batchRecord(plan);
    const recorded = await recordBatch(options.redis, record);
    if ('held' in recorded) throw resubmittedAs(plan, recorded.held, options.redis);
    // the plan next to the outputs (what `batch retry` resubmits): written once the name is known to be this plan's
    try {
      await writePlan(plan);
    } catch (e) {
      // nothing queued: a new record goes again (a batch whose jobs would never come)
      if (recorded.created) await undoRecord(options.redis, record).catch(() => {});
      throw e;
    }
    const added: string[] = [];
    const existing: string[] = [];
    const existingStates: Record<string, ExistingState> = {};
    const busy: string[] = [];
    const nodes = planNodes(plan);
    // the subjects added now are this submission's (a subject already queued keeps its jobs, and theirs)
    const submission = submissionId(plan.id, record.submittedAt);
    for (const s of plan.subjects) {
      if (options.only && !options.only.includes(s.name)) continue;
      // a subject already in the queue keeps its jobs (finished ones are not redone; 'batch retry' resubmits failed ones)
      const root = await control.getJob(s.root.id);
      if (root) {
        existing.push(s.name);
        existingStates[s.name] = await existingState(root, queues, nodes.filter((n) => n.subject === s.name));
        continue;
      }
      // a subject of a batch submitted before (re-added after a cancel) is stamped so, before its jobs left in the queue
      // go: a worker that hung with one of them says so when it resumes (resubmission.ts; batch retry stamps its own)
      const had = recorded.created || options.stamped ? null : await stampResubmission(redis.client, plan.id, s.name, record.submittedAt, 'batch submit');
      // no subject join, but jobs of the subject left by a cancel: they go first
      if (!(await clearSubject((q) => queues[q], nodes.filter((n) => n.subject === s.name)))) {
        if (had !== null) await unstampResubmission(redis.client, plan.id, s.name, had);
        // (its cancel mark stays: the job still running stops, and the jobs the cancel removed stay cancelled)
        busy.push(s.name);
        continue;
      }
      // added again: its cancel mark goes (cancelMarks.ts)
      await liftSubjectMark(redis.client, plan.id, s.name);
      await flows.add(subjectFlow(plan, s, submission));
      added.push(s.name);
    }
    return { batch: plan.id, jobs: nodes.length, added, existing, existingStates, busy };
  } catch (e) {
    throw redis.unanswered(e);
  } finally {
    redis.close();
    // (the connection is gone: closing them only lets go of it)
    await Promise.allSettled([flows.close(), ...Object.values(queues).map((q) => q.close())]);
  }
}

/**
 * Validates and plans a manifest, records the plan next to the outputs and adds its jobs to the queues. `force`:
 * a run folder holding another config's run is replaced by the analysis's extract job (planBatch's `force`).
 */
export async function submitBatch(manifest: ManifestInput, options: SubmitBatchOptions): Promise<SubmitResult & { plan: BatchPlan }> {
  const limit = options.jobTimeoutMs === undefined ? {} : { jobTimeoutMs: checkJobTimeoutMs(options.jobTimeoutMs, 'submitBatch') };
  const plan = { ...(await planBatch(await toResolved(manifest), { force: options.force })), ...limit };
  // nothing is written next to the outputs for a batch that cannot be submitted
  await requireRedis(options.redis);
  return { ...(await submitPlan(plan, options)), plan };
}

export const ALL_QUEUES = QUEUES;
