/**
 * Whether a job BullMQ lists as active is still being run. A worker holds the job's lock (`<queue>:<id>:lock`, renewed
 * by its lock keeper) while it runs the job; a worker that died (SIGKILL, a lost node) or hung lets the lock expire,
 * and the job then stays listed active until a live worker's stalled-job check puts it back in the queue: with no
 * worker left (every one killed at a Slurm time limit) it stays so for ever. Taken for running, such jobs were counted
 * running by `batch status` and `batch watch` (their dead workers "busy", an ETA), told to "stop at their next progress
 * report" by `batch cancel`, and waited for by `--purge` and `batch retry`, none of which could end.
 */
import type { Job, Queue } from 'bullmq';

/** Whether the lock of job `id` of `queue` is held (by a worker that runs it now). */
export async function lockHeld(queue: Queue, id: string): Promise<boolean> {
  const client = await queue.getBackend().client;
  return (await client.get(queue.toKey(`${id}:lock`))) !== null;
}

/** The job's BullMQ state, but 'stalled' for an active job whose lock has expired (its worker is gone). */
export async function liveState(job: Job, queue: Queue): Promise<string> {
  const state = await job.getState();
  return state === 'active' && !(await lockHeld(queue, job.id!)) ? 'stalled' : state;
}
