/**
 * Server-Sent Events by hand on the raw response (no dependency, any Node ≥ 20): `id`, `event` and one `data`
 * line of JSON per event, a comment every 15 s so proxies keep the stream open, and a registry of open streams
 * that shutdown ends, since a server waits for every open response before it can close. From the start of a
 * shutdown on, every stream that ends (its job's last event sent, or the shutdown's end) ends with a `shutdown`
 * event, so a client can tell the service went away from a job that merely ended.
 *
 * A client that stops reading holds only a bounded amount of the service's memory. Once the socket's buffer is full
 * (write() answers false) nothing more is written until it drains: a `progress` event waiting then is replaced by a
 * newer one (progress is a snapshot, and a reconnecting client is replayed only its latest too), the other events
 * wait in order behind it, and the `: ping` comment is left out. A stream whose socket stays full for `stallMs` (the
 * service's bodyTimeoutMs) is closed, ended or not: its client reads nothing, and one that comes back reconnects
 * with Last-Event-ID. At shutdown a stream whose socket is full is closed at once, so that a client that reads
 * nothing does not hold the service's close.
 */
import type { ServerResponse } from 'node:http';

import type { FastifyReply } from 'fastify';

export interface EventStream {
  /**
   * One event; `id` null sends none (the client's Last-Event-ID stays that of the job's last event). While the
   * client does not keep up, a `progress` event replaces the one still waiting; no other event is dropped or reordered.
   */
  send(id: number | null, event: string, data: unknown): void;
  /** Ends the stream (with a `shutdown` event first while the service is shutting down), once what waits is written. */
  end(): void;
  readonly closed: boolean;
}

const SHUTDOWN = { message: 'the service is shutting down' };

/** The event of which only the latest matters: one waiting for the socket to drain is replaced by a newer one. */
const LATEST_ONLY = 'progress';

export class EventStreams {
  private readonly open = new Set<EventStream>();
  /** For every response not yet closed, ended or not: closes it at once if its socket is full. */
  private readonly closeIfFull = new Set<() => void>();
  private shuttingDown = false;

  /** @param stallMs how long a stream's socket may stay full (its client reading nothing) before it is closed */
  constructor(private readonly stallMs: number) {}

  get size(): number {
    return this.open.size;
  }

  /** Takes over `reply` as an event stream; `onClose` runs once when either side ends it. */
  start(reply: FastifyReply, onClose: () => void): EventStream {
    reply.hijack();
    const raw: ServerResponse = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    // Events sent while the socket's buffer is full wait here, in order, at most one of them LATEST_ONLY
    const waiting: { text: string; latestOnly: boolean }[] = [];
    let full = false;
    let endWhenWritten = false;
    let stalled: NodeJS.Timeout | undefined;
    const write = (text: string) => {
      if (raw.write(text)) return;
      full = true;
      clearTimeout(stalled);
      stalled = setTimeout(() => {
        reply.log.info(`${reply.request.method} ${reply.request.url}: event stream closed, its client read nothing for ${this.stallMs / 1000} s (bodyTimeoutMs)`);
        raw.destroy();
      }, this.stallMs).unref();
    };
    const put = (text: string, latestOnly: boolean) => {
      if (raw.destroyed) return;
      if (!full) return write(text);
      // (the newer one goes last: it is newer than every event waiting, so ids stay in order)
      if (latestOnly) {
        const older = waiting.findIndex((w) => w.latestOnly);
        if (older >= 0) waiting.splice(older, 1);
      }
      waiting.push({ text, latestOnly });
    };
    raw.on('drain', () => {
      full = false;
      clearTimeout(stalled);
      while (!full && waiting.length > 0) write(waiting.shift()!.text);
      if (endWhenWritten && waiting.length === 0) raw.end();
    });
    write('retry: 2000\n\n');
    let closed = false;
    // (a comment keeps an idle stream open through proxies; a full one would only add to what waits)
    const heartbeat = setInterval(() => {
      if (!full) write(': ping\n\n');
    }, 15_000);
    heartbeat.unref();
    const stream: EventStream = {
      send: (id, event, data) => {
        if (!closed) put(`${id === null ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`, event === LATEST_ONLY);
      },
      end: () => {
        if (closed) return;
        if (this.shuttingDown) stream.send(null, 'shutdown', SHUTDOWN);
        finish();
        // (events still waiting, the final one among them, are written first; the stall timer bounds the wait)
        if (waiting.length > 0) endWhenWritten = true;
        else raw.end();
      },
      get closed() {
        return closed;
      },
    };
    const finish = () => {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      this.open.delete(stream);
      onClose();
    };
    const closeIfFull = () => {
      if (full) raw.destroy();
    };
    raw.on('close', () => {
      clearTimeout(stalled);
      waiting.length = 0;
      this.closeIfFull.delete(closeIfFull);
      finish();
    });
    this.open.add(stream);
    this.closeIfFull.add(closeIfFull);
    return stream;
  }

  /** The service has begun to shut down: from now on every stream ends with a `shutdown` event. */
  shutdown(): void {
    this.shuttingDown = true;
  }

  /**
   * Ends every open stream with a last `shutdown` event (the service is closing). A stream whose socket is full is
   * closed instead, ended or not: its client is not reading, and waiting for it would hold the close (stallMs).
   */
  endAll(): void {
    this.shutdown();
    for (const close of [...this.closeIfFull]) close();
    for (const s of [...this.open]) s.end();
  }
}
