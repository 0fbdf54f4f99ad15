/**
 * `brainlatentPlugin`: the brainlatent service as a Fastify plugin. Register it in an app under a prefix, e.g.
 * `await app.register(brainlatentPlugin, { prefix: '/brainlatent', root: '/data', token })`. Everything it sets
 * (validation, error format, auth, content parsers) stays inside its own scope; the host app is untouched.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';

import { loadRedisQueue, loadServicePackages } from '../optionalDependencies.js';
import { useBodyBudget } from './bodyBudget.js';
import { useBodyTimeout } from './bodyTimeout.js';
import { closeContext, createContext, type BrainlatentPluginOptions } from './context.js';
import { hiddenButRoutes } from './answerPaths.js';
import { sendError } from './httpErrors.js';
import { JOB_KILL_AFTER_MS } from './jobs/jobSpawner.js';
import { jsonBodyParser } from './jsonBodies.js';
import { MethodNotAllowedError, RouteNotFoundError } from './notFound.js';
import { pageHtml } from './page/pageHtml.js';
import { healthRoutes } from './routes/health.js';
import { jobRoutes } from './routes/jobs.js';
import { modelRoutes } from './routes/models.js';
import { REF_RESOLVER, useDocumentTransform } from './openapiDocument.js';
import { ErrorSchema, NoQuery } from './schemas.js';
import { routeOf, useTrailingSlashTwins } from './trailingSlash.js';
import { everyInvalidPart, RequestValidationError, useConfigValidation } from './validation.js';
import { ClosedError } from './workQueue.js';

export type { BrainlatentPluginOptions } from './context.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A route answered without the token (health checks, the page shell, the login). */
    public?: boolean;
  }
}

/** The methods a 405's Allow header may list (what the routes use, and HEAD for every GET). */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

const PAGE_CSP = "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'self'";

