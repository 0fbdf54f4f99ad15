/**
 * The plugin's options, checked once when it is registered: every error is an InvalidArgumentError naming the option
 * (`brainlatentPlugin options.predict.concurrency: expected an integer >= 1, got 0`), what arrived and what was
 * expected. An unknown key is refused with the closest known one (`tokens` → "did you mean 'token'?"): a misspelt
 * `token` would otherwise leave the service without one, in silence. Nothing is started before the check passes.
 */
import { statSync } from 'node:fs';

import { MAX_JOB_PROCESSES } from '../batch/pool.js';
import { redisConnection } from '../batch/redis.js';
import { InvalidArgumentError } from '../errors.js';
import { describeNumber } from '../ridge/alphas.js';
import { checkInteger, checkKnownKeys, MAX_TIMER_MS } from '../ridge/options.js';
import { COOKIE_NAME } from './auth.js';
import type { JobRunner } from './jobs/JobRunner.js';
import { MAKE_TOKEN, weakToken, weakTokenMessage } from './tokenStrength.js';

export interface PoolLimits {
  /** Requests computed at once. */
  concurrency?: number;
  /** Requests that may wait; beyond that the route answers 503 with Retry-After. */
  maxQueued?: number;
}

export interface BrainlatentPluginOptions {
  /** Every path a request names must resolve inside this folder (relative paths are taken from it). */
  root: string;
  /**
   * Bearer token required on every route but the health checks. Without one, only loopback clients are answered.
   * At least 16 characters, not one character repeated (refused otherwise): e.g. `openssl rand -hex 32`.
   */
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
  /** Largest body in bytes of every route but predict and img2img (default 1 MiB). */
  bodyLimit?: number;
  /** Largest body in bytes of predict (JSON or .npy: X either way) and img2img (its base64 arrays) (default 64 MiB). */
  dataBodyLimit?: number;
  /**
   * Largest predictions in bytes one predict request may produce, samples × the model's targets × 4 (default 1 GiB):
   * above it the request is refused (413) before it is queued. A small body can ask for a huge answer (70,000 rows of
   * one feature to a 20,000-target model: 5.6 GB; past 4 GiB a predict thread's answer came back truncated).
   */
  predictionLimit?: number;
  /**
   * Largest latents one img2img request may send, images × latent height × latent width (default 65,536: 4 images
   * of 128 × 128 latents, 1024 × 1024 pixels, or 16 of 512 × 512): above it the request is refused (413) before it is
   * queued. The body's limit does not bound the work: a 22 MB body of 1024 × 1024 latents (8192 × 8192 pixels
   * decoded) peaked at 3.3 GB of memory with a tiny model, and a real U-Net's attention grows with the square.
   */
  latentPixelLimit?: number;
  /**
   * Bytes of request bodies this service takes in at once, all routes together (default 4 × dataBodyLimit: 256 MiB):
   * a body that would go over it is answered 503 with Retry-After before it is read (413 when it alone is larger).
   * Each route's limit bounds one body; this bounds many uploads at once.
   */
  inFlightBodyLimit?: number;
  /**
   * How long a client may move no bytes, in ms (default 30,000): a request body that sends nothing for it is answered
   * 408 RequestTimeout and its connection closed (a stalled upload held its share of inFlightBodyLimit for as long as
   * its client kept the socket), as is one that, past it, averages less than 1,024 bytes a second (a trickle held its
   * socket until requestTimeoutMs); and an event stream whose client reads nothing for it, with events waiting, is
   * closed (its events waited in the service's memory; an EventSource reconnects with Last-Event-ID).
   */
  bodyTimeoutMs?: number;
  /**
   * Models loaded at once, ridge and SD together, loads under way included (default 16): one more is refused (409
   * TooManyModels) until one is unloaded (DELETE /v1/models/NAME). A load that replaces a name takes no more.
   */
  maxModels?: number;
  /** At shutdown, how long running jobs may take to finish before they are cancelled (default 30 s; at most 2^31-1 ms less 30 s, about 24.8 days). */
  shutdownDeadlineMs?: number;
  /** How long a sign-in session (the page's cookie, POST /v1/session) lasts, in seconds (default 43,200: 12 h; at most 400 days, a cookie's cap). */
  sessionMaxAgeSeconds?: number;
  /**
   * The session cookie's name (letters, digits, `_`, `-`). Default: `brainlatent_session_<port>` (the port the
   * request came in on), with `_<prefix>` when the plugin has one, so two services on one host keep their own.
   */
  sessionCookieName?: string;
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

const WHAT = 'brainlatentPlugin';

/**
 * The longest shutdownDeadlineMs: startServer's pluginTimeout is the deadline + 30 s, and both are timers, so the sum
 * must stay within setTimeout's range (a longer one fires after 1 ms: running jobs were cancelled at once).
 */
export const MAX_SHUTDOWN_DEADLINE_MS = MAX_TIMER_MS - 30_000;

/** The longest sessionMaxAgeSeconds: 400 days, the cap RFC 6265bis puts on a cookie's Max-Age (browsers clamp to it). */
export const MAX_SESSION_MAX_AGE_S = 400 * 24 * 60 * 60;

/** The plugin's own option names. */
export const PLUGIN_OPTION_KEYS = [
  'root',
  'token',
  'runner',
  'jobs',
  'redis',
  'predict',
  'img2img',
  'bodyLimit',
  'dataBodyLimit',
  'predictionLimit',
  'latentPixelLimit',
  'inFlightBodyLimit',
  'bodyTimeoutMs',
  'maxModels',
  'shutdownDeadlineMs',
  'sessionMaxAgeSeconds',
  'sessionCookieName',
  'page',
  'defaultMetrics',
  'eventLoopResolutionMs',
] as const;

/** What Fastify itself reads from a plugin's register options, and passes on with the plugin's own. */
const FASTIFY_REGISTER_KEYS = ['prefix', 'logLevel', 'logSerializers'];

const name = (key: string) => `options.${key}`;

function checkObject(value: unknown, key: string, known: readonly string[]): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidArgumentError(`${WHAT} ${name(key)}: expected an object (${known.map((k) => `${k}?`).join(', ')}), got ${describeNumber(value)}`);
  }
  checkKnownKeys(value, known, `${WHAT} ${name(key)}`);
  return value as Record<string, unknown>;
}

