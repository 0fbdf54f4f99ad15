/**
 * An event stream whose client stops reading, over a real socket: the service wrote every progress event into the
 * response's buffer whether or not the client read, so a stalled client grew the service's memory by each one for as
 * long as the job ran. Now, once the socket's buffer is full, progress is held as its latest value only, the other
 * events wait behind it in order, and a client that reads nothing for bodyTimeoutMs is disconnected.
 */
import { get, type IncomingMessage, type ServerResponse } from 'node:http';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { parseEvents, startTestServer, until, type TestServer } from './helpers.js';
import { PIECE } from '../../ts/server/sse.js';
import { StartedJobsRunner } from './startedJobsRunner.js';

/** A progress message of 2,000 characters: the service's buffers fill after a few thousand events, not millions. */
const PAD = 'x'.repeat(2_000);

/** Far above what the response holds once full (its 16 KiB high-water mark and one event), far below 2,500 events. */
const BOUND = 256 * 1024;

interface Stalled {
  id: string;
  /** The service's response of the stream. */
  served: ServerResponse;
  /** The client's response, paused: it reads nothing until resumed. */
  res: IncomingMessage;
  /** Emits one progress event, of stage `index` (0 'world', 1 'report'); returns its message. */
  progress: (index: number) => string;
}

/** The clients' responses, destroyed before their service is stopped (a stalled one would hold its close). */
const clients: IncomingMessage[] = [];

/** Submits a job, opens its event stream and stops reading it, then emits progress until the service's socket is full. */
async function stalledStream(s: TestServer, runner: StartedJobsRunner, out: string): Promise<Stalled> {
  const submitted = await s.call('POST', '/v1/jobs', { kind: 'demo', out });
  expect(submitted.status, submitted.text).toBe(202);
  const id = submitted.json.id as string;
  const path = `/v1/jobs/${id}/events`;
  const served = new Promise<ServerResponse>((ok) => {
    const onRequest = (req: IncomingMessage, r: ServerResponse) => {
      if (req.url !== path) return;
      s.app.server.off('request', onRequest);
      ok(r);
    };
    s.app.server.on('request', onRequest);
  });
  const res = await new Promise<IncomingMessage>((ok, fail) => get(`${s.url}${path}`, { headers: { accept: 'text/event-stream' } }, ok).on('error', fail));
  clients.push(res);
  expect(res.statusCode).toBe(200);
  res.pause();
  let n = 0;
  const progress = (index: number) => {
    const message = `${++n} ${PAD}`;
    runner.board.progress(id, { stage: index === 0 ? 'world' : 'report', index, stages: 2, fraction: Math.min(1, n / 100_000), message });
    return message;
  };
  const r = await served;
  // until the client has stopped reading (its response's buffer is full) and so have the kernel's buffers between:
  // the service's socket holds bytes it has not taken, for 20 turns of the event loop running
  let full = 0;
  for (let turn = 0; full < 20 && !r.destroyed; turn++) {
    if (turn === 100_000) throw new Error(`the stream's socket did not fill: ${n} progress events of ${PAD.length} characters written`);
    for (let i = 0; i < 10; i++) progress(0);
    await new Promise((ok) => setImmediate(ok));
    full = res.socket.isPaused() && r.writableLength > 0 ? full + 1 : 0;
  }
  return { id, served: r, res, progress };
}

/** Everything the client receives from now on, to the end of the response. */
function readRest(res: IncomingMessage): Promise<string> {
  return new Promise((ok, fail) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (d: string) => (text += d));
    res.on('end', () => ok(text));
    res.on('error', fail);
    res.resume();
  });
}

