/**
 * Three of the service's resource limits (s36), over real HTTP. Before them: an img2img body of 22 MB (1024 × 1024
 * latents) peaked at 3.3 GB of memory; 16 uploads of 56 MiB at once held 900 MiB; and POST /v1/models loaded as many
 * models as it was sent. Now: `latentPixelLimit` (413 before the request is queued), `inFlightBodyLimit` (503 with
 * Retry-After for a body past the bytes in flight, given back when an upload ends or is aborted), and `maxModels`
 * (409 TooManyModels, naming how to free one).
 */
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { encodeNpy } from '../../ts/io/npy.js';
import { RidgeCV } from '../../ts/ridge/RidgeCV.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import { planted } from '../helpers/random.js';
import { startTestServer, TEST_TOKEN, until, type TestServer } from './helpers.js';

const b64 = (shape: number[]) => encodeNpy(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape).toString('base64');

/** A raw connection to the test server that sends `head` (a request's head and any body bytes) and keeps what comes back. */
async function rawRequest(server: TestServer, head: (hostPort: string) => string) {
  const port = Number(new URL(server.url).port);
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  const io = { got: '', closed: false };
  socket.on('data', (d) => (io.got += d));
  socket.on('close', () => (io.closed = true));
  await new Promise((ok) => socket.once('connect', ok));
  socket.write(head(`127.0.0.1:${port}`));
  return { socket, io };
}

