/**
 * A thread of PredictPool: loads ridge models into shared memory, holds the models' arrays (never copied per
 * thread), runs the engine's ridge predict on request, and decodes large request bodies (requestBodies.ts), so the
 * service's event loop never waits on a file, a GEMM, a JSON parse or a NaN scan. Arrays go back moved, not copied: the event loop never pays for
 * their bytes. A model's arrays come from the thread that loaded it (or from any thread that holds it, to a thread
 * started later) over a channel of their own, and the thread collects its heap when it drops one.
 */
import { parentPort, receiveMessageOnPort, type MessagePort, type Transferable } from 'node:worker_threads';

import { nativeSync } from '../../native/call.js';
import { predictionArray } from '../../ridge/predictionArray.js';
import { RidgeModel } from '../../ridge/RidgeModel.js';
import type { ModelGift, PoolMessage, PoolReply, SharedRidge, WireError } from './predictPool.js';
import { decodeLargeBody, joinSegments, type DecodedBody } from './requestBodies.js';
import { threadGc } from './threadGc.js';

const models = new Map<string, SharedRidge>();
/** Models on their way from another thread (a predict or a share of one waits for it); a drop marks it `dropped`. */
const arriving = new Map<string, { model: Promise<SharedRidge | undefined>; dropped: boolean }>();
const port = parentPort!;

/**
 * A full collection of this thread's heap (not the event loop's). A dropped model's SharedArrayBuffers are freed
 * only once every thread that held them has collected them, and a thread that only predicts allocates too little
 * to collect on its own (the service runs with --no-memory-reducer): without this, a DELETE freed nothing.
 */
const collect = threadGc();

let collecting: NodeJS.Timeout | undefined;
/** Collects once, shortly: a burst of drops (a replace, a close) costs one collection. */
function collectSoon(): void {
  collecting ??= setTimeout(() => {
    collecting = undefined;
    collect();
  }, 50).unref();
}

/** The model `key`, held or on its way here; undefined when it never came. */
async function modelOf(key: string): Promise<SharedRidge | undefined> {
  return models.get(key) ?? (await arriving.get(key)?.model);
}

/** Takes the model `key` from `from`: at once when it is there (a loader's), else when it arrives. */
function receive(key: string, from: MessagePort): void {
  const now = receiveMessageOnPort(from)?.message as ModelGift | undefined;
  if (now) {
    from.close();
    models.set(key, now.model);
    return;
  }
  const entry = {
    dropped: false,
    model: new Promise<SharedRidge | undefined>((resolve) => {
      from.once('message', (gift: ModelGift) => resolve(gift.model));
      // (the sending thread ended first)
      from.once('close', () => resolve(undefined));
    }).then((model) => {
      from.close();
      arriving.delete(key);
      if (model && !entry.dropped) models.set(key, model);
      return model;
    }),
  };
  arriving.set(key, entry);
}

function drop(key: string): void {
  models.delete(key);
  const on = arriving.get(key);
  if (on) on.dropped = true;
  collectSoon();
}

async function share(key: string, to: MessagePort): Promise<void> {
  const model = await modelOf(key);
  // (the receiving thread closes the channel: closing it here could beat the message there)
  if (model) to.postMessage({ key, model } satisfies ModelGift);
  else to.close();
}

async function predict(m: Extract<PoolMessage, { type: 'predict' }>): Promise<void> {
  const model = await modelOf(m.key);
  try {
    if (!model) throw new Error(`model ${m.key} is not loaded in this thread`);
    // (an array of V8's, filled in place: moved to the event loop's thread without a copy)
    const y = predictionArray(m.rows, model.targets, 'predict');
    nativeSync((b) => b.ridgePredict(m.x, m.rows, m.cols, model.coef, model.targets, model.intercept, model.xMean, model.xScale, y));
    port.postMessage({ id: m.id, y } satisfies PoolReply, [y.buffer as ArrayBuffer]);
  } catch (e) {
    port.postMessage({ id: m.id, error: wire(e) } satisfies PoolReply);
  }
}

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
  if (m.type === 'model') receive(m.key, m.port);
  else if (m.type === 'share') void share(m.key, m.port);
  else if (m.type === 'drop') drop(m.key);
  else if (m.type === 'load') {
    loadShared(m.path).then(
      (model) => {
        models.set(m.key, model);
        // the other threads' copies are on their way before the reply: each finds its copy as it learns of the model
        for (const peer of m.peers) peer.postMessage({ key: m.key, model } satisfies ModelGift);
        // (the file's own arrays, read before the shared copy, are garbage now)
        collectSoon();
        port.postMessage({ id: m.id, loaded: { features: model.features, targets: model.targets } } satisfies PoolReply);
      },
      (e: unknown) => {
        for (const peer of m.peers) peer.close();
        port.postMessage({ id: m.id, error: wire(e) } satisfies PoolReply);
      },
    );
  } else if (m.type === 'predict') void predict(m);
  else {
    try {
      const { value, transfer } = decoded(decodeLargeBody(m.kind, joinSegments(m.segments, m.length), m.keys));
      port.postMessage({ id: m.id, decoded: value } satisfies PoolReply, transfer);
    } catch (e) {
      port.postMessage({ id: m.id, error: wire(e) } satisfies PoolReply);
    }
  }
});
