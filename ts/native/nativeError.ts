import {
  BackendUnavailableError,
  BrainlatentError,
  CancelledError,
  FormatError,
  InvalidArgumentError,
  NonFiniteError,
  OutOfMemoryError,
  type OutOfMemoryReason,
  ShapeError,
} from '../errors.js';

/** The addon's `.reason` on an OutOfMemory ('budget' | 'allocation'); an engine without one: 'allocation'. */
function oomReason(err: Error): OutOfMemoryReason {
  const reason = (err as Error & { reason?: unknown }).reason;
  return reason === 'budget' ? 'budget' : 'allocation';
}

/**
 * Turns an error thrown by the addon into the named TS class for its code (the engine's codes:
 * ShapeMismatch, InvalidArgument, NonFinite, Cancelled, BackendUnavailable, OutOfMemory (with the addon's `.reason`), InvalidModel — a
 * model file ONNX Runtime reports as unparseable, by its status code — as FormatError, and the
 * rest as BrainlatentError with the code), keeping the caller's stack. Errors that are already
 * brainlatent's pass through.
 */
export function fromNative(err: unknown, callerStack?: string): Error {
  if (!(err instanceof Error)) return new BrainlatentError(String(err));
  if (err instanceof BrainlatentError) return err;
  const code = (err as Error & { code?: string }).code;
  let out: Error;
  switch (code) {
    case 'ShapeMismatch': out = new ShapeError(err.message); break;
    case 'InvalidArgument': out = new InvalidArgumentError(err.message); break;
    case 'NonFinite': out = new NonFiniteError(err.message); break;
    case 'Cancelled': out = new CancelledError(err.message); break;
    case 'BackendUnavailable': out = new BackendUnavailableError(err.message); break;
    case 'OutOfMemory': out = new OutOfMemoryError(err.message, oomReason(err)); break;
    case 'InvalidModel': out = new FormatError(err.message); break;
    case undefined:
      out = err instanceof RangeError ? new InvalidArgumentError(err.message) : err;
      break;
    default: out = new BrainlatentError(err.message, code);
  }
  if (callerStack && out !== err) out.stack = `${out.name}: ${out.message}\n${callerStack.split('\n').slice(1).join('\n')}`;
  return out;
}
