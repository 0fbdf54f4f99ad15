/** BullMQ sandboxed processor (a child process of the worker) for the work queues: see processJob.ts. */
import type { SandboxedJob } from 'bullmq';

import { applyThreadsFromEnv, processWorkJob, type WorkJob } from './processJob.js';
import type { NodeResult } from './runNode.js';
import type { JobData } from './submit.js';

// a child must never outlive its worker: a killed worker's job is redone elsewhere, and two writers of
// the same outputs would be one too many
process.on('disconnect', () => process.exit(1));
// belt and braces: a child whose worker was SIGKILLed does not always see 'disconnect'; check the channel
// and the parent (re-parented to init) every second
const parent = process.ppid;
setInterval(() => {
  if (!process.connected || process.ppid !== parent) process.exit(1);
}, 1000).unref();
applyThreadsFromEnv();

export default async function (job: SandboxedJob<JobData, NodeResult>, token?: string, signal?: AbortSignal): Promise<NodeResult> {
  return processWorkJob(job as unknown as WorkJob, token, signal);
}
