/** Named error classes. Every message names the input, what arrived and what was expected. */
// (Error's options are written out as `{ cause?: unknown }`: that is lib es2022's ErrorOptions, which the typings of a
// consumer whose project stops at lib ES2020 or ES2021 could not find)

export class BrainlatentError extends Error {
  readonly code: string;
  constructor(message: string, code = 'BrainlatentError', options?: { cause?: unknown }) {
    super(message, options);
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

/**
 * An environment variable whose value the library cannot use (BRAINLATENT_GUNZIP=pigz). It concerns the process, not
 * one call's inputs: a command's checks do not file it under one of its flags, and a service answers it with a 500.
 */
export class EnvironmentError extends BrainlatentError {
  /** The variable, e.g. 'BRAINLATENT_GUNZIP'. */
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(message, 'InvalidEnvironment');
    this.variable = variable;
  }
}

/** NaN or Inf where finite numbers are required. */
export class NonFiniteError extends BrainlatentError {
  constructor(message: string) {
    super(message, 'NonFinite');
  }
}

/** Where in a file a FormatError or LimitError arose: the file, and the header field or part at fault. */
export interface FileErrorDetail {
  path?: string;
  field?: string;
}

/** A file that cannot be read as the format it claims to be (truncated, inconsistent, trailing bytes, ...). */
export class FormatError extends BrainlatentError {
  readonly path?: string;
  readonly field?: string;
  constructor(message: string, detail: FileErrorDetail = {}) {
    super(message, 'FormatError');
    this.path = detail.path;
    this.field = detail.field;
  }
}

/**
 * A file or folder that is there but cannot be read or written for a reason of the system's, not of what it holds:
 * permission denied (EACCES, EPERM), an I/O error (EIO), too many open files (EMFILE), a full disk (ENOSPC). `errno`
 * is the system's code: the same file may read for another user, or later; nothing about it is wrong.
 */
export class FileAccessError extends BrainlatentError {
  readonly errno: string;
  readonly path?: string;
  constructor(message: string, errno: string, detail: { path?: string } = {}, options?: { cause?: unknown }) {
    super(message, 'FileAccess', options);
    this.errno = errno;
    this.path = detail.path;
  }
}

/** A well-formed input beyond a safety limit (image pixels, header size); the message says how to raise it. */
export class LimitError extends BrainlatentError {
  readonly path?: string;
  readonly field?: string;
  constructor(message: string, detail: FileErrorDetail = {}) {
    super(message, 'LimitExceeded');
    this.path = detail.path;
    this.field = detail.field;
  }
}

/** An output folder another live process is using (a run folder's lock); `holder` says who. */
export class LockedError extends BrainlatentError {
  readonly holder: { pid: number; host: string; command: string; startedAt: string } | null;
  constructor(message: string, holder: { pid: number; host: string; command: string; startedAt: string } | null) {
    super(message, 'Locked');
    this.holder = holder;
  }
}

/** The engine was built without a requested backend (e.g. CUDA). */
export class BackendUnavailableError extends BrainlatentError {
  constructor(message: string) {
    super(message, 'BackendUnavailable');
  }
}

/**
 * Why an OutOfMemoryError arose, which decides whether trying again can help:
 * - `'budget'`: a memory budget (memoryBudget, --memory, a backend's limit) refused the plan or an allocation past
 *   it. Deterministic: the same work under the same budget is refused again (raise the budget or shrink the work).
 * - `'allocation'`: the machine or device could not provide the memory (the allocator, CUDA, a large JS buffer).
 *   Transient: the same work may succeed at another time or on another machine.
 */
export type OutOfMemoryReason = 'budget' | 'allocation';

/** The work needs more memory than its budget (memoryBudget, --memory) or the machine allows; `reason` says which. */
export class OutOfMemoryError extends BrainlatentError {
  /** 'budget' (refused by a budget: retrying cannot help) or 'allocation' (the allocator failed: may pass later). */
  readonly reason: OutOfMemoryReason;
  /** `reason` defaults to 'allocation' when unknown (the retryable kind: a refusal retried costs one retry). */
  constructor(message: string, reason: OutOfMemoryReason = 'allocation') {
    super(message, 'OutOfMemory');
    this.reason = reason;
  }
}

/**
 * Work stopped because an AbortSignal fired. An engine call's (a fit, a prediction, sampling: every async call that
 * takes a `signal`, and sync predict given an aborted one) carries the signal's reason as its `cause`: what was passed
 * to `abort(reason)`, or the DOMException Node makes without one (`name` 'AbortError', or 'TimeoutError' for
 * `AbortSignal.timeout`), so that a caller can tell its own abort from a timeout.
 */
export class CancelledError extends BrainlatentError {
  constructor(message = 'cancelled', options?: { cause?: unknown }) {
    super(message, 'Cancelled', options);
  }
}

/** An input file or folder that should exist and does not (a session's betas, a mask, the design file). */
export class MissingFileError extends BrainlatentError {
  constructor(message: string) {
    super(message, 'MissingFile');
  }
}

/**
 * A package that only some features need (an optional or peer dependency, see ts/optionalDependencies.ts) is not
 * installed: `npm install brainlatent --omit=optional` leaves them out. The message names the feature and gives
 * the exact install command, with package.json's pins.
 */
export class MissingDependencyError extends BrainlatentError {
  /** The packages that are missing. */
  readonly packages: string[];
  /** What needed them (`brainlatent serve`, `report charts`, …). */
  readonly feature: string;
  /** The command that installs them: `npm install bullmq@6.7.0 ioredis@6.0.0`. */
  readonly install: string;
  constructor(packages: string[], feature: string, install: string) {
    const list = packages.length === 1 ? packages[0] : `${packages.slice(0, -1).join(', ')} and ${packages[packages.length - 1]}`;
    super(`${feature} needs ${list}, which ${packages.length === 1 ? 'is' : 'are'} not installed (optional dependencies of brainlatent): ${install}`, 'MissingDependency');
    this.packages = packages;
    this.feature = feature;
    this.install = install;
  }
}
