/**
 * The callbacks and the AbortSignal of a public call's options (onStep, onProgress, onWarning, …, signal), checked
 * at the boundary: a bad one is an InvalidArgumentError naming the call and the option, thrown before anything
 * runs, not a TypeError from the engine or from the first progress report in the middle of a run.
 */
import { InvalidArgumentError } from './errors.js';
import { isAbortSignal } from './native/call.js';
import { describeNumber } from './ridge/alphas.js';

/** `value` is undefined or a function; else an InvalidArgumentError '<what> <name>: expected a function, got …'. */
export function checkCallback(value: unknown, what: string, name: string): void {
  if (value !== undefined && typeof value !== 'function') {
    throw new InvalidArgumentError(`${what} ${name}: expected a function, got ${describeNumber(value)}`);
  }
}

/** `value` is undefined or an AbortSignal; else an InvalidArgumentError '<what> <name>: expected an AbortSignal, got …'. */
export function checkSignalOption(value: unknown, what: string, name = 'signal'): void {
  if (value !== undefined && !isAbortSignal(value)) {
    throw new InvalidArgumentError(`${what} ${name}: expected an AbortSignal, got ${describeNumber(value)}`);
  }
}

/**
 * The control members of an options object: each of `callbacks` undefined or a function, `signal` (when the call
 * takes one) undefined or an AbortSignal. Other keys are left to the call's own checks. A missing or non-object
 * `options` is left to them too (undefined: the defaults).
 */
export function checkControl(options: unknown, what: string, callbacks: readonly string[], signal = true): void {
  if (options === null || typeof options !== 'object') return;
  const o = options as Record<string, unknown>;
  for (const name of callbacks) checkCallback(o[name], what, name);
  if (signal) checkSignalOption(o.signal, what);
}
