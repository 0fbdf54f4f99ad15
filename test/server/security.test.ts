import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { hostname, networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';

import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { brainlatentPlugin } from '../../ts/server/index.js';
import { startServer } from '../../ts/server/serve.js';
import { runCommand } from '../helpers/nodeChild.js';
import { failingFitJob, startTestServer, until, TEST_TOKEN, type TestServer } from './helpers.js';

const SECRET = 'TOPSECRET-7f3a9c';

/** A non-loopback IPv4 address of this machine, if it has one (the tests that need it are skipped otherwise). */
const externalIp = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

/** GET with the path sent exactly as written (fetch would normalise '..'). */
function rawGet(url: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request({ host: u.hostname, port: u.port, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('paths stay inside --root', () => {
  let s: TestServer;
  let outside: string;
  beforeAll(async () => {
    s = await startTestServer();
    outside = realpathSync(mkdtempSync(join(tmpdir(), 'bl-outside-')));
    writeFileSync(join(outside, 'secret.txt'), SECRET);
    symlinkSync(outside, join(s.root, 'escape'));
    mkdirSync(join(s.root, 'run1'));
    writeFileSync(join(s.root, 'run1', 'ok.txt'), 'fine');
    writeFileSync(join(s.root, 'run1', '.hidden'), 'temporary');
    symlinkSync(join(outside, 'secret.txt'), join(s.root, 'run1', 'leak.txt'));
  });
  afterAll(async () => {
    await s?.stop();
    rmSync(outside, { recursive: true, force: true });
  });

  const reconstruct = (over: Record<string, unknown>) => ({ kind: 'reconstruct', config: { out: 'r', nsd: { root: 'nsd', subject: 1 }, model: { dir: 'm' }, ...over } });

  it("refuses '..', absolute paths outside the root and symbolic links out of it, listing every one", async () => {
    const r = await s.call('POST', '/v1/jobs', reconstruct({ out: '../up', nsd: { root: '/etc', subject: 1 }, model: { dir: 'escape/model' } }));
    expect(r.status).toBe(400);
    const p = r.json.problems.join('\n');
    expect(p).toMatch(/body\.config\.out: '\.\.' is not allowed/);
    expect(p).toMatch(/body\.config\.nsd\.root: the path is outside the service's root/);
    expect(p).toMatch(/body\.config\.model\.dir: the path leads outside the service's root folder through a symbolic link/);
  });

  it('checks paths inside nested fields too (feature networks, captions, cache)', async () => {
    const r = await s.call(
      'POST',
      '/v1/jobs',
      reconstruct({ nsd: { root: 'nsd', subject: 1, captions: 'a/../../c.csv', cacheDir: '/tmp' }, evaluation: { networks: [{ name: 'n', path: 'escape/net.onnx', inputSize: 64, metric: 'identification' }] } }),
    );
    expect(r.status).toBe(400);
    expect(r.json.problems.map((x: string) => x.split(':')[0]).sort()).toEqual(['body.config.evaluation.networks[0].path', 'body.config.nsd.cacheDir', 'body.config.nsd.captions']);
  });

  it('checks the paths of encode configs (feature files, noise ceiling)', async () => {
    const r = await s.call('POST', '/v1/jobs', {
      kind: 'encode',
      config: { out: 'e', nsd: { root: 'nsd', subject: 1 }, featureSets: [{ name: 'f', kind: 'file', path: 'escape/f.npy', ids: '../ids.npy' }], noiseCeiling: '/etc/ncsnr.nii.gz' },
    });
    expect(r.status).toBe(400);
    expect(r.json.problems.map((x: string) => x.split(':')[0]).sort()).toEqual(['body.config.featureSets[0].ids', 'body.config.featureSets[0].path', 'body.config.noiseCeiling']);
  });

  it('refuses a request-chosen ONNX Runtime library', async () => {
    const r = await s.call('POST', '/v1/jobs', reconstruct({ model: { dir: 'm', ortLibrary: 'lib/libonnxruntime.so' } }));
    expect(r.status).toBe(400);
    expect(r.json.problems[0]).toMatch(/^body\.config\.model\.ortLibrary/);
  });

  it('refuses ridge-fit inputs, demo folders and models outside the root', async () => {
    const fit = await s.call('POST', '/v1/jobs', { kind: 'ridge-fit', config: { out: 'f', x: 'escape/secret.txt', y: '/etc/hostname' } });
    expect(fit.status).toBe(400);
    expect(fit.json.problems).toHaveLength(2);
    const demo = await s.call('POST', '/v1/jobs', { kind: 'demo', out: 'escape/demo' });
    expect(demo.status).toBe(400);
    expect(demo.json.problems[0]).toMatch(/^body\.out:/);
    const model = await s.call('POST', '/v1/models', { kind: 'ridge', name: 'm', path: '../m.safetensors' });
    expect(model.status).toBe(400);
    expect(model.json.message).toMatch(/^body\.path:/);
  });

  it("serves a run folder's files but nothing outside it, no hidden files, no links out", async () => {
    const job = await s.call('POST', '/v1/jobs', await failingFitJob(s, 'run1'));
    expect(job.status, job.text).toBe(202);
    const id = job.json.id;
    expect((await s.call('GET', `/v1/jobs/${id}/files/ok.txt`)).text).toBe('fine');
    for (const path of ['leak.txt', '.hidden', '..%2F..%2Fescape%2Fsecret.txt', '%2E%2E/escape/secret.txt', '..%2Frun1%2Fok.txt', '%2Fetc%2Fhostname']) {
      const r = await rawGet(s.url, `/v1/jobs/${id}/files/${path}`);
      expect(r.status, path).toBe(404);
      expect(r.body).not.toContain(SECRET);
    }
    const list = await s.call('GET', `/v1/jobs/${id}/files`);
    expect(list.json.files.map((f: { path: string }) => f.path)).toEqual(['ok.txt']);
    await until(async () => ((await s.call('GET', `/v1/jobs/${id}`)).json.state === 'failed' ? true : undefined), 60_000, 'the job to fail');
  });

  it("never echoes a file's contents in an error", async () => {
    writeFileSync(join(s.root, 'notes.npy'), `${SECRET}\n`.repeat(10));
    // a safetensors header whose JSON is broken, with the secret inside (JSON.parse would quote it)
    const json = Buffer.from(`{"coef": "${SECRET}`);
    const head = Buffer.alloc(8);
    head.writeBigUInt64LE(BigInt(json.length));
    writeFileSync(join(s.root, 'broken.safetensors'), Buffer.concat([head, json]));
    const model = await s.call('POST', '/v1/models', { kind: 'ridge', name: 'broken', path: 'broken.safetensors' });
    expect(model.status).toBeGreaterThanOrEqual(400);
    expect(model.text).not.toContain(SECRET);
    const text = await s.call('POST', '/v1/models', { kind: 'ridge', name: 'notes', path: 'notes.npy' });
    expect(text.status).toBeGreaterThanOrEqual(400);
    expect(text.text).not.toContain(SECRET);
    // (refused at submission, from the files' headers, as `ridge fit` refuses them: before, by the job once it ran)
    const fit = await s.call('POST', '/v1/jobs', { kind: 'ridge-fit', config: { out: 'f2', x: 'notes.npy', y: 'notes.npy' } });
    expect(fit.status, fit.text).toBe(400);
    expect(fit.json.problems).toEqual([expect.stringMatching(/^body\.config\.x: notes\.npy: /), expect.stringMatching(/^body\.config\.y: notes\.npy: /)]);
    expect(fit.text).not.toContain(SECRET);
  });
});

describe('authentication', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ token: TEST_TOKEN });
  });
  afterAll(async () => s?.stop());

  it('requires the bearer token on every route but the health checks', async () => {
    for (const [method, path] of [['GET', '/v1/jobs'], ['GET', '/metrics'], ['GET', '/v1/openapi.json'], ['POST', '/v1/jobs'], ['GET', '/v1/models'], ['POST', '/v1/ridge/m/predict'], ['GET', '/v1/jobs/x/events']]) {
      const r = await s.call(method, path, method === 'POST' ? {} : undefined);
      expect(r.status, `${method} ${path}`).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    expect((await s.call('GET', '/v1/jobs', undefined, { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await s.call('GET', '/v1/jobs', undefined, { authorization: `Bearer ${TEST_TOKEN}` })).status).toBe(200);
    expect((await s.call('GET', '/healthz')).status).toBe(200);
    expect((await s.call('GET', '/readyz')).status).toBe(200);
  });

  it('gives the page a session cookie for the right token only', async () => {
    expect((await s.call('GET', '/v1/session')).json).toEqual({ tokenRequired: true, signedIn: false });
    expect((await s.call('POST', '/v1/session', { token: 'nope' })).status).toBe(401);
    const ok = await s.call('POST', '/v1/session', { token: TEST_TOKEN });
    expect(ok.status).toBe(204);
    const cookie = ok.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const jar = cookie.split(';')[0];
    expect((await s.call('GET', '/v1/jobs', undefined, { cookie: jar })).status).toBe(200);
    expect((await s.call('GET', '/v1/session', undefined, { cookie: jar })).json.signedIn).toBe(true);
  });

  it('closes the connection of a request it refuses, without reading the rest of its body', async () => {
    const u = new URL(s.url);
    // a body declared large and sent a byte at a time: Node read it on, to keep the connection, until requestTimeoutMs
    const outcome = await new Promise<{ head: string; closed: boolean }>((resolve) => {
      const socket = connect(Number(u.port), '127.0.0.1');
      let head = '';
      const drip = setInterval(() => socket.writable && socket.write('{'), 200);
      const giveUp = setTimeout(() => finish(false), 5_000);
      const finish = (closed: boolean) => {
        clearInterval(drip);
        clearTimeout(giveUp);
        socket.destroy();
        resolve({ head, closed });
      };
      socket.on('data', (d) => (head += String(d)));
      socket.on('error', () => {});
      socket.on('close', () => finish(true));
      socket.write(`POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:${u.port}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{`);
    });
    expect(outcome.head).toMatch(/^HTTP\/1\.1 401 Unauthorized\r\n/);
    expect(outcome.head.toLowerCase()).toContain('\r\nconnection: close\r\n');
    expect(outcome.closed).toBe(true);
  });

  it('refuses to listen off loopback without a token', async () => {
    await expect(startServer({ root: s.root, host: '0.0.0.0', port: 0 })).rejects.toThrow(/without a token/);
  });

  // review: a short token or a word was taken, and POST /v1/session answered ~3,200 wrong tokens a second
  it('refuses at start a token shorter than 16 characters or one character repeated, naming the option and how to make one', async () => {
    for (const [token, problem] of [
      ['s3cret', 'it has 6 characters; at least 16 are needed'],
      ['tok-123456789ab', 'it has 15 characters; at least 16 are needed'],
      ['a'.repeat(40), 'it is one character repeated 40 times'],
      // (counted in characters, not UTF-16 units: 8 of these are 16 units)
      ['🔑🗝🔒🔓🔐🛡🚪🧰', 'it has 8 characters; at least 16 are needed'],
      // (a bearer header is trimmed and carries visible ASCII: these could never be sent as they are)
      [' 0123456789abcdef', 'character 1 is white space, which an Authorization header cannot carry as is: use visible ASCII only'],
      ['0123456789abcdef\n', 'character 17 is white space, which an Authorization header cannot carry as is: use visible ASCII only'],
      ['0123456789abcdéf', 'character 15 is outside visible ASCII, which an Authorization header cannot carry as is: use visible ASCII only'],
    ]) {
      await expect(startServer({ root: s.root, port: 0, token })).rejects.toThrow(
        `brainlatentPlugin options.token: the token is too easy to guess (${problem}): use a long random one, e.g. randomBytes(32).toString('hex') (node:crypto), or the output of openssl rand -hex 32`,
      );
    }
    // 16 characters will do
    const t = await startServer({ root: s.root, port: 0, token: 'tok-123456789abc', defaultMetrics: false });
    await t.close();
  });

  it('brainlatent serve refuses a weak --token or $BRAINLATENT_TOKEN, naming which, without quoting it', async () => {
    const cli = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
    const run = (args: string[], env: Record<string, string> = {}) => runCommand(process.execPath, [cli, 'serve', '--root', s.root, '--port', '0', ...args], { env: { ...process.env, BRAINLATENT_SERVE_V8_FLAGS: '0', ...env }, hangLimitMs: 30_000 });
    const flag = await run(['--token', 'hunter2']);
    expect(flag.status).toBe(1);
    expect(flag.stderr).toContain('--token: the token is too easy to guess (it has 7 characters; at least 16 are needed): use a long random one, e.g. --token "$(openssl rand -hex 32)"');
    expect(flag.stderr).not.toContain('hunter2');
    const env = await run([], { BRAINLATENT_TOKEN: 'x'.repeat(20) });
    expect(env.status).toBe(1);
    expect(env.stderr).toContain('$BRAINLATENT_TOKEN: the token is too easy to guess (it is one character repeated 20 times): use a long random one, e.g. BRAINLATENT_TOKEN=$(openssl rand -hex 32)');
  });

  it('refuses to trust a proxy without a token (a proxy on this machine connects from loopback)', async () => {
    await expect(startServer({ root: s.root, port: 0, trustProxy: '127.0.0.1' })).rejects.toThrow(/^refusing to trust a proxy \(trustProxy, --trust-proxy\) without a token: .* Pass --token$/);
    await expect(startServer({ root: s.root, port: 0, trustProxy: true })).rejects.toThrow(/without a token/);
  });

  it("shows /readyz's runner and models only to a client with the token: the status to anyone", async () => {
    const open = await s.call('GET', '/readyz');
    expect(open.status).toBe(200);
    expect(open.json).toEqual({ ready: true });
    const full = await s.call('GET', '/readyz', undefined, { authorization: `Bearer ${TEST_TOKEN}` });
    expect(full.json).toEqual({ ready: true, runner: expect.stringMatching(/^in-process, /), models: [] });
    expect((await s.call('GET', '/readyz', undefined, { authorization: 'Bearer wrong' })).json).toEqual({ ready: true });
  });

  it('marks every answer nosniff, errors that quote the request included', async () => {
    for (const [path, status] of [['/healthz', 200], ['/v1/jobs', 401], ['/v1/jobs/<script>x</script>', 401], ['/metrics', 401]] as const) {
      const r = await s.call('GET', path);
      expect(r.status, path).toBe(status);
      expect(r.headers.get('x-content-type-options'), path).toBe('nosniff');
    }
    const notFound = await s.call('GET', '/v1/jobs/x/files/%3Cscript%3E', undefined, { authorization: `Bearer ${TEST_TOKEN}` });
    expect(notFound.status).toBe(404);
    expect(notFound.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it.skipIf(!externalIp)('enforces the token for clients off loopback', async () => {
    const t = await startServer({ root: s.root, host: externalIp!, port: 0, token: TEST_TOKEN, defaultMetrics: false });
    try {
      const r = await fetch(`${t.url}/v1/jobs`);
      expect(r.status).toBe(401);
      expect((await fetch(`${t.url}/v1/jobs`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })).status).toBe(200);
      expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    } finally {
      await t.close();
    }
  });

  it.skipIf(!externalIp)('answers only loopback clients when mounted without a token in an app that listens everywhere', async () => {
    const app = Fastify();
    await app.register(brainlatentPlugin, { prefix: '/bl', root: s.root, defaultMetrics: false });
    await app.listen({ host: '0.0.0.0', port: 0 });
    const port = (app.server.address() as { port: number }).port;
    try {
      expect((await fetch(`http://127.0.0.1:${port}/bl/v1/jobs`)).status).toBe(200);
      const off = await fetch(`http://${externalIp}:${port}/bl/v1/jobs`);
      expect(off.status).toBe(403);
      expect((await fetch(`http://${externalIp}:${port}/bl/healthz`)).status).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('without a token answers loopback requests addressed to this machine only: another Host is 403 (DNS rebinding)', async () => {
    const t = await startTestServer();
    try {
      const u = new URL(t.url);
      const get = (host: string | undefined) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = request({ host: '127.0.0.1', port: u.port, path: '/v1/jobs', method: 'GET', headers: host === undefined ? {} : { host }, setHost: host !== undefined }, (res) => {
            let body = '';
            res.on('data', (c) => (body += c));
            res.on('end', () => resolve({ status: res.statusCode!, body }));
          });
          req.on('error', reject);
          req.end();
        });
      for (const ok of [`127.0.0.1:${u.port}`, `localhost:${u.port}`, `LOCALHOST.:${u.port}`, `[::1]:${u.port}`, `127.0.1.1:${u.port}`, `${hostname()}:${u.port}`]) {
        expect((await get(ok)).status, String(ok)).toBe(200);
      }
      // a page of attacker.example whose name now resolves to 127.0.0.1
      const r = await get(`attacker.example:${u.port}`);
      expect(r.status).toBe(403);
      expect(JSON.parse(r.body).message).toBe(
        `this service has no token and answers only requests addressed to this machine (localhost, a loopback address or its host name), not Host attacker.example:${u.port}; start it with --token to serve other names`,
      );
      expect((await get(`127.0.0.1.attacker.example:${u.port}`)).status).toBe(403);
    } finally {
      await t.stop();
    }
  });

  it('without a token refuses what a reverse proxy on this machine forwards (it connects from loopback, Host 127.0.0.1)', async () => {
    const t = await startTestServer();
    try {
      const u = new URL(t.url);
      // what nginx's proxy_pass http://127.0.0.1:PORT sends by default (Host: $proxy_host), with the header each proxy adds
      const forwarded = (headers: Record<string, string>) =>
        new Promise<{ status: number; json: { message: string } }>((resolve, reject) => {
          const req = request({ host: '127.0.0.1', port: u.port, path: '/v1/jobs', method: 'GET', headers: { host: `127.0.0.1:${u.port}`, ...headers } }, (res) => {
            let body = '';
            res.on('data', (c) => (body += c));
            res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(body) }));
          });
          req.on('error', reject);
          req.end();
        });
      expect((await forwarded({})).status).toBe(200);
      for (const [name, value] of [['x-forwarded-for', '203.0.113.9'], ['forwarded', 'for=203.0.113.9'], ['x-real-ip', '203.0.113.9'], ['x-forwarded-proto', 'https'], ['x-forwarded-host', 'lab.example'], ['via', '1.1 proxy']]) {
        const r = await forwarded({ [name]: value });
        expect(r.status, name).toBe(403);
        expect(r.json.message, name).toBe(`this service has no token and answers only requests made on this machine, not ones a proxy forwards (this one carries ${name}): behind a proxy anyone who reaches the proxy would reach the service; start it with --token`);
      }
      // the health checks stay open to a proxy's probes
      const health = await fetch(`${t.url}/healthz`, { headers: { 'x-forwarded-for': '203.0.113.9' } });
      expect(health.status).toBe(200);
    } finally {
      await t.stop();
    }
  });

  it('with a token, a forwarded request is judged by its token alone', async () => {
    const t = await startTestServer({ token: TEST_TOKEN, trustProxy: '127.0.0.1' });
    try {
      const headers = { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https' };
      expect((await t.call('GET', '/v1/jobs', undefined, headers)).status).toBe(401);
      expect((await t.call('GET', '/v1/jobs', undefined, { ...headers, authorization: `Bearer ${TEST_TOKEN}` })).status).toBe(200);
    } finally {
      await t.stop();
    }
  });
});
