/** A service on a free local port with a temporary root, and small HTTP helpers (real sockets, not inject). */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { writeNpy } from '../../ts/io/npy.js';
import { RidgeCV } from '../../ts/ridge/RidgeCV.js';
import { startServer, type RunningServer, type ServeOptions } from '../../ts/server/serve.js';
import { planted } from '../helpers/random.js';

/** A token the service takes (at least 16 characters, not one repeated: tokenStrength.ts), for tests that need one. */
export const TEST_TOKEN = 'test-token-0123456789abcdef';
/** A second one, for tests of two services. */
export const OTHER_TEST_TOKEN = 'test-token-fedcba9876543210';

export interface TestServer extends RunningServer {
  root: string;
  /** fetch relative to the server, JSON body sent and parsed. */
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; headers: Headers; json: any; text: string }>;
  stop(): Promise<void>;
}

export async function startTestServer(options: Partial<ServeOptions> = {}, root?: string): Promise<TestServer> {
  const dir = root ?? realpathSync(mkdtempSync(join(tmpdir(), 'bl-serve-')));
  const s = await startServer({ root: dir, port: 0, defaultMetrics: false, ...options });
  const call: TestServer['call'] = async (method, path, body, headers = {}) => {
    const r = await fetch(`${s.url}${path}`, {
      method,
      headers: { ...(body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array) ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body),
    });
    const text = await r.text();
    let json: any = null;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: r.status, headers: r.headers, json, text };
  };
  return {
    ...s,
    root: dir,
    call,
    stop: async () => {
      await s.close();
      if (!root) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface SseEvent {
  id: number;
  event: string;
  data: any;
}

/** The events of event-stream text, and what follows its last whole block (comments and blocks without `event` skipped). */
export function parseEvents(text: string): { events: SseEvent[]; rest: string } {
  const events: SseEvent[] = [];
  let rest = text;
  let cut: number;
  while ((cut = rest.indexOf('\n\n')) >= 0) {
    const block = rest.slice(0, cut);
    rest = rest.slice(cut + 2);
    const fields: Record<string, string> = {};
    for (const line of block.split('\n')) {
      if (!line || line.startsWith(':')) continue;
      const i = line.indexOf(':');
      fields[line.slice(0, i)] = line.slice(i + 1).trimStart();
    }
    if (fields.event) events.push({ id: Number(fields.id), event: fields.event, data: JSON.parse(fields.data) });
  }
  return { events, rest };
}

/** Reads a job's event stream until its final event (result or error) or the stream's end. */
export async function readEvents(url: string, headers: Record<string, string> = {}, onEvent?: (e: SseEvent) => void): Promise<SseEvent[]> {
  const r = await fetch(url, { headers: { accept: 'text/event-stream', ...headers } });
  if (r.status !== 200) throw new Error(`events: HTTP ${r.status} ${await r.text()}`);
  const events: SseEvent[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
    const parsed = parseEvents(buffer + decoder.decode(chunk, { stream: true }));
    buffer = parsed.rest;
    for (const e of parsed.events) {
      events.push(e);
      onEvent?.(e);
    }
  }
  return events;
}

/** Polls until `check` returns a value (not undefined), or fails after `ms`. */
export async function until<T>(check: () => Promise<T | undefined> | T | undefined, ms = 60_000, what = 'condition'): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `brainlatent serve` as a process (the built CLI, `args` added to its command line) on a free port: its URL, the process, and its exit code to come. */
export async function startServeCli(root: string, deadline: number, env: NodeJS.ProcessEnv = process.env, args: readonly string[] = []) {
  const cli = resolve(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
  const proc = spawn(process.execPath, [cli, 'serve', '--root', root, '--port', '0', '--shutdown-deadline', String(deadline), ...args], { stdio: ['ignore', 'pipe', 'inherit'], env });
  let out = '';
  const url = await new Promise<string>((ok, fail) => {
    proc.once('exit', (c) => fail(new Error(`serve exited ${c}: ${out}`)));
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+?)\/ /.exec(out);
      if (m) ok(m[1]);
    });
  });
  const exited = new Promise<number | null>((ok) => proc.once('exit', (code) => ok(code)));
  /** What the service has printed on stdout so far. */
  const output = () => out;
  return { proc, url, exited, output };
}

/** A test server with a small ridge model (4 features → 3 targets) saved under models/ridge.safetensors and loaded as `name`. */
export async function startServerWithRidge(name = 'z'): Promise<TestServer> {
  const s = await startTestServer();
  mkdirSync(join(s.root, 'models'));
  const p = planted(60, 4, 3, 5);
  await (await new RidgeCV({ alphas: [1, 10], folds: 3 }).fit(p.x, p.y)).save(join(s.root, 'models', 'ridge.safetensors'));
  const r = await s.call('POST', '/v1/models', { kind: 'ridge', name, path: 'models/ridge.safetensors' });
  if (r.status !== 201) throw new Error(`loading the test ridge model: ${r.status} ${r.text}`);
  return s;
}

/**
 * The body of a ridge-fit job in `s`'s root that is accepted (its inputs' headers are sound, as the submission checks
 * them) and fails once it runs, at its fit (a NaN in Y, which only the engine finds): for tests of a job that has
 * ended. Writes fail-x.npy and fail-y.npy in the root the first time.
 */
export async function failingFitJob(s: TestServer, out: string): Promise<{ kind: 'ridge-fit'; config: Record<string, unknown> }> {
  const [x, y] = [join(s.root, 'fail-x.npy'), join(s.root, 'fail-y.npy')];
  if (!existsSync(y)) {
    await writeNpy(x, new Float32Array(20 * 3).map((_, i) => Math.sin(i)), [20, 3]);
    await writeNpy(y, new Float32Array(20 * 2).map((_, i) => (i === 5 ? Number.NaN : Math.cos(i))), [20, 2]);
  }
  return { kind: 'ridge-fit', config: { out, x: 'fail-x.npy', y: 'fail-y.npy', folds: 2 } };
}
