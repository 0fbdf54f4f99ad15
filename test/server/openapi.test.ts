/**
 * The OpenAPI document says what the service does: walking it, every route has a request here, and every status a
 * request gets (success and error alike) is declared for its route, error statuses with the shared error body
 * ({error, message, code, …}). Success bodies keep every field the handlers return (the response schemas are open).
 */
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import SwaggerParser from '@apidevtools/swagger-parser';
import swagger from '@fastify/swagger';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { encodeNpy } from '../../ts/io/npy.js';
import { brainlatentPlugin } from '../../ts/server/index.js';
import type { JobRunner } from '../../ts/server/jobs/JobRunner.js';
import { JobBoard } from '../../ts/server/jobs/jobBoard.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import { failingFitJob, startServerWithRidge, until, type TestServer } from './helpers.js';

let s: TestServer;
let doc: any;
let job: string;

const b64 = (data: Float32Array, shape: number[]) => encodeNpy(data, shape).toString('base64');
const img2img = { z: b64(new Float32Array(4 * 8 * 8), [1, 4, 8, 8]), c: b64(new Float32Array(77 * 32), [1, 77, 32]), steps: 2, output: 'latents' };
const npy = { 'content-type': 'application/x-npy' };

beforeAll(async () => {
  s = await startServerWithRidge();
  await writeSdFixture(join(s.root, 'models', 'sd'));
  const r = await s.call('POST', '/v1/models', { kind: 'sd', name: 'sd', path: 'models/sd' });
  expect(r.status, r.text).toBe(201);
  // a job that has ended, with a file in its run folder
  const j = await s.call('POST', '/v1/jobs', await failingFitJob(s, 'run1'));
  expect(j.status, j.text).toBe(202);
  job = j.json.id;
  await until(async () => ((await s.call('GET', `/v1/jobs/${job}`)).json.state === 'failed' ? true : undefined), 60_000, 'the job to fail');
  mkdirSync(join(s.root, 'run1', 'images'), { recursive: true });
  writeFileSync(join(s.root, 'run1', 'images', 'a.txt'), 'a');
  doc = (await s.call('GET', '/v1/openapi.json')).json;
}, 120_000);
afterAll(async () => s?.stop());

/** [method, path, body, headers]: a request per route and per status a client may meet. */
const requests = (): [string, string, unknown?, Record<string, string>?][] => [
  ['GET', '/healthz'],
  ['GET', '/readyz'],
  ['GET', '/metrics'],
  ['GET', '/v1/openapi.json'],
  ['GET', '/v1/session'],
  ['POST', '/v1/session', { token: 'x' }],
  ['POST', '/v1/session', {}],
  ['POST', '/v1/session', 'text', { 'content-type': 'text/plain' }],
  ['DELETE', '/v1/session'],
  ['GET', '/v1/jobs'],
  ['GET', '/v1/jobs?state=nope'],
  ['POST', '/v1/jobs', { kind: 'ridge-fit', config: { out: 'run2', x: 'fail-x.npy', y: 'fail-y.npy', folds: 2 } }],
  ['POST', '/v1/jobs', { kind: 'ridge-fit', config: { out: 'run3', x: 'missing-x.npy', y: 'missing-y.npy' } }],
  ['POST', '/v1/jobs', { kind: 'nope' }],
  ['POST', '/v1/jobs', '{"kind": ', { 'content-type': 'application/json' }],
  ['POST', '/v1/jobs', { kind: 'demo', out: 'x'.repeat(2 << 20) }],
  ['POST', '/v1/jobs', 'text', { 'content-type': 'text/plain' }],
  ['GET', `/v1/jobs/${job}`],
  ['GET', '/v1/jobs/nope-1'],
  ['GET', '/v1/jobs/..bad'],
  ['DELETE', `/v1/jobs/${job}`],
  ['DELETE', '/v1/jobs/nope-1'],
  ['GET', `/v1/jobs/${job}/events`],
  ['GET', '/v1/jobs/nope-1/events'],
  ['GET', `/v1/jobs/${job}/files`],
  ['GET', '/v1/jobs/nope-1/files'],
  ['GET', `/v1/jobs/${job}/files/images/a.txt`],
  ['GET', `/v1/jobs/${job}/files/nothing.txt`],
  ['GET', '/v1/models'],
  ['POST', '/v1/models', { kind: 'ridge', name: 'z', path: 'models/ridge.safetensors' }],
  ['POST', '/v1/models', { kind: 'ridge', name: 'z2', path: 'models/ridge.safetensors' }],
  ['POST', '/v1/models', { kind: 'ridge', name: 'z3', path: 'nothing.safetensors' }],
  ['GET', '/v1/models/z'],
  ['GET', '/v1/models/nope'],
  ['DELETE', '/v1/models/z2'],
  ['DELETE', '/v1/models/nope'],
  ['POST', '/v1/ridge/z/predict', { x: [[1, 2, 3, 4]] }],
  ['POST', '/v1/ridge/z/predict', encodeNpy(new Float32Array(4), [1, 4]), { ...npy, accept: 'application/x-npy' }],
  ['POST', '/v1/ridge/z/predict', { x: [[1, 2, 3]] }],
  ['POST', '/v1/ridge/nope/predict', { x: [[1, 2, 3, 4]] }],
  ['POST', '/v1/ridge/z/predict', 'text', { 'content-type': 'text/plain' }],
  ['POST', '/v1/sd/sd/img2img', img2img],
  ['POST', '/v1/sd/sd/img2img', { ...img2img, steps: 0 }],
  ['POST', '/v1/sd/nope/img2img', img2img],
];

