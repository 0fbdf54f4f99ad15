/**
 * A thread of PredictPool: loads ridge models into shared memory, holds the models' arrays (never copied per
 * thread), runs the engine's ridge predict on request, and decodes large request bodies (requestBodies.ts), so the
 * service's event loop never waits on a file, a GEMM, a JSON parse or a NaN scan. Arrays go back moved, not copied: the event loop never pays for
 * their bytes.
 */
import { parentPort, type Transferable } from 'node:worker_threads';

import { nativeSync } from '../../native/call.js';
import { predictionArray } from '../../ridge/predictionArray.js';
import { RidgeModel } from '../../ridge/RidgeModel.js';
import type { PoolMessage, PoolReply, SharedRidge, WireError } from './predictPool.js';
import { decodeLargeBody, joinSegments, type DecodedBody } from './requestBodies.js';

const models = new Map<string, SharedRidge>();
const port = parentPort!;

function shared(a: Float32Array): Float32Array {
  const s = new Float32Array(new SharedArrayBuffer(a.byteLength));
  s.set(a);
  return s;
}

/** The ridge model at `path`, read and checked, its arrays in shared memory. */
async function loadShared(path: string): Promise<SharedRidge> {
  const m = await RidgeModel.load(path);
  return { coef: shared(m.coef.data), intercept: shared(m.intercept), xMean: shared(m.xMean), xScale: shared(m.xScale), features: m.nFeatures, targets: m.nTargets };
}

/** `a` if it owns its whole buffer (it can be moved), else a copy that does. */
function movable(a: Float32Array): Float32Array {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && !(a.buffer instanceof SharedArrayBuffer) ? a : new Float32Array(a);
}

function decoded(d: DecodedBody): { value: DecodedBody; transfer: Transferable[] } {
  if (d.kind === 'matrix') {
    const data = movable(d.x.data);
    return { value: { kind: 'matrix', x: { ...d.x, data } }, transfer: [data.buffer as ArrayBuffer] };
  }
  const transfer: Transferable[] = [];
  const move = <T extends { data: Float32Array }>(t: T): T => {
    const data = movable(t.data);
    transfer.push(data.buffer as ArrayBuffer);
    return { ...t, data };
  };
  const { z, c, uncond, settings } = d.input;
  return { value: { kind: 'img2img', input: { settings, z: move(z), c: move(c), ...(uncond ? { uncond: move(uncond) } : {}) } }, transfer };
}

const wire = (e: unknown): WireError => {
  const x = e as Error & { code?: string; problems?: string[] };
  const syscall = (e as NodeJS.ErrnoException).syscall;
  return { name: x.name, message: x.message, code: x.code, ...(syscall ? { syscall } : {}), ...(Array.isArray(x.problems) ? { problems: x.problems } : {}) };
};

port.on('message', (m: PoolMessage) => {
  if (m.type === 'model') models.set(m.key, m.model);
  else if (m.type === 'drop') models.delete(m.key);
  else if (m.type === 'load') {
    loadShared(m.path).then(
      (model) => {
        models.set(m.key, model);
        port.postMessage({ id: m.id, loaded: model } satisfies PoolReply);
      },
      (e: unknown) => port.postMessage({ id: m.id, error: wire(e) } satisfies PoolReply),
    );
  } else if (m.type === 'predict') {
    const model = models.get(m.key);
    try {
      if (!model) throw new Error(`model ${m.key} is not loaded in this thread`);
      // (an array of V8's, filled in place: moved to the event loop's thread without a copy)
      const y = predictionArray(m.rows, model.targets, 'predict');
      nativeSync((b) => b.ridgePredict(m.x, m.rows, m.cols, model.coef, model.targets, model.intercept, model.xMean, model.xScale, y));
      port.postMessage({ id: m.id, y } satisfies PoolReply, [y.buffer as ArrayBuffer]);
    } catch (e) {
      port.postMessage({ id: m.id, error: wire(e) } satisfies PoolReply);
    }
  } else {
    try {
      const { value, transfer } = decoded(decodeLargeBody(m.kind, joinSegments(m.segments, m.length), m.keys));
      port.postMessage({ id: m.id, decoded: value } satisfies PoolReply, transfer);
    } catch (e) {
      port.postMessage({ id: m.id, error: wire(e) } satisfies PoolReply);
    }
  }
});