describe('latentPixelLimit: img2img latents are bounded by images × height × width', () => {
  let s: TestServer;
  let condDim: number;
  beforeAll(async () => {
    s = await startTestServer({ latentPixelLimit: 100 });
    mkdirSync(join(s.root, 'models'));
    await writeSdFixture(join(s.root, 'models', 'sd'));
    const r = await s.call('POST', '/v1/models', { kind: 'sd', name: 'sd', path: 'models/sd' });
    expect(r.status, r.text).toBe(201);
    condDim = r.json.shape.condDim;
  }, 120_000);
  afterAll(async () => s?.stop());

  const img2img = (server: TestServer, images: number, h: number, w: number) =>
    server.call('POST', '/v1/sd/sd/img2img', { z: b64([images, 4, h, w]), c: b64([images, 77, condDim]), steps: 2, strength: 1, output: 'latents' });

  it('refuses latents over the limit with a 413 naming body.z, the size asked and the limit; takes those within it', async () => {
    const over = await img2img(s, 2, 8, 8);
    expect(over.status, over.text).toBe(413);
    expect(over.json).toMatchObject({ code: 'LimitExceeded', name: 'LimitError' });
    expect(over.json.message).toBe(
      "body.z: 2 images of 8 × 8 latents are 128 latent pixels (images × height × width), over this service's limit of 100 (latentPixelLimit): send fewer or smaller images per request",
    );
    // (refused before the model is looked up: nothing is queued or run for it)
    expect((await s.call('POST', '/v1/sd/none/img2img', { z: b64([2, 4, 8, 8]), c: b64([2, 77, condDim]) })).status).toBe(413);
    const within = await img2img(s, 1, 8, 8);
    expect(within.status, within.text).toBe(200);
    expect(within.headers.get('x-brainlatent-images')).toBe('1');
  });

  it('has a default of 65,536 latent pixels, checked on a large body too (decoded off the event loop)', async () => {
    const d = await startTestServer({}, s.root);
    try {
      expect((await d.call('POST', '/v1/models', { kind: 'sd', name: 'sd', path: 'models/sd' })).status).toBe(201);
      // 257 × 256 latents: a 1 MB array, 1.4 MB of base64 (a body past 256 KiB is decoded by a predict thread)
      const r = await img2img(d, 1, 257, 256);
      expect(r.status, r.text.slice(0, 300)).toBe(413);
      expect(r.json.message).toMatch(/^body\.z: 1 image of 257 × 256 latents are 65,792 latent pixels .* over this service's limit of 65,536 \(latentPixelLimit\)/);
    } finally {
      await d.stop();
    }
  });
});

describe('inFlightBodyLimit: request bodies in flight, all routes together', () => {
  const MiB = 1 << 20;
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ dataBodyLimit: 4 * MiB, inFlightBodyLimit: 3 * MiB });
  });
  afterAll(async () => s?.stop());

  /** A valid .npy X of about `bytes` bytes (1 feature; 4 bytes a sample). */
  const npyOf = (bytes: number) => encodeNpy(new Float32Array((bytes - 128) / 4), [(bytes - 128) / 4, 1]);
  const predict = (body: Uint8Array | ReadableStream) =>
    fetch(`${s.url}/v1/ridge/none/predict`, { method: 'POST', headers: { 'content-type': 'application/x-npy' }, body, duplex: 'half' } as RequestInit);

  /**
   * An upload that declares `bytes` and sends only `sent` of them, until `abort` (a raw socket). It asks for
   * `100 Continue` and sends its body once told: the service has taken its headers in by then (and reserved its
   * bytes in the same turn of its event loop, before it reads another request).
   */
  async function heldUpload(bytes: number, sent: number): Promise<{ abort: () => void; answer: () => string }> {
    const { socket, io } = await rawRequest(s, (host) => `POST /v1/ridge/none/predict HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/x-npy\r\nContent-Length: ${bytes}\r\nExpect: 100-continue\r\n\r\n`);
    await until(() => (io.got.startsWith('HTTP/1.1 100 Continue') ? true : undefined), 10_000, '100 Continue');
    await new Promise<void>((ok) => socket.write(npyOf(bytes).subarray(0, sent), () => ok()));
    return { abort: () => socket.destroy(), answer: () => io.got.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '') };
  }

  it('answers 503 with Retry-After past the bytes in flight, and gives an aborted upload’s bytes back', async () => {
    // 2 MiB declared and 1 MiB sent: the 2 MiB are held until the upload ends
    const held = await heldUpload(2 * MiB, MiB);
    const refused = await predict(npyOf(2 * MiB));
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    const body = (await refused.json()) as { code: string; message: string };
    expect(body.code).toBe('QueueFull');
    expect(body.message).toBe(
      "POST /v1/ridge/:model/predict: this request's body declares 2,097,152 bytes, and the request bodies this service is receiving hold 2,097,152 of its 3,145,728 bytes in flight at once (inFlightBodyLimit); retry after 1 s",
    );
    // a chunked body is counted as it comes: refused once its bytes so far go over
    const chunked = await predict(new Blob([npyOf(2 * MiB)]).stream());
    expect(chunked.status).toBe(503);
    expect(((await chunked.json()) as { message: string }).message).toMatch(/^POST \/v1\/ridge\/:model\/predict: this request's body so far \(chunked\) is [\d,]+ bytes, and the request bodies .* \(inFlightBodyLimit\)/);
    // a small body still fits beside the held one
    expect((await predict(npyOf(512 << 10))).status).toBe(404);
    expect((await s.call('GET', '/metrics')).text).toMatch(/^brainlatent_pool_rejected_total\{pool="bodies"\} 2$/m);
    // (the held upload was never answered: it still holds its bytes)
    expect(held.answer()).toBe('');

    held.abort();
    // the aborted upload's bytes come back: a body of the whole budget is read (404: no model named 'none')
    const whole = await until(async () => {
      const r = await predict(npyOf(3 * MiB));
      return r.status === 503 ? undefined : r;
    }, 10_000, 'the aborted upload’s bytes to be given back');
    expect(whole.status).toBe(404);
    expect(((await whole.json()) as { code: string }).code).toBe('ModelNotFound');
    // and every body read since gave its bytes back too, the chunked one included
    expect((await predict(new Blob([npyOf(3 * MiB)]).stream())).status).toBe(404);
    expect((await predict(npyOf(3 * MiB))).status).toBe(404);
  });

  it('refuses a body larger than the whole budget with a 413 (a retry cannot help); a body over its route’s limit keeps the route’s 413', async () => {
    const alone = await predict(npyOf(3.5 * MiB));
    expect(alone.status).toBe(413);
    expect(await alone.json()).toMatchObject({
      code: 'LimitExceeded',
      message: "POST /v1/ridge/:model/predict: this request's body declares 3,670,016 bytes, over this service's limit of 3,145,728 bytes of request bodies in flight at once (inFlightBodyLimit); send a smaller body",
    });
    const route = await predict(npyOf(5 * MiB));
    expect(route.status).toBe(413);
    expect(((await route.json()) as { code: string }).code).toBe('FST_ERR_CTP_BODY_TOO_LARGE');
  });
});

