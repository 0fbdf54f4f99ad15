/** A config that does not validate: every problem, one per line, each naming the field. */
import { BrainlatentError } from '../errors.js';

export class ConfigError extends BrainlatentError {
  readonly problems: string[];
  constructor(source: string, problems: string[], what = 'config') {
    super(`${source} is not a valid ${what} (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  - ${problems.join('\n  - ')}`, 'ConfigError');
    this.problems = problems;
  }
}
