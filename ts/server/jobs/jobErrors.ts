/** A job that ended with a failure but still has a result to show (a batch in which some subjects failed). */
import { BrainlatentError } from '../../errors.js';

export class JobOutcomeError extends BrainlatentError {
  readonly result: Record<string, unknown>;
  constructor(message: string, result: Record<string, unknown>) {
    super(message, 'JobFailed');
    this.result = result;
  }
}

/** DELETE of a job that has already ended: nothing to cancel (409, with its state). */
export class JobFinishedError extends BrainlatentError {
  readonly fields: { id: string; state: string };
  constructor(id: string, state: string) {
    super(`job '${id}' has already ended (${state}): there is nothing to cancel`, 'JobFinished');
    this.fields = { id, state };
  }
}
