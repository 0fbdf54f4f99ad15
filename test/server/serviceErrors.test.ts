/**
 * Service-wide error answers over real HTTP: run folders that overlap, and every error body's shape
 * (error, message, code) — with no server paths in what a client is told.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CancelledError } from '../../ts/errors.js';
import { encodeNpy, writeNpy } from '../../ts/io/npy.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import { overlaps } from '../../ts/server/jobs/jobBoard.js';
import { LocalJobRunner } from '../../ts/server/jobs/LocalJobRunner.js';
import { rootRelative } from '../../ts/server/rootPaths.js';
import { readEvents, startTestServer, until, TEST_TOKEN, type TestServer } from './helpers.js';
import { saveOverflowingRidgeModel } from '../helpers/overflowModel.js';

/** A runner whose jobs run until cancelled (no job process). */
const idleRunner = () =>
  new LocalJobRunner({
    concurrency: 1,
    execute: (_spec, control) => new Promise((_ok, fail) => control.signal.addEventListener('abort', () => fail(new CancelledError('cancelled')), { once: true })),
  });

describe('run folders that overlap', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ runner: idleRunner(), shutdownDeadlineMs: 0 });
  });
  afterAll(async () => s?.stop());

  it('overlaps() compares path segments, not string prefixes', () => {
    expect(overlaps('/r/nest', '/r/nest')).toBe(true);
    expect(overlaps('/r/nest', '/r/nest/world')).toBe(true);
    expect(overlaps('/r/nest/world/', '/r/nest')).toBe(true);
    expect(overlaps('/r/nest', '/r/nestle')).toBe(false);
    expect(overlaps('/r/a/b', '/r/a/c')).toBe(false);
  });

  it('refuses a job whose run folder is inside a running or queued job\'s, or holds it (409 naming the other job and its folder)', async () => {
    const demo = (out: string) => s.call('POST', '/v1/jobs', { kind: 'demo', out });
    const nest = await demo('nest');
    expect(nest.status, nest.text).toBe(202);
    const queued = await demo('other/q');
    expect(queued.status, queued.text).toBe(202);
    for (const [out, other, otherOut] of [['nest/world', nest.json.id, 'nest'], ['other', queued.json.id, 'other/q'], ['nest', nest.json.id, 'nest']]) {
      const r = await demo(out);
      expect(r.status, `${out}: ${r.text}`).toBe(409);
      expect(r.json).toMatchObject({ error: 'Conflict', code: 'JobConflict', name: 'JobConflictError' });
      expect(r.json.message).toContain(`job ${other} is already writing to ${otherOut}`);
    }
    // a sibling whose name starts the same is another folder
    const sibling = await demo('nestle');
    expect(sibling.status, sibling.text).toBe(202);
    // once the job has ended, its folder is free again
    await s.call('DELETE', `/v1/jobs/${nest.json.id}`);
    expect((await demo('nest/world')).status).toBe(202);
  });
});

