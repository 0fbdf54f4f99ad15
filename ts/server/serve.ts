/**
 * `startServer`: the plugin in a Fastify app of its own, listening on one address (what `brainlatent serve` runs).
 * It binds 127.0.0.1 unless told otherwise and refuses any other address without a token; SIGTERM/SIGINT close it
 * gracefully (new requests get 503, running jobs get the shutdown deadline, then the process may exit).
 */
import Fastify, { type FastifyInstance } from 'fastify';

import { BrainlatentError, InvalidArgumentError } from '../errors.js';
import { nativeSync } from '../native/call.js';
import { describeNumber } from '../ridge/alphas.js';
import { checkInteger, MAX_TIMER_MS } from '../ridge/options.js';
import { isLoopbackHost } from './auth.js';
import { frameworkErrors } from './httpErrors.js';
import { brainlatentPlugin, type BrainlatentPluginOptions } from './plugin.js';
import { MAX_SHUTDOWN_DEADLINE_MS } from './pluginOptions.js';

export interface ServeOptions extends BrainlatentPluginOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /**
   * Fastify's logger (default: off): true for Fastify's own (pino, level info, stdout), or a level and a stream
   * (`{ level: 'warn', stream: process.stderr }`). A request answered 5xx is logged at 'error' with its stack.
   */
  logger?: boolean | ServeLogger;
  /**
   * Nice steps below the event loop at which this process's engine jobs compute (img2img, model loading), each on a
   * thread of its own (default 10, at most 39; 0: on the engine's job threads at the loop's priority). Set for the whole process.
   */
  computeNiceness?: number;
  /**
   * Which proxies in front of the service to believe (Fastify's `trustProxy`): their X-Forwarded-Proto says whether
   * the client came over TLS (the session cookie is then Secure) and X-Forwarded-For who the client is (`req.ip`).
   * `true`: any peer (only when nothing but the proxy can reach the service); addresses or CIDR ranges (a
   * comma-separated string or an array; `loopback`, `linklocal`, `uniquelocal` name proxy-addr's ranges). Default
   * false: the headers are ignored (anyone could send them). A number of hops is refused: Fastify 5 trusts no
   * peer with one (it cannot tell the proxy from a client), so it would never make the cookie Secure. The
   * no-token loopback check reads the socket's own address whatever this says. Needs `token`: refused without one.
   */
  trustProxy?: TrustProxy;
  /**
   * How long a request may take to arrive whole, headers and body, in ms (Fastify's `requestTimeout`; default
   * 300,000, Node's own; at most 2^31-1): past it the request is answered 408 and its connection closed. Fastify's
   * default, none, kept half-sent headers open for as long as the client liked (review s45); the plugin's
   * bodyTimeoutMs ends a body that stalls long before this.
   */
  requestTimeoutMs?: number;
}

export type TrustProxy = boolean | string | string[];

/** One trusted proxy: an IPv4/IPv6 address or CIDR range, or one of proxy-addr's named ranges. */
const PROXY = /^(?:[0-9A-Fa-f:.]+(?:\/\d{1,3})?|loopback|linklocal|uniquelocal)$/;

const HOPS = 'a number of hops cannot tell the proxy from a client (Fastify trusts no peer with one): name the proxy\'s address';

/** `serve --trust-proxy`: `true`/`false`, or a comma-separated list of addresses or CIDR ranges. */
export function trustProxyFlag(value: string): TrustProxy {
  const v = value.trim();
  if (v === 'true') return true;
  if (v === 'false') return false;
  if (/^\d+$/.test(v)) throw new InvalidArgumentError(`--trust-proxy: ${HOPS} (e.g. --trust-proxy 127.0.0.1), got '${value}'`);
  const list = v.split(',').map((a) => a.trim());
  if (v.length === 0 || list.some((a) => !PROXY.test(a))) {
    throw new InvalidArgumentError(`--trust-proxy: expected true, or the proxies' addresses or CIDR ranges separated by commas (e.g. 127.0.0.1,10.0.0.0/8, or loopback), got '${value}'`);
  }
  return list.join(',');
}

function checkTrustProxy(value: unknown): TrustProxy {
  if (typeof value === 'number') throw new InvalidArgumentError(`startServer options.trustProxy: ${HOPS}, got ${value}`);
  const ok =
    typeof value === 'boolean' ||
    (typeof value === 'string' && value.trim().length > 0) ||
    (Array.isArray(value) && value.length > 0 && value.every((a) => typeof a === 'string' && a.trim().length > 0));
  if (!ok) throw new InvalidArgumentError(`startServer options.trustProxy: expected true/false, or the proxies' addresses or CIDR ranges (a string or an array of strings), got ${describeNumber(value)}`);
  return value as TrustProxy;
}

/** pino's levels, most to least severe. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface ServeLogger {
  /** Default 'info'. */
  level?: LogLevel;
  /** Where the JSON lines go (default stdout). */
  stream?: NodeJS.WritableStream;
}