function checkOptionalInteger(o: Record<string, unknown>, key: string, label: string, min: number, max?: number): void {
  if (o[key] !== undefined) checkInteger(o[key], name(`${label}.${key}`), WHAT, min, max);
}

function checkBoolean(value: unknown, key: string): void {
  if (value !== undefined && typeof value !== 'boolean') throw new InvalidArgumentError(`${WHAT} ${name(key)}: expected true or false, got ${describeNumber(value)}`);
}

/** Throws InvalidArgumentError naming the first option that is not as documented; returns the options, typed. */
export function checkPluginOptions(options: unknown): BrainlatentPluginOptions {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidArgumentError(`${WHAT}: expected an options object with at least { root }, got ${describeNumber(options)}`);
  }
  checkKnownKeys(options, [...PLUGIN_OPTION_KEYS, ...FASTIFY_REGISTER_KEYS], WHAT);
  const o = options as Record<string, unknown>;

  if (typeof o.root !== 'string' || o.root.length === 0) {
    throw new InvalidArgumentError(`${WHAT} ${name('root')}: expected the folder every path must stay inside (a non-empty string), got ${describeNumber(o.root)}`);
  }
  let isDirectory: boolean;
  try {
    isDirectory = statSync(o.root).isDirectory();
  } catch (e) {
    throw new InvalidArgumentError(`${WHAT} ${name('root')}: '${o.root}' is not an existing folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!isDirectory) throw new InvalidArgumentError(`${WHAT} ${name('root')}: '${o.root}' is not a folder`);

  if (o.token !== undefined && o.token !== null && (typeof o.token !== 'string' || o.token.length === 0)) {
    throw new InvalidArgumentError(`${WHAT} ${name('token')}: expected a non-empty string (or null/undefined: loopback clients only), got ${describeNumber(o.token)}`);
  }
  const weak = typeof o.token === 'string' ? weakToken(o.token) : undefined;
  if (weak) throw new InvalidArgumentError(weakTokenMessage(`${WHAT} ${name('token')}`, weak, `randomBytes(32).toString('hex') (node:crypto), or the output of ${MAKE_TOKEN}`));
  if (o.runner !== undefined) {
    const r = o.runner as Record<string, unknown> | null;
    const methods = ['submit', 'cancel', 'queueDepth', 'ready', 'close'];
    const missing = r !== null && typeof r === 'object' ? methods.filter((m) => typeof r[m] !== 'function') : methods;
    if (missing.length > 0 || typeof r?.board !== 'object' || r.board === null) {
      throw new InvalidArgumentError(`${WHAT} ${name('runner')}: expected a JobRunner (board, ${methods.join(', ')}), got ${r === null || typeof r !== 'object' ? describeNumber(r) : `an object without ${[...missing, ...(typeof r.board === 'object' && r.board !== null ? [] : ['board'])].join(', ')}`}`);
    }
  }
  if (o.jobs !== undefined) {
    const jobs = checkObject(o.jobs, 'jobs', ['concurrency', 'maxQueued', 'workers']);
    checkOptionalInteger(jobs, 'concurrency', 'jobs', 1);
    checkOptionalInteger(jobs, 'maxQueued', 'jobs', 0);
    // (runBatch's bound on a worker's job processes: a larger count was refused by every job, not at the start)
    checkOptionalInteger(jobs, 'workers', 'jobs', 0, MAX_JOB_PROCESSES);
  }
  if (o.redis !== undefined) {
    if (typeof o.redis !== 'string' || o.redis.length === 0) throw new InvalidArgumentError(`${WHAT} ${name('redis')}: expected a URL like redis://127.0.0.1:6379/0, got ${describeNumber(o.redis)}`);
    try {
      redisConnection(o.redis);
    } catch (e) {
      throw new InvalidArgumentError(`${WHAT} ${name('redis')}${(e as Error).message.replace(/^--redis/, '')}`);
    }
  }
  for (const pool of ['predict', 'img2img'] as const) {
    if (o[pool] === undefined) continue;
    const limits = checkObject(o[pool], pool, ['concurrency', 'maxQueued']);
    checkOptionalInteger(limits, 'concurrency', pool, 1);
    checkOptionalInteger(limits, 'maxQueued', pool, 0);
  }
  for (const key of ['bodyLimit', 'dataBodyLimit', 'predictionLimit', 'latentPixelLimit', 'inFlightBodyLimit', 'maxModels', 'eventLoopResolutionMs'] as const) {
    if (o[key] !== undefined) checkInteger(o[key], name(key), WHAT, 1);
  }
  if (o.sessionMaxAgeSeconds !== undefined) checkInteger(o.sessionMaxAgeSeconds, name('sessionMaxAgeSeconds'), WHAT, 1, MAX_SESSION_MAX_AGE_S);
  if (o.bodyTimeoutMs !== undefined) checkInteger(o.bodyTimeoutMs, name('bodyTimeoutMs'), WHAT, 1, MAX_TIMER_MS);
  if (o.shutdownDeadlineMs !== undefined) checkInteger(o.shutdownDeadlineMs, name('shutdownDeadlineMs'), WHAT, 0, MAX_SHUTDOWN_DEADLINE_MS);
  if (o.sessionCookieName !== undefined && (typeof o.sessionCookieName !== 'string' || !COOKIE_NAME.test(o.sessionCookieName))) {
    throw new InvalidArgumentError(`${WHAT} ${name('sessionCookieName')}: expected a cookie name of 1 to 64 letters, digits, '_' or '-', got ${describeNumber(o.sessionCookieName)}`);
  }
  checkBoolean(o.page, 'page');
  checkBoolean(o.defaultMetrics, 'defaultMetrics');
  return o as unknown as BrainlatentPluginOptions;
}
