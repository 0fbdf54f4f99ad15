/**
 * Reading the data bodies of the model routes (.npy and JSON, up to the data body limit: 64 MiB by default)
 * without stalling the event loop. Fastify's own body reading ends with one copy of the whole body, and its JSON
 * parser, the schema validation, base64 and .npy decoding and the NaN scan then run on the loop: ~20 ms and more
 * for a body at the limit. Here a small body (up to SMALL_BODY bytes, which costs well under a millisecond) is read
 * as Fastify would; a larger one is copied chunk by chunk, as it arrives, into 1 MiB segments, and the route hands
 * the segments (moved, not copied) to a predict thread, which decodes and checks them (requestBodies.ts).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { errorCodes } from 'fastify';

import { jsonBodyParser, jsonKeyRules, refuseContentCodings, refuseOtherCharsets } from '../jsonBodies.js';
import { joinSegments, REFUSE_PROTO_KEYS, type JsonKeyRules, type LargeBodyKind } from './requestBodies.js';

/** Bodies up to this size are decoded on the event loop. */
export const SMALL_BODY = 256 << 10;
const SEGMENT = 1 << 20;

/** A body too large to decode on the event loop: its bytes in segments, for a predict thread. */
export class LargeBody {
  constructor(
    readonly kind: LargeBodyKind,
    readonly segments: ArrayBuffer[],
    readonly length: number,
    /** The app's rules for a JSON body's `__proto__` and `constructor.prototype` keys (its parser's for a small one). */
    readonly keys: JsonKeyRules = REFUSE_PROTO_KEYS,
  ) {}
}

/** What a request stream gives: Buffers (a custom preParsing stream may give strings). */
type Payload = NodeJS.ReadableStream & { receivedEncodedLength?: number };

/**
 * Reads `payload`: the whole body as one Buffer when it is small, else in segments. Refuses what Fastify
 * refuses: a declared or actual length beyond `limit` (413), a body that does not match its Content-Length (400).
 */
function readBody(req: FastifyRequest, payload: Payload, limit: number): Promise<{ small: Buffer } | { segments: ArrayBuffer[]; length: number }> {
  const declared = Number(req.headers['content-length']);
  return new Promise((resolve, reject) => {
    if (declared > limit) return reject(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
    // a body that says it is small is kept as Fastify keeps it; any other goes into segments as it comes
    const declaredSmall = declared <= SMALL_BODY;
    const chunks: Buffer[] = [];
    const segments: ArrayBuffer[] = [];
    let received = 0;
    const stop = () => {
      payload.removeListener('data', onData);
      payload.removeListener('end', onEnd);
      payload.removeListener('error', onEnd);
    };
    const onData = (c: Buffer | string) => {
      const chunk = typeof c === 'string' ? Buffer.from(c) : c;
      if (received + chunk.length > limit || (payload.receivedEncodedLength ?? 0) > limit) {
        stop();
        return reject(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
      }
      if (declaredSmall) {
        chunks.push(chunk);
        received += chunk.length;
        return;
      }
      // a small copy per chunk, never one of the whole body
      for (let from = 0; from < chunk.length; ) {
        const at = received % SEGMENT;
        if (at === 0) segments.push(new ArrayBuffer(SEGMENT));
        const n = Math.min(SEGMENT - at, chunk.length - from);
        new Uint8Array(segments[segments.length - 1], at, n).set(chunk.subarray(from, from + n));
        from += n;
        received += n;
      }
    };
    const onEnd = (err?: Error & { statusCode?: number }) => {
      stop();
      if (err) {
        if (!(typeof err.statusCode === 'number' && err.statusCode >= 400)) err.statusCode = 400;
        return reject(err);
      }
      if (!Number.isNaN(declared) && (payload.receivedEncodedLength || received) !== declared) return reject(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
      if (declaredSmall) resolve({ small: Buffer.concat(chunks, received) });
      else if (received <= SMALL_BODY) resolve({ small: joinSegments(segments, received) });
      else resolve({ segments, length: received });
    };
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', onEnd);
    payload.resume();
  });
}

/**
 * Installs the data-body parsers on `app` (the model routes' own scope): .npy (and octet-stream) bodies become a
 * Buffer when small, JSON bodies are parsed by Fastify's own JSON parser when small (a syntax error saying where: jsonBodies.ts); either becomes a LargeBody
 * when large. `jsonKind` says what a large JSON body holds on a route; routes `takesNpy` refuses answer 415 to
 * a .npy body.
 */
export function useDataBodies(
  app: FastifyInstance,
  limit: number,
  npyTypes: string[],
  jsonKind: (req: FastifyRequest) => LargeBodyKind,
  takesNpy: (req: FastifyRequest) => boolean,
): void {
  const json = jsonBodyParser(app);
  const keys = jsonKeyRules(app);
  app.removeContentTypeParser(['application/json', ...npyTypes]);
  app.addContentTypeParser('application/json', async (req: FastifyRequest, payload: Payload) => {
    // (before reading: a large body in another charset, or compressed, is refused without being read)
    refuseOtherCharsets(req);
    refuseContentCodings(req);
    const body = await readBody(req, payload, limit);
    if ('small' in body) {
      return json(req, body.small.toString('utf8'));
    }
    return new LargeBody(jsonKind(req), body.segments, body.length, keys);
  });
  app.addContentTypeParser(npyTypes, async (req: FastifyRequest, payload: Payload) => {
    if (!takesNpy(req)) throw new errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE(req.headers['content-type']);
    refuseContentCodings(req);
    const body = await readBody(req, payload, limit);
    return 'small' in body ? body.small : new LargeBody('predict-npy', body.segments, body.length);
  });
}
