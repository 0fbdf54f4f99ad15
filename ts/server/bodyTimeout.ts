/**
 * A request body that stops arriving, or comes too slowly, is ended: four uploads that declared 64 MiB and then sent
 * nothing held the whole in-flight budget (inFlightBodyLimit) for as long as their clients kept the sockets open, and
 * every other POST was answered 503 meanwhile (review s45). A body that sends no byte for `bodyTimeoutMs` is answered
 * 408 RequestTimeout and its connection is closed, which gives its reservation back. So is one that keeps sending
 * but too slowly: past its first `bodyTimeoutMs` it must average MIN_BODY_BYTES_PER_S (the deadline moves on by a
 * second for each 1,024 bytes received, as Apache's mod_reqtimeout MinRate does). Before, a byte every few seconds
 * kept any body going, POST /v1/session's (answered without the token) included, until requestTimeoutMs (300 s).
 */
import { PassThrough } from 'node:stream';

import type { FastifyInstance, FastifyRequest } from 'fastify';

import { BrainlatentError } from '../errors.js';
import { BODYLESS } from './bodyBudget.js';

/** Bytes a second a body must average once its first bodyTimeoutMs have passed (a trickle is not a slow link: 8 kbit/s). */
export const MIN_BODY_BYTES_PER_S = 1024;

export class BodyTimeoutError extends BrainlatentError {
  /** `slowAfterMs`: the body kept coming but too slowly, ended that long after it began; else it sent nothing for `ms`. */
  constructor(req: FastifyRequest, ms: number, received: number, slowAfterMs?: number) {
    const route = `${req.method} ${req.routeOptions.url ?? req.url.split('?')[0]}`;
    const bytes = `${received.toLocaleString('en')} bytes received${bytesDeclared(req)}`;
    super(
      slowAfterMs === undefined
        ? `${route}: the request body sent nothing for ${ms / 1000} s (${bytes}); the connection is closed: send the body again, without pauses of that length (bodyTimeoutMs)`
        : `${route}: the request body came too slowly (${bytes}, in ${(slowAfterMs / 1000).toFixed(1)} s): past its first ${ms / 1000} s a body must average ${MIN_BODY_BYTES_PER_S.toLocaleString('en')} bytes a second; the connection is closed: send the body again, faster (bodyTimeoutMs)`,
      'RequestTimeout',
    );
  }
}

function bytesDeclared(req: FastifyRequest): string {
  const declared = Number(req.headers['content-length']);
  return Number.isFinite(declared) && declared > 0 ? ` of ${declared.toLocaleString('en')} declared` : '';
}

/** Ends every request body of `app`'s routes (its scope) that sends nothing for `ms`. */
export function useBodyTimeout(app: FastifyInstance, ms: number): void {
  app.addHook('preParsing', async (req, reply, payload) => {
    if (BODYLESS.has(req.method) || req.raw.destroyed) return payload;
    const declared = Number(req.headers['content-length'] ?? 0);
    if (!(declared > 0) && req.headers['transfer-encoding'] === undefined) return payload;
    let received = 0;
    const watched = new PassThrough();
    // (what Fastify's body limit reads from a stream put in the request's place, passed on)
    const count = (chunk: Buffer) => {
      received += chunk.length;
      const encoded = (payload as { receivedEncodedLength?: number }).receivedEncodedLength;
      (watched as PassThrough & { receivedEncodedLength: number }).receivedEncodedLength = encoded ?? received;
    };
    // (one timer, not touched by the chunks: when it fires it ends the body or sets itself for the next deadline,
    // so a 64 MiB upload costs a timer every bodyTimeoutMs or so, not one per chunk)
    const began = performance.now();
    let lastChunk = began;
    let stopped = false;
    const check = () => {
      if (stopped) return;
      const now = performance.now();
      const stallAt = lastChunk + ms;
      // (the first bodyTimeoutMs free, then a second more for each MIN_BODY_BYTES_PER_S bytes received)
      const slowAt = began + ms + (received * 1000) / MIN_BODY_BYTES_PER_S;
      if (now < Math.min(stallAt, slowAt)) {
        timer = setTimeout(check, Math.max(1, Math.min(stallAt, slowAt) - now)).unref();
        return;
      }
      // (a route that answered without reading the body, Fastify's early 413 or a 415, left nobody to tell: the
      // error had no listener and ended the process; review s45)
      if (reply.sent || reply.raw.headersSent) return;
      // (the answer closes the connection, and a second later the socket goes whether or not the client, still
      // meant to be sending, closes its side: a half-closed socket stayed for as long as the client kept it)
      void reply.header('connection', 'close');
      reply.raw.once('finish', () => setTimeout(() => req.raw.socket?.destroy(), 1000).unref());
      watched.destroy(new BodyTimeoutError(req, ms, received, now >= stallAt ? undefined : now - began));
    };
    let timer = setTimeout(check, ms).unref();
    payload.on('data', (chunk: Buffer) => {
      count(chunk);
      lastChunk = performance.now();
    });
    const stop = () => {
      stopped = true;
      clearTimeout(timer);
    };
    payload.once('end', stop);
    payload.once('error', (e: Error) => {
      stop();
      watched.destroy(e);
    });
    watched.once('close', stop);
    req.raw.once('close', stop);
    // (once answered, the body no longer matters: the timer goes with the answer)
    reply.raw.once('close', stop);
    reply.raw.once('finish', stop);
    // (the parser reading it has its own listener; this one keeps an error no parser waits for from being unhandled)
    watched.on('error', () => undefined);
    payload.pipe(watched);
    return watched;
  });
}
