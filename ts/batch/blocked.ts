/**
 * Jobs blocked by a failed one, through BullMQ: a join whose job failed gets BullMQ's deferred failure
 * 'child <prefix>:<queue>:<job id> failed' (its Redis key). The worker fails such a join with 'blocked by <root>',
 * the job whose own failure blocked it, found by following the chain (the failed child's reason is itself
 * 'blocked by <root>' when it was a join), so `batch status` and the logs name the root cause, as the local runner
 * does ('blocked: <batch>.<subj>.betas failed'), in the project's job ids.
 */

/** The Redis key of the failed child in BullMQ's 'child <key> failed' (null for any other reason). */
export function failedChildKey(reason: string | undefined): string | null {
  const m = /^child (\S+) failed$/.exec(reason?.trim() ?? '');
  return m ? m[1] : null;
}

/** A job's id from its Redis key (<prefix>:<queue>:<id>; ids have no ':'). */
export const jobIdOfKey = (key: string): string => key.split(':').pop()!;

const BLOCKED_BY = 'blocked by ';

/** A join's failure reason when a job under it failed. */
export const blockedByReason = (root: string): string => `${BLOCKED_BY}${root}`;

/** The root failed job named by a 'blocked by <id>' reason (null for any other reason). */
export function blockedRoot(reason: string | undefined): string | null {
  const r = reason?.trim() ?? '';
  return r.startsWith(BLOCKED_BY) && !/\s/.test(r.slice(BLOCKED_BY.length)) ? r.slice(BLOCKED_BY.length) : null;
}

/**
 * The root cause of a deferred 'child <key> failed': the child's own root when it was blocked in turn (its
 * failedReason 'blocked by <root>'), else the child itself. `childReason` reads a job's failedReason by its key.
 */
export async function rootOfFailedChild(key: string, childReason: (key: string) => Promise<string | null | undefined>): Promise<string> {
  let reason: string | null | undefined;
  try {
    reason = await childReason(key);
  } catch {
    reason = undefined; // (unreadable now: the direct child is still the right answer one level down)
  }
  return blockedRoot(reason ?? undefined) ?? jobIdOfKey(key);
}
