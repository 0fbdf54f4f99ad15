/**
 * Server-Sent Events by hand on the raw response (no dependency, any Node ≥ 20): `id`, `event` and one `data`
 * line of JSON per event, a comment every 15 s so proxies keep the stream open, and a registry of open streams
 * that shutdown ends, since a server waits for every open response before it can close.
 */
import type { ServerResponse } from 'node:http';

import type { FastifyReply } from 'fastify';

export interface EventStream {
  send(id: number, event: string, data: unknown): void;
  end(): void;
  readonly closed: boolean;
}

export class EventStreams {
  private readonly open = new Set<EventStream>();

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
        if (!closed) raw.write(`id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      },
      end: () => {
        if (closed) return;
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

  /** Ends every open stream with a last `shutdown` event (the service is closing). */
  endAll(): void {
    for (const s of [...this.open]) {
      s.send(0, 'shutdown', { message: 'the service is shutting down' });
      s.end();
    }
  }
}
