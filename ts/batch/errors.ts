/** Which failures are worth retrying: broken inputs fail at once, anything else (I/O, a lost worker) is retried. */
import { BrainlatentError, OutOfMemoryError, type OutOfMemoryReason } from '../errors.js';

/** Error classes that say the inputs are wrong: running again cannot help. */
const INPUT_ERRORS = new Set([
  'ConfigError',
  'PreflightError',
  'ManifestError',
  'FormatError',
  'ShapeError',
  'MissingFileError',
  'InvalidArgumentError',
  'NonFiniteError',
  'BackendUnavailableError',
  'CancelledError',
]);

/**
 * True when the error comes from the inputs (or a cancellation), so the job must not be retried. An
 * OutOfMemoryError is one when a memory budget refused the work (reason 'budget', ridge.memoryBudget below a fit's
 * fixed footprint say: the same budget is refused again); a failed allocation (reason 'allocation') is transient and
 * retried (another time, or another worker's machine, may have the memory).
 */
export function isInputError(e: unknown): boolean {
  if (e instanceof OutOfMemoryError) return e.reason === 'budget';
  return e instanceof BrainlatentError && INPUT_ERRORS.has(e.name);
}

/** An error as it crosses a process boundary. */
export interface SerializedError {
  name: string;
  message: string;
  input: boolean;
  /** An OutOfMemoryError's reason ('budget' | 'allocation'); absent for any other error. */
  reason?: OutOfMemoryReason;
  stack?: string;
}

export function serializeError(e: unknown): SerializedError {
  const err = e instanceof Error ? e : new Error(String(e));
  const reason = e instanceof OutOfMemoryError ? { reason: e.reason } : {};
  return { name: err.name, message: err.message, input: isInputError(e), ...reason, stack: err.stack };
}

/** A batch that cannot be run as asked (a conflicting earlier batch, a bad option). */
export class BatchError extends BrainlatentError {
  constructor(message: string) {
    super(message, 'BatchError');
  }
}

/** The Redis of the queues does not answer: nothing was submitted, read or changed. */
export class RedisUnreachableError extends BrainlatentError {
  constructor(
    message: string,
    /** The URL as shown (without its password). */
    readonly url: string,
  ) {
    super(message, 'RedisUnreachable');
  }
}
