import {
  BrainlatentError,
  CancelledError,
  InvalidArgumentError,
  NonFiniteError,
  ShapeError,
} from '../errors.js';

/** Turns an error thrown by the addon into the named TS class for its code, keeping the caller's stack. */
export function fromNative(err: unknown, callerStack?: string): Error {
  if (!(err instanceof Error)) return new BrainlatentError(String(err));
  const code = (err as Error & { code?: string }).code;
  let out: Error;
  switch (code) {
    case 'ShapeMismatch': out = new ShapeError(err.message); break;
    case 'InvalidArgument': out = new InvalidArgumentError(err.message); break;
    case 'NonFinite': out = new NonFiniteError(err.message); break;
    case 'Cancelled': out = new CancelledError(err.message); break;
    case undefined: out = err instanceof RangeError ? new InvalidArgumentError(err.message) : err; break;
    default: out = new BrainlatentError(err.message, code);
  }
  if (callerStack && out !== err) out.stack = `${out.name}: ${out.message}\n${callerStack.split('\n').slice(1).join('\n')}`;
  return out;
}
