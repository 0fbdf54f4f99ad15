/**
 * A one-shot thread that runs a reconstruct job's preflight at submission (jobPreflight.ts): it reads the NSD
 * design, masks, the captions (COCO's caption files: tens of MB of JSON) and the model folder's declarations, work
 * that would otherwise stall the service's event loop for up to a second. Posts `{ problems }` (none: it passes)
 * or `{ failed }` (the preflight itself failed: the job reports that when it runs).
 */
import { parentPort, workerData } from 'node:worker_threads';

import type { ReconstructConfig } from '../../pipeline/config.js';
import { PreflightError } from '../../pipeline/errors.js';
import { preflight } from '../../pipeline/preflight.js';

export interface PreflightTask {
  config: ReconstructConfig;
  force: boolean;
  remedy: string;
}

export type PreflightReply = { problems: string[] } | { failed: string };

const task = workerData as PreflightTask;
preflight(task.config, { force: task.force, remedy: task.remedy }).then(
  () => parentPort!.postMessage({ problems: [] } satisfies PreflightReply),
  (e: unknown) => parentPort!.postMessage((e instanceof PreflightError ? { problems: e.problems } : { failed: String((e as Error)?.message ?? e) }) satisfies PreflightReply),
);
