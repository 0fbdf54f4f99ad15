/**
 * A subject's resubmission stamp (keys.resubmitted: subject → JSON `{ at, by }`, kept RESUBMITTED_TTL_S), so that a
 * worker that hung with one of its jobs and resumes after `batch retry` (or `batch submit` again) re-added the subject
 * says so. The resubmission lifts the subject's cancel mark and removes its jobs left in the queue, a hung worker's
 * job among them once its lock has expired (or the cancel had removed it already); the resumed worker found its job
 * gone with no mark, and said "Redis no longer has the job (restarted without its data?): … submit the batch again".
 */
import { keys, PURGED_TTL_S } from './redis.js';

/** How long a stamp stays: as a purge's tombstone (keys.purged), longer than a worker is left hung in practice. */
export const RESUBMITTED_TTL_S = PURGED_TTL_S;

/** What re-added a subject, in the command's words. */
export type ResubmittedBy = 'batch retry' | 'batch submit';

/** What the stamp needs of a Redis client (a short-lived connection's, or a queue's). */
interface StampClient {
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
}

/** KEYS: the stamps. ARGV: subject, stamp, TTL. Stamps the subject, returns its stamp before ('' for none). */
const STAMP = `
local before = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return before or ''`;

/** KEYS: the stamps. ARGV: subject, the stamp to put back ('' for none). */
const UNSTAMP = `
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 0`;

/**
 * Stamps `subject` of `batch` as resubmitted at `at` (an ISO time no job of the resubmission was submitted before:
 * the new jobs carry a submission of `at` or later) — before any of its jobs is removed, so a worker never finds one
 * gone without it. Returns the stamp it had ('' for none), for unstampResubmission.
 */
export async function stampResubmission(client: StampClient, batch: string, subject: string, at: string, by: ResubmittedBy): Promise<string> {
  return String(await client.eval(STAMP, 1, keys.resubmitted(batch), subject, JSON.stringify({ at, by }), RESUBMITTED_TTL_S));
}

/** Puts back the stamp `before` (stampResubmission's answer) of a subject left as it was: one of its jobs still runs. */
export async function unstampResubmission(client: StampClient, batch: string, subject: string, before: string): Promise<void> {
  await client.eval(UNSTAMP, 1, keys.resubmitted(batch), subject, before);
}

/**
 * The resubmission of a job's subject from its stamp (JSON `{ at, by }`, or null when there is none): when the job was
 * submitted before it (`submission`: `<batch>@<ISO time>`; a job without one counts as before), else null: the job is
 * the resubmission's own (or a later one's).
 */
export function resubmissionOfJob(stamp: string | null, submission: string | undefined): { at: string; by: string } | null {
  let s: { at?: unknown; by?: unknown } | null | undefined;
  try {
    s = stamp === null ? undefined : (JSON.parse(stamp) as typeof s);
  } catch {
    return null;
  }
  const at = s?.at;
  if (typeof at !== 'string' || Number.isNaN(Date.parse(at))) return null;
  const by = typeof s?.by === 'string' ? s.by : 'batch retry or batch submit';
  const submitted = submission ? Date.parse(submission.slice(submission.lastIndexOf('@') + 1)) : NaN;
  return Number.isNaN(submitted) || submitted < Date.parse(at) ? { at, by } : null;
}
