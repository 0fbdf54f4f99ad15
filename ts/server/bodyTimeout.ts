/**
 * A request body that stops arriving is ended: four uploads that declared 64 MiB and then sent nothing held the whole
 * in-flight budget (inFlightBodyLimit) for as long as their clients kept the sockets open, and every other POST was
 * answered 503 meanwhile (review s45). A body that sends no byte for `bodyTimeoutMs` is answered 408 RequestTimeout
 * and its connection is closed, which gives its reservation back; one that keeps sending, however slowly, goes on.
 */
import { PassThrough } from 'node:stream';

import type { FastifyInstance, FastifyRequest } from 'fastify';

import { BrainlatentError } from '../errors.js';
import { BODYLESS } from './bodyBudget.js';

export class BodyTimeoutError extends BrainlatentError {
  constructor(req: FastifyRequest, ms: number, received: number) {
    const route = `${req.method} ${req.routeOptions.url ?? req.url.split('?')[0]}`;
    super(
      `${route}: the request body sent nothing for ${ms / 1000} s (${received.toLocaleString('en')} bytes received${bytesDeclared(req)}); the connection is closed: send the body again, without pauses of that length (bodyTimeoutMs)`,
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
    // (one timer, pushed back by each chunk: not a new one per chunk of a 64 MiB upload)
    const timer = setTimeout(() => {
      // (a route that answered without reading the body, Fastify's early 413 or a 415, left nobody to tell: the
      // error had no listener and ended the process; review s45)
      if (reply.sent || reply.raw.headersSent) return;
      // (the answer closes the connection, and a second later the socket goes whether or not the client, still
      // meant to be sending, closes its side: a half-closed socket stayed for as long as the client kept it)
      void reply.header('connection', 'close');
      reply.raw.once('finish', () => setTimeout(() => req.raw.socket?.destroy(), 1000).unref());
      watched.destroy(new BodyTimeoutError(req, ms, received));
    }, ms).unref();
    payload.on('data', (chunk: Buffer) => {
      count(chunk);
      timer.refresh();
    });
    const stop = () => clearTimeout(timer);
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
