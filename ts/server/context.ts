/**
 * Everything the routes share: the root folder, the job runner and its board, the loaded models and their
 * compute queues, the metrics, the open event streams, and the limits. Built once per plugin registration.
 */
import os from 'node:os';

import { hiddenButRoutes } from './answerPaths.js';
import { BodyBudget } from './bodyBudget.js';
import { authenticator, sessionCookieNamer, type Authenticator } from './auth.js';
import { SessionStore } from './sessions.js';
import { LocalJobRunner } from './jobs/LocalJobRunner.js';
import type { JobRunner } from './jobs/JobRunner.js';
import { ServiceMetrics } from './metrics.js';
import { ModelRegistry } from './models/ModelRegistry.js';
import { PredictBatcher } from './models/predictBatcher.js';
import { PredictPool } from './models/predictPool.js';
import { checkPluginOptions, type BrainlatentPluginOptions } from './pluginOptions.js';
import { confineModelsTo } from '../sd/modelRoots.js';
import { RootFolder } from './rootPaths.js';
import { EventStreams } from './sse.js';
import { WorkQueue } from './workQueue.js';

export type { BrainlatentPluginOptions, PoolLimits } from './pluginOptions.js';

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
  /** Largest predictions one predict request may produce, in bytes (ServerPluginOptions.predictionLimit). */
  predictionLimit: number;
  /** Largest latents one img2img request may send, images × height × width (ServerPluginOptions.latentPixelLimit). */
  latentPixelLimit: number;
  /** Request-body bytes in flight, all routes together (ServerPluginOptions.inFlightBodyLimit). */
  bodyBudget: BodyBudget;
  shutdownDeadlineMs: number;
  /** How long a client may move no bytes: a request body that sends nothing, an event stream that reads nothing (ServerPluginOptions.bodyTimeoutMs). */
  bodyTimeoutMs: number;
  /** Jobs run through Redis, possibly on other machines (serve --redis). */
  jobsElsewhere: boolean;
  /** Ends the confinement of model files to the root (confineModelsTo), at close. */
  unconfineModels: () => void;
}

const halfTheCores = () => Math.max(1, Math.floor((os.availableParallelism?.() ?? os.cpus().length) / 2));

/** The options are checked first (an InvalidArgumentError naming the option), before any thread or process starts. */
export function createContext(options: BrainlatentPluginOptions, prefix = ''): ServiceContext {
  const o = checkPluginOptions(options);
  const root = new RootFolder(o.root);
  // a model folder a client names may hold links: its files must lie in the root, links followed. This service's
  // loads, preflights and jobs carry its root themselves (withModelRoots); the process's roots, every service's of
  // the process, are what code run outside them (and the processes forked from here) is held to
  const unconfineModels = confineModelsTo(root.path);
  const predictThreads = o.predict?.concurrency ?? halfTheCores();
  const predictPool = new PredictPool(predictThreads, 8 * (o.dataBodyLimit ?? 64 << 20));
  const predictQueue = new PredictBatcher((key, x) => predictPool.predict(key, x), predictThreads, o.predict?.maxQueued ?? 256);
  // (this service's loads are held to its own root: another service of the process has another)
  const models = new ModelRegistry(predictPool, predictQueue, [root.path], o.maxModels ?? 16);
  const img2imgQueue = new WorkQueue('img2img', o.img2img?.concurrency ?? 1, o.img2img?.maxQueued ?? 4);
  let metrics: ServiceMetrics | undefined;
  const runner =
    o.runner ??
    new LocalJobRunner({
      cwd: root.path,
      concurrency: o.jobs?.concurrency,
      maxQueued: o.jobs?.maxQueued,
      onUnet: (calls, seconds) => metrics?.unet('job', calls, seconds),
      queue: o.redis ? { redis: o.redis, workers: o.jobs?.workers ?? 1 } : undefined,
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
  // a job's error names its files as the API's error answers do (relative to the root; no other server path)
  runner.board.showText = (text) => hiddenButRoutes(text, (t) => root.hidden(t));
  const bodyTimeoutMs = o.bodyTimeoutMs ?? 30_000;
  return {
    root,
    auth: authenticator(o.token ?? null, new SessionStore(o.sessionMaxAgeSeconds), sessionCookieNamer(o.sessionCookieName, prefix)),
    runner,
    models,
    predictPool,
    predictQueue,
    img2imgQueue,
    metrics,
    streams: new EventStreams(bodyTimeoutMs),
    bodyLimit: o.bodyLimit ?? 1 << 20,
    dataBodyLimit: o.dataBodyLimit ?? 64 << 20,
    predictionLimit: o.predictionLimit ?? 2 ** 30,
    latentPixelLimit: o.latentPixelLimit ?? 65_536,
    bodyBudget: new BodyBudget(o.inFlightBodyLimit ?? 4 * (o.dataBodyLimit ?? 64 << 20)),
    shutdownDeadlineMs: o.shutdownDeadlineMs ?? 30_000,
    bodyTimeoutMs,
    jobsElsewhere: o.redis !== undefined,
    unconfineModels,
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
  ctx.unconfineModels();
}
