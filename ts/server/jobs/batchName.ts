/**
 * A batch job's name under `serve --redis`: the name is the batch's identity in the shared queues (its record and its
 * jobs' ids), so a manifest whose name another manifest's batch holds there would be accepted and then fail at once
 * in the batch layer (submitPlan's refusal, which tells to run `batch cancel --purge`, a command a web user cannot
 * run). It is refused at submission instead, as a 409. The name is claimed at submission, atomically (nameClaim.ts):
 * the job's process records the batch only later, and of two manifests submitted at once under one name only one may
 * be accepted. The claim is released when the job ends (recorded by then, or never to be). Without Redis a name keys
 * nothing shared (the batch runs in the job's own process pool, its plan in its out folder), so the same body runs there.
 */
import { claimBatchName, releaseBatchName, type NameHolder } from '../../batch/nameClaim.js';
import { batchUnderRoots, legacyBatchHash, type ResolvedBatch } from '../../batch/manifest.js';
import { BrainlatentError } from '../../errors.js';
import type { JobSpec } from './JobRunner.js';

/**
 * Why the name is taken: another batch recorded, a batch of this manifest recorded without the service's roots, a batch
 * of this manifest recorded by an earlier version (its config paths not yet from the root), another job's claim.
 */
export type TakenBy = 'batch' | 'legacy' | 'olderPaths' | 'claim';

function takenMessage(name: string, by: TakenBy, jobs: readonly string[]): string {
  const head = `body.manifest.name '${name}' is taken`;
  // the command as typed on a machine that reaches this service's Redis: --redis is required; the URL is not shown
  // (a service's answer must not carry its Redis address or password)
  const purge = `'brainlatent batch cancel ${name} --redis <this service's Redis URL> --purge'`;
  switch (by) {
    case 'legacy':
      return `${head} by a batch of this very manifest recorded without this service's model roots (submitted from the command line, or by a service of a version from before a batch's identity included its root): its queued jobs are not held to this service's root, so it cannot be resumed here; give this manifest another name, or have that batch removed with ${purge} (its finished stages stay on disk and are skipped) and submit it again`;
    case 'olderPaths':
      return `${head} by a batch of this very manifest submitted by an earlier version of brainlatent, which took the relative paths of its analyses' configs (captions, networks, feature files, ids, ncsnr, masks) from the service's working folder, not from its root: its queued jobs still read them that way, so it cannot be resumed here; have that batch removed with ${purge}, then submit this manifest again with another out (its run folders record the older config)`;
    case 'claim':
      return `${head}: ${jobs.length === 1 ? 'a job' : 'jobs'} accepted with another manifest of that name (${jobs.join(', ')}, by this service or another on its Redis) ${jobs.length === 1 ? 'has' : 'have'} not submitted ${jobs.length === 1 ? 'its' : 'their'} batch yet; give this manifest another name, or submit it again once ${jobs.length === 1 ? 'that job has' : 'those jobs have'} ended (GET /v1/jobs/ID shows a job of this service, DELETE /v1/jobs/ID cancels it; a job that ends before it submitted its batch frees the name; a claim left by a service that stopped before its job ran is removed with ${purge})`;
    case 'batch':
      // (the plan differs: this very manifest from this service would have mapped onto the batch, not met it here)
      return `${head}: a batch of that name from another manifest — or from this manifest submitted from the command line or by a service with another root folder (a service's batch includes its root) — is in this service's Redis; give this manifest another name, or have that batch removed with ${purge} (its run folders stay on disk) and submit this one again`;
  }
}

export class BatchNameTakenError extends BrainlatentError {
  constructor(
    name: string,
    /** What holds the name. */
    readonly takenBy: TakenBy = 'batch',
    /** The service jobs whose claim holds it (takenBy 'claim'). */
    readonly holders: readonly string[] = [],
  ) {
    super(takenMessage(name, takenBy, holders), 'BatchNameTaken');
  }
}

/** The manifest's batch (the job's input, without the service's roots). */
const manifestBatch = (spec: JobSpec) => (spec.input as { kind: 'batch'; batch: ResolvedBatch }).batch;

/**
 * The batch a batch job submits (executeJob.ts: the manifest's, the service's roots spread on). Its `hash` is what
 * the queue compares: keep this in step with executeJob's batch case.
 */
function submittedBatch(spec: JobSpec): ResolvedBatch {
  const batch = manifestBatch(spec);
  return spec.modelRoots?.length ? batchUnderRoots(batch, spec.modelRoots) : batch;
}

/**
 * What holds the name, as the 409 says it: a record of this very manifest without roots, where the service has some,
 * was made by the CLI or by a service before roots were part of a batch's hash (the same plan but for the roots).
 */
function takenBy(spec: JobSpec, held: NameHolder): TakenBy {
  if (held.by === 'claim') return 'claim';
  if (held.record.hash === legacyBatchHash(submittedBatch(spec))) return 'olderPaths';
  const bare = manifestBatch(spec);
  return !held.record.modelRoots?.length && held.record.hash === bare.hash && spec.modelRoots?.length ? 'legacy' : 'batch';
}

/**
 * Claims the batch job's name in the queue's Redis for its plan (nameClaim.ts), or throws BatchNameTakenError when
 * another plan holds it. Every claim taken is released with releaseJobBatchName once the job has ended.
 */
export async function claimJobBatchName(redis: string, spec: JobSpec): Promise<void> {
  if (spec.kind !== 'batch') return;
  const batch = submittedBatch(spec);
  const held = await claimBatchName(redis, batch.id, batch.hash, spec.id);
  if (held) throw new BatchNameTakenError(batch.id, takenBy(spec, held), held.by === 'claim' ? held.jobs : []);
}

/** The ended (or refused) batch job's claim goes; nothing when its batch was recorded (that replaced the claim). */
export async function releaseJobBatchName(redis: string, spec: JobSpec): Promise<void> {
  if (spec.kind !== 'batch') return;
  await releaseBatchName(redis, manifestBatch(spec).id, spec.id);
}

/**
 * The id of the batch a batch-layer job submits: its manifest's name, or the job's own id for a reconstruct or encode
 * config (batchOfOne); undefined for the kinds that do not run on the batch layer. Keep in step with executeJob.
 */
export function jobBatchId(spec: JobSpec): string | undefined {
  if (spec.kind === 'batch') return manifestBatch(spec).id;
  return spec.kind === 'reconstruct' || spec.kind === 'encode' ? spec.id : undefined;
}