describe('every error body has error, message and code', () => {
  it('a missing or wrong token: 401 with code Unauthorized', async () => {
    const s = await startTestServer({ token: TEST_TOKEN });
    try {
      for (const headers of [{}, { authorization: 'Bearer nope' }] as Record<string, string>[]) {
        const r = await s.call('GET', '/v1/jobs', undefined, headers);
        expect(r.status).toBe(401);
        expect(r.json).toEqual({ error: 'Unauthorized', message: expect.any(String), code: 'Unauthorized' });
      }
    } finally {
      await s.stop();
    }
  });

  // review s43: these were Fastify's own bodies ({error, code, message, statusCode}, no name)
  it("a URL the router cannot decode (400) or a path parameter over Fastify's 100 characters (414): the same format, through frameworkErrors", async () => {
    const s = await startTestServer({ token: TEST_TOKEN });
    try {
      const bad = await s.call('GET', '/v1/models/%ZZ');
      expect(bad.status, bad.text).toBe(400);
      expect(bad.json).toEqual({ error: 'Bad Request', problems: ["'/v1/models/%ZZ' is not a valid url component"], message: "'/v1/models/%ZZ' is not a valid url component", code: 'FST_ERR_BAD_URL', name: 'FastifyError' });
      const long = await s.call('GET', `/v1/jobs/${'a'.repeat(101)}`);
      expect(long.status, long.text).toBe(414);
      expect(long.json).toEqual({ error: 'URI Too Long', message: `'/v1/jobs/${'a'.repeat(101)}' is exceeding the max param length`, code: 'FST_ERR_MAX_PARAM_LENGTH', name: 'FastifyError' });
    } finally {
      await s.stop();
    }
  });

  it('while the service shuts down: 503 in the same format, with a code and Retry-After', async () => {
    const runner = idleRunner();
    const s = await startTestServer({ runner, shutdownDeadlineMs: 60_000 });
    const job = await s.call('POST', '/v1/jobs', { kind: 'demo', out: 'd' });
    expect(job.status, job.text).toBe(202);
    // closing waits for the running job (up to the deadline): meanwhile the service still listens
    const closed = s.stop();
    try {
      for (const [method, path] of [['GET', '/v1/jobs'], ['POST', '/v1/jobs'], ['GET', '/healthz']]) {
        const r = await s.call(method, path, method === 'POST' ? { kind: 'demo', out: 'e' } : undefined);
        expect(r.status, `${method} ${path}: ${r.text}`).toBe(503);
        expect(r.json).toEqual({ error: 'Service Unavailable', message: `${method} ${path}: the service is shutting down`, code: 'ShuttingDown', name: 'ClosedError' });
        expect(r.headers.get('retry-after')).toBe('5');
      }
    } finally {
      // (a DELETE is refused too now: the job is ended from here)
      await runner.cancel(job.json.id);
      await closed;
    }
  });
});

// A keep-alive connection whose answer was still being written when the server closed stayed open until its idle
// timeout, 72 s, and the process with it: Fastify closes only the connections idle at that moment (review s45). Every
// answer sent once closing has begun now closes its connection.
describe('an answer in flight when the service starts closing', () => {
  it('is sent whole with Connection: close, and its keep-alive connection is closed', async () => {
    const s = await startTestServer();
    try {
      await writeSdFixture(join(s.root, 'sd'));
      const load = await s.call('POST', '/v1/models', { kind: 'sd', name: 'sd', path: 'sd' });
      expect(load.status, load.text).toBe(201);
      const b64 = (shape: number[]) => encodeNpy(new Float32Array(shape.reduce((a, b) => a * b, 1)).map((_, k) => Math.sin(k)), shape).toString('base64');
      const body = JSON.stringify({ z: b64([1, 4, 32, 32]), c: b64([1, 77, load.json.shape.condDim]), steps: 999, strength: 1, output: 'latents' });
      const agent = new http.Agent({ keepAlive: true });
      const answered = new Promise<{ status?: number; connection?: string; closed: Promise<void> }>((ok, fail) => {
        const req = http.request(`${s.url}/v1/sd/sd/img2img`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
          res.resume();
          const closed = new Promise<void>((done) => (req.socket!.destroyed ? done() : req.socket!.once('close', () => done())));
          res.on('end', () => ok({ status: res.statusCode, connection: res.headers.connection, closed }));
        });
        req.on('error', fail);
        req.end(body);
      });
      // (closing begins while the sampler runs it)
      await until(async () => ((await s.call('GET', '/metrics')).text.match(/^brainlatent_pool_tasks\{pool="img2img",status="active"\} 1$/m) ? true : undefined), 30_000, 'the img2img request to run');
      const stopped = s.stop();
      const a = await answered;
      expect(a.status).toBe(200);
      expect(a.connection).toBe('close');
      await a.closed;
      await stopped;
      agent.destroy();
    } finally {
      await s.stop().catch(() => undefined);
    }
  }, 120_000);
});

