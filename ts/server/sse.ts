/**
 * Server-Sent Events by hand on the raw response (no dependency, any Node ≥ 20): `id`, `event` and one `data`
 * line of JSON per event, a comment every 15 s so proxies keep the stream open, and a registry of open streams
 * that shutdown ends, since a server waits for every open response before it can close. From the start of a
 * shutdown on, every stream that ends (its job's last event sent, or the shutdown's end) ends with a `shutdown`
 * event, so a client can tell the service went away from a job that merely ended.
 */
import type { ServerResponse } from 'node:http';

import type { FastifyReply } from 'fastify';

export interface EventStream {
  /** One event; `id` null sends none (the client's Last-Event-ID stays that of the job's last event). */
  send(id: number | null, event: string, data: unknown): void;
  /** Ends the stream (with a `shutdown` event first while the service is shutting down). */
  end(): void;
  readonly closed: boolean;
}

const SHUTDOWN = { message: 'the service is shutting down' };

export class EventStreams {
  private readonly open = new Set<EventStream>();
  private shuttingDown = false;

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
    raw.write('retry: 2000\n\n');
    let closed = false;
    const heartbeat = setInterval(() => raw.write(': ping\n\n'), 15_000);
    heartbeat.unref();
    const stream: EventStream = {
      send: (id, event, data) => {
        if (!closed) raw.write(`${id === null ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      },
      end: () => {
        if (closed) return;
        if (this.shuttingDown) stream.send(null, 'shutdown', SHUTDOWN);
        finish();
        raw.end();
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
    raw.on('close', finish);
    this.open.add(stream);
    return stream;
  }

  /** The service has begun to shut down: from now on every stream ends with a `shutdown` event. */
  shutdown(): void {
    this.shuttingDown = true;
  }

  /** Ends every open stream with a last `shutdown` event (the service is closing). */
  endAll(): void {
    this.shutdown();
    for (const s of [...this.open]) s.end();
  }
}
