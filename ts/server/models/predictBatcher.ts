/**
 * Ridge predict requests batched on the fly. Predicting one sample reads the whole coefficient matrix (32 MB for
 * 2,048 features × 4,096 targets), so its cost is memory traffic, not arithmetic; samples predicted together
 * share that read. Requests are answered at once while a predict thread is free; when every thread is busy
 * they wait, and a thread that frees up takes every waiting request for the oldest one's model (up to
 * `maxRows` samples) as one call and splits the answer. A light load sees no added latency, a heavy one gets
 * the throughput of large batches. At most `maxQueued` requests wait: beyond that QueueFullError (503). A waiting
 * request whose signal aborts (its client went away) leaves the queue (CancelledError); one in a batch already
 * handed to a thread is predicted with it.
 */
import type { Matrix } from '../../matrix.js';
import { cancelledWhileQueued, ClosedError, QueueFullError } from '../workQueue.js';

interface Waiting {
  key: string;
  x: Matrix;
  resolve: (y: Matrix) => void;
  reject: (e: unknown) => void;
  /** Stops listening to the request's signal (when the request leaves the queue for a batch). */
  unlisten: () => void;
}

export type PredictFn = (key: string, x: Matrix) => Promise<Matrix>;

export class PredictBatcher {
  readonly name = 'predict';
  private busy = 0;
  private readonly waiting: Waiting[] = [];
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  /** Moving average of a batch's seconds, for Retry-After. */
  private meanSeconds = 0.01;
  /** Called with the samples of each batch run (for the metrics). */
  onBatch?: (rows: number) => void;

  constructor(
    private readonly predict: PredictFn,
    readonly threads: number,
    readonly maxQueued: number,
    readonly maxRows = 256,
  ) {}

  get active(): number {
    return this.busy;
  }
  get queued(): number {
    return this.waiting.length;
  }

  retryAfter(): number {
    const batches = Math.ceil(this.waiting.length / this.maxRows) + 1;
    return Math.max(1, Math.ceil((batches * this.meanSeconds) / this.threads));
  }

  run(key: string, x: Matrix, signal?: AbortSignal): Promise<Matrix> {
    if (this.closed) return Promise.reject(new ClosedError(this.name));
    if (signal?.aborted) return Promise.reject(cancelledWhileQueued(this.name, signal));
    if (this.busy >= this.threads && this.waiting.length >= this.maxQueued) return Promise.reject(new QueueFullError(this.name, this.retryAfter()));
    return new Promise<Matrix>((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiting.indexOf(w);
        if (i < 0) return;
        this.waiting.splice(i, 1);
        reject(cancelledWhileQueued(this.name, signal!));
        this.pump();
      };
      const w: Waiting = { key, x, resolve, reject, unlisten: () => signal?.removeEventListener('abort', onAbort) };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(w);
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.busy === 0 && this.waiting.length === 0) return;
    await new Promise<void>((done) => this.idleWaiters.push(done));
  }

  private pump(): void {
    while (this.busy < this.threads && this.waiting.length > 0) {
      // the oldest request's model, with every waiting request for it that fits
      const key = this.waiting[0].key;
      const cols = this.waiting[0].x.cols;
      const take: Waiting[] = [];
      let rows = 0;
      for (let i = 0; i < this.waiting.length; ) {
        const w = this.waiting[i];
        if (w.key === key && w.x.cols === cols && (take.length === 0 || rows + w.x.rows <= this.maxRows)) {
          take.push(w);
          w.unlisten();
          rows += w.x.rows;
          this.waiting.splice(i, 1);
        } else i++;
      }
      void this.runBatch(key, cols, rows, take);
    }
    if (this.busy === 0 && this.waiting.length === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  private async runBatch(key: string, cols: number, rows: number, take: Waiting[]): Promise<void> {
    this.busy++;
    const t0 = performance.now();
    let completed = false;
    try {
      let x: Matrix;
      if (take.length === 1) x = take[0].x;
      else {
        const data = new Float32Array(rows * cols);
        let at = 0;
        for (const w of take) {
          data.set(w.x.data.subarray(0, w.x.rows * cols), at * cols);
          at += w.x.rows;
        }
        x = { data, rows, cols };
      }
      const y = await this.predict(key, x);
      completed = true;
      this.onBatch?.(rows);
      let at = 0;
      for (const w of take) {
        w.resolve(take.length === 1 ? y : { data: y.data.slice(at * y.cols, (at + w.x.rows) * y.cols), rows: w.x.rows, cols: y.cols });
        at += w.x.rows;
      }
    } catch (e) {
      for (const w of take) w.reject(e);
    } finally {
      // only a batch predicted to its end says how long one takes (one that failed early would pull Retry-After down)
      if (completed) this.meanSeconds = 0.8 * this.meanSeconds + 0.2 * ((performance.now() - t0) / 1000);
      this.busy--;
      this.pump();
    }
  }
}
