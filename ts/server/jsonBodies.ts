/**
 * JSON request bodies parsed as Fastify parses them (secure-json-parse: a UTF-8 BOM skipped, a `__proto__` or
 * `constructor.prototype` key refused), but a body that is not JSON gets a 400 that says where and what was expected there
 * (`line 3, column 14: comma expected`), not only Fastify's "Body is not valid JSON". The code stays Fastify's
 * (FST_ERR_CTP_INVALID_JSON_BODY), which clients may branch on; the body's own text is never quoted back. A number
 * beyond float64's range (1e999) is a 400 naming its field and the number as written (refuseNumbersBeyondFloat64).
 */
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { errorCodes } from 'fastify';

import { EMPTY_JSON_PROBLEM, invalidJsonProblem, refuseNumbersBeyondFloat64, withoutBom, type JsonKeyRules } from './models/requestBodies.js';
import { notValidMessage } from './validation.js';

/**
 * A body a content parser refused (Fastify's error, its code kept: clients branch on it), told as the validator's
 * 400 tells a body's problems: `problems` naming the body and what was expected, and the same message.
 */
export type BodyRefusal = FastifyError & { problems: string[] };

/** `e`, the FastifyError a content parser refused a body with, as a BodyRefusal of `problem`. */
export function bodyRefusal(e: FastifyError, problem: string): BodyRefusal {
  e.message = notValidMessage(['body'], [problem]);
  return Object.assign(e, { problems: [problem] });
}

/** Fastify's invalid-JSON error, its problem saying where the body stops being JSON (invalidJsonProblem). */
export function invalidJsonBody(problem: string): BodyRefusal {
  return bodyRefusal(new errorCodes.FST_ERR_CTP_INVALID_JSON_BODY(), problem);
}

/** Fastify's error for an empty body sent as JSON to a route that takes one, saying what was expected. */
function emptyJsonBody(): BodyRefusal {
  return bodyRefusal(new errorCodes.FST_ERR_CTP_EMPTY_JSON_BODY(), EMPTY_JSON_PROBLEM);
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

/**
 * The content codings of a request's body other than identity (`Content-Encoding: gzip` → ['gzip']). Fastify does
 * not decode a body: a compressed one would be parsed as it came and answered as if its content were wrong.
 */
export function contentCodings(req: FastifyRequest): string[] {
  return String(req.headers['content-encoding'] ?? '')
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
}

/** A body in a content coding (gzip, br, …) is refused with a 415 that names it (httpErrors.ts), whatever its size. */
export function refuseContentCodings(req: FastifyRequest): void {
  if (contentCodings(req).length > 0) throw new errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE(req.headers['content-type']);
}

/** `app`'s rules for a JSON body's prototype keys, which its own JSON parser follows (Fastify's options). */
export function jsonKeyRules(app: FastifyInstance): JsonKeyRules {
  return { protoAction: app.initialConfig.onProtoPoisoning ?? 'error', constructorAction: app.initialConfig.onConstructorPoisoning ?? 'error' };
}

/** Fastify's own JSON parser in `app`'s scope, whose syntax errors say where (invalidJsonBody). */
export function jsonBodyParser(app: FastifyInstance): JsonParser {
  const keys = jsonKeyRules(app);
  const parse = app.getDefaultJsonParser(keys.protoAction, keys.constructorAction);
  return (req, body) => {
    refuseOtherCharsets(req);
    refuseContentCodings(req);
    // (the parser skips a BOM too; the number check and the syntax error's position are of the text after it)
    const text = withoutBom(body);
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
        const code = (e as FastifyError).code;
        reject(code === 'FST_ERR_CTP_INVALID_JSON_BODY' ? invalidJsonBody(invalidJsonProblem(text)) : code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ? emptyJsonBody() : e);
      }),
    );
  };
}
