/**
 * The service's compute threads: ridge predict off the event loop, loading ridge models, and the decoding of large
 * request bodies. A thread loads and checks a model and copies its arrays once into shared memory, which every
 * thread then reads in place. The arrays go from thread to thread over MessageChannels, never through the event
 * loop's thread: a SharedArrayBuffer's memory is freed only once every thread that has seen it has collected it, and
 * the event loop's heap may go a long while without a collection (the service runs with --no-memory-reducer);
 * each thread collects its own garbage as soon as it drops a model (predictWorker.ts);
 * a request moves X to a thread and the predictions back (moved, not copied). A large body's segments move to a
 * thread, which parses, validates and checks them and moves the arrays back (requestBodies.ts). The predict
 * batcher bounds the predict calls to the pool's size; a task that finds every thread busy waits its turn.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker, type MessagePort, type Transferable } from 'node:worker_threads';

import { FormatError, InvalidArgumentError, LimitError, MissingFileError, NonFiniteError, ShapeError } from '../../errors.js';
import type { Matrix } from '../../matrix.js';
import { packageRoot } from '../../native/binding.js';
import { fromNative } from '../../native/nativeError.js';
import { invalidJsonBody } from '../jsonBodies.js';
import { RequestValidationError } from '../validation.js';
import { cancelledWhileQueued, ClosedError, QueueFullError } from '../workQueue.js';
import type { LargeBody } from './dataBodies.js';
import type { DecodedBody, JsonKeyRules, LargeBodyKind } from './requestBodies.js';

export interface SharedRidge {
  coef: Float32Array;
  intercept: Float32Array;
  xMean: Float32Array;
  xScale: Float32Array;
  features: number;
  targets: number;
}

/** What the event loop's thread knows of a model: its shape (its arrays stay in the predict threads). */
export interface RidgeShape {
  features: number;
  targets: number;
}

/** A model's arrays as they cross from thread to thread. */
export interface ModelGift {
  key: string;
  model: SharedRidge;
}

export type PoolMessage =
  /** The model `key` arrives on `port` (already there when the loader sent it before its reply). */
  | { type: 'model'; key: string; port: MessagePort }
  /** Send the model `key` (held, or on its way here) on `port`. */
  | { type: 'share'; key: string; port: MessagePort }
  | { type: 'drop'; key: string }
  /** Load, then send the model on each of `peers` (one per other thread) before replying. */
  | { type: 'load'; id: number; key: string; path: string; peers: MessagePort[] }
  | { type: 'predict'; id: number; key: string; x: Float32Array; rows: number; cols: number }
  | { type: 'decode'; id: number; kind: LargeBodyKind; segments: ArrayBuffer[]; length: number; keys: JsonKeyRules };

/** An error as it crosses from a thread: enough to raise the same class here. */
export interface WireError {
  name: string;
  message: string;
  code?: string;
  syscall?: string;
  problems?: string[];
}

export type PoolReply =
  | { id: number; loaded: RidgeShape }
  | { id: number; y: Float32Array }
  | { id: number; decoded: DecodedBody }
  | { id: number; error: WireError };

/** The error classes a thread's error comes back as, by name, where the message is all they carry. */
const BY_MESSAGE: Record<string, new (message: string) => Error> = {
  NonFiniteError,
  ShapeError,
  FormatError,
  LimitError,
  MissingFileError,
  InvalidArgumentError,
  SyntaxError,
};

/**
 * The error a thread reported, as the class the routes answer for (a 400 names the field, as on the loop). An
 * engine error of a predict call is mapped as the native layer maps it; any other unknown error stays a plain
 * Error, whose message a client never sees (it may quote a file).
 */
function revived(e: WireError, fromEngine: boolean): Error {
  if (e.name === 'RequestValidationError') return new RequestValidationError('body', e.problems ?? [e.message]);
  if (e.name === 'InvalidJsonBodyError') return invalidJsonBody(e.message);
  const known = Object.hasOwn(BY_MESSAGE, e.name) ? BY_MESSAGE[e.name] : undefined;
  if (known) return new known(e.message);
  // a system error keeps its code and syscall (ENOENT is the client's 400, its path shown, never contents)
  if (e.syscall) return Object.assign(new Error(e.message), { name: e.name, code: e.code, syscall: e.syscall });
  const error = Object.assign(new Error(e.message), { name: e.name, code: e.code });
  return fromEngine ? fromNative(error) : error;
}

/** The compiled worker (dist/server/models/predictWorker.js), also when this module runs from the TypeScript sources. */
function workerPath(): string {
  const here = join(dirname(fileURLToPath(import.meta.url)), 'predictWorker.js');
  return existsSync(here) ? here : join(packageRoot, 'dist', 'server', 'models', 'predictWorker.js');
}