/** The document's operation for a request's path, or undefined. */
function operation(method: string, path: string): { template: string; op: any } | undefined {
  const bare = path.split('?')[0];
  for (const [template, item] of Object.entries<any>(doc.paths)) {
    const re = new RegExp(`^${template.replace(/\{path\}/g, '.+').replace(/\{[^}]+\}/g, '[^/]+')}$`);
    if (re.test(bare) && item[method.toLowerCase()]) return { template, op: item[method.toLowerCase()] };
  }
  return undefined;
}

describe('the OpenAPI document', () => {
  it('declares every status each route answers, errors with the shared error body', async () => {
    const seen = new Set<string>();
    const undeclared: string[] = [];
    for (const [method, path, body, headers] of requests()) {
      const found = operation(method, path);
      expect(found, `${method} ${path} is in the document`).toBeDefined();
      seen.add(`${method} ${found!.template}`);
      const r = await s.call(method, path, body, headers);
      const declared = found!.op.responses[String(r.status)];
      if (!declared) undeclared.push(`${method} ${path} → ${r.status} (declared: ${Object.keys(found!.op.responses).join(', ')})`);
      if (r.status >= 400) {
        expect(r.json, `${method} ${path}: an error body`).toMatchObject({ error: expect.any(String), message: expect.any(String), code: expect.any(String) });
        if (declared) expect(declared.content['application/json'].schema, `${method} ${path} ${r.status}: the shared error body`).toEqual({ $ref: '#/components/schemas/Error' });
      }
    }
    expect(undeclared).toEqual([]);
    // every operation in the document was asked
    const all = Object.entries<any>(doc.paths).flatMap(([template, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${template}`));
    expect(all.filter((o) => !seen.has(o))).toEqual([]);
  });

  it('marks the routes answered without the token `security: []` (the global security is bearer)', () => {
    expect(doc.security).toEqual([{ bearer: [] }]);
    const open = Object.entries<any>(doc.paths).flatMap(([path, item]) => Object.entries<any>(item).filter(([, op]) => Array.isArray(op.security) && op.security.length === 0).map(([m]) => `${m.toUpperCase()} ${path}`));
    expect(open.sort()).toEqual(['DELETE /v1/session', 'GET /healthz', 'GET /readyz', 'GET /v1/session', 'POST /v1/session']);
    expect(doc.paths['/v1/jobs'].get.security).toBeUndefined();
  });

  it('gives every operation a stable camelCase operationId, and the job view its state and kind as enums', () => {
    const ids = Object.fromEntries(Object.entries<any>(doc.paths).flatMap(([path, item]) => Object.entries<any>(item).map(([m, op]) => [`${m.toUpperCase()} ${path}`, op.operationId])));
    expect(ids).toEqual({
      'GET /healthz': 'health',
      'GET /readyz': 'ready',
      'GET /metrics': 'metrics',
      'GET /v1/openapi.json': 'openapi',
      'GET /v1/session': 'getSession',
      'POST /v1/session': 'signIn',
      'DELETE /v1/session': 'signOut',
      'POST /v1/jobs': 'submitJob',
      'GET /v1/jobs': 'listJobs',
      'GET /v1/jobs/{id}': 'getJob',
      'DELETE /v1/jobs/{id}': 'cancelJob',
      'GET /v1/jobs/{id}/events': 'jobEvents',
      'GET /v1/jobs/{id}/files': 'listRunFiles',
      'GET /v1/jobs/{id}/files/{path}': 'getRunFile',
      'POST /v1/models': 'loadModel',
      'GET /v1/models': 'listModels',
      'GET /v1/models/{name}': 'getModel',
      'DELETE /v1/models/{name}': 'unloadModel',
      'POST /v1/ridge/{model}/predict': 'predict',
      'POST /v1/sd/{model}/img2img': 'img2img',
    });
    const view = doc.paths['/v1/jobs/{id}'].get.responses['200'].content['application/json'].schema.properties;
    expect(view.state.enum).toEqual(['queued', 'running', 'done', 'failed', 'cancelled']);
    expect(view.kind.enum).toEqual(['reconstruct', 'encode', 'ridge-fit', 'batch', 'demo']);
  });

  it('declares every media type the run-file route sends (runFiles.ts\'s table)', async () => {
    const declared = Object.keys(doc.paths['/v1/jobs/{id}/files/{path}'].get.responses['200'].content);
    const sent: string[] = [];
    for (const ext of ['csv', 'npy', 'js', 'mjs', 'css', 'nii.gz', 'txt', 'html', 'json', 'svg', 'png', 'safetensors', 'bin']) {
      writeFileSync(join(s.root, 'run1', `f.${ext}`), 'x');
      const r = await s.call('GET', `/v1/jobs/${job}/files/f.${ext}`);
      expect(r.status).toBe(200);
      sent.push(r.headers.get('content-type')!.split(';')[0]);
    }
    expect(sent).toContain('application/gzip');
    expect(declared).toEqual(expect.arrayContaining(sent));
  });

  it('takes an empty body with content-type: application/json on a route without a body (DELETE)', async () => {
    const json = { 'content-type': 'application/json' };
    const cancel = await s.call('DELETE', '/v1/jobs/nope-1', '', json);
    expect([cancel.status, cancel.json.code]).toEqual([404, 'JobNotFound']);
    expect((await s.call('DELETE', '/v1/session', '', json)).status).toBe(204);
    expect((await s.call('DELETE', '/v1/models/nope', '', json)).json.code).toBe('ModelNotFound');
    // a route that takes a body still needs one
    const signIn = await s.call('POST', '/v1/session', '', json);
    expect([signIn.status, signIn.json.code]).toEqual([400, 'FST_ERR_CTP_EMPTY_JSON_BODY']);
  });

  it('declares /readyz\'s 503 as the readiness or, while shutting down, the error body', () => {
    const ready = doc.paths['/readyz'].get.responses;
    expect(ready['503'].content['application/json'].schema.oneOf).toEqual([
      // (runner and models only to a client the service answers: security.test.ts)
      expect.objectContaining({ required: ['ready'] }),
      { $ref: '#/components/schemas/Error' },
    ]);
  });

  it('honours Accept q-values on predict, refuses a JSON body in a charset other than UTF-8, and reads /v1/jobs/ as /v1/jobs', async () => {
    const x = { x: [[1, 2, 3, 4]] };
    const json = await s.call('POST', '/v1/ridge/z/predict', x, { accept: 'application/x-npy;q=0.5, application/json;q=0.9' });
    expect([json.status, json.headers.get('content-type')]).toEqual([200, 'application/json; charset=utf-8']);
    const npyAnswer = await s.call('POST', '/v1/ridge/z/predict', x, { accept: 'application/json;q=0.1, application/x-npy' });
    expect(npyAnswer.headers.get('content-type')).toBe('application/x-npy');
    for (const path of ['/v1/ridge/z/predict', '/v1/jobs']) {
      const r = await s.call('POST', path, JSON.stringify({ kind: 'demo', out: 'd' }), { 'content-type': 'application/json;charset=UTF-16' });
      expect([r.status, r.json.code]).toEqual([415, 'UnsupportedMediaType']);
      expect(r.json.message).toMatch(/charset 'UTF-16'/);
    }
    expect((await s.call('POST', '/v1/models', { kind: 'ridge', name: 'z9', path: 'nothing.safetensors' }, { 'content-type': 'application/json; charset=utf-8' })).json.code).not.toBe('UnsupportedMediaType');
    const list = await s.call('GET', '/v1/jobs/');
    expect(list.status, list.text).toBe(200);
    expect(list.json.jobs.length).toBeGreaterThan(0);
    expect((await s.call('GET', '/v1/models/')).json.models).toEqual(expect.any(Array));
    expect(Object.keys(doc.paths).filter((p) => p.endsWith('/'))).toEqual([]);
  });

  // review s43: the twin was a route label of its own (route="/v1/jobs/" beside "/v1/jobs")
  it("counts a trailing-slash request under its collection's route label", async () => {
    const count = async () => {
      const m = (await s.call('GET', '/metrics')).text;
      expect(m).not.toMatch(/route="\/v1\/(jobs|models)\/"/);
      return Number(/^brainlatent_http_request_duration_seconds_count\{method="GET",route="\/v1\/models",code="200"\} (\d+)$/m.exec(m)?.[1] ?? 0);
    };
    const before = await count();
    expect((await s.call('GET', '/v1/models/')).status).toBe(200);
    expect((await s.call('GET', '/v1/models')).status).toBe(200);
    await until(async () => ((await count()) === before + 2 ? true : undefined), 10_000, 'both requests under route="/v1/models"');
  });

  it('has the shared error body once, as components.schemas.Error', () => {
    expect(Object.keys(doc.components.schemas.Error.properties)).toEqual(expect.arrayContaining(['error', 'message', 'code', 'name', 'problems']));
    expect(doc.components.schemas.Error.required).toEqual(['error', 'message', 'code']);
  });

  // (bodyTimeout.ts ends a body that comes too slowly with a 408: every route that takes a body declares it)
  it('declares the 408 of a body that comes too slowly on every route that takes a body', () => {
    const withBody: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, { requestBody?: unknown; responses: Record<string, unknown> }>>)) {
      for (const [method, op] of Object.entries(ops)) if (op.requestBody) withBody.push(`${method} ${path}: ${'408' in op.responses ? '408' : 'none'}`);
    }
    expect(withBody.length).toBeGreaterThanOrEqual(5);
    expect(withBody.filter((w) => !w.endsWith(': 408'))).toEqual([]);
    expect(doc.paths['/v1/session'].post.responses['408'].description).toMatch(/^RequestTimeout: /);
  });

  it('declares the real success codes: 202 for a job submitted or cancelled, 201 for a model loaded, 204 for no body', () => {
    expect(Object.keys(doc.paths['/v1/jobs'].post.responses)).toContain('202');
    expect(doc.paths['/v1/jobs'].post.responses['200']).toBeUndefined();
    expect(Object.keys(doc.paths['/v1/jobs/{id}'].delete.responses)).toEqual(expect.arrayContaining(['202', '409']));
    expect(Object.keys(doc.paths['/v1/models'].post.responses)).toEqual(expect.arrayContaining(['201', '409']));
    expect(Object.keys(doc.paths['/v1/models/{name}'].delete.responses)).toContain('204');
    expect(Object.keys(doc.paths['/v1/session'].delete.responses)).toContain('204');
    expect(doc.paths['/v1/jobs/{id}'].get.responses['200'].content['application/json'].schema.properties).toHaveProperty('state');
  });

  it("names the run-file route's path parameter `path`, with a description", () => {
    expect(Object.keys(doc.paths).filter((p) => p.includes('*'))).toEqual([]);
    const params = doc.paths['/v1/jobs/{id}/files/{path}'].get.parameters;
    expect(params.map((p: any) => [p.name, p.in, p.required])).toEqual([
      ['id', 'path', true],
      ['path', 'path', true],
    ]);
    expect(params[1].description).toMatch(/inside the run folder/);
  });

  it('documents GET, POST and DELETE /v1/session', () => {
    expect(Object.keys(doc.paths['/v1/session']).sort()).toEqual(['delete', 'get', 'post']);
    expect(doc.paths['/v1/session'].get.responses['200'].content['application/json'].schema.properties).toHaveProperty('signedIn');
  });

  it('keeps every field a handler returns (open response schemas)', async () => {
    const view = (await s.call('GET', `/v1/jobs/${job}`)).json;
    expect(Object.keys(view).sort()).toEqual(['error', 'finishedAt', 'id', 'kind', 'out', 'progress', 'stages', 'startedAt', 'state', 'submittedAt']);
    expect(view.error).toMatchObject({ name: 'NonFiniteError', code: expect.any(String), message: expect.stringMatching(/^Y \(fail-y\.npy\): /) });
    const sd = (await s.call('GET', '/v1/models/sd')).json;
    expect(sd).toMatchObject({ name: 'sd', kind: 'sd', scheduler: expect.any(String), inFlight: 0 });
    expect(Object.keys(sd.shape).length).toBeGreaterThan(0);
    const nf = (await s.call('GET', '/v1/models/nope')).json;
    expect(nf).toMatchObject({ code: 'ModelNotFound', name: 'ModelNotFoundError', model: 'nope' });
  });
});

/** swagger-parser's verdict on a document: 'valid', or its messages (it validates a copy: it dereferences in place). */
async function verdict(document: unknown): Promise<string> {
  try {
    await SwaggerParser.validate(structuredClone(document) as never);
    return 'valid';
  } catch (e) {
    return (e as Error).message;
  }
}

/** The document a host app's own @fastify/swagger (declaring `openapi`, or its default) makes with the plugin in it. */
async function hostDocument(openapi?: string): Promise<any> {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'bl-host-')));
  const app = Fastify({ pluginTimeout: 0, return503OnClosing: false });
  try {
    await app.register(swagger, { openapi: { ...(openapi ? { openapi } : {}), info: { title: 'lab app', version: '3' } } });
    app.get('/hello', { schema: { response: { 200: { type: 'object', properties: { hi: { type: 'integer' } } } } } }, async () => ({ hi: 1 }));
    await app.register(brainlatentPlugin, { prefix: '/brainlatent', root, token: null, defaultMetrics: false });
    await app.ready();
    return (await app.inject({ method: 'GET', url: '/brainlatent/v1/openapi.json' })).json();
  } finally {
    await app.close();
    rmSync(root, { recursive: true, force: true });
  }
}

describe('the OpenAPI document is valid for the version it declares', () => {
  it("the service's own (3.0.3: no numeric exclusiveMinimum, `examples`, tuple items or contentMediaType in its schemas)", async () => {
    expect(doc.openapi).toBe('3.0.3');
    expect(await verdict(doc)).toBe('valid');
    // the tuples the configs have (rgb colours) are arrays of a fixed length in a 3.0 document
    expect(JSON.stringify(doc)).not.toMatch(/"additionalItems"|"contentMediaType"|"examples"|"exclusiveMinimum":\d/);
  });

  it("a host app's own @fastify/swagger with the plugin registered in it, 3.0 (its default) or 3.1", async () => {
    const host30 = await hostDocument();
    expect(host30.info.title).toBe('lab app');
    expect(Object.keys(host30.paths)).toEqual(expect.arrayContaining(['/hello', '/brainlatent/v1/jobs']));
    expect(await verdict(host30)).toBe('valid');
    const host31 = await hostDocument('3.1.0');
    expect(await verdict(host31)).toBe('valid');
    // 3.1 schemas are JSON Schema 2020-12: a tuple is prefixItems
    expect(JSON.stringify(host31)).toContain('"prefixItems"');
    expect(JSON.stringify(host31)).not.toContain('"additionalItems"');
  }, 60_000);
});

describe("/readyz while the service shuts down", () => {
  it('answers the error body (ShuttingDown), all of it, as its declared 503 (oneOf: readiness or error)', async () => {
    const root = realpathSync(mkdtempSync(join(tmpdir(), 'bl-close-')));
    let closing!: () => void;
    const closeStarted = new Promise<void>((r) => (closing = r));
    let finish!: () => void;
    // a runner whose close waits until the test has asked /readyz
    const runner: JobRunner = {
      board: new JobBoard(),
      submit: async () => { throw new Error('no jobs here'); },
      cancel: async () => undefined,
      queueDepth: () => 0,
      ready: async () => ({ ok: true, detail: 'test' }),
      close: () => { closing(); return new Promise<void>((r) => (finish = r)); },
    } as unknown as JobRunner;
    const app = Fastify({ pluginTimeout: 0, return503OnClosing: false });
    await app.register(brainlatentPlugin, { prefix: '/brainlatent', root, token: null, runner, defaultMetrics: false });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/brainlatent/readyz`;
    expect((await fetch(url)).status).toBe(200);
    const closed = app.close();
    await closeStarted;
    const r = await fetch(url);
    const body = await r.json();
    finish();
    await closed;
    rmSync(root, { recursive: true, force: true });
    expect(r.status).toBe(503);
    expect(body).toMatchObject({ error: 'Service Unavailable', code: 'ShuttingDown', name: 'ClosedError', message: expect.any(String) });
    expect(body).not.toHaveProperty('ready');
  }, 60_000);
});
