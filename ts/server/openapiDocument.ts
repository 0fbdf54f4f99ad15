/**
 * The routes' schemas as the OpenAPI document shows them. The route schemas are the validator's (ajv, JSON Schema
 * draft-07: numeric exclusiveMinimum, `examples`, tuple `items: [...]`, contentMediaType), which an OpenAPI 3.0
 * document's schema objects do not take and a 3.1 one takes only partly (tuples are `prefixItems` there). Every
 * route of the plugin gets a per-route swagger transform (config.swaggerTransform) that rewrites a copy of its
 * schemas for the version the document declares, so the document is valid whoever's @fastify/swagger builds it:
 * the plugin's own, or a host app's (which may declare 3.0 or 3.1). The transform also marks public routes
 * (config.public) `security: []`: they need no token whatever the document's global security says.
 */
import type { FastifyInstance, FastifySchema, RouteOptions } from 'fastify';

import { ERROR_SCHEMA_ID } from './schemas.js';

/** The shared error body's name in the service's own document (a host's swagger names it its own way). */
const ERROR_COMPONENT = 'Error';

type Json = Record<string, unknown>;
type Version = '3.0' | '3.1';

/** Keywords an OpenAPI 3.0 schema object has (others are refused by its meta-schema), and those @fastify/swagger converts itself. */
const OAS30_KEYWORDS = new Set([
  'title', 'multipleOf', 'maximum', 'exclusiveMaximum', 'minimum', 'exclusiveMinimum', 'maxLength', 'minLength', 'pattern',
  'maxItems', 'minItems', 'uniqueItems', 'maxProperties', 'minProperties', 'required', 'enum', 'type', 'not', 'allOf', 'oneOf',
  'anyOf', 'items', 'properties', 'additionalProperties', 'description', 'format', 'default', 'nullable', 'discriminator',
  'readOnly', 'writeOnly', 'example', 'externalDocs', 'deprecated', 'xml', '$ref',
  // converted or dropped by @fastify/swagger
  '$id', '$schema', 'definitions', 'contentEncoding', 'patternProperties',
]);

/** Keywords whose value is a schema, or a map or list of schemas. */
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', 'definitions', '$defs']);
const SCHEMA_LISTS = new Set(['allOf', 'anyOf', 'oneOf', 'prefixItems']);
const SCHEMA_VALUES = new Set(['not', 'additionalProperties', 'additionalItems', 'contains', 'propertyNames', 'if', 'then', 'else']);

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A copy of JSON Schema `schema` valid as a schema object of an OpenAPI `version` document. */
export function schemaForDocument(schema: unknown, version: Version): unknown {
  if (!isObject(schema)) return schema;
  const out: Json = {};
  for (const [key, value] of Object.entries(schema)) {
    if (SCHEMA_MAPS.has(key) && isObject(value)) out[key] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, schemaForDocument(v, version)]));
    else if (SCHEMA_LISTS.has(key) && Array.isArray(value)) out[key] = value.map((v) => schemaForDocument(v, version));
    else if (key === 'items') out[key] = Array.isArray(value) ? value.map((v) => schemaForDocument(v, version)) : schemaForDocument(value, version);
    else if (SCHEMA_VALUES.has(key)) out[key] = schemaForDocument(value, version);
    else out[key] = value;
  }
  return version === '3.0' ? toOas30(out) : toOas31(out);
}

function toOas30(s: Json): Json {
  // draft-06+ numeric exclusive bounds → draft-04's boolean flags next to minimum/maximum
  for (const [exclusive, bound] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']] as const) {
    if (typeof s[exclusive] === 'number') {
      s[bound] = s[exclusive];
      s[exclusive] = true;
    }
  }
  if (Array.isArray(s.examples)) {
    if (s.examples.length && s.example === undefined) s.example = s.examples[0];
    delete s.examples;
  }
  if ('const' in s) {
    s.enum = [s.const];
    delete s.const;
  }
  // a tuple: every element's schema (one when they are alike), its length as min/maxItems
  if (Array.isArray(s.items)) {
    const tuple = s.items as Json[];
    const extra = s.additionalItems;
    const members = [...tuple, ...(isObject(extra) ? [extra] : [])];
    const distinct = members.filter((m, i) => members.findIndex((n) => JSON.stringify(n) === JSON.stringify(m)) === i);
    s.items = distinct.length === 1 ? distinct[0] : { anyOf: distinct };
    s.minItems = Math.max(Number(s.minItems ?? 0), tuple.length);
    if (extra === false) s.maxItems = tuple.length;
    delete s.additionalItems;
  }
  for (const key of Object.keys(s)) if (!OAS30_KEYWORDS.has(key) && !key.startsWith('x-')) delete s[key];
  return s;
}

function toOas31(s: Json): Json {
  // JSON Schema 2020-12: a tuple is prefixItems, what may follow it `items`
  if (Array.isArray(s.items)) {
    s.prefixItems = s.items;
    if ('additionalItems' in s) s.items = s.additionalItems;
    else delete s.items;
    delete s.additionalItems;
  }
  return s;
}

/** The OpenAPI version a document declares, as the schemas need it. */
const versionOf = (openapi: unknown): Version => (typeof openapi === 'string' && !openapi.startsWith('3.0') ? '3.1' : '3.0');

/** A route body's or response's schema: either a schema, or @fastify/swagger's `{content: {type: {schema}}}`. */
function partForDocument(part: unknown, version: Version): unknown {
  if (!isObject(part) || !isObject(part.content)) return schemaForDocument(part, version);
  const content = Object.fromEntries(Object.entries(part.content).map(([type, media]) => [type, isObject(media) ? { ...media, schema: schemaForDocument(media.schema, version) } : media]));
  return { ...part, content };
}

/** `schema` with every part (body, query, params, headers, responses) valid for `version`. */
export function routeSchemaForDocument(schema: FastifySchema, version: Version, isPublic: boolean): FastifySchema {
  const out: Json = { ...schema };
  for (const part of ['body', 'querystring', 'params', 'headers'] as const) if (out[part] !== undefined) out[part] = partForDocument(out[part], version);
  if (isObject(out.response)) out.response = Object.fromEntries(Object.entries(out.response).map(([status, r]) => [status, partForDocument(r, version)]));
  if (isPublic) out.security = [];
  return out as FastifySchema;
}

/** @fastify/swagger's per-route transform (config.swaggerTransform): the document's view of the route. */
type SwaggerTransform = (args: { schema: FastifySchema; url: string; route: RouteOptions; openapiObject: Json }) => { schema: FastifySchema; url: string };

/**
 * Gives every route registered in `app`'s scope from now on the document transform (after a transform the route
 * has of its own, e.g. the run-file route's named wildcard).
 */
export function useDocumentTransform(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const own = (route.config as { swaggerTransform?: SwaggerTransform | false } | undefined)?.swaggerTransform;
    if (own === false) return;
    const transform: SwaggerTransform = (args) => {
      const { schema, url } = own ? own(args) : { schema: args.schema, url: args.url };
      return { url, schema: schema && routeSchemaForDocument(schema, versionOf(args.openapiObject.openapi), route.config?.public === true) };
    };
    route.config = { ...route.config, swaggerTransform: transform as never };
  });
}

/** The plugin's own @fastify/swagger's reference names: the shared error body is `Error`. */
export const REF_RESOLVER = {
  buildLocalReference(json: Json, _baseUri: unknown, _fragment: unknown, i: number): string {
    return json.$id === ERROR_SCHEMA_ID ? ERROR_COMPONENT : `def-${i}`;
  },
};