describe('maxModels: models loaded at once, ridge and SD together', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ maxModels: 2 });
    mkdirSync(join(s.root, 'models'));
    const p = planted(60, 4, 3, 5);
    await (await new RidgeCV({ alphas: [1], folds: 3 }).fit(p.x, p.y)).save(join(s.root, 'models', 'ridge.safetensors'));
    await writeSdFixture(join(s.root, 'models', 'sd'));
  }, 120_000);
  afterAll(async () => s?.stop());

  const load = (name: string, kind = 'ridge', replace = false) =>
    s.call('POST', '/v1/models', { kind, name, path: kind === 'ridge' ? 'models/ridge.safetensors' : 'models/sd', ...(replace ? { replace } : {}) });

  it('refuses one more with 409 TooManyModels saying how to free one; a replace takes no more; a DELETE frees one', async () => {
    expect((await load('a')).status).toBe(201);
    expect((await load('b')).status).toBe(201);
    for (const [name, kind] of [['c', 'ridge'], ['sd', 'sd']]) {
      const r = await load(name, kind);
      expect(r.status, r.text).toBe(409);
      expect(r.json).toMatchObject({ code: 'TooManyModels', name: 'ModelLimitError' });
      expect(r.json.message).toBe(
        `cannot load model '${name}': 2 models are loaded or being loaded (a, b), this service's limit (maxModels); unload one with DELETE /v1/models/<name>, or load under a loaded name with "replace": true`,
      );
    }
    expect((await load('a', 'ridge', true)).status).toBe(201);
    expect((await s.call('DELETE', '/v1/models/b')).status).toBe(204);
    expect((await load('sd', 'sd')).status).toBe(201);
    expect((await s.call('GET', '/v1/models')).json.models.map((m: { name: string }) => m.name).sort()).toEqual(['a', 'sd']);
  });
});

// Four uploads that declared 64 MiB and then stalled held the whole inFlightBodyLimit, and every other POST got 503,
// for as long as their clients kept the sockets open (review s45): a body that sends nothing for bodyTimeoutMs is
// answered 408 and its connection closed, which gives its bytes back; one that keeps sending goes on.
describe('bodyTimeoutMs: a request body that stalls', () => {
  const MiB = 1 << 20;
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ dataBodyLimit: 4 * MiB, inFlightBodyLimit: 3 * MiB, bodyTimeoutMs: 400 });
  });
  afterAll(async () => s?.stop());

  const npyOf = (bytes: number) => encodeNpy(new Float32Array((bytes - 128) / 4), [(bytes - 128) / 4, 1]);
  const predict = (body: Uint8Array) => fetch(`${s.url}/v1/ridge/none/predict`, { method: 'POST', headers: { 'content-type': 'application/x-npy' }, body });

  /**
   * An upload of `bytes` declared that sends the first `sent` of them in `chunks` parts `gapMs` apart, then stops (a
   * raw socket). It asks for `100 Continue` and sends once told: the service has reserved its bytes by then.
   */
  async function upload(bytes: number, sent: number, chunks: number, gapMs: number) {
    const { socket, io } = await rawRequest(s, (host) => `POST /v1/ridge/none/predict HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/x-npy\r\nContent-Length: ${bytes}\r\nExpect: 100-continue\r\n\r\n`);
    await until(() => (io.got.startsWith('HTTP/1.1 100 Continue') ? true : undefined), 10_000, '100 Continue');
    io.got = '';
    const body = npyOf(bytes);
    const part = Math.ceil(sent / chunks);
    const sending = (async () => {
      for (let k = 0; k < chunks && !io.closed; k++) {
        socket.write(body.subarray(k * part, Math.min(sent, (k + 1) * part)));
        if (k < chunks - 1) await new Promise((r) => setTimeout(r, gapMs));
      }
    })();
    return { sending, answer: () => io.got, closed: () => io.closed, destroy: () => socket.destroy() };
  }

  it('answers a stalled body 408, closes its connection and gives its bytes back; a slow body that keeps coming is read', async () => {
    const stalled = await upload(2 * MiB, MiB, 1, 0);
    // (its 2 MiB are held meanwhile: a body of 2 MiB more does not fit)
    expect((await predict(npyOf(2 * MiB))).status).toBe(503);
    const answer = await until(() => (stalled.closed() ? stalled.answer() : undefined), 10_000, 'the stalled upload to be answered and closed');
    expect(answer).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(answer.toLowerCase()).toContain('\r\nconnection: close\r\n');
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { code: string; message: string };
    expect(body).toMatchObject({ code: 'RequestTimeout', error: 'Request Timeout' });
    expect(body.message).toBe(
      'POST /v1/ridge/:model/predict: the request body sent nothing for 0.4 s (1,048,576 bytes received of 2,097,152 declared); the connection is closed: send the body again, without pauses of that length (bodyTimeoutMs)',
    );
    // its bytes are back: a body of the whole budget is read (404: no model named 'none')
    expect((await predict(npyOf(3 * MiB))).status).toBe(404);
    // a body that sends a part every 150 ms (each within the 400 ms) is read whole, however long it takes
    const slow = await upload(MiB, MiB, 8, 150);
    await slow.sending;
    const done = await until(() => (slow.answer().includes('\r\n\r\n{') ? slow.answer() : undefined), 10_000, 'the slow upload to be answered');
    expect(done).toMatch(/^HTTP\/1\.1 404 Not Found\r\n/);
    slow.destroy();
  });

  // its first version timed out bodies the route had answered without reading (Fastify's early 413, a 415): the
  // error had no listener and ended the service bodyTimeoutMs after an ordinary too-large upload (review s45)
  it('leaves alone a body the route answered without reading (413, 415): the service goes on past bodyTimeoutMs', async () => {
    const big = await fetch(`${s.url}/v1/models`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'a', path: 'x'.repeat(2 * MiB) }) });
    expect(big.status).toBe(413);
    const { socket, io } = await rawRequest(s, (host) => `POST /v1/models HTTP/1.1\r\nHost: ${host}\r\nContent-Type: text/plain\r\nContent-Length: ${MiB}\r\n\r\nabc`);
    await until(() => (io.got.startsWith('HTTP/1.1 415') ? true : undefined), 10_000, 'the 415');
    await new Promise((r) => setTimeout(r, 1000));
    expect((await s.call('GET', '/healthz')).status).toBe(200);
    socket.destroy();
  });
});

