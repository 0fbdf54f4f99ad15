/**
 * JSON request bodies parsed as Fastify parses them (secure-json-parse: a `__proto__` or `constructor.prototype` key
 * is refused), but a body that is not JSON gets a 400 that says where and what was expected there
 * (`line 3, column 14: comma expected`), not only Fastify's "Body is not valid JSON". The code stays Fastify's
 * (FST_ERR_CTP_INVALID_JSON_BODY), which clients may branch on; the body's own text is never quoted back. A number
 * beyond float64's range (1e999) is a 400 naming its field and the number as written (refuseNumbersBeyondFloat64).
 */
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { errorCodes } from 'fastify';

import { invalidJsonMessage, refuseNumbersBeyondFloat64 } from './models/requestBodies.js';

/** Fastify's invalid-JSON error, its message saying where the body stops being JSON (invalidJsonMessage). */
export function invalidJsonBody(message: string): FastifyError {
  const e = new errorCodes.FST_ERR_CTP_INVALID_JSON_BODY();
  e.message = message;
  return e;
}

type JsonParser = (req: FastifyRequest, text: string) => Promise<unknown>;

/** The charset a content-type names, or undefined. */
export function charsetOf(contentType: string | undefined): string | undefined {
  return /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? '')?.[1];
}

/**
 * A JSON body is read as UTF-8 (RFC 8259 §8.1): one that says it is in another charset (UTF-16, latin1) would be
 * misread, so it is refused with a 415 that names the charset (httpErrors.ts), not parsed as if it were UTF-8.
 */
export function refuseOtherCharsets(req: FastifyRequest): void {
  const charset = charsetOf(req.headers['content-type']);
  if (charset && !/^utf-?8$/i.test(charset)) throw new errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE(req.headers['content-type']);
}

/** Fastify's own JSON parser in `app`'s scope, whose syntax errors say where (invalidJsonBody). */
export function jsonBodyParser(app: FastifyInstance): JsonParser {
  const parse = app.getDefaultJsonParser(app.initialConfig.onProtoPoisoning ?? 'error', app.initialConfig.onConstructorPoisoning ?? 'error');
  return (req, text) => {
    refuseOtherCharsets(req);
    return new Promise((resolve, reject) =>
      parse(req, text, (e: Error | null, v?: unknown) => {
        if (!e) {
          // a number beyond float64 (1e999) is named as written, not as the Infinity JSON.parse made of it
          try {
            refuseNumbersBeyondFloat64(text, v);
          } catch (problem) {
            return reject(problem);
          }
          return resolve(v);
        }
        reject((e as FastifyError).code === 'FST_ERR_CTP_INVALID_JSON_BODY' ? invalidJsonBody(invalidJsonMessage(text)) : e);
      }),
    );
  };
}