describe('an event stream whose client stops reading', () => {
  let s: TestServer;
  const runner = new StartedJobsRunner();
  beforeAll(async () => {
    s = await startTestServer({ runner });
  });
  afterAll(async () => {
    for (const c of clients) c.destroy();
    await s?.stop();
  });

  it('holds progress as its latest value, then sends it and the events after it, in order, once the client reads', async () => {
    const { id, served, res, progress } = await stalledStream(s, runner, 'bp1');
    expect(served.writableLength).toBeGreaterThan(0);
    // 2,500 more progress events (5 MB) and a stage between them, while the client reads nothing
    let largest = 0;
    const emit = async (count: number, index: number) => {
      for (let i = 0; i < count; i++) {
        progress(index);
        if (i % 50 === 49) {
          largest = Math.max(largest, served.writableLength, served.socket?.writableLength ?? 0);
          await new Promise((ok) => setImmediate(ok));
        }
      }
    };
    await emit(1_500, 0);
    await emit(999, 1);
    const latest = progress(1);
    runner.board.finish(id, 'done', { result: { note: 'done' } });
    largest = Math.max(largest, served.writableLength, served.socket?.writableLength ?? 0);
    // a real count of bytes the service holds for this client, not a flag: without the hold it was the whole 5 MB
    expect(largest).toBeGreaterThan(0);
    expect(largest).toBeLessThan(BOUND);
    // (the socket is handed one piece at a time, each of these events whole: 17,613 bytes were held before)
    expect(largest).toBeLessThanOrEqual(PIECE + 16);
    expect(served.destroyed).toBe(false);

    const { events, rest } = parseEvents(await readRest(res));
    expect(rest).toBe('');
    const ids = events.map((e) => e.id);
    expect(ids.every((v, i) => i === 0 || v > ids[i - 1]), `ids ${ids.slice(-5).join(', ')}`).toBe(true);
    // after the stage that began while the client read nothing: that stage's latest progress only, then the result
    const stage = events.findIndex((e) => e.event === 'stage' && e.data.stage === 'report');
    expect(stage).toBeGreaterThan(0);
    expect(events.slice(stage + 1).map((e) => e.event)).toEqual(['progress', 'result']);
    expect(events[stage + 1].data.message).toBe(latest);
    expect(events[stage + 2].data).toMatchObject({ id, state: 'done', result: { note: 'done' } });
    // the first stage's events before it are those written before the socket filled, in the order emitted
    const before = events.slice(0, stage).filter((e) => e.event === 'progress').map((e) => Number(e.data.message.split(' ')[0]));
    expect(before.every((v, i) => i === 0 || v > before[i - 1])).toBe(true);
  }, 120_000);
});

describe('an event stream whose client reads nothing for bodyTimeoutMs', () => {
  let s: TestServer;
  const runner = new StartedJobsRunner();
  beforeAll(async () => {
    s = await startTestServer({ runner, bodyTimeoutMs: 1_000 });
  });
  afterAll(async () => {
    for (const c of clients) c.destroy();
    await s?.stop();
  });

  it('is disconnected, its job unaffected, and a client that reconnects is replayed the latest progress', async () => {
    const { id, served, res, progress } = await stalledStream(s, runner, 'bp2');
    // closed, and so no longer fed by the board ('close' follows the socket's end)
    await until(() => (served.destroyed && runner.board.listenerCount() === 0) || undefined, 20_000, 'the stalled stream to be closed');
    // the job runs on
    expect(runner.board.get(id)!.state).toBe('running');
    const ended = new Promise<void>((ok) => res.once('close', ok));
    res.resume();
    await ended;
    expect(res.complete).toBe(false);
    // (its client reconnects and is replayed what it missed: the latest progress; then it gets the result)
    const latest = progress(0);
    const again = await new Promise<IncomingMessage>((ok, fail) => get(`${s.url}/v1/jobs/${id}/events`, ok).on('error', fail));
    const text = readRest(again);
    runner.board.finish(id, 'done', { result: {} });
    const { events } = parseEvents(await text);
    expect(events.slice(-2).map((e) => [e.event, e.data.message ?? e.data.state])).toEqual([
      ['progress', latest],
      ['result', 'done'],
    ]);
  }, 120_000);

  it("does not hold the service's close: a stream whose client reads nothing is closed at once", async () => {
    const closing = new StartedJobsRunner();
    // (a limit the test would time out before: the close must not wait for it)
    const t = await startTestServer({ runner: closing, bodyTimeoutMs: 600_000 });
    // one stream whose job has ended, its result waiting behind the full socket, and one whose job runs on
    const ended = await stalledStream(t, closing, 'bp3');
    closing.board.finish(ended.id, 'done', { result: {} });
    const running = await stalledStream(t, closing, 'bp4');
    expect([ended.served.destroyed, ended.served.writableFinished, running.served.destroyed]).toEqual([false, false, false]);
    await t.stop();
    expect([ended.served.destroyed, running.served.destroyed]).toEqual([true, true]);
  }, 60_000);
});
