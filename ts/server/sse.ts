/**
 * Server-Sent Events by hand on the raw response (no dependency, any Node ≥ 20): `id`, `event` and one `data`
 * line of JSON per event, a comment every 15 s so proxies keep the stream open, and a registry of open streams
 * that shutdown ends, since a server waits for every open response before it can close. From the start of a
 * shutdown on, every stream that ends (its job's last event sent, or the shutdown's end) ends with a `shutdown`
 * event, so a client can tell the service went away from a job that merely ended.
 *
 * A client that stops reading holds only a bounded amount of the service's memory. The service hands the socket one
 * piece of at most PIECE bytes at a time, the next once the socket has taken it (Node's own buffer would pass on
 * everything it holds in one write, done only once all of it is taken). While the socket holds a piece it has not
 * taken, the events sent wait here: a `progress` event waiting then is replaced by a newer one (progress is a
 * snapshot, and a reconnecting client is replayed only its latest too), the other events wait in order behind it,
 * and the `: ping` comment is left out. A stream whose socket takes none of its bytes for `stallMs` (the service's
 * bodyTimeoutMs) is closed, ended or not: its client reads nothing, and one that comes back reconnects with
 * Last-Event-ID. Each piece the socket takes restarts that wait, so a client that reads, however slowly, is not cut
 * off (before, the wait ran from the moment the socket filled until all the service held was taken: a client that
 * took longer than stallMs over its last 16 KiB, or over one large event, was closed while it read). At shutdown a
 * stream whose socket holds bytes it has not taken is closed at once, so that a client that reads nothing does not
 * hold the service's close.
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

/** EventStreams' settings other than the stall limit (internal: the service uses the defaults, tests shorten them). */
export interface EventStreamsOptions {
  /** How often a stream whose socket holds nothing gets a `: ping` comment, in ms (HEARTBEAT_MS). */
  heartbeatMs?: number;
}

const SHUTDOWN = { message: 'the service is shutting down' };

/** The event of which only the latest matters: one waiting for the socket to drain is replaced by a newer one. */
const LATEST_ONLY = 'progress';

/** A comment every 15 s keeps an idle stream open through proxies that close a connection quiet for longer. */
const HEARTBEAT_MS = 15_000;

/**
 * The most bytes handed to a stream's socket at once: what it takes, piece by piece, is the progress the stall limit
 * waits for (a client reading 1 byte in 10 s keeps a stream open past a 30 s limit only if pieces are that small;
 * at 4 KiB one reading ~140 B/s or more does, and the kernel's own buffers report what they take in larger steps).
 */
export const PIECE = 4096;

export class EventStreams {
  private readonly open = new Set<EventStream>();
  /** For every response not yet closed, ended or not: closes it at once if its socket holds bytes it has not taken. */
  private readonly closeIfFull = new Set<() => void>();
  private shuttingDown = false;
  private readonly heartbeatMs: number;

  /** @param stallMs how long a stream's socket may take none of its bytes (its client reading nothing) before it is closed */
  constructor(
    private readonly stallMs: number,
    options: EventStreamsOptions = {},
  ) {
    this.heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
  }

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
    // Events not yet handed to the socket wait here, in order, at most one of them LATEST_ONLY; `rest` is what is left
    // of the one being handed over, piece by piece
    const waiting: { text: string; latestOnly: boolean }[] = [];
    let rest: Buffer | undefined;
    let endWhenWritten = false;
    let stalled: NodeJS.Timeout | undefined;
    /** The socket holds bytes of this stream it has not taken (passed on to the kernel) yet. */
    const held = () => raw.writableLength > 0;
    /** Something waits to be written: nothing more is, and no heartbeat is added, until the socket takes it. */
    const full = () => held() || rest !== undefined || waiting.length > 0;
    // The stall timer runs while the socket holds a piece it has not taken: each piece taken stops it, and the next
    // one handed over starts it again, so it measures how long the socket has taken nothing, not how long it has held
    // something
    const stopWatch = () => {
      clearTimeout(stalled);
      stalled = undefined;
    };
    const watch = () => {
      if (raw.destroyed || !held()) stopWatch();
      else if (!stalled) {
        stalled = setTimeout(() => {
          reply.log.info(`${reply.request.method} ${reply.request.url}: event stream closed, its client read nothing for ${this.stallMs / 1000} s (bodyTimeoutMs)`);
          raw.destroy();
        }, this.stallMs).unref();
      }
    };
    // (a piece the socket has taken: progress, and room for the next)
    const taken = (e?: Error | null) => {
      if (e) return;
      stopWatch();
      flush();
    };
    const flush = () => {
      // (a piece the kernel takes at once leaves nothing held: the next follows in the same turn)
      while (!raw.destroyed && !held()) {
        if (rest === undefined) {
          const next = waiting.shift();
          if (!next) break;
          rest = Buffer.from(next.text);
        }
        const piece = rest.length > PIECE ? rest.subarray(0, PIECE) : rest;
        rest = rest.length > PIECE ? rest.subarray(PIECE) : undefined;
        raw.write(piece, taken);
      }
      // (the end follows what waits, the final event among them; the stall timer bounds the wait)
      if (endWhenWritten && rest === undefined && waiting.length === 0 && !raw.destroyed && !raw.writableEnded) raw.end();
      watch();
    };
    const put = (text: string, latestOnly: boolean) => {
      if (raw.destroyed) return;
      // (the newer one goes last: it is newer than every event waiting, so ids stay in order)
      if (latestOnly) {
        const older = waiting.findIndex((w) => w.latestOnly);
        if (older >= 0) waiting.splice(older, 1);
      }
      waiting.push({ text, latestOnly });
      flush();
    };
    // (the end's last bytes taken: nothing is held any more)
    raw.on('finish', watch);
    put('retry: 2000\n\n', false);
    let closed = false;
    // (a comment keeps an idle stream open through proxies; a full one would only add to what waits)
    const heartbeat = setInterval(() => {
      if (!full()) put(': ping\n\n', false);
    }, this.heartbeatMs);
    heartbeat.unref();
    const stream: EventStream = {
      send: (id, event, data) => {
        if (!closed) put(`${id === null ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`, event === LATEST_ONLY);
      },
      end: () => {
        if (closed) return;
        if (this.shuttingDown) stream.send(null, 'shutdown', SHUTDOWN);
        finish();
        endWhenWritten = true;
        flush();
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
      if (full()) raw.destroy();
    };
    raw.on('close', () => {
      stopWatch();
      waiting.length = 0;
      rest = undefined;
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
   * Ends every open stream with a last `shutdown` event (the service is closing). A stream whose socket holds bytes
   * it has not taken is closed instead, ended or not: its client is not reading, and waiting for it would hold the
   * close (stallMs).
   */
  endAll(): void {
    this.shutdown();
    for (const close of [...this.closeIfFull]) close();
    for (const s of [...this.open]) s.end();
  }
}