interface Task {
  message: PoolMessage & { id: number };
  transfer: Transferable[];
  resolve: (reply: PoolReply) => void;
  reject: (e: Error) => void;
  /** Stops listening to the request's signal (once a thread has the task). */
  unlisten: () => void;
  onStart?: (thread: Thread) => Transferable[];
}

interface Thread {
  worker: Worker;
  task: Task | null;
}

/** The body bytes a waiting task holds (a decode's; 0 for the others). */
function bytesOf(message: PoolMessage): number {
  return message.type === 'decode' ? message.length : 0;
}

export class PredictPool {
  private readonly models = new Map<string, RidgeShape>();
  private readonly threads: Thread[] = [];
  private readonly waiting: Task[] = [];
  private nextId = 1;
  private decodesStarted = 0;
  /** Bytes of the large bodies waiting for a thread (each holds its body in memory until decoded or dropped). */
  private waitingDecodeBytes = 0;
  private closed = false;

  /**
   * `maxQueuedDecodeBytes`: the most bytes of large bodies that may wait to be decoded; one more is refused with
   * QueueFull (503, Retry-After) instead of held (the service: 8 × its data body limit, 512 MiB by default). One
   * body always may wait, whatever its size.
   */
  constructor(
    readonly size: number,
    readonly maxQueuedDecodeBytes = Infinity,
  ) {
    // one thread now, while the service starts: a thread's start costs the event loop tens of ms
    this.spawn();
  }

  /**
   * Loads the ridge model at `path` in a thread (read, checked, its arrays copied into shared memory there) and
   * makes it available to every thread under `key`; resolves with its shape.
   */
  async loadRidge(key: string, path: string): Promise<RidgeShape> {
    // a channel to each thread but the loader (which one that is is known once a thread takes the task)
    const channels = new Map(this.threads.map((t) => [t, new MessageChannel()]));
    let loader: Thread | undefined;
    const message = { type: 'load' as const, id: this.nextId++, key, path, peers: [] as MessagePort[] };
    const r = await this.run(message, [], undefined, (thread) => {
      loader = thread;
      channels.get(thread)?.port2.close();
      channels.delete(thread);
      message.peers = [...channels.values()].map((c) => c.port1);
      return message.peers;
    }).catch((e: unknown) => {
      for (const c of channels.values()) c.port2.close();
      throw e;
    });
    const shape = (r as { loaded: RidgeShape }).loaded;
    this.models.set(key, shape);
    for (const t of this.threads) {
      if (t === loader) continue;
      const c = channels.get(t);
      if (c) {
        channels.delete(t);
        t.worker.postMessage({ type: 'model', key, port: c.port2 } satisfies PoolMessage, [c.port2]);
      } else this.share(key, t, loader);
    }
    // (the channels of threads gone meanwhile: closing one frees the arrays sent on it)
    for (const c of channels.values()) c.port2.close();
    return shape;
  }

  unregister(key: string): void {
    this.models.delete(key);
    for (const t of this.threads) t.worker.postMessage({ type: 'drop', key } satisfies PoolMessage);
  }

  /** Predictions of the model registered as `key` for X (rows × features). */
  async predict(key: string, x: Matrix): Promise<Matrix> {
    const model = this.models.get(key);
    if (!model) throw new Error(`model ${key} is not registered`);
    // X moves to the thread when it owns its buffer (a request's own array: nothing reads it afterwards)
    const own = x.data.byteOffset === 0 && x.data.byteLength === x.data.buffer.byteLength && !(x.data.buffer instanceof SharedArrayBuffer);
    const r = await this.run({ type: 'predict', id: this.nextId++, key, x: x.data, rows: x.rows, cols: x.cols }, own ? [x.data.buffer as ArrayBuffer] : []);
    return { data: (r as { y: Float32Array }).y, rows: x.rows, cols: model.targets };
  }

  /**
   * A large body's arrays, decoded and checked by a thread (its segments move there). A decode waiting for a thread
   * whose `signal` aborts (its client went away) leaves the queue (CancelledError) and is never started: a client
   * that sends many large bodies and leaves does not keep the threads decoding them.
   */
  async decode(body: LargeBody, signal?: AbortSignal): Promise<DecodedBody> {
    const idle = this.threads.some((t) => t.task === null) || this.threads.length < this.size;
    if (!idle && this.waitingDecodeBytes > 0 && this.waitingDecodeBytes + body.length > this.maxQueuedDecodeBytes) {
      // (a 64 MiB JSON body takes a thread ~0.5 s to decode: a second is a fair wait)
      throw new QueueFullError(`the predict threads' decode queue (${this.waitingDecodeBytes} bytes of bodies waiting, at most ${this.maxQueuedDecodeBytes})`, 1);
    }
    const r = await this.run({ type: 'decode', id: this.nextId++, kind: body.kind, segments: body.segments, length: body.length, keys: body.keys }, body.segments, signal);
    return (r as { decoded: DecodedBody }).decoded;
  }

