/**
 * `startServer`: the plugin in a Fastify app of its own, listening on one address (what `brainlatent serve` runs).
 * It binds 127.0.0.1 unless told otherwise and refuses any other address without a token; SIGTERM/SIGINT close it
 * gracefully (new requests get 503, running jobs get the shutdown deadline, then the process may exit).
 */
import Fastify, { type FastifyInstance } from 'fastify';

import { BrainlatentError } from '../errors.js';
import { nativeSync } from '../native/call.js';
import { isLoopbackHost } from './auth.js';
import { brainlatentPlugin, type BrainlatentPluginOptions } from './plugin.js';

export interface ServeOptions extends BrainlatentPluginOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Fastify's logger (default: off). */
  logger?: boolean;
  /**
   * Nice steps below the event loop at which this process's engine jobs compute (img2img, model loading), each on a
   * thread of its own (default 10; 0: on libuv's workers at the loop's priority). Set for the whole process.
   */
  computeNiceness?: number;
}

export interface RunningServer {
  app: FastifyInstance;
  /** http://host:port (no trailing slash). */
  url: string;
  close(): Promise<void>;
}

export async function startServer(o: ServeOptions): Promise<RunningServer> {
  const host = o.host ?? '127.0.0.1';
  if (!isLoopbackHost(host) && !o.token) {
    throw new BrainlatentError(`refusing to listen on ${host} without a token: anyone who can reach it could run jobs and read the root folder. Pass --token (or bind 127.0.0.1)`, 'InsecureBind');
  }
  // The plugin sets its own per-route limits; the server-wide one must admit the largest (data bodies).
  // Closing waits for running jobs (up to the shutdown deadline), and Fastify times close hooks like plugins.
  const pluginTimeout = (o.shutdownDeadlineMs ?? 30_000) + 30_000;
  // The sampler computing an img2img request on the cores otherwise keeps the event loop waiting for one (10–20 ms
  // now and then on two cores); below the loop's priority it yields to it at once.
  nativeSync((b) => b.setJobNiceness(o.computeNiceness ?? 10));
  const app = Fastify({ logger: o.logger ?? false, bodyLimit: o.dataBodyLimit ?? 64 << 20, return503OnClosing: true, pluginTimeout });
  await app.register(brainlatentPlugin, o);
  // browsers ask the origin for an icon on every page (run reports included): no icon, and no 404 in their consoles
  app.get('/favicon.ico', { schema: { hide: true } }, async (_req, reply) => reply.code(204).send());
  await app.listen({ host, port: o.port ?? 8080 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return { app, url: `http://${shownHost}:${port}`, close: () => app.close() };
}