/** `logger` as Fastify takes it, or an error naming the option. */
function loggerOption(logger: unknown): boolean | ServeLogger {
  if (typeof logger === 'boolean') return logger;
  const o = logger as ServeLogger | null;
  const ok = o !== null && typeof o === 'object' && Object.keys(o).every((k) => k === 'level' || k === 'stream') && (o.level === undefined || LOG_LEVELS.includes(o.level)) && (o.stream === undefined || typeof o.stream?.write === 'function');
  if (!ok) throw new InvalidArgumentError(`startServer options.logger: expected true, false or { level: one of ${LOG_LEVELS.join(', ')}, stream: a writable stream }, got ${describeNumber(logger)}`);
  return { ...o };
}

export interface RunningServer {
  app: FastifyInstance;
  /** http://host:port (no trailing slash). */
  url: string;
  close(): Promise<void>;
}

/** The options startServer reads itself, checked; the rest go to the plugin, which checks them when registered. */
function serverOptions(o: ServeOptions): { host: string; port: number; logger: boolean | ServeLogger; computeNiceness: number; trustProxy: TrustProxy; requestTimeoutMs: number; plugin: BrainlatentPluginOptions } {
  if (o === null || typeof o !== 'object') throw new InvalidArgumentError(`startServer: expected an options object with at least { root }, got ${describeNumber(o)}`);
  const { host = '127.0.0.1', port = 8080, logger = false, computeNiceness = 10, trustProxy = false, requestTimeoutMs = 300_000, ...plugin } = o;
  if (typeof host !== 'string' || host.length === 0) throw new InvalidArgumentError(`startServer options.host: expected an address or host name, got ${describeNumber(host)}`);
  checkInteger(port, 'options.port', 'startServer', 0, 65535);
  // (steps from the loop's nice value to the threads', capped by nice's span, -20 to 19: the engine clamped more in silence)
  checkInteger(computeNiceness, 'options.computeNiceness', 'startServer', 0, 39);
  checkInteger(requestTimeoutMs, 'options.requestTimeoutMs', 'startServer', 1, MAX_TIMER_MS);
  return { host, port, logger: loggerOption(logger), computeNiceness, trustProxy: checkTrustProxy(trustProxy), requestTimeoutMs, plugin };
}

export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const { host, port: listenPort, logger, computeNiceness, trustProxy, requestTimeoutMs, plugin: o } = serverOptions(options);
  if (!isLoopbackHost(host) && !o.token) {
    throw new BrainlatentError(`refusing to listen on ${host} without a token: anyone who can reach it could run jobs and read the root folder. Pass --token (or bind 127.0.0.1)`, 'InsecureBind');
  }
  // a proxy in front is declared: whoever reaches the proxy reaches the service, and a proxy on this machine connects
  // from loopback, which is all a service without a token checks
  if (trustProxy !== false && !o.token) {
    throw new BrainlatentError(`refusing to trust a proxy (trustProxy, --trust-proxy) without a token: the proxy forwards whoever reaches it, and one on this machine connects from loopback. Pass --token`, 'InsecureBind');
  }
  // The plugin sets its own per-route limits; the server-wide one must admit the largest (data bodies).
  // Closing waits for running jobs (up to the shutdown deadline), and Fastify times close hooks like plugins.
  // (a timer too: the plugin caps shutdownDeadlineMs so that this fits setTimeout's range, and refuses one out of it,
  // naming it, when registered; until then such a one is not given to Fastify, whose timer would overflow first)
  const d = o.shutdownDeadlineMs;
  const deadline = typeof d === 'number' && Number.isInteger(d) && d >= 0 && d <= MAX_SHUTDOWN_DEADLINE_MS ? d : 30_000;
  const pluginTimeout = deadline + 30_000;
  // (a dataBodyLimit that is not a positive integer is refused by the plugin, naming it, not here as Fastify's bodyLimit)
  const dataBodyLimit = Number.isInteger(o.dataBodyLimit) && (o.dataBodyLimit as number) > 0 ? (o.dataBodyLimit as number) : 64 << 20;
  // (while closing, the plugin answers requests itself: a 503 with a code and Retry-After)
  // (a URL the router cannot decode is answered before any route: frameworkErrors gives it the service's error form)
  const app = Fastify({ logger, bodyLimit: dataBodyLimit, return503OnClosing: false, pluginTimeout, trustProxy, frameworkErrors, requestTimeout: requestTimeoutMs });
  try {
    await app.register(brainlatentPlugin, o);
  } catch (e) {
    await app.close().catch(() => {});
    throw e;
  }
  // The sampler computing an img2img request on the cores otherwise keeps the event loop waiting for one (10–20 ms
  // now and then on two cores); below the loop's priority it yields to it at once.
  nativeSync((b) => b.setJobNiceness(computeNiceness));
  // browsers ask the origin for an icon on every page (run reports included): no icon, and no 404 in their consoles
  app.get('/favicon.ico', { schema: { hide: true } }, async (_req, reply) => reply.code(204).send());
  await app.listen({ host, port: listenPort });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : listenPort;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return { app, url: `http://${shownHost}:${port}`, close: () => app.close() };
}