  /** Decodes handed to a thread so far (those cancelled while queued are not). */
  get decodes(): number {
    return this.decodesStarted;
  }

  /** Tasks waiting for a thread. */
  get queued(): number {
    return this.waiting.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    // every task, waiting or on a thread, is answered (503): a task on a thread that is terminated got no reply, and
    // its request, and the service's close with it, waited for ever (SIGTERM during a model's load)
    for (const t of this.waiting.splice(0)) t.reject(new ClosedError('the predict threads'));
    this.waitingDecodeBytes = 0;
    for (const t of this.threads) {
      t.task?.reject(new ClosedError('the predict threads'));
      t.task = null;
    }
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
    this.threads.length = 0;
  }

  /**
   * `onStart`, if given, is called with the thread that takes the task, as it takes it, and returns more to move
   * with the message.
   */
  private run(message: PoolMessage & { id: number }, transfer: Transferable[], signal?: AbortSignal, onStart?: (thread: Thread) => Transferable[]): Promise<PoolReply> {
    const what = `the predict threads' ${message.type}`;
    // (after close: no thread is started again, which nothing would terminate)
    if (this.closed) return Promise.reject(new ClosedError('the predict threads'));
    if (signal?.aborted) return Promise.reject(cancelledWhileQueued(what, signal));
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiting.indexOf(task);
        if (i < 0) return;
        this.waiting.splice(i, 1);
        this.waitingDecodeBytes -= bytesOf(message);
        reject(cancelledWhileQueued(what, signal!));
      };
      const task: Task = { message, transfer, resolve, reject, unlisten: () => signal?.removeEventListener('abort', onAbort), onStart };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(task);
      this.waitingDecodeBytes += bytesOf(message);
      this.dispatch();
    });
  }

  /** Hands waiting tasks to idle threads, starting threads up to the pool's size. */
  private dispatch(): void {
    while (this.waiting.length > 0) {
      const thread = this.threads.find((t) => t.task === null) ?? (this.threads.length < this.size ? this.spawn() : null);
      if (!thread) return;
      const task = this.waiting.shift()!;
      this.waitingDecodeBytes -= bytesOf(task.message);
      task.unlisten();
      if (task.message.type === 'decode') this.decodesStarted++;
      thread.task = task;
      const more = task.onStart?.(thread) ?? [];
      thread.worker.postMessage(task.message, [...task.transfer, ...more]);
    }
  }

  private spawn(): Thread {
    const worker = new Worker(workerPath());
    worker.unref();
    const thread: Thread = { worker, task: null };
    worker.on('message', (r: PoolReply) => {
      const task = thread.task;
      if (!task || task.message.id !== r.id) return;
      thread.task = null;
      if ('error' in r) task.reject(revived(r.error, task.message.type === 'predict'));
      else task.resolve(r);
      this.dispatch();
    });
    worker.on('error', (e) => {
      thread.task?.reject(e);
      thread.task = null;
      this.threads.splice(this.threads.indexOf(thread), 1);
      this.dispatch();
    });
    // a thread that ends without an error (terminated, or process.exit() in it) fails its task the same way
    worker.on('exit', (code) => {
      const i = this.threads.indexOf(thread);
      if (i < 0) return; // (after 'error', or close())
      thread.task?.reject(this.closed ? new ClosedError('the predict threads') : new Error(`a predict thread ended (exit code ${code}) during its task`));
      thread.task = null;
      this.threads.splice(i, 1);
      if (!this.closed) this.dispatch();
    });
    for (const key of this.models.keys()) this.share(key, thread, this.threads[0]);
    this.threads.push(thread);
    return thread;
  }

  /** Has `from` (a thread that holds the model `key`, or is sent it) send it to `to`, over a channel of their own. */
  private share(key: string, to: Thread, from: Thread | undefined): void {
    if (!from) return;
    const { port1, port2 } = new MessageChannel();
    from.worker.postMessage({ type: 'share', key, port: port1 } satisfies PoolMessage, [port1]);
    to.worker.postMessage({ type: 'model', key, port: port2 } satisfies PoolMessage, [port2]);
  }
}
