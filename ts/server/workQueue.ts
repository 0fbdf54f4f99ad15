/**
 * Bounded concurrency with a bounded queue, for the request-time compute routes (predict, img2img): at most
 * `concurrency` tasks run, at most `maxQueued` wait, and a task beyond that is refused at once with a
 * QueueFullError that says when to retry (from the recent service time), so overload turns into 503s with
 * Retry-After instead of unbounded memory and latency. A waiting task whose signal aborts (its client went away)
 * leaves the queue at once, so it does not hold a place that a live client is refused for.
 */
import { BrainlatentError, CancelledError } from '../errors.js';

export class QueueFullError extends BrainlatentError {
  /** Seconds after which a retry has a fair chance. */
  readonly retryAfter: number;
  constructor(what: string, retryAfter: number) {
    super(`${what}: every worker is busy and the queue is full; retry after ${retryAfter} s`, 'QueueFull');
    this.retryAfter = retryAfter;
  }
}

export class ClosedError extends BrainlatentError {
  constructor(what: string) {
    super(`${what}: the service is shutting down`, 'ShuttingDown');
  }
}

export class WorkQueue {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private closed = false;
  /** Exponential moving average of a task's seconds, for Retry-After. */
  private meanSeconds = 0.05;
  private idleWaiters: (() => void)[] = [];

  constructor(
    readonly name: string,
    readonly concurrency: number,
    readonly maxQueued: number,
  ) {
    if (!(Number.isInteger(concurrency) && concurrency >= 1)) throw new RangeError(`${name}: concurrency must be a positive integer, got ${concurrency}`);
    if (!(Number.isInteger(maxQueued) && maxQueued >= 0)) throw new RangeError(`${name}: maxQueued must be a non-negative integer, got ${maxQueued}`);
  }

  get active(): number {
    return this.running;
  }
  get queued(): number {
    return this.waiting.length;
  }

  /** Seconds until a queue slot frees up at the recent pace (at least 1). */
  retryAfter(): number {
    return Math.max(1, Math.ceil(((this.waiting.length + 1) * this.meanSeconds) / this.concurrency));
  }

  /**
   * Runs `task` when a slot is free; throws QueueFullError at once when the queue is full, and CancelledError when
   * `signal` aborts before the task starts (a waiting task leaves the queue then; a running one is the task's to stop).
   */
  async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.closed) throw new ClosedError(this.name);
    if (signal?.aborted) throw cancelledWhileQueued(this.name, signal);
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.maxQueued) throw new QueueFullError(this.name, this.retryAfter());
      await this.slot(signal);
    } else {
      this.running++;
    }
    const t0 = performance.now();
    let completed = false;
    try {
      const out = await task();
      completed = true;
      return out;
    } finally {
      // only a task that ran to its end says how long one takes: a cancelled or refused one (a 400 from inside the
      // task) ends early and would pull Retry-After down
      if (completed) this.meanSeconds = 0.8 * this.meanSeconds + 0.2 * ((performance.now() - t0) / 1000);
      const next = this.waiting.shift();
      // the slot passes straight to the next waiter (running stays the same), else it frees up
      if (next) next();
      else {
        this.running--;
        if (this.running === 0) for (const w of this.idleWaiters.splice(0)) w();
      }
    }
  }

  /** Waits for a running task to pass its slot on; leaves the queue when `signal` aborts first. */
  private slot(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((go, stop) => {
      const onAbort = () => {
        const i = this.waiting.indexOf(take);
        if (i >= 0) this.waiting.splice(i, 1);
        stop(cancelledWhileQueued(this.name, signal!));
      };
      const take = () => {
        signal?.removeEventListener('abort', onAbort);
        go();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(take);
    });
  }

  /** Refuses new tasks and resolves when the running and queued ones have finished. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.running === 0) return;
    await new Promise<void>((done) => this.idleWaiters.push(done));
  }
}

/** The error of a task whose signal aborted before it started (its place in the queue given up). */
export function cancelledWhileQueued(name: string, signal: AbortSignal): CancelledError {
  return new CancelledError(`${name}: cancelled while queued`, { cause: signal.reason });
}
