/**
 * Everything the routes share: the root folder, the job runner and its board, the loaded models and their
 * compute queues, the metrics, the open event streams, and the limits. Built once per plugin registration.
 */
import os from 'node:os';

import { redisConnection } from '../batch/redis.js';
import { authenticator, type Authenticator } from './auth.js';
import { LocalJobRunner } from './jobs/LocalJobRunner.js';
import type { JobRunner } from './jobs/JobRunner.js';
import { ServiceMetrics } from './metrics.js';
import { ModelRegistry } from './models/ModelRegistry.js';
import { PredictBatcher } from './models/predictBatcher.js';
import { PredictPool } from './models/predictPool.js';
import { RootFolder } from './rootPaths.js';
import { EventStreams } from './sse.js';
import { WorkQueue } from './workQueue.js';

export interface PoolLimits {
  /** Requests computed at once. */
  concurrency?: number;
  /** Requests that may wait; beyond that the route answers 503 with Retry-After. */
  maxQueued?: number;
}

export interface BrainlatentPluginOptions {
  /** Every path a request names must resolve inside this folder (relative paths are taken from it). */
  root: string;
  /** Bearer token required on every route but the health checks. Without one, only loopback clients are answered. */
  token?: string | null;
  /** Runs the jobs (default: in this process, one at a time). */
  runner?: JobRunner;
  /** Jobs of the default runner at once, and how many may wait (default 1 and 100); with `redis`, the job processes
   * this service runs for the shared queue while one of its jobs waits (`workers`, default 1; 0: leave the work to
   * `brainlatent worker` processes). */
  jobs?: PoolLimits & { workers?: number };
  /** Reconstruct, encode and batch jobs through BullMQ on this Redis (redis://host:port/db), shared with
   * `brainlatent worker` processes; /readyz then checks that it answers. Default: this machine's process pool. */
  redis?: string;
  /** Ridge predict: threads (default half the cores, at least 1) and requests waiting (default 256; batched as they wait). */
  predict?: PoolLimits;
  /** img2img requests at once (default 1) and queue (default 4). */
  img2img?: PoolLimits;
  /** Largest JSON body in bytes (default 1 MiB). */
  bodyLimit?: number;
  /** Largest data body (.npy, img2img's base64 arrays) in bytes (default 64 MiB). */
  dataBodyLimit?: number;
  /** At shutdown, how long running jobs may take to finish before they are cancelled (default 30 s). */
  shutdownDeadlineMs?: number;
  /** Serve the web page at the prefix's root (default true). */
  page?: boolean;
  /** Include prom-client's default process metrics (default true). */
  defaultMetrics?: boolean;
  /**
   * Sampling interval of the event-loop lag metrics (nodejs_eventloop_lag_*), in ms (default 10, prom-client's).
   * Each sample is the time between two timer ticks, so it includes this interval, and a stall shorter than it can
   * go unseen: 1 resolves short stalls for 1,000 wake-ups a second.
   */
  eventLoopResolutionMs?: number;
}

export interface ServiceContext {
  root: RootFolder;
  auth: Authenticator;
  runner: JobRunner;
  models: ModelRegistry;
  predictPool: PredictPool;
  predictQueue: PredictBatcher;
  img2imgQueue: WorkQueue;
  metrics: ServiceMetrics;
  streams: EventStreams;
  bodyLimit: number;
  dataBodyLimit: number;
  shutdownDeadlineMs: number;
}

/** The Redis URL, refused at once when it is not one (a service should not start and then fail every job). */
function checkedRedisUrl(url: string): string {
  redisConnection(url);
  return url;
}

const halfTheCores = () => Math.max(1, Math.floor((os.availableParallelism?.() ?? os.cpus().length) / 2));

export function createContext(o: BrainlatentPluginOptions): ServiceContext {
  if (typeof o?.root !== 'string' || o.root.length === 0) throw new TypeError('brainlatentPlugin: options.root (the folder every path must stay inside) is required');
  const root = new RootFolder(o.root);
  const predictThreads = o.predict?.concurrency ?? halfTheCores();
  const predictPool = new PredictPool(predictThreads);
  const predictQueue = new PredictBatcher((key, x) => predictPool.predict(key, x), predictThreads, o.predict?.maxQueued ?? 256);
  const models = new ModelRegistry(predictPool, predictQueue);
  const img2imgQueue = new WorkQueue('img2img', o.img2img?.concurrency ?? 1, o.img2img?.maxQueued ?? 4);
  let metrics: ServiceMetrics | undefined;
  const runner =
    o.runner ??
    new LocalJobRunner({
      cwd: root.path,
      concurrency: o.jobs?.concurrency,
      maxQueued: o.jobs?.maxQueued,
      onUnet: (calls, seconds) => metrics?.unet('job', calls, seconds),
      queue: o.redis ? { redis: checkedRedisUrl(o.redis), workers: o.jobs?.workers ?? 1 } : undefined,
    });
  metrics = new ServiceMetrics(
    {
      queueDepth: () => runner.queueDepth(),
      jobCounts: () => runner.board.counts(),
      pools: () => [predictQueue, img2imgQueue].map((q) => ({ name: q.name, active: q.active, queued: q.queued })),
    },
    { defaultMetrics: o.defaultMetrics, eventLoopResolutionMs: o.eventLoopResolutionMs },
  );
  predictQueue.onBatch = (rows) => metrics!.predictBatchRows.observe(rows);
  runner.board.onStageTime = (kind, stage, seconds) => metrics!.stageSeconds.observe({ kind, stage }, seconds);
  return {
    root,
    auth: authenticator(o.token ?? null),
    runner,
    models,
    predictPool,
    predictQueue,
    img2imgQueue,
    metrics,
    streams: new EventStreams(),
    bodyLimit: o.bodyLimit ?? 1 << 20,
    dataBodyLimit: o.dataBodyLimit ?? 64 << 20,
    shutdownDeadlineMs: o.shutdownDeadlineMs ?? 30_000,
  };
}

/**
 * Graceful close: running jobs get the deadline (a stream whose job ends meanwhile gets its last event, then
 * `shutdown`), then the other streams end with `shutdown`, then compute pools drain and models unload.
 */
export async function closeContext(ctx: ServiceContext): Promise<void> {
  ctx.streams.shutdown();
  await ctx.runner.close(ctx.shutdownDeadlineMs);
  ctx.streams.endAll();
  await Promise.all([ctx.predictQueue.close(), ctx.img2imgQueue.close()]);
  ctx.models.close();
  await ctx.predictPool.close();
}
