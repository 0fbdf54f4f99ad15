/**
 * An event stream whose client reads, slowly, over a real socket, is not cut off. The stall limit (bodyTimeoutMs) ran
 * from the moment the socket filled until all the service held for it was taken, however much the client read
 * meanwhile: one that took longer than the limit over its last events (16 KiB, or one large event) was closed while
 * it read, the ended stream's final event unsent. Now the limit is of no progress: each piece the socket takes
 * restarts it.
 */
import type { IncomingMessage } from 'node:http';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { parseEvents } from './helpers.js';
import { fill, startSseApp, type SseApp } from './sseApp.js';

/** The stall limit: a reader that takes 64 KiB every 50 ms moves bytes far more often than this. */
const STALL_MS = 2_000;

/** A last event the client takes ~5 s to read at that pace: more than twice the limit. */
const LAST = 'y'.repeat(6 << 20);

/**
 * Reads the response, 64 KiB (and what came with them) at a time with 50 ms between, until it ends or what has come
 * satisfies `enough`; then the text read and whether the response came whole. It stops listening once it resolves.
 */
function readSlowly(res: IncomingMessage, enough: (text: string) => boolean = () => false): Promise<{ text: string; complete: boolean }> {
  return new Promise((ok) => {
    let text = '';
    let since = 0;
    const done = (complete: boolean) => {
      res.off('data', onData).off('close', onClose);
      ok({ text, complete });
    };
    const onData = (d: string) => {
      text += d;
      since += d.length;
      if (enough(text)) {
        res.pause();
        return done(false);
      }
      if (since < 64 * 1024) return;
      since = 0;
      res.pause();
      setTimeout(() => res.resume(), 50);
    };
    const onClose = () => done(res.complete);
    res.setEncoding('utf8');
    res.on('data', onData).on('close', onClose);
    res.resume();
  });
}

describe('an event stream whose client reads slowly', () => {
  let app: SseApp;
  beforeAll(async () => {
    app = await startSseApp(STALL_MS);
  });
  afterAll(async () => app?.close());

  it('ended, with a large last event: the client gets all of it, however long it takes, as long as it reads', async () => {
    const opened = await app.open();
    const last = await fill(opened);
    opened.stream.send(last + 1, 'result', { note: LAST });
    opened.stream.end();
    const { text, complete } = await readSlowly(opened.res);
    const { events, rest } = parseEvents(text);
    expect([complete, opened.served.writableFinished, rest]).toEqual([true, true, '']);
    expect(events.map((e) => e.id)).toEqual(Array.from({ length: last + 1 }, (_, i) => i + 1));
    expect(events.at(-1)).toMatchObject({ event: 'result', data: { note: LAST } });
  }, 60_000);

  it('live, with a large event: the stream stays open while the client reads it, and the events after it follow', async () => {
    const opened = await app.open();
    const last = await fill(opened);
    opened.stream.send(last + 1, 'stage', { note: LAST });
    opened.stream.send(last + 2, 'after', { note: 'after' });
    // (the tail only: the text grows to megabytes, a chunk at a time)
    const { text } = await readSlowly(opened.res, (t) => t.endsWith('data: {"note":"after"}\n\n'));
    const { events } = parseEvents(text);
    expect(opened.served.destroyed).toBe(false);
    expect(events.slice(-2)).toEqual([
      { id: last + 1, event: 'stage', data: { note: LAST } },
      { id: last + 2, event: 'after', data: { note: 'after' } },
    ]);
    // and the stream goes on
    opened.stream.send(last + 3, 'later', {});
    opened.stream.end();
    const tail = await readSlowly(opened.res);
    expect([tail.complete, parseEvents(tail.text).events.map((e) => e.event)]).toEqual([true, ['later']]);
  }, 60_000);

  it('ended, its client reading nothing: closed after the stall limit, its last event unsent', async () => {
    const opened = await app.open();
    const last = await fill(opened);
    opened.stream.send(last + 1, 'result', {});
    opened.stream.end();
    const closed = new Promise<void>((ok) => opened.served.once('close', ok));
    await closed;
    expect([opened.served.writableFinished, opened.served.destroyed]).toEqual([false, true]);
  }, 60_000);
});
