/** A job that ended with a failure but still has a result to show (a batch in which some subjects failed). */
import { BrainlatentError } from '../../errors.js';

export class JobOutcomeError extends BrainlatentError {
  readonly result: Record<string, unknown>;
  constructor(message: string, result: Record<string, unknown>) {
    super(message, 'JobFailed');
    this.result = result;
  }
}