describe("errors name files relative to the root, never by the server's own paths", () => {
  it('rootRelative() rewrites paths under the root only where a path starts', () => {
    const R = ['/srv/root'];
    expect(rootRelative('/srv/root/runs/a/report.html: header length 9', R)).toBe('runs/a/report.html: header length 9');
    expect(rootRelative('Y (/srv/root/Ynan.npy): element [row 0, column 1] is NaN', R)).toBe('Y (Ynan.npy): element [row 0, column 1] is NaN');
    expect(rootRelative("open '/srv/root': is a folder; /srv/root.", R)).toBe("open '.': is a folder; ..");
    expect(rootRelative('/srv/rootx/a, /srv/root.bak/b, x/srv/root/c', R)).toBe('/srv/rootx/a, /srv/root.bak/b, x/srv/root/c');
    expect(rootRelative('/a/b/c and /a/b', ['/a', '/a/b'])).toBe('c and .');
  });

  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
    mkdirSync(join(s.root, 'models'));
    writeFileSync(join(s.root, 'models', 'page.html'), '<!doctype html><title>not a model</title>\n'.repeat(20));
    await writeNpy(join(s.root, 'X.npy'), new Float32Array(40 * 3).map((_, i) => Math.sin(i)), [40, 3]);
    await writeNpy(join(s.root, 'Ynan.npy'), new Float32Array(40 * 2).map((_, i) => (i === 5 ? Number.NaN : Math.cos(i))), [40, 2]);
  });
  afterAll(async () => s?.stop());

  it('a model that does not load: 400 naming body.path and the file relative to the root', async () => {
    const r = await s.call('POST', '/v1/models', { kind: 'ridge', name: 'r', path: 'models/page.html' });
    expect(r.status, r.text).toBe(400);
    expect(r.json.message).toMatch(/^body\.path: models\/page\.html: header length \d+ runs past the end/);
    expect(r.text).not.toContain(s.root);
    const folder = await s.call('POST', '/v1/models', { kind: 'sd', name: 's', path: 'models' });
    expect(folder.status, folder.text).toBe(400);
    expect(folder.json.message).toMatch(/^body\.path: model folder models has no /);
  });

  it("a job's error names its inputs relative to the root", async () => {
    const r = await s.call('POST', '/v1/jobs', { kind: 'ridge-fit', config: { out: 'fit', x: 'X.npy', y: 'Ynan.npy', folds: 2 } });
    expect(r.status, r.text).toBe(202);
    const events = await readEvents(`${s.url}/v1/jobs/${r.json.id}/events`);
    const last = events[events.length - 1];
    expect(last.data.state, JSON.stringify(last.data)).toBe('failed');
    expect(last.data.error.message).toMatch(/^Y \(Ynan\.npy\): /);
    const view = await s.call('GET', `/v1/jobs/${r.json.id}`);
    expect(view.json.error.message).toBe(last.data.error.message);
    expect(view.text).not.toContain(s.root);
  });
});

describe('`brainlatent serve` logs what a 500 says is in the server log', () => {
  it('a request answered 5xx is logged on stderr with its stack, at the default --log-level', async () => {
    const root = realpathSync(mkdtempSync(join(tmpdir(), 'bl-serve-log-')));
    await saveOverflowingRidgeModel(join(root, 'huge.safetensors'));
    const cli = resolve(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
    const proc = spawn(process.execPath, [cli, 'serve', '--root', root, '--port', '0', '--shutdown-deadline', '0'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BRAINLATENT_SERVE_V8_FLAGS: '0' } });
    let out = '';
    let err = '';
    proc.stderr.on('data', (d) => (err += d));
    try {
      const url = await new Promise<string>((ok, fail) => {
        proc.once('exit', (c) => fail(new Error(`serve exited ${c}: ${out}${err}`)));
        proc.stdout.on('data', (d) => {
          out += d;
          const m = /listening on (http:\/\/\S+?)\/ /.exec(out);
          if (m) ok(m[1]);
        });
      });
      const post = (path: string, body: unknown) => fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect((await post('/v1/models', { kind: 'ridge', name: 'huge', path: 'huge.safetensors' })).status).toBe(201);
      const r = await post('/v1/ridge/huge/predict', { x: [[1, 1, 1, 1]] });
      expect(r.status).toBe(500);
      const logged = await until(() => err.split('\n').find((l) => l.includes('"request failed"')), 30_000, 'the 500 in the log');
      const line = JSON.parse(logged);
      expect(line).toMatchObject({ level: 50, msg: 'request failed', err: { type: 'ModelOutputError' } });
      expect(line.err.stack).toMatch(/^ModelOutputError: model 'huge' produced non-finite values[^]*\n\s+at /);
      // a 4xx is the client's: not logged at the default level
      expect((await post('/v1/ridge/huge/predict', { x: [[1]] })).status).toBe(400);
    } finally {
      proc.kill('SIGTERM');
      await new Promise((ok) => (proc.exitCode !== null ? ok(null) : proc.once('exit', ok)));
      rmSync(root, { recursive: true, force: true });
    }
    expect(err.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l).msg)).toEqual(['request failed']);
  });
});