async function plugin(app: FastifyInstance, options: BrainlatentPluginOptions & { prefix?: string }): Promise<void> {
  // optional dependencies (a slim install has neither): both checked here, so one install command covers them
  const { '@fastify/swagger': { default: swagger } } = await loadServicePackages();
  if (options.redis) await loadRedisQueue("the service's shared job queue (redis)");
  const prefix = app.prefix;
  const ctx = createContext(options, prefix);
  const timeout = app.initialConfig.pluginTimeout;
  // Closing waits for the jobs up to the deadline, then cancels them and kills a job process still there 10 s
  // later: the app's pluginTimeout must cover both, with a margin.
  const closeWorstMs = ctx.shutdownDeadlineMs + JOB_KILL_AFTER_MS;
  if (timeout && timeout < closeWorstMs + 5_000) {
    app.log.warn(
      `brainlatentPlugin: the app's pluginTimeout (${timeout} ms) is shorter than closing can take with jobs running (the shutdown deadline ${ctx.shutdownDeadlineMs} ms + ${JOB_KILL_AFTER_MS} ms before a cancelled job's process is killed, + 5 s margin); closing may time out while jobs finish. Raise pluginTimeout or lower shutdownDeadlineMs`,
    );
  }
  useConfigValidation(app);
  // every route checks its query string: one that declares no parameters takes none (an unknown key is a 400 naming
  // it, as on GET /v1/jobs, never ignored)
  app.addHook('onRoute', (route) => {
    if (!route.schema?.querystring) route.schema = { ...route.schema, querystring: NoQuery };
  });
  // every error response refers to one shared error body; every route's schemas are shown valid for the document's version
  app.addSchema(ErrorSchema);
  useDocumentTransform(app);
  useTrailingSlashTwins(app);
  // Every route takes JSON (the data routes .npy as well, in their own scope): Fastify's default text/plain
  // parser would hand a string to routes whose schemas cover only their own types (415 instead, naming them).
  app.removeContentTypeParser('text/plain');
  // JSON as Fastify parses it, but a syntax error says where (line, column, what was expected)
  const parseJson = jsonBodyParser(app);
  app.removeContentTypeParser('application/json');
  // an empty body on a route that takes none (DELETE /v1/jobs/ID from a client that sends content-type: application/json
  // on every request) is no body, not a 400 FST_ERR_CTP_EMPTY_JSON_BODY; a body it would ignore is a 400 naming it
  app.addContentTypeParser('application/json', { parseAs: 'string' }, async (req: FastifyRequest, text: string | Buffer) => {
    if (req.routeOptions.schema?.body) return parseJson(req, String(text));
    if (text.length === 0) return undefined;
    // (no route matched: parsed as before, so that the 404 or 405 answers, not a body refusal naming no route)
    if (req.routeOptions.url === undefined) return parseJson(req, String(text));
    throw new RequestValidationError('body', [`body: ${req.method} ${req.routeOptions.url ?? req.url.split('?')[0]} takes no body; send none (or an empty one)`]);
  });
  // an error answer names no server path outside the root (an ONNX external data location, a system error's file)
  // (a request that fails validation is told every part's problems: Fastify stops at the first part that fails)
  app.setErrorHandler((e, req, reply) => sendError(everyInvalidPart(e, req), req, reply, (text) => hiddenButRoutes(text, (t) => ctx.root.hidden(t))));
  app.setNotFoundHandler((req, reply) => {
    // a path the service has, with a method it does not take there: 405 naming the ones it takes (Allow)
    const path = req.url.split('?')[0];
    const allow = METHODS.filter((method) => app.findRoute({ method, url: path }) !== null);
    const e = allow.length ? new MethodNotAllowedError(req.method, path, allow) : new RouteNotFoundError(req.method, req.url);
    return sendError(e, req, reply, (text) => ctx.root.shown(text));
  });

  if (!app.hasDecorator('swagger')) {
    await app.register(swagger, {
      // the shared error body is components.schemas.Error (others keep @fastify/swagger's def-N)
      refResolver: REF_RESOLVER,
      openapi: {
        openapi: '3.0.3',
        info: { title: 'brainlatent', version: '1', description: 'fMRI → images with a latent diffusion model, and voxel-wise encoding models, as a service' },
        components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
        security: [{ bearer: [] }],
      },
    });
  }

  // Closing: a request gets the service's own 503 (code, Retry-After) rather than Fastify's bare one, where the
  // app lets requests through while it closes (return503OnClosing: false, as startServer sets).
  let closing = false;
  app.addHook('onRequest', async (req) => {
    if (closing) throw new ClosedError(`${req.method} ${req.url}`);
  });
  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.config?.public) return;
    if (!(await ctx.auth.check(req, reply))) return reply;
  });
  // (after the token: a client without one holds no share of the bytes in flight)
  useBodyBudget(app, ctx.bodyBudget, () => ctx.metrics.rejected.inc({ pool: 'bodies' }));
  useBodyTimeout(app, ctx.bodyTimeoutMs);
  app.addHook('onResponse', async (req, reply) => {
    ctx.metrics.http.observe({ method: req.method, route: routeOf(req), code: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
  // At shutdown: running jobs get their deadline (their streams see them end), then every stream is closed.
  app.addHook('preClose', async () => {
    closing = true;
    await closeContext(ctx);
  });
  // Answers sent once closing has begun close their connection: a keep-alive connection whose last answer was still
  // being written when the server closed stayed open until its idle timeout, 72 s, and so did the process (review s45)
  app.addHook('onSend', async (_req, reply) => {
    if (closing) void reply.header('connection', 'close');
    // every answer is what its type says: a JSON error that quotes a request's path ('no file '<script>…'') is never
    // sniffed as HTML, nor a JSON answer run as a script by a page that names it in <script src> (the run files set it too)
    void reply.header('x-content-type-options', 'nosniff');
  });

  await healthRoutes(app, ctx, prefix);
  await jobRoutes(app, ctx);
  await modelRoutes(app, ctx);
  if (options.page !== false) {
    // (a browser's page takes any query, a link's tracking keys or a bookmark's: the API's routes refuse unknown ones)
    app.get('/', { config: { public: true }, schema: { hide: true, querystring: { type: 'object' } } }, async (req, reply) => {
      // the page uses relative URLs: it must be at "<prefix>/"
      if (prefix && !req.url.split('?')[0].endsWith('/')) return reply.redirect(`${prefix}/`, 308);
      return reply.type('text/html; charset=utf-8').header('content-security-policy', PAGE_CSP).header('cache-control', 'no-cache').send(pageHtml());
    });
  }
}

/** The service as a Fastify plugin (encapsulated: register it with a prefix). */
export const brainlatentPlugin: FastifyPluginAsync<BrainlatentPluginOptions> = plugin;
