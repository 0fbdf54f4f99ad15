/**
 * A batch's cancel marks as a resubmission (`batch retry`, `batch submit` again) lifts them: a subject's mark goes
 * only when the resubmission adds the subject again. Workers stop the jobs of a marked subject, and `batch status`
 * shows its jobs that are gone (or never added) as cancelled.
 *
 * A resubmission lifted every mark, the batch's and each subject's, at once; a cancelled subject whose stopped job had
 * not stopped yet (its worker checks every 2 s) was not added again ("busy"), and lost its mark all the same: that job
 * ran on to its end, and the jobs the cancel had removed (the chain after it, the subject's join) showed `waiting` for
 * good, the batch `running` for good. So the batch's mark (keys.cancelled) is first split into one mark per subject
 * (splitBatchMarkLua, a step of the submission's record: the subjects that had none get `batch <when>`, which a worker
 * still calls the batch's cancel), and each subject's mark is lifted as the submission adds it again (liftSubjectMark).
 */
import { keys } from './redis.js';

/** What a subject's mark holds when it came from the batch's (a `batch cancel` without --subject). */
export const BATCH_MARK_PREFIX = 'batch ';

/**
 * Lua: splits the batch's mark (KEYS[`batchKey`]) into marks of the subjects ARGV[`firstSubject`…] in the subjects'
 * hash (KEYS[`subjectsKey`]), each `batch <ARGV[now]>` unless marked already; nothing when the batch is not marked.
 * Indices, so that it can be one step of another script (nameClaim.ts' RECORD).
 */
export function splitBatchMarkLua(batchKey: number, subjectsKey: number, now: number, firstSubject: number): string {
  return `
if redis.call('EXISTS', KEYS[${batchKey}]) == 1 then
  for i = ${firstSubject}, #ARGV do redis.call('HSETNX', KEYS[${subjectsKey}], ARGV[i], '${BATCH_MARK_PREFIX}' .. ARGV[${now}]) end
  redis.call('DEL', KEYS[${batchKey}])
end`;
}

/** What the marks need of a Redis client (a short-lived connection's). */
interface MarkClient {
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
}

/** Lifts `subject`'s mark: the resubmission adds it again (after removing its jobs left, none of them running). */
export async function liftSubjectMark(client: MarkClient, batch: string, subject: string): Promise<void> {
  await client.eval(`redis.call('HDEL', KEYS[1], ARGV[1]) return 0`, 1, keys.cancelledSubjects(batch), subject);
}

/** Whose cancel a job's marks say: the batch's (its mark, or its subject's split from it), its subject's alone, or none. */
export function cancelOfMarks(batchMark: string | null, subjectMark: string | null): 'batch' | 'subject' | null {
  if (batchMark !== null) return 'batch';
  if (subjectMark === null) return null;
  return subjectMark.startsWith(BATCH_MARK_PREFIX) ? 'batch' : 'subject';
}
