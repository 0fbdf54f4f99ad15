/**
 * What a client is told about a failure. brainlatent's own errors name the file, the field and what was expected,
 * and are passed on; anything that could quote a file's contents (a JSON parser's excerpt, a foreign library's
 * message) is reduced to its kind, and the full error goes to the server's log only.
 */
import { BrainlatentError, type OutOfMemoryReason } from '../errors.js';

export interface PublicError {
  /** The error's class (ShapeError, RequestValidationError, ...). */
  name: string;
  /**
   * The kind of failure, for a client to branch on: a brainlatent error's own `.code` (ShapeMismatch,
   * InvalidArgument, NonFinite, ...), the same an embedder catching it in-process reads; a system error's errno
   * code (ENOENT); else the class's name. Optional so that one built by hand stays valid (sendError then uses `name`).
   */
  code?: string;
  message: string;
  /** Every problem of an invalid config or body, one per line, each naming the field. */
  problems?: string[];
  /**
   * An OutOfMemory's reason (code 'OutOfMemory' only): 'budget' when a memory budget refused the work (the same
   * request fails again: raise the budget or shrink the work), 'allocation' when the machine could not provide the
   * memory (may succeed later).
   */
  reason?: OutOfMemoryReason;
}

const MAX_MESSAGE = 2000;

/** Node's system errors (ENOENT, EACCES, ...) carry a code and a path, never file contents. */
const isSystemError = (e: Error) => typeof (e as NodeJS.ErrnoException).code === 'string' && /^E[A-Z]+$/.test((e as NodeJS.ErrnoException).code!) && typeof (e as NodeJS.ErrnoException).syscall === 'string';

/** Drops characters a terminal or a page could misread and caps the length. */
function clean(text: string): string {
  // eslint-disable-next-line no-control-regex
  const t = text.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '?');
  return t.length > MAX_MESSAGE ? `${t.slice(0, MAX_MESSAGE)}…` : t;
}

/** An OutOfMemory's reason (an OutOfMemoryError's, or one a job's process reported, JobFailedError's), else none. */
function oomReason(e: BrainlatentError): { reason?: OutOfMemoryReason } {
  const reason = (e as { reason?: unknown }).reason;
  return e.code === 'OutOfMemory' && (reason === 'budget' || reason === 'allocation') ? { reason } : {};
}

export function publicError(e: unknown): PublicError {
  if (e instanceof BrainlatentError) {
    const problems = (e as { problems?: unknown }).problems;
    return { name: e.name, code: e.code, message: clean(e.message), ...(Array.isArray(problems) ? { problems: problems.map((p) => clean(String(p))) } : {}), ...oomReason(e) };
  }
  if (e instanceof Error && isSystemError(e)) return { name: 'SystemError', code: (e as NodeJS.ErrnoException).code, message: clean(e.message) };
  // JSON.parse and most foreign parsers quote the text they choke on: say only what failed.
  if (e instanceof SyntaxError) return { name: 'FormatError', code: 'FormatError', message: 'a file or body could not be parsed (its contents are not shown; see the server log)' };
  const name = e instanceof Error ? e.name : 'Error';
  return { name, code: name, message: `${name}: internal error (details in the server log)` };
}

/** `e` with `show` applied to its message and problems (the server's paths made root-relative). */
export function shownWith(e: PublicError, show: (text: string) => string): PublicError {
  return { ...e, message: show(e.message), ...(e.problems ? { problems: e.problems.map(show) } : {}) };
}

/**
 * `value` (a job's result: its summary's reasons and warnings, nested errors) with `show` applied to every string in
 * it, at any depth, keys included: a failed batch's reasons name the server's run folders and inputs.
 */
export function shownDeep<T>(value: T, show: (text: string) => string): T {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return show(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [show(k), walk(x)]));
    return v;
  };
  return walk(value) as T;
}
