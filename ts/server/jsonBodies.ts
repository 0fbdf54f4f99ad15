/**
 * JSON request bodies parsed as Fastify parses them (secure-json-parse: a `__proto__` or `constructor.prototype` key
 * is refused), but a body that is not JSON gets a 400 that says where and what was expected there
 * (`line 3, column 14: comma expected`), not only Fastify's "Body is not valid JSON". The code stays Fastify's
 * (FST_ERR_CTP_INVALID_JSON_BODY), which clients may branch on; the body's own text is never quoted back.
 */
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { errorCodes } from 'fastify';

import { invalidJsonMessage } from './models/requestBodies.js';

/** Fastify's invalid-JSON error, its message saying where the body stops being JSON (invalidJsonMessage). */
export function invalidJsonBody(message: string): FastifyError {
  const e = new errorCodes.FST_ERR_CTP_INVALID_JSON_BODY();
  e.message = message;
  return e;
}

type JsonParser = (req: FastifyRequest, text: string) => Promise<unknown>;

/** Fastify's own JSON parser in `app`'s scope, whose syntax errors say where (invalidJsonBody). */
export function jsonBodyParser(app: FastifyInstance): JsonParser {
  const parse = app.getDefaultJsonParser(app.initialConfig.onProtoPoisoning ?? 'error', app.initialConfig.onConstructorPoisoning ?? 'error');
  return (req, text) =>
    new Promise((resolve, reject) =>
      parse(req, text, (e: Error | null, v?: unknown) => {
        if (!e) return resolve(v);
        reject((e as FastifyError).code === 'FST_ERR_CTP_INVALID_JSON_BODY' ? invalidJsonBody(invalidJsonMessage(text)) : e);
      }),
    );
}
