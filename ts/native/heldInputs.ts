/**
 * The arrays an async engine job reads in place, kept where the job can read them until it settles. The engine holds
 * the JS objects it was handed (native/addon/kit.cpp, JobOptions.keep) but reads a raw pointer taken at the call, and
 * Node-API cannot pin an ArrayBuffer's memory: a buffer transferred mid-job (postMessage or structuredClone with a
 * transfer list) was detached and freed under the engine's thread (SIGSEGV, reviewer s24-R5), and a resizable one
 * shrunk by resize() would be the same. So every ArrayBuffer under a job's arguments is marked untransferable, as
 * Node marks its own Buffer pool (Node 20: a transfer list then copies it instead of detaching it; Node ≥ 21: a
 * transfer list naming it throws a DataCloneError; Node's documentation says ArrayBuffer.prototype.transfer() is refused
 * on it from Node 26 on), and an array over a resizable ArrayBuffer is handed over as a copy. What still detaches a
 * marked buffer (a web stream's BYOB read: Node 20.20's moved one; another addon's napi_detach_arraybuffer; a
 * WebAssembly.Memory grown under a view; transfer() on Node 22–25) is caught when the job settles: the call rejects
 * instead of returning what it read (the memory moves with the detached buffer, and once that one is collected a
 * read can still crash: this check cannot prevent it). A SharedArrayBuffer cannot be detached or shrunk and is left
 * as it is. (Copying the inputs instead would leave them
 * the caller's to move, but a fit's X and Y are gigabytes: marking costs nothing.)
 */
import { markAsUntransferable } from 'node:worker_threads';

import { InvalidArgumentError } from '../errors.js';

/** Arrays the engine fills for a call and hands back at the end (nobody else holds them meanwhile): not marked. */
const engineOutputs = new WeakSet<ArrayBufferView>();

/** Registers `a`, an output array created for one engine call, as the engine's own until the call returns it. */
export function engineOutput<T extends ArrayBufferView>(a: T): T {
  engineOutputs.add(a);
  return a;
}

/** Arguments nested deeper than this are not arrays the engine reads (options objects hold them one or two levels down). */
const MAX_DEPTH = 4;

/** A job's arguments with their arrays held, and the check that none was detached while the job ran. */
export interface HeldInputs {
  args: unknown[];
  /** Throws when an array the job read in place was detached (emptied) before the job settled. */
  checkAttached(what: string): void;
}

/** Marks the ArrayBuffers under `args` untransferable (copying resizable ones) and remembers their sizes. */
export function holdInputs(args: unknown[]): HeldInputs {
  const held: { view: ArrayBufferView; bytes: number }[] = [];
  const visit = (v: unknown, depth: number): unknown => {
    if (ArrayBuffer.isView(v)) return holdView(v, held);
    if (v instanceof ArrayBuffer) {
      markAsUntransferable(v);
      return v;
    }
    if (depth >= MAX_DEPTH || typeof v !== 'object' || v === null) return v;
    if (Array.isArray(v)) {
      const out = v.map((e) => visit(e, depth + 1));
      return out.some((e, i) => e !== v[i]) ? out : v;
    }
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto !== Object.prototype && proto !== null) return v; // (a handle, a token: the engine's own objects)
    let changed: Record<string, unknown> | undefined;
    for (const [k, e] of Object.entries(v)) {
      const h = visit(e, depth + 1);
      if (h !== e) (changed ??= { ...(v as Record<string, unknown>) })[k] = h;
    }
    return changed ?? v;
  };
  const out = args.map((a) => visit(a, 0));
  return {
    args: out,
    checkAttached(what) {
      for (const { view, bytes } of held) {
        if (bytes > 0 && view.byteLength === 0) {
          throw new InvalidArgumentError(
            `${what}: an input array's ArrayBuffer (${bytes} bytes) was detached while the engine read it in place ` +
              '(transferred, or detached by an addon): the result is not valid. Detach nothing handed to the engine until its call settles.',
          );
        }
      }
    },
  };
}

function holdView(v: ArrayBufferView, held: { view: ArrayBufferView; bytes: number }[]): ArrayBufferView {
  if (engineOutputs.has(v)) return v;
  const buffer = v.buffer;
  if (isShared(buffer)) return v;
  if ((buffer as ArrayBuffer & { resizable?: boolean }).resizable) {
    // (resize() could shrink it under the engine: the engine reads a fixed-length copy instead)
    const copy = new ArrayBuffer(v.byteLength);
    new Uint8Array(copy).set(new Uint8Array(buffer, v.byteOffset, v.byteLength));
    markAsUntransferable(copy);
    const Ctor = v.constructor as new (b: ArrayBuffer, offset: number, length: number) => ArrayBufferView;
    const length = v instanceof DataView ? v.byteLength : (v as unknown as { length: number }).length;
    const fixed = new Ctor(copy, 0, length);
    held.push({ view: fixed, bytes: fixed.byteLength });
    return fixed;
  }
  markAsUntransferable(buffer);
  held.push({ view: v, bytes: v.byteLength });
  return v;
}

function isShared(b: ArrayBufferLike): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && b instanceof SharedArrayBuffer;
}
