/**
 * The lock tokens a worker takes jobs with. BullMQ holds a job's lock as `<queue>:<id>:lock` = token, and a renewal,
 * completion or failure succeeds only with the token in that key: the token is who owns the job. It was
 * `<name>:<n>`, n counting this worker's fetches from 0, so two workers given the same `--name` (one Slurm script
 * for a whole array) handed out the same tokens: a worker that hung past its lock, whose job then went to its
 * namesake under the same token, found its renewals accepted when it resumed, and both ran the job and recorded it.
 * A random part per process makes each worker's tokens its own; the name stays in front, for people reading Redis
 * (`batch status` shows BullMQ's processedBy, the worker's name, not the token).
 */
import { randomBytes } from 'node:crypto';

/** The token maker of one worker: `<name>:<8 random hex digits>:<n>`, n = 0, 1, 2, … */
export function lockTokens(name: string): () => string {
  const mine = `${name}:${randomBytes(4).toString('hex')}`;
  let seq = 0;
  return () => `${mine}:${seq++}`;
}
