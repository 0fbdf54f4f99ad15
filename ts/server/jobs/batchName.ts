/**
 * A batch job's name under `serve --redis`: the name is the batch's identity in the shared queues (its record and its
 * jobs' ids), so a manifest whose name another manifest's batch holds there would be accepted and then fail at once
 * in the batch layer (submitPlan's refusal, which tells to run `batch cancel --purge`, a command a web user cannot
 * run). It is refused at submission instead, as a 409. Without Redis a name keys nothing shared (the batch runs in
 * the job's own process pool, its plan in its out folder), so the same body runs there.
 */
import { recordedBatchHash } from '../../batch/inspect.js';
import { batchUnderRoots, type ResolvedBatch } from '../../batch/manifest.js';
import { BrainlatentError } from '../../errors.js';
import type { JobSpec } from './JobRunner.js';

export class BatchNameTakenError extends BrainlatentError {
  constructor(name: string) {
    super(
      `body.manifest.name '${name}' is taken: a batch of that name from another manifest — or from this manifest submitted from the command line or by a service with another root folder (a service's batch includes its root) — is in this service's Redis; give this manifest another name, or, if that batch was submitted by this service from this very manifest, submit it again to resume it (its finished jobs are kept)`,
      'BatchNameTaken',
    );
  }
}

/**
 * The batch a batch job submits (executeJob.ts: the manifest's, the service's roots spread on). Its `hash` is what
 * the queue compares: keep this in step with executeJob's batch case.
 */
function submittedBatch(spec: JobSpec): ResolvedBatch {
  const batch = (spec.input as { kind: 'batch'; batch: ResolvedBatch }).batch;
  return spec.modelRoots?.length ? batchUnderRoots(batch, spec.modelRoots) : batch;
}

/** Throws BatchNameTakenError when the batch job's name holds another plan in the queue's Redis. */
export async function refuseTakenBatchName(redis: string, spec: JobSpec): Promise<void> {
  if (spec.kind !== 'batch') return;
  const batch = submittedBatch(spec);
  const recorded = await recordedBatchHash(batch.id, { redis });
  if (recorded !== null && recorded !== batch.hash) throw new BatchNameTakenError(batch.id);
}
