/**
 * A service-wide budget of request-body bytes in flight (the plugin's `inFlightBodyLimit`). Each route's body limit
 * bounds one body; many uploads at once were bounded by nothing (16 uploads of 56 MiB held 900 MiB). A request
 * reserves its declared Content-Length before its body is read (a chunked one, its bytes as they come) and gives them
 * back when its body has been read or its exchange has ended, an aborted upload included. A body that would take the
 * bytes in flight over the budget is answered 503 QueueFull with Retry-After (others' uploads end soon); one that
 * alone is larger than the budget, 413 LimitExceeded (a retry cannot help).
 */
import { Transform } from 'node:stream';

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { LimitError } from '../errors.js';
import { QueueFullError } from './workQueue.js';

/** Seconds a client is told to wait: uploads in flight end within about that. */
const RETRY_AFTER_S = 1;

/** Methods whose body Fastify never reads (it is discarded, not held). */
export const BODYLESS = new Set(['GET', 'HEAD', 'TRACE']);

const OPTION = 'inFlightBodyLimit';

export class BodyBudget {
  private used = 0;
  constructor(readonly limit: number) {}

  /** Bytes reserved by the bodies in flight now. */
  get inFlight(): number {
    return this.used;
  }

  /** Reserves `bytes`; false (nothing reserved) when that would take the bytes in flight over the limit. */
  take(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used -= bytes;
  }
}

/** 503 with Retry-After: the bodies in flight hold the budget now (a QueueFull, as a full compute queue is). */
export class BodyBudgetFullError extends QueueFullError {
  constructor(route: string, bytes: number, budget: BodyBudget, sofar: boolean) {
    super(route, RETRY_AFTER_S);
    this.message = `${route}: this request's ${sofar ? 'body so far (chunked) is' : 'body declares'} ${n(bytes)} bytes, and the request bodies this service is receiving hold ${n(budget.inFlight)} of its ${n(budget.limit)} bytes in flight at once (${OPTION}); retry after ${RETRY_AFTER_S} s`;
  }
}

const n = (bytes: number) => bytes.toLocaleString('en');
const routeOf = (req: FastifyRequest) => `${req.method} ${req.routeOptions.url ?? req.url.split('?')[0]}`;

function aloneOver(req: FastifyRequest, bytes: number, budget: BodyBudget, sofar: boolean): LimitError {
  return new LimitError(`${routeOf(req)}: this request's ${sofar ? 'body so far (chunked) is' : 'body declares'} ${n(bytes)} bytes, over this service's limit of ${n(budget.limit)} bytes of request bodies in flight at once (${OPTION}); send a smaller body`);
}

/** The bytes one request holds of the budget, given back once, when its body has been read or its exchange has ended. */
class Reservation {
  bytes = 0;
  released = false;
  constructor(
    private readonly budget: BodyBudget,
    private readonly req: FastifyRequest,
    private readonly reply: FastifyReply,
  ) {
    // (the request's 'close' comes once its body is read or its connection is gone; the response's once it is sent)
    req.raw.once('close', this.release);
    reply.raw.once('close', this.release);
  }

  readonly release = (): void => {
    if (this.released) return;
    this.released = true;
    this.req.raw.removeListener('close', this.release);
    this.reply.raw.removeListener('close', this.release);
    this.budget.give(this.bytes);
  };
}

/**
 * A chunked body's bytes reserved as they come, through a stream Fastify's parsers read in its place; a chunk that
 * would go over the budget ends it with the refusal (the rest of the body is not read).
 */
function countedBody(req: FastifyRequest, payload: NodeJS.ReadableStream, budget: BodyBudget, onRefused: () => void, held: Reservation): Transform {
  let received = 0;
  const counted = new Transform({
    transform(chunk: Buffer, _encoding, next) {
      received += chunk.length;
      // (what Fastify's body limit reads from a stream put in the request's place)
      (counted as Transform & { receivedEncodedLength: number }).receivedEncodedLength = received;
      // (once the exchange has ended, what still comes is not held by it)
      if (held.released) return next(null, chunk);
      if (received > budget.limit) return next(aloneOver(req, received, budget, true));
      if (!budget.take(chunk.length)) {
        onRefused();
        return next(new BodyBudgetFullError(routeOf(req), received, budget, true));
      }
      held.bytes += chunk.length;
      next(null, chunk);
    },
  });
  payload.on('error', (e: Error) => counted.destroy(e));
  payload.pipe(counted);
  return counted;
}

/**
 * Holds every request body of `app`'s routes (its scope) to `budget`; `onRefused` counts a 503. A body larger than
 * its route's own limit is left to the route (its own 413, without reading it).
 */
export function useBodyBudget(app: FastifyInstance, budget: BodyBudget, onRefused: () => void): void {
  app.addHook('preParsing', async (req, reply, payload) => {
    // (a request whose connection is already gone has nothing more to read)
    if (BODYLESS.has(req.method) || req.raw.destroyed) return payload;
    const length = req.headers['content-length'];
    const chunked = length === undefined && req.headers['transfer-encoding'] !== undefined;
    const declared = Number(length ?? 0);
    if (!chunked && !(declared > 0)) return payload;
    const routeLimit = req.routeOptions.bodyLimit;
    if (typeof routeLimit === 'number' && declared > routeLimit) return payload;
    if (declared > budget.limit) throw aloneOver(req, declared, budget, false);
    if (!budget.take(declared)) {
      onRefused();
      throw new BodyBudgetFullError(routeOf(req), declared, budget, false);
    }
    const held = new Reservation(budget, req, reply);
    held.bytes = declared;
    return chunked ? countedBody(req, payload, budget, onRefused, held) : payload;
  });
}
