/**
 * The `: ping` comment that keeps an idle event stream open through proxies is left out while the stream's socket
 * holds bytes it has not taken (it would only add to what waits for a client that reads nothing), and comes again
 * once the client has read what waited. The interval (15 s in the service) is the EventStreams option heartbeatMs;
 * the intervals here are vitest's fake ones, so each tick happens exactly when the test says, socket full or not.
 */
import type { IncomingMessage } from 'node:http';

import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

import { parseEvents, until } from './helpers.js';
import { fill, startSseApp, type SseApp } from './sseApp.js';

const HEARTBEAT_MS = 1_000;
const PING = ': ping\n\n';

/**
 * Reads until what has come satisfies `enough` (checked on the text after `from`), then pauses the response again;
 * fails if that has not come within 10 s.
 */
function readUntil(res: IncomingMessage, enough: (tail: string) => boolean, text = { all: '' }, from = 0): Promise<string> {
  return new Promise((ok, fail) => {
    const stop = () => {
      clearTimeout(deadline);
      res.pause();
      res.off('data', onData).off('close', onClose);
    };
    const failed = (why: string) => {
      stop();
      fail(new Error(`${why}; what came after the text read before: ${JSON.stringify(text.all.slice(from, from + 200))}`));
    };
    const deadline = setTimeout(() => failed('the text expected did not come within 10 s'), 10_000);
    const onData = (d: string) => {
      text.all += d;
      if (!enough(text.all.slice(from))) return;
      stop();
      ok(text.all);
    };
    const onClose = () => failed('the stream ended before the text expected');
    res.setEncoding('utf8');
    res.on('data', onData).on('close', onClose);
    res.resume();
  });
}

const pings = (text: string) => text.split(PING).length - 1;

describe("an event stream's heartbeat", () => {
  let app: SseApp;
  beforeAll(async () => {
    app = await startSseApp(600_000, { heartbeatMs: HEARTBEAT_MS });
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  afterAll(async () => app?.close());

  it('is left out while the socket is full, and comes again once the client has read what waited', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const opened = await app.open();
    const { served, res, stream } = opened;
    const text = { all: '' };
    // idle: a ping every heartbeatMs (none before)
    vi.advanceTimersByTime(HEARTBEAT_MS - 1);
    vi.advanceTimersByTime(1);
    await readUntil(res, (t) => t.endsWith(PING), text);
    expect(text.all).toBe(`retry: 2000\n\n${PING}`);
    // full: ten intervals pass, and nothing is added to what waits
    const last = await fill(opened);
    const waiting = served.writableLength;
    vi.advanceTimersByTime(HEARTBEAT_MS * 10);
    expect(served.writableLength).toBe(waiting);
    stream.send(last + 1, 'marker', {});
    const upToMarker = text.all.length;
    await readUntil(res, (t) => t.endsWith('event: marker\ndata: {}\n\n'), text, upToMarker);
    // every event came, in order, and no ping among them
    const { events, rest } = parseEvents(text.all);
    expect(rest).toBe('');
    expect(events.map((e) => e.id)).toEqual(Array.from({ length: last + 1 }, (_, i) => i + 1));
    expect(pings(text.all)).toBe(1);
    // drained (the socket holds nothing of the stream's): the next tick sends a ping again
    await until(() => served.writableLength === 0 || undefined, 10_000, 'the socket to take all the stream handed it');
    vi.advanceTimersByTime(HEARTBEAT_MS);
    const afterMarker = text.all.length;
    await readUntil(res, (t) => t === PING, text, afterMarker);
    expect(pings(text.all)).toBe(2);
    stream.end();
  }, 60_000);
});
