/** Errors of the reconstruction pipeline. */
import { BrainlatentError } from '../errors.js';

export { ConfigError } from '../config/errors.js';

/** Inputs that fail the checks made before any long work (missing folders, empty regions, missing captions, a foreign run folder). */
export class PreflightError extends BrainlatentError {
  readonly problems: string[];
  constructor(problems: string[], what = 'the reconstruction') {
    super(`cannot start ${what}:\n  - ${problems.join('\n  - ')}`, 'PreflightError');
    this.problems = problems;
  }
}
