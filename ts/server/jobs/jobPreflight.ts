/**
 * A reconstruct job's checks at submission: the reconstruction's own preflight (what `reconstruct --dry-run`
 * checks: the model folder and its img2img plan, the NSD data, the decoders' memory, the run folder), so a config the
 * job would refuse when it starts is a 400 listing every problem, before the job is queued and before anything is
 * written (run.json, the batch's plan, the extraction cache). The rules stay the pipeline's own; nothing is
 * duplicated here.
 */
import { existsSync } from 'node:fs';

import { PreflightError } from '../../pipeline/errors.js';
import { preflight } from '../../pipeline/preflight.js';
import type { ReconstructConfig } from '../../pipeline/config.js';

/** A run folder of another config, in the service's words (the CLI's say --out and --force). */
export const SERVICE_FOLDER_REMEDY = 'choose another body.config.out, or submit with "force": true to replace them (files of yours there stay)';

/**
 * The preflight's problems for `config`, each prefixed with `body.config: `, or none. `elsewhere`: the job may run on
 * another machine (Redis workers), which may see an NSD root or model folder this one does not: those are left to
 * the job, as `batch submit` leaves them. A failure that is not the preflight's verdict is the job's to report.
 */
export async function reconstructPreflightProblems(config: ReconstructConfig, force: boolean, elsewhere: boolean): Promise<string[]> {
  if (elsewhere && (!existsSync(config.nsd.root) || !existsSync(config.model.dir))) return [];
  try {
    await preflight(config, { force, remedy: SERVICE_FOLDER_REMEDY });
    return [];
  } catch (e) {
    if (e instanceof PreflightError) return e.problems.map((p) => `body.config: ${p}`);
    return [];
  }
}
