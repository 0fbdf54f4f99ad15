/**
 * Health (`/healthz`: the process answers), readiness (`/readyz`: the job runner can run jobs, Redis reachable
 * when used; its detail and the loaded models only to a client with the token), Prometheus metrics, the OpenAPI document, and the page's sign-in and sign-out.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';

import { cookies, tooManyGuesses } from '../auth.js';
import type { ServiceContext } from '../context.js';
import { binary, described, errorBody, errorResponses, HealthSchema, NO_CONTENT, OpenApiSchema, publicErrorResponses, ReadySchema, SessionStateSchema } from '../responseSchemas.js';
import { SessionBodySchema } from '../schemas.js';

export async function healthRoutes(app: FastifyInstance, ctx: ServiceContext, prefix: string): Promise<void> {
  app.get('/healthz', { config: { public: true }, schema: { operationId: 'health', tags: ['health'], summary: 'Liveness: the process answers', response: { 200: HealthSchema, ...publicErrorResponses() } } }, async () => ({ status: 'ok' }));

  app.get('/readyz', {
    config: { public: true },
    schema: {
      operationId: 'ready',
      tags: ['health'],
      summary: 'Readiness: jobs can run (Redis reachable when used)',
      // a 503 is the readiness (not ready: why in `runner`) or, while the service shuts down, an error (ShuttingDown)
      response: { 200: described(ReadySchema, 'ready'), 503: Type.Unsafe({ description: 'not ready: `ready` false and why in `runner`; or, while shutting down, an error body (ShuttingDown)', oneOf: [ReadySchema, errorBody('shutting down')] }), 500: publicErrorResponses()[500] },
    },
  }, async (req, reply) => {
    const runner = await ctx.runner.ready();
    // Without credentials only the readiness: the runner's detail names the Redis host (and user) the jobs go
    // through and the models' names, which a client that may not call the API has no need of (a probe reads the status).
    if (!(await ctx.auth.check(req, reply, { quiet: true }))) return reply.code(runner.ok ? 200 : 503).send({ ready: runner.ok });
    return reply.code(runner.ok ? 200 : 503).send({ ready: runner.ok, runner: runner.detail, models: ctx.models.list().map((m) => ({ name: m.name, kind: m.kind })) });
  });

  app.get('/metrics', { schema: { operationId: 'metrics', tags: ['health'], summary: 'Prometheus metrics', response: { 200: binary('Prometheus text format', ['text/plain']), ...errorResponses() } } }, async (_req, reply) => {
    const m = await ctx.metrics.text();
    return reply.type(m.contentType).send(m.body);
  });

  app.get('/v1/openapi.json', { schema: { operationId: 'openapi', tags: ['health'], summary: 'This OpenAPI document', response: { 200: OpenApiSchema, ...errorResponses() } } }, async () => app.swagger());

  app.get('/v1/session', { config: { public: true }, schema: { operationId: 'getSession', tags: ['health'], summary: 'Whether this client is signed in (and whether the service needs a token)', response: { 200: SessionStateSchema, ...publicErrorResponses() } } }, async (req, reply) => {
    const signedIn = await ctx.auth.check(req, reply, { quiet: true });
    return { tokenRequired: ctx.auth.hasToken, signedIn };
  });

  const path = prefix || '/';
  /** The session cookie's attributes: its path, HttpOnly, SameSite=Strict, and Secure over TLS (not on plain loopback HTTP). */
  const attributes = (req: FastifyRequest, maxAge: number) => `Path=${path}; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${req.protocol === 'https' ? '; Secure' : ''}`;

  app.post(
    '/v1/session',
    {
      config: { public: true },
      bodyLimit: 8192,
      schema: {
        operationId: 'signIn',
        tags: ['health'],
        summary: 'Sign in: exchange the token for a session cookie (for the web page)',
        description: 'Set-Cookie: a session id (not the token), Max-Age, HttpOnly, SameSite=Strict; a 204 without a cookie when the service has no token',
        body: SessionBodySchema,
        response: { ...NO_CONTENT, ...publicErrorResponses(400, 413, 415), 401: errorResponses()[401], 429: errorResponses()[429] },
      },
    },
    async (req, reply) => {
      const { token } = req.body as { token: string };
      if (!ctx.auth.hasToken) return reply.code(204).send();
      // (a wrong token is answered late, and an address with a few of them waiting 429 without comparing: guessLimit.ts)
      const attempt = await ctx.auth.attempt(req, token);
      if (attempt === 'busy') return tooManyGuesses(reply, ctx.auth.limiter);
      if (attempt === 'wrong') return reply.code(401).send({ error: 'Unauthorized', message: 'the token is not valid', code: 'Unauthorized' });
      // a random id, not the token: it expires, a sign-out revokes it, and a restart forgets it
      const id = ctx.auth.sessions.create();
      return reply.header('set-cookie', `${ctx.auth.cookieName(req)}=${id}; ${attributes(req, ctx.auth.sessions.maxAgeSeconds)}`).code(204).send();
    },
  );

  app.delete('/v1/session', { config: { public: true }, schema: { operationId: 'signOut', tags: ['health'], summary: 'Sign out: forget this session and clear its cookie', response: { ...NO_CONTENT, ...publicErrorResponses() } } }, async (req, reply) => {
    // every cookie of that name is forgotten; a malformed one is simply cleared
    for (const id of cookies(req.headers.cookie, ctx.auth.cookieName(req))) ctx.auth.sessions.delete(id);
    return reply.header('set-cookie', `${ctx.auth.cookieName(req)}=; ${attributes(req, 0)}`).code(204).send();
  });
}
