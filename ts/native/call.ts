/**
 * The one way TypeScript calls the native engine. It loads the addon (binding.ts: the only file
 * that touches the .node file, and this the only file that calls it), maps the engine's errors onto
 * the named classes of ts/errors.ts with the caller's stack re-attached (as sharp's is.nativeError
 * does, so a failure points at the user's line, not at this file), and turns an AbortSignal into
 * the engine's cancel token, which every async job accepts.
 */
import { getSystemErrorName } from 'node:util';

import { CancelledError, InvalidArgumentError } from '../errors.js';
import { setLargeArrayAllocator, setLargeFileMapper } from '../io/arrayAllocator.js';
import { setLargeFileWriter } from '../io/atomicWrite.js';
import { describeNumber } from '../ridge/alphas.js';
import type { Binding, CancelToken } from './addonTypes.js';
import { binding } from './binding.js';
import { holdInputs, type HeldInputs } from './heldInputs.js';
import { fromNative } from './nativeError.js';

/** The caller's stack, without the frames of this module. */
function callerStack(above: (...args: never[]) => unknown): string | undefined {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, above);
  return holder.stack;
}

/** Runs a synchronous native call; its errors become the named classes, with the caller's stack. */
export function nativeSync<T>(fn: (b: Binding) => T): T {
  const stack = callerStack(nativeSync);
  try {
    return fn(binding());
  } catch (e) {
    throw fromNative(e, stack);
  }
}

/**
 * Runs an async native job. `fn` starts it with the binding and, when a signal is given, a cancel
 * token to pass on: aborting the signal cancels the token, and the engine stops at its next check
 * (a sampler step, a solver's large operation), or, for a job still waiting for an engine thread,
 * withdraws it at once (rejected as 'cancelled before it started', native/addon/kit.cpp). A signal aborted before the start rejects at once, and
 * one aborted after the engine's last check but before the promise settles rejects it all the same: a
 * cancelled call never resolves. The typed arrays `fn` hands the binding that the engine reads in place on its own thread
 * are held for it (heldInputs.ts: marked untransferable, a resizable one copied; one detached all the same fails the call).
 */
