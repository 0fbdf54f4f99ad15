/** Errors of the reconstruction pipeline. */
import { BrainlatentError } from '../errors.js';

/** A config that does not validate: every problem, one per line. */
export class ConfigError extends BrainlatentError {
  readonly problems: string[];
  constructor(source: string, problems: string[]) {
    super(`${source} is not a valid reconstruction config (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  - ${problems.join('\n  - ')}`, 'ConfigError');
    this.problems = problems;
  }
}

/** Inputs that fail the checks made before any long work (missing folders, empty regions, missing captions, a foreign run folder). */
export class PreflightError extends BrainlatentError {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`cannot start the reconstruction:\n  - ${problems.join('\n  - ')}`, 'PreflightError');
    this.problems = problems;
  }
}
