/**
 * The arrays an async engine job reads in place, kept where the job can read them until it settles. The engine holds
 * the JS objects it was handed (native/addon/kit.cpp, JobOptions.keep) but reads a raw pointer taken at the call, and
 * Node-API cannot pin an ArrayBuffer's memory: a buffer transferred mid-job (postMessage or structuredClone with a
 * transfer list) was detached and freed under the engine's thread (SIGSEGV, reviewer s24-R5), and a resizable one
 * shrunk by resize() would be the same. So the ArrayBuffers a job reads in place (IN_PLACE below) are marked untransferable, as
 * Node marks its own Buffer pool (Node 20: a transfer list then copies it instead of detaching it; Node ≥ 21: a
 * transfer list naming it throws a DataCloneError; Node's documentation says ArrayBuffer.prototype.transfer() is refused
 * on it from Node 26 on), and an array over a resizable ArrayBuffer is handed over as a copy. What still detaches a
 * marked buffer (a web stream's BYOB read: Node 20.20's moved one; another addon's napi_detach_arraybuffer; a
 * WebAssembly.Memory grown under a view; transfer() on Node 22–25) is caught when the job settles: the call rejects
 * instead of returning what it read (the memory moves with the detached buffer, and once that one is collected a
 * read can still crash: this check cannot prevent it). A SharedArrayBuffer cannot be detached or shrunk and is left
 * as it is. (Copying the inputs instead would leave them the caller's to move, but a fit's X and Y are gigabytes:
 * marking costs nothing, except that it is for good: a fit's X stays untransferable after the fit.)
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

/**
 * Where a binding method's arguments hold arrays its job reads in place on the engine's thread (native/addon: the
 * arrays a job keeps, JobOptions.keep), as paths into its argument list: a number or a key steps into an argument or
 * an object, '*' into each element or value. Only these are marked: an array the engine copies at the call (a fit's
 * alphas and folds, encodeText's token ids) or only reads during a synchronous call (nativeSync: predict) is left
 * the caller's to move. `checked` arrays are not marked but a detach is still caught when the job settles: the
 * large-file writer's chunks (a model's arrays on save, a user's array handed to writeNpy), which the write reads
 * for tens of milliseconds and nobody afterwards; marking is permanent, and an array saved once could then never be
 * transferred to a worker again. An async binding method missing here is refused: a new job must say what it reads.
 */
type Path = readonly (number | string)[];
const IN_PLACE: Readonly<Record<string, { held: readonly Path[]; checked?: readonly Path[] }>> = {
  ridgeFit: { held: [[0], [3]] },
  ridgeFitMany: { held: [[0, '*', 'x'], [0, '*', 'y']] },
  bandedRidgeFit: { held: [[0], [3]] },
  ridgePredictAsync: { held: [[0], [3], [5], [6], [7], [8]] },
  metricsPixcorr: { held: [[0], [1]] },
  metricsSsim: { held: [[0], [1]] },
  metricsCorrelation: { held: [[0], [2]] },
  metricsPixelCorrelation: { held: [[0], [2]] },
  onnxLoad: { held: [[0, 'bytes']] },
  onnxRun: { held: [[1, '*', 'data']] },
  sdLoad: { held: [[0, 'fromMemory', '*', 'bytes']] },
  sdEncodeText: { held: [] },
  sdEncodeImages: { held: [[1]] },
  sdDecode: { held: [[1]] },
  sdImg2Img: { held: [[1, 'z'], [1, 'cond'], [1, 'uncond'], [1, 'noise'], [1, 'stepNoise']] },
  writeThrough: { held: [], checked: [[1, '*']] },
};

/** A job's arguments with their arrays held, and the check that none was detached while the job ran. */
export interface HeldInputs {
  args: unknown[];
  /** Throws when an array the job read in place was detached (emptied) before the job settled. */
  checkAttached(what: string): void;
}

/**
 * Holds the arrays binding method `method`'s job reads in place (IN_PLACE): marks their ArrayBuffers untransferable
 * (the `checked` ones not), hands over a fixed-length copy of one over a resizable ArrayBuffer, and remembers their
 * sizes. Containers on the way to a copied array are copied; the caller's own are left as they were.
 */
export function holdInputs(method: string, args: unknown[]): HeldInputs {
  const entry = Object.hasOwn(IN_PLACE, method) ? IN_PLACE[method] : undefined;
  if (!entry) throw new Error(`heldInputs: binding method '${method}' has no entry in IN_PLACE (which of its arrays does its job read in place?)`);
  const held: { view: ArrayBufferView; bytes: number }[] = [];
  let out: unknown = args;
  for (const path of entry.held) out = along(out, path, (v) => holdView(v, held, true));
  for (const path of entry.checked ?? []) out = along(out, path, (v) => holdView(v, held, false));
  return {
    args: out as unknown[],
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

/** `v` with `hold` applied to the array(s) at `path` under it; a container whose member changed is a shallow copy. */
function along(v: unknown, path: Path, hold: (a: ArrayBufferView) => ArrayBufferView): unknown {
  if (path.length === 0) return ArrayBuffer.isView(v) ? hold(v) : v;
  if (typeof v !== 'object' || v === null || ArrayBuffer.isView(v)) return v;
  const [step, ...rest] = path;
  if (Array.isArray(v)) {
    const indices = step === '*' ? v.map((_, i) => i) : typeof step === 'number' ? [step] : [];
    let copy: unknown[] | undefined;
    for (const i of indices) {
      const e = along(v[i], rest, hold);
      if (e !== v[i]) (copy ??= [...v])[i] = e;
    }
    return copy ?? v;
  }
  const o = v as Record<string, unknown>;
  const keys = step === '*' ? Object.keys(o) : Object.hasOwn(o, step) ? [String(step)] : [];
  let copy: Record<string, unknown> | undefined;
  for (const k of keys) {
    const e = along(o[k], rest, hold);
    if (e !== o[k]) (copy ??= { ...o })[k] = e;
  }
  return copy ?? v;
}

function holdView(v: ArrayBufferView, held: { view: ArrayBufferView; bytes: number }[], mark: boolean): ArrayBufferView {
  if (engineOutputs.has(v)) return v;
  const buffer = v.buffer;
  if (isShared(buffer)) return v;
  if ((buffer as ArrayBuffer & { resizable?: boolean }).resizable) {
    // (resize() could shrink it under the engine: the engine reads a fixed-length copy instead, nobody else's)
    const fixed = fixedCopy(v);
    held.push({ view: fixed, bytes: fixed.byteLength });
    return fixed;
  }
  if (mark) markAsUntransferable(buffer);
  held.push({ view: v, bytes: v.byteLength });
  return v;
}

/**
 * A copy of `v` over a fresh fixed-length ArrayBuffer, as the built-in view type it is (a Buffer's copy is a
 * Uint8Array: `new Buffer(...)`, which its constructor property is, is deprecated, DEP0005).
 */
function fixedCopy(v: ArrayBufferView): ArrayBufferView {
  const copy = new ArrayBuffer(v.byteLength);
  new Uint8Array(copy).set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  if (v instanceof DataView) return new DataView(copy);
  const tag = (v as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag];
  const Ctor = (globalThis as unknown as Record<string, new (b: ArrayBuffer) => ArrayBufferView>)[tag];
  return new Ctor(copy);
}

function isShared(b: ArrayBufferLike): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && b instanceof SharedArrayBuffer;
}