export async function nativeJob<T>(
  what: string,
  fn: (b: Binding, token: CancelToken | undefined) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  const stack = callerStack(nativeJob);
  if (signal !== undefined && !isAbortSignal(signal)) {
    throw withStack(new InvalidArgumentError(`${what} signal: expected an AbortSignal, got ${describeNumber(signal)}`), stack);
  }
  if (signal?.aborted) throw withStack(abortedBeforeStart(what, signal), stack);
  let b: Binding;
  let token: CancelToken | undefined;
  try {
    b = binding();
    token = signal ? b.createCancelToken() : undefined;
  } catch (e) {
    throw fromNative(e, stack);
  }
  const onAbort = (): void => b.cancel(token as CancelToken);
  signal?.addEventListener('abort', onAbort, { once: true });
  const held: HeldInputs[] = [];
  try {
    const result = await fn(holdingInputs(b, held), token);
    for (const h of held) h.checkAttached(what);
    if (signal?.aborted) throw withStack(new CancelledError(`${what}: cancelled`, { cause: signal.reason }), stack);
    return result;
  } catch (e) {
    // a progress/step callback of the caller threw: its own value, as it threw it (not mapped as the engine's)
    if (isCallbackRejection(e)) throw e.brainlatentCallbackError;
    throw withAbortCause(namingTheCall(fromNative(e, stack), what), signal);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * The binding as a job's `fn` sees it: each method's arguments pass through holdInputs (the arrays it reads in place
 * held for the engine) before the call, and `held` collects them for the check when the job settles.
 */
function holdingInputs(b: Binding, held: HeldInputs[]): Binding {
  return new Proxy(b, {
    get(target, key) {
      const v = Reflect.get(target, key) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        const h = holdInputs(String(key), args);
        held.push(h);
        return (v as (...a: unknown[]) => unknown).apply(target, h.args);
      };
    },
  });
}

/** The kit's rejection of a job whose callback threw (native/addon/kit.cpp settle()): the thrown value, wrapped. */
function isCallbackRejection(e: unknown): e is { brainlatentCallbackError: unknown } {
  return typeof e === 'object' && e !== null && !(e instanceof Error) && Object.hasOwn(e, 'brainlatentCallbackError');
}

/** The CancelledError of a call whose signal had aborted before it started; the signal's reason is its `cause`. */
export function abortedBeforeStart(what: string, signal: AbortSignal): CancelledError {
  return new CancelledError(`${what}: aborted before it started`, { cause: signal.reason });
}

/**
 * The kit's rejection of a job withdrawn from the queue or refused at exit (native/addon/kit.cpp withdraw() and submit:
 * `brainlatent.<job>: cancelled before it started (<why>)`, `… not started, the process is exiting`) names the engine's
 * internal job; the caller knows the call it made, so the message names that (`twoWayIdentification: cancelled before it
 * started (…)`, as abortedBeforeStart does for a signal aborted before the call). Other errors pass unchanged.
 */
function namingTheCall(err: Error, what: string): Error {
  if (!(err instanceof CancelledError)) return err;
  const m = /^brainlatent\.\w+: ((?:cancelled before it started|not started)\b.*)$/s.exec(err.message);
  if (!m) return err;
  const engines = err.message;
  err.message = `${what}: ${m[1]}`;
  if (err.stack) err.stack = err.stack.replace(engines, err.message);
  return err;
}

/** The engine's CancelledError (which knows only a flag) with the signal's reason as its `cause`. */
function withAbortCause(err: Error, signal: AbortSignal | undefined): Error {
  if (err instanceof CancelledError && signal?.aborted && !('cause' in err)) {
    Object.defineProperty(err, 'cause', { value: signal.reason, writable: true, configurable: true, enumerable: false });
  }
  return err;
}

/** An AbortSignal (also one of another realm: it has the members a job uses). */
export function isAbortSignal(v: unknown): v is AbortSignal {
  if (v instanceof AbortSignal) return true;
  const s = v as AbortSignal | null;
  return typeof s === 'object' && s !== null && typeof s.aborted === 'boolean' && typeof s.addEventListener === 'function' && typeof s.removeEventListener === 'function';
}

function withStack(err: Error, stack: string | undefined): Error {
  if (stack) err.stack = `${err.name}: ${err.message}\n${stack.split('\n').slice(1).join('\n')}`;
  return err;
}

/**
 * From now on the .npy readers put large arrays in the engine's huge-page memory (ts/io/arrayAllocator.ts), which
 * a fit then reads in place; commands that hand large inputs to the engine call it first. False, and plain
 * ArrayBuffers, when the engine cannot be loaded (the command's engine call reports why).
 */
export function useEngineArrayAllocator(): boolean {
  const b = loadableBinding();
  if (!b) return false;
  setLargeArrayAllocator((bytes) => b.allocLargeBuffer(bytes, false));
  return true;
}

/** The binding, or undefined when the engine cannot be loaded (for optional speed-ups that fall back). */
function loadableBinding(): Binding | undefined {
  try {
    return binding();
  } catch {
    return undefined;
  }
}

/**
 * From now on the .npy readers map large arrays of the file's byte order straight from the file (copy-on-write,
 * ts/io/arrayAllocator.ts `mapFileRange`) instead of copying them into fresh memory, where 4 KiB page faults are
 * cheap: there reading the medium ridge bench's 64 MB of X and Y into fresh pages took 46–68 ms, mapping them ~1 ms
 * (the fit's first pass over them ~8 ms more). Where they are expensive the engine uses huge pages
 * (`buildInfo().hugePages`) and the readers keep reading into them: touching a mapping's 4 KiB pages took 16–28 ms
 * per 32 MB there, reading into huge pages 10–20 ms. For commands whose inputs are not rewritten while they run (a
 * file that shrinks under a mapping is SIGBUS when read: the engine then ends the process with a line saying so,
 * `explain_sigbus_on_mapped_inputs`). False where nothing is mapped: huge pages, no engine,
 * Windows.
 */
export function useEngineFileMapping(): boolean {
  if (process.platform === 'win32') return false;
  const b = loadableBinding();
  const map = b?.mapFile;
  if (typeof map !== 'function' || b?.buildInfo().hugePages) return false;
  setLargeFileMapper((fd, offset, bytes) => map.call(b, fd, offset, bytes));
  return true;
}

/**
 * From now on large outputs (a model, predictions: 16 MiB and up) go to disk through the engine's write-through
 * writer (ts/io/atomicWrite.ts `setLargeFileWriter`), which does not fill the page cache. False, and plain writes,
 * when the engine cannot be loaded or predates the writer.
 */
export function useEngineFileWriter(): boolean {
  // (Linux: elsewhere the engine's writer is plain writes, which gain nothing over writev)
  if (process.platform !== 'linux') return false;
  const b = loadableBinding();
  if (typeof b?.writeThrough !== 'function') return false;
  setLargeFileWriter(async (fd, chunks) => {
    const r = await nativeJob('write', (nb) => nb.writeThrough(fd, chunks));
    if (r.errno !== 0) throw systemError(r.errno, r.message);
  });
  return true;
}

/** An Error shaped like Node's fs errors (code 'ENOSPC', errno, syscall 'write') from an errno number. */
function systemError(errno: number, message: string): NodeJS.ErrnoException {
  const code = getSystemErrorName(-errno);
  return Object.assign(new Error(`${code}: ${message.toLowerCase()}, write`), { code, errno: -errno, syscall: 'write' });
}
