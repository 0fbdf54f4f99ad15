/**
 * A one-shot thread that runs a job's preflight at submission (jobPreflight.ts): a reconstruct config's, an
 * encode config's, or every subject × analysis of a batch manifest's. They read the NSD design, masks, the
 * captions (COCO's caption files: tens of MB of JSON) and the model folder's declarations, work that would
 * otherwise stall the service's event loop for up to a second. Posts `{ problems }` (none: it passes) or
 * `{ failed }` (the preflight itself threw something else: jobPreflight.ts decides what the client is told).
 */
import { parentPort, workerData } from 'node:worker_threads';

import type { ResolvedBatch } from '../../batch/manifest.js';
import type { EncodeConfig } from '../../config/encode.js';
import type { ReconstructConfig } from '../../pipeline/config.js';
import { PreflightError } from '../../pipeline/errors.js';
import { withModelRoots } from '../../sd/modelRoots.js';

export type PreflightTask = (
  | { kind: 'reconstruct'; config: ReconstructConfig; force: boolean; remedy: string }
  | { kind: 'encode'; config: EncodeConfig; force: boolean; remedy: string }
  /** `elsewhere`: an NSD root or model folder missing here is left to the jobs (Redis workers may see it). */
  | { kind: 'batch'; batch: ResolvedBatch; remedy: string; elsewhere: boolean }
) & {
  /**
   * The submitting service's roots: the model files the preflight reads must lie in them, links followed. (The
   * thread inherits the process's, every service's of the process; an empty list: no service's restriction.)
   */
  modelRoots: string[];
};

/** A failure other than the preflight's verdict, as it can cross to the main thread. */
export interface PreflightFailure {
  name: string;
  /** A brainlatent error's code or a system error's errno code, if any. */
  code?: string;
  message: string;
}

/** The problems are the preflight's own words (a batch's: one line each, `subj01, subj02 × recon: …`). */
export type PreflightReply = { problems: string[] } | { failed: PreflightFailure };

const failure = (e: unknown): PreflightFailure => {
  const err = e as { name?: unknown; code?: unknown; message?: unknown } | null;
  return {
    name: typeof err?.name === 'string' ? err.name : 'Error',
    ...(typeof err?.code === 'string' ? { code: err.code } : {}),
    message: typeof err?.message === 'string' ? err.message : String(e),
  };
};

async function problemsOf(task: PreflightTask): Promise<string[]> {
  switch (task.kind) {
    case 'reconstruct':
      await (await import('../../pipeline/preflight.js')).preflight(task.config, { force: task.force, remedy: task.remedy });
      return [];
    case 'encode':
      await (await import('../../encoding/preflight.js')).preflightEncode(task.config, { force: task.force, remedy: task.remedy });
      return [];
    case 'batch': {
      const { checkBatch, formatProblems } = await import('../../batch/preflight.js');
      const { problems } = await checkBatch(task.batch, { remedy: task.remedy });
      return formatProblems(task.elsewhere ? problems.filter((p) => !p.missingHere) : problems);
    }
  }
}

const task = workerData as PreflightTask;
withModelRoots(task.modelRoots, () => problemsOf(task)).then(
  (problems) => parentPort!.postMessage({ problems } satisfies PreflightReply),
  (e: unknown) => parentPort!.postMessage((e instanceof PreflightError ? { problems: e.problems } : { failed: failure(e) }) satisfies PreflightReply),
);
