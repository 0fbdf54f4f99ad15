/**
 * A one-shot thread that runs a reconstruct job's preflight at submission (jobPreflight.ts): it reads the NSD
 * design, masks, the captions (COCO's caption files: tens of MB of JSON) and the model folder's declarations, work
 * that would otherwise stall the service's event loop for up to a second. Posts `{ problems }` (none: it passes)
 * or `{ failed }` (the preflight itself threw something else: jobPreflight.ts decides what the client is told).
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

/** A failure other than the preflight's verdict, as it can cross to the main thread. */
export interface PreflightFailure {
  name: string;
  /** A brainlatent error's code or a system error's errno code, if any. */
  code?: string;
  message: string;
}

export type PreflightReply = { problems: string[] } | { failed: PreflightFailure };

const failure = (e: unknown): PreflightFailure => {
  const err = e as { name?: unknown; code?: unknown; message?: unknown } | null;
  return {
    name: typeof err?.name === 'string' ? err.name : 'Error',
    ...(typeof err?.code === 'string' ? { code: err.code } : {}),
    message: typeof err?.message === 'string' ? err.message : String(e),
  };
};

const task = workerData as PreflightTask;
preflight(task.config, { force: task.force, remedy: task.remedy }).then(
  () => parentPort!.postMessage({ problems: [] } satisfies PreflightReply),
  (e: unknown) => parentPort!.postMessage((e instanceof PreflightError ? { problems: e.problems } : { failed: failure(e) }) satisfies PreflightReply),
);
