/**
 * Bounded concurrency with a bounded queue, for the request-time compute routes (predict, img2img): at most
 * `concurrency` tasks run, at most `maxQueued` wait, and a task beyond that is refused at once with a
 * QueueFullError that says when to retry (from the recent service time), so overload turns into 503s with
 * Retry-After instead of unbounded memory and latency.
 */
import { BrainlatentError } from '../errors.js';

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

  /** Runs `task` when a slot is free; throws QueueFullError at once when the queue is full. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.closed) throw new ClosedError(this.name);
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.maxQueued) throw new QueueFullError(this.name, this.retryAfter());
      await new Promise<void>((go) => this.waiting.push(go));
    } else {
      this.running++;
    }
    const t0 = performance.now();
    try {
      return await task();
    } finally {
      this.meanSeconds = 0.8 * this.meanSeconds + 0.2 * ((performance.now() - t0) / 1000);
      const next = this.waiting.shift();
      // the slot passes straight to the next waiter (running stays the same), else it frees up
      if (next) next();
      else {
        this.running--;
        if (this.running === 0) for (const w of this.idleWaiters.splice(0)) w();
      }
    }
  }

  /** Refuses new tasks and resolves when the running and queued ones have finished. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.running === 0) return;
    await new Promise<void>((done) => this.idleWaiters.push(done));
  }
}
