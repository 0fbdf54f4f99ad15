/** Named error classes. Every message names the input, what arrived and what was expected. */

export class BrainlatentError extends Error {
  readonly code: string;
  constructor(message: string, code = 'BrainlatentError') {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An array or file whose shape does not match what the operation needs. */
export class ShapeError extends BrainlatentError {
  constructor(message: string) {
    super(message, 'ShapeMismatch');
  }
}

/** A value outside its allowed range or of the wrong type (alpha <= 0, folds > samples, ...). */
export class InvalidArgumentError extends BrainlatentError {
  constructor(message: string) {
    super(message, 'InvalidArgument');
  }
}

/** NaN or Inf where finite numbers are required. */
export class NonFiniteError extends BrainlatentError {
  constructor(message: string) {
    super(message, 'NonFinite');
  }
}

/** A file that cannot be read as the format it claims to be. */
export class FormatError extends BrainlatentError {
  constructor(message: string) {
    super(message, 'FormatError');
  }
}

/** The engine was built without a requested backend (e.g. CUDA). */
export class BackendUnavailableError extends BrainlatentError {
  constructor(message: string) {
    super(message, 'BackendUnavailable');
  }
}

/** Work stopped because an AbortSignal fired. */
export class CancelledError extends BrainlatentError {
  constructor(message = 'cancelled') {
    super(message, 'Cancelled');
  }
}

/** An input file or folder that should exist and does not (a session's betas, a mask, the design file). */
export class MissingFileError extends BrainlatentError {
  constructor(message: string) {
    super(message, 'MissingFile');
  }
}