// A byte every few seconds kept any body going (each within bodyTimeoutMs) until requestTimeoutMs, 300 s: POST
// /v1/session's, answered without the token, and every route's with it (reproduced: a byte every 5 s, both still open
// at 120 s). Past its first bodyTimeoutMs a body must now average 1,024 bytes a second: 408, connection closed.
describe('bodyTimeoutMs: a request body that comes too slowly', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ token: TEST_TOKEN, bodyTimeoutMs: 400 });
  });
  afterAll(async () => s?.stop());

  it.each([
    ['POST', '/v1/session', '/v1/session', ''],
    ['POST', '/v1/jobs', '/v1/jobs', 'token'],
    ['POST', '/v1/models', '/v1/models', 'token'],
    ['POST', '/v1/ridge/m/predict', '/v1/ridge/:model/predict', 'token'],
    ['POST', '/v1/sd/m/img2img', '/v1/sd/:model/img2img', 'token'],
    ['DELETE', '/v1/jobs/x', '/v1/jobs/:id', 'token'],
    ['DELETE', '/v1/session', '/v1/session', ''],
  ])('%s %s: a byte every 100 ms (each within the 400 ms) is answered 408 and closed', async (method, path, route, auth) => {
    const { socket, io } = await rawRequest(s, (host) => `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n${auth ? `Authorization: Bearer ${TEST_TOKEN}\r\n` : ''}\r\n{`);
    const drip = setInterval(() => socket.write(' '), 100);
    try {
      const answer = await until(() => (io.closed ? io.got : undefined), 10_000, `${method} ${path} to be answered and closed`);
      expect(answer).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
      expect(answer.toLowerCase()).toContain('\r\nconnection: close\r\n');
      const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { code: string; message: string };
      expect(body.code).toBe('RequestTimeout');
      expect(body.message).toMatch(
        new RegExp(`^${method} ${route.replace(/[/:]/g, (c) => `\\${c}`)}: the request body came too slowly \\(\\d+ bytes received of 4,000 declared, in \\d+\\.\\d s\\): past its first 0\\.4 s a body must average 1,024 bytes a second; the connection is closed: send the body again, faster \\(bodyTimeoutMs\\)$`),
      );
    } finally {
      clearInterval(drip);
      socket.destroy();
    }
  });
});
