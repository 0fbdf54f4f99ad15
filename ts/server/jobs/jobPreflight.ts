/**
 * A job's checks at submission: a reconstruct or encode config's own preflight (what `reconstruct --dry-run` and
 * `encode --dry-run` check: the model folder and its img2img plan or U-Net layers, the NSD data, the memory
 * budgets, the run folder), or a batch manifest's (each subject × analysis's, as `batch submit` checks it), so a
 * config the job would refuse when it starts is a 400 listing every problem, before the job is queued and before
 * anything is written (run.json, the batch's plan, the extraction cache). The rules stay the pipelines' own;
 * nothing is duplicated here. It runs on a thread of its own (preflightThread.ts): the captions alone are tens of
 * MB of JSON.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

import type { ResolvedBatch } from '../../batch/manifest.js';
import { rootPaths } from '../../batch/preflight.js';
import type { EncodeConfig } from '../../config/encode.js';
import { packageRoot } from '../../native/binding.js';
import type { ReconstructConfig } from '../../pipeline/config.js';
import { serviceModelRoots } from '../../sd/modelRoots.js';
import type { PreflightReply, PreflightTask } from './preflightThread.js';

/** A run folder of another config, in the service's words (the CLI's say --out and --force). */
export const SERVICE_FOLDER_REMEDY = 'choose another body.config.out, or submit with "force": true to replace them (files of yours there stay)';

/** The same for a batch job, which has no "force": its run folders are the manifest's out/subject/analysis. */
export const SERVICE_BATCH_FOLDER_REMEDY =
  'choose another body.manifest.out, or give the analysis another name (a batch job does not replace another config\'s run; a reconstruct or encode job with "force": true does)';

/** The compiled thread (dist/server/jobs/preflightThread.js), also when this module runs from the TypeScript sources. */
function threadPath(): string {
  const here = join(dirname(fileURLToPath(import.meta.url)), 'preflightThread.js');
  return existsSync(here) ? here : join(packageRoot, 'dist', 'server', 'jobs', 'preflightThread.js');
}

/** The preflight's verdict from its thread; a thread that fails or exits without one is no verdict (null). */
function preflightOnThread(task: PreflightTask): Promise<PreflightReply | null> {
  // (task.modelRoots: the thread does not see the caller's scope, only the process's roots)
  return new Promise((resolve) => {
    const worker = new Worker(threadPath(), { workerData: task });
    worker.once('message', (r: PreflightReply) => {
      resolve(r);
      void worker.terminate();
    });
    worker.once('error', () => resolve(null));
    worker.once('exit', () => resolve(null));
  });
}

/** The job may run on another machine (Redis workers) that sees an NSD root or model folder this one does not. */
const missingHere = (a: Parameters<typeof rootPaths>[0]) => rootPaths(a).some((p) => !existsSync(p.path));

/**
 * The preflight's problems for `config`, each prefixed with `body.config: `, or none. `elsewhere`: the job may run on
 * another machine (Redis workers), which may see an NSD root or model folder this one does not: those are left to
 * the job, as `batch submit` leaves them. A failure that is not the preflight's verdict is a problem too when the
 * config's inputs caused it (a model file that is not ONNX), else a PreflightThreadError (500): the job is never queued.
 * `modelRoots`: the submitting service's roots, which the model files read must lie in (default: the caller's, as
 * modelRoots.ts scopes them; a service passes its own, the process's roots being every service's of the process).
 */
export async function reconstructPreflightProblems(config: ReconstructConfig, force: boolean, elsewhere: boolean, modelRoots: readonly string[] = serviceModelRoots()): Promise<string[]> {
  if (elsewhere && missingHere({ kind: 'reconstruct', config })) return [];
  return preflightVerdict(await preflightOnThread({ kind: 'reconstruct', config, force, remedy: SERVICE_FOLDER_REMEDY, modelRoots: [...modelRoots] }));
}

/** The same for an encode config: encode's own preflight (`encode --dry-run`'s checks). */
export async function encodePreflightProblems(config: EncodeConfig, force: boolean, elsewhere: boolean, modelRoots: readonly string[] = serviceModelRoots()): Promise<string[]> {
  if (elsewhere && missingHere({ kind: 'encode', config })) return [];
  return preflightVerdict(await preflightOnThread({ kind: 'encode', config, force, remedy: SERVICE_FOLDER_REMEDY, modelRoots: [...modelRoots] }));
}

/**
 * A batch manifest's: every subject × analysis's preflight, each distinct problem once with the pairs it concerns
 * (`body.manifest: subj01, subj02 × recon: …`). `elsewhere`: a pair whose NSD root or model folder is missing here
 * is left to its jobs, the rest are checked. `modelRoots` as above.
 */
export async function batchPreflightProblems(batch: ResolvedBatch, elsewhere: boolean, modelRoots: readonly string[] = serviceModelRoots()): Promise<string[]> {
  return preflightVerdict(await preflightOnThread({ kind: 'batch', batch, remedy: SERVICE_BATCH_FOLDER_REMEDY, elsewhere, modelRoots: [...modelRoots] }), 'body.manifest');
}

/** The thread's reply as the submission's problems (none: accepted), or a PreflightThreadError. */
export function preflightVerdict(r: PreflightReply | null, field = 'body.config'): string[] {
  if (r && 'problems' in r) return r.problems.map((p) => `${field}: ${p}`);
  // never an accepted job by default: what the config's inputs caused is the client's (400), the rest the service's (500)
  if (r && INPUT_CODES.has(r.failed.code ?? '')) return [`${field}: ${r.failed.message}`];
  throw new PreflightThreadError(r ? `${r.failed.name}: ${r.failed.message}` : 'the preflight thread ended without a verdict');
}

/** Failures of a config's inputs (its files, their shapes and formats): a refusal, not the service's fault. */
const INPUT_CODES = new Set(['ShapeMismatch', 'FormatError', 'MissingFile', 'InvalidArgument', 'NonFinite', 'LimitExceeded', 'ENOENT', 'ENOTDIR', 'EISDIR', 'EACCES']);

/** The submission's preflight failed for a reason of the service's own (a 500; the details in the server log). */
export class PreflightThreadError extends Error {
  constructor(detail: string) {
    super(`the job's preflight failed at submission: ${detail}`);
    this.name = 'PreflightThreadError';
  }
}
