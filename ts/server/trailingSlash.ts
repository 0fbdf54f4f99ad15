/**
 * `GET /v1/jobs/` is `GET /v1/jobs` (and the same for POST, and /v1/models/): without a twin route it would match
 * `/v1/jobs/:id` with an empty id and answer a 400 about params.id. Fastify's ignoreTrailingSlash is a router
 * option of the whole app, not of a plugin, so the plugin registers the twins itself, hidden from the document.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';

/** The collection routes whose trailing-slash form would otherwise be read as an item with an empty id. */
const COLLECTIONS = ['/v1/jobs', '/v1/models'];

export function useTrailingSlashTwins(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    // (a twin is registered through this hook too; HEAD routes come with their GET's twin)
    if ((route.config as { slashTwin?: boolean } | undefined)?.slashTwin || route.method === 'HEAD') return;
    if (!COLLECTIONS.some((c) => route.url.endsWith(c))) return;
    const { path: _path, prefix: _prefix, routePath, ...options } = route as typeof route & { routePath: string; path: string; prefix: string };
    app.route({ ...options, url: `${routePath}/`, config: { ...route.config, slashTwin: true } as never, schema: { ...route.schema, hide: true } });
  });
}

/** The route a request matched, a twin named as its collection ('/v1/jobs/' is '/v1/jobs'): the metrics' route label. */
export function routeOf(req: FastifyRequest): string {
  const url = req.routeOptions.url ?? 'unknown';
  return (req.routeOptions.config as { slashTwin?: boolean } | undefined)?.slashTwin ? url.slice(0, -1) : url;
}
