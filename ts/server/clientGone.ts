/**
 * A request whose client went away: its connection closed before the answer was written. The compute routes hand
 * the signal to their queues and to the sampler, so a waiting request gives up its place at once (a live client is
 * not refused for it) and a running one stops at its next step. The error handler logs the CancelledError that
 * follows at info ("client went away"), not as a failed request: there is nobody to answer, and nothing failed.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';

import { CancelledError } from '../errors.js';

const gone = new WeakSet<FastifyRequest>();

/** Whether the client of `req` closed its connection before the answer was written. */
export function clientWentAway(req: FastifyRequest): boolean {
  return gone.has(req);
}

/** A signal that aborts when the client goes away (at once if it already has); `done` stops watching. */
export function clientSignal(req: FastifyRequest, reply: FastifyReply): { signal: AbortSignal; done: () => void } {
  const abort = new AbortController();
  const res = reply.raw;
  const onClose = () => {
    if (res.writableFinished) return;
    gone.add(req);
    abort.abort(new CancelledError(`${req.method} ${req.routeOptions.url ?? req.url}: the client went away`));
  };
  // (a client can leave while its body is still being decoded, before the route starts watching)
  if (res.destroyed) onClose();
  else res.on('close', onClose);
  return { signal: abort.signal, done: () => res.off('close', onClose) };
}
