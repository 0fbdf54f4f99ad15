/**
 * EventStreams (ts/server/sse.ts) on their own, in a Fastify app listening on a Unix socket: the kernel holds a fixed
 * ~200 KiB between a paused client and the service (TCP on loopback grows its buffers to megabytes as data flows),
 * so a test fills a stream's socket, and reads it back, in a few hundred kilobytes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { get, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import Fastify from 'fastify';

import { EventStreams, type EventStream, type EventStreamsOptions } from '../../ts/server/sse.js';

export interface OpenStream {
  stream: EventStream;
  /** The service's response of the stream. */
  served: ServerResponse;
  /** The client's response, paused: it reads nothing until resumed. */
  res: IncomingMessage;
}

export interface SseApp {
  streams: EventStreams;
  /** Opens a stream: the client's response comes back paused. */
  open(): Promise<OpenStream>;
  close(): Promise<void>;
}

export async function startSseApp(stallMs: number, options: EventStreamsOptions = {}): Promise<SseApp> {
  const dir = mkdtempSync(join(tmpdir(), 'bl-sse-'));
  const socketPath = join(dir, 'sse.sock');
  const streams = new EventStreams(stallMs, options);
  const app = Fastify();
  const waiting: ((s: { stream: EventStream; served: ServerResponse }) => void)[] = [];
  app.get('/events', async (_req, reply) => {
    const stream = streams.start(reply, () => {});
    waiting.shift()?.({ stream, served: reply.raw });
  });
  await app.listen({ path: socketPath });
  const clients: IncomingMessage[] = [];
  return {
    streams,
    open: async () => {
      const started = new Promise<{ stream: EventStream; served: ServerResponse }>((ok) => waiting.push(ok));
      const res = await new Promise<IncomingMessage>((ok, fail) => get({ socketPath, path: '/events' }, ok).on('error', fail));
      res.pause();
      clients.push(res);
      return { ...(await started), res };
    },
    close: async () => {
      for (const c of clients) c.destroy();
      streams.endAll();
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An event of 2,000 characters of data: the socket fills after ~100 of them. */
export const PAD = 'x'.repeat(2_000);

/**
 * Sends `tick` events (ids 1, 2, …) until the client has stopped reading and so has the kernel: the service's socket
 * holds bytes it has not taken, for 20 turns of the event loop running. Returns the last id sent.
 */
export async function fill({ stream, served, res }: OpenStream): Promise<number> {
  let id = 0;
  for (let turn = 0, full = 0; full < 20; turn++) {
    if (turn === 10_000 || served.destroyed) throw new Error(`the stream's socket did not fill: ${id} events of ${PAD.length} characters sent`);
    for (let i = 0; i < 5; i++) stream.send(++id, 'tick', PAD);
    await new Promise((ok) => setImmediate(ok));
    full = res.socket.isPaused() && served.writableLength > 0 ? full + 1 : 0;
  }
  return id;
}
