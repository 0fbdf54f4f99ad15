import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startTestServer, type TestServer } from './helpers.js';

// Every route's schema, over real HTTP: a bad body, query or path parameter is a 400 whose problems name the
// field; unknown keys are rejected, never stripped.
let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => s?.stop());

const npy = 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDEsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAIA/';

const cases: [string, string, string, unknown, string][] = [
  // route, method, path, body, the field the 400 must name
  ['jobs: no kind', 'POST', '/v1/jobs', { out: 'x' }, 'body.kind'],
  ['jobs: unknown kind', 'POST', '/v1/jobs', { kind: 'reconstruction', config: {} }, 'body.kind'],
  ['jobs: reconstruct subject out of range', 'POST', '/v1/jobs', { kind: 'reconstruct', config: { out: 'r', nsd: { root: 'n', subject: 9 }, model: { dir: 'm' } } }, 'body.config.nsd.subject'],
  ['jobs: reconstruct unknown nested key', 'POST', '/v1/jobs', { kind: 'reconstruct', config: { out: 'r', nsd: { root: 'n', subject: 1, subjet: 2 }, model: { dir: 'm' } } }, 'body.config.nsd.subjet'],
  ['jobs: reconstruct missing model', 'POST', '/v1/jobs', { kind: 'reconstruct', config: { out: 'r', nsd: { root: 'n', subject: 1 } } }, 'body.config.model'],
  ['jobs: force not boolean', 'POST', '/v1/jobs', { kind: 'reconstruct', force: 'yes', config: { out: 'r', nsd: { root: 'n', subject: 1 }, model: { dir: 'm' } } }, 'body.force'],
  ['jobs: encode feature set kind', 'POST', '/v1/jobs', { kind: 'encode', config: { out: 'e', nsd: { root: 'n', subject: 1 }, featureSets: [{ name: 'f', kind: 'zz' }] } }, 'body.config.featureSets[0].kind'],
  ['jobs: encode needs a model (the resolver, after the schema)', 'POST', '/v1/jobs', { kind: 'encode', config: { out: 'e', nsd: { root: 'n', subject: 1 }, featureSets: [{ name: 'z', kind: 'z' }] } }, 'body.config.model'],
  ['jobs: ridge-fit folds', 'POST', '/v1/jobs', { kind: 'ridge-fit', config: { out: 'r', x: 'x.npy', y: 'y.npy', folds: 1 } }, 'body.config.folds'],
  ['jobs: ridge-fit alphas', 'POST', '/v1/jobs', { kind: 'ridge-fit', config: { out: 'r', x: 'x.npy', y: 'y.npy', alphas: 'lots' } }, 'body.config.alphas'],
  ['jobs: demo steps', 'POST', '/v1/jobs', { kind: 'demo', out: 'd', steps: 0 }, 'body.steps'],
  // (one step at the demo's strength 0.8 denoises none: refused at submission, not by the job once queued, review s43)
  ['jobs: demo one step', 'POST', '/v1/jobs', { kind: 'demo', out: 'd', steps: 1 }, 'body.steps'],
  ['jobs: demo unknown key (not stripped)', 'POST', '/v1/jobs', { kind: 'demo', out: 'd', colour: 'red' }, 'body.colour'],
  ['jobs: batch manifest without subjects', 'POST', '/v1/jobs', { kind: 'batch', manifest: { name: 'b', out: 'o', analyses: [] } }, 'body.manifest.subjects'],
  ['jobs: batch manifest analysis kind', 'POST', '/v1/jobs', { kind: 'batch', manifest: { name: 'b', out: 'o', subjects: [{ subject: 1 }], analyses: [{ name: 'a', kind: 'zz', config: {} }] } }, 'body.manifest.analyses[0].kind'],
  ['jobs: ridge-fit unknown key', 'POST', '/v1/jobs', { kind: 'ridge-fit', config: { out: 'r', x: 'x.npy', y: 'y.npy', lambda: 3 } }, 'body.config.lambda'],
  ['jobs: list state', 'GET', '/v1/jobs?state=finished', undefined, 'querystring.state'],
  ['jobs: list unknown query key', 'GET', '/v1/jobs?limit=3', undefined, 'querystring.limit'],
  ['jobs: id', 'GET', '/v1/jobs/..%2Fx', undefined, 'params.id'],
  ['jobs: cancel id', 'DELETE', '/v1/jobs/%20x', undefined, 'params.id'],
  ['jobs: events id', 'GET', '/v1/jobs/a%3Bb/events', undefined, 'params.id'],
  ['models: no name', 'POST', '/v1/models', { kind: 'ridge', path: 'm.safetensors' }, 'body.name'],
  ['models: bad name', 'POST', '/v1/models', { kind: 'ridge', name: 'a/b', path: 'm.safetensors' }, 'body.name'],
  ['models: sd threads', 'POST', '/v1/models', { kind: 'sd', name: 'sd', path: 'sd', threads: -1 }, 'body.threads'],
  ['models: ridge has no provider', 'POST', '/v1/models', { kind: 'ridge', name: 'r', path: 'm', provider: 'cuda' }, 'body.provider'],
  ['predict: x not a matrix', 'POST', '/v1/ridge/m/predict', { x: [1, 2, 3] }, 'body.x[0]'],
  ['predict: empty x', 'POST', '/v1/ridge/m/predict', { x: [] }, 'body.x'],
  ['predict: unknown key', 'POST', '/v1/ridge/m/predict', { x: [[1]], y: [[1]] }, 'body.y'],
  ['predict: model name', 'POST', '/v1/ridge/bad%20name/predict', { x: [[1]] }, 'params.model'],
  ['img2img: no z', 'POST', '/v1/sd/m/img2img', { c: npy }, 'body.z'],
  ['img2img: strength', 'POST', '/v1/sd/m/img2img', { z: npy, c: npy, strength: 2 }, 'body.strength'],
  ['img2img: scheduler', 'POST', '/v1/sd/m/img2img', { z: npy, c: npy, scheduler: 'plms' }, 'body.scheduler'],
  ['img2img: output', 'POST', '/v1/sd/m/img2img', { z: npy, c: npy, output: 'jpeg' }, 'body.output'],
  ['img2img: steps', 'POST', '/v1/sd/m/img2img', { z: npy, c: npy, steps: 0 }, 'body.steps'],
  ['models: unknown kind', 'POST', '/v1/models', { kind: 'onnx', name: 'o', path: 'm' }, 'body.kind'],
  ['session: no token', 'POST', '/v1/session', {}, 'body.token'],
];

describe('request validation (real HTTP)', () => {
  it.each(cases)('%s → 400 naming the field', async (_name, method, path, body, field) => {
    const r = await s.call(method, path, body);
    expect(r.status, r.text).toBe(400);
    expect(r.json.problems.join('\n')).toContain(field);
    expect(r.json.message).toContain(field);
  });

  it('refuses an img2img latent that is not a base64 .npy, naming the field', async () => {
    const r = await s.call('POST', '/v1/sd/m/img2img', { z: Buffer.from('not an npy').toString('base64'), c: npy });
    expect(r.status, r.text).toBe(400);
    expect(r.json.message).toMatch(/^body\.z: /);
  });

  it('lists every problem at once', async () => {
    const r = await s.call('POST', '/v1/jobs', { kind: 'demo', out: 'd', steps: 0, seeds: 99, extra: 1 });
    expect(r.status).toBe(400);
    expect(r.json.problems).toHaveLength(3);
    expect(r.json.problems.join('\n')).toMatch(/body\.steps.*\n?/);
    expect(r.json.problems.some((p: string) => p.startsWith('body.seeds: expected an integer from 1 to 10, got number 99'))).toBe(true);
  });

  it("lists a config's own problems with the schema's (an alpha grid that does not parse beside a bad field)", async () => {
    const fit = await s.call('POST', '/v1/jobs', { kind: 'ridge-fit', config: { out: 'f', x: 'x.npy', y: 'y.npy', alphas: 'abc', folds: 1 } });
    expect(fit.status).toBe(400);
    expect(fit.json.problems).toEqual([
      'body.config.folds: expected an integer from 2 to 1048576, got number 1',
      "body.config.alphas: the item 'abc' at position 0 of 'abc' is not a number",
      // (and the files' checks: test/server/submitRidgeFit.test.ts)
      'body.config.x: x.npy: file not found',
      'body.config.y: y.npy: file not found',
    ]);
    const rec = await s.call('POST', '/v1/jobs', { kind: 'reconstruct', config: { out: 'r', nsd: { root: 'n', subject: 9 }, model: { dir: 'm' }, decoders: { z: { alphas: 'abc' } } } });
    expect(rec.status).toBe(400);
    expect(rec.json.problems).toEqual(['body.config.nsd.subject: expected an integer from 1 to 8, got number 9', "body.config.decoders.z.alphas: the item 'abc' at position 0 of 'abc' is not a number"]);
  });

  it('fills in defaults (the job view shows the resolved demo settings)', async () => {
    const r = await s.call('POST', '/v1/jobs', { kind: 'demo', out: 'defaults' });
    expect(r.status, r.text).toBe(202);
    await s.call('DELETE', `/v1/jobs/${r.json.id}`);
  });

  it('refuses a body that is not JSON, and an oversized body with 413', async () => {
    const bad = await s.call('POST', '/v1/jobs', '{"kind": ', { 'content-type': 'application/json' });
    expect(bad.status).toBe(400);
    const big = await s.call('POST', '/v1/jobs', { kind: 'demo', out: 'x'.repeat(2 << 20) });
    expect(big.status).toBe(413);
  });

  it('answers a body of a type the route does not take 415 naming the types it takes (text/plain was parsed and validated as a string; .npy as an object)', async () => {
    for (const [path, body] of [['/v1/jobs', '{"kind": "demo", "out": "d"}'], ['/v1/models', '{}'], ['/v1/session', '{}'], ['/v1/sd/m/img2img', '{}']]) {
      for (const type of ['text/plain', 'text/plain; charset=utf-8', 'application/x-npy', 'application/octet-stream', 'text/csv']) {
        const r = await s.call('POST', path, body, { 'content-type': type });
        expect(r.status, `${path} ${type}: ${r.text}`).toBe(415);
        expect(r.json).toMatchObject({ error: 'Unsupported Media Type', code: 'UnsupportedMediaType' });
        expect(r.json.message).toBe(`content-type '${type}' is not taken by POST ${path.replace('/m/', '/:model/')}: expected application/json`);
      }
    }
  });

  it('serves an OpenAPI document with every /v1 route and its body schema', async () => {
    const r = await s.call('GET', '/v1/openapi.json');
    expect(r.status).toBe(200);
    const paths = Object.keys(r.json.paths);
    for (const p of ['/v1/jobs', '/v1/jobs/{id}', '/v1/jobs/{id}/events', '/v1/jobs/{id}/files', '/v1/models', '/v1/ridge/{model}/predict', '/v1/sd/{model}/img2img', '/healthz', '/readyz', '/metrics']) {
      expect(paths, p).toContain(p);
    }
    const body = r.json.paths['/v1/jobs'].post.requestBody.content['application/json'].schema;
    expect(JSON.stringify(body)).toContain('"nsd"');
  });

  // review s43: a route that declared no query took any (POST /v1/ridge/m/predict?x=1 → 200), and a DELETE its body
  it('every route refuses a query key it does not take, naming it', async () => {
    const doc = (await s.call('GET', '/v1/openapi.json')).json as { paths: Record<string, Record<string, unknown>> };
    const requests: [string, string, unknown][] = [];
    for (const [path, ops] of Object.entries(doc.paths)) {
      const url = path.replace(/\{[^}]+\}/g, 'a');
      for (const method of Object.keys(ops)) if (method === 'get' || method === 'delete') requests.push([method.toUpperCase(), url, undefined]);
    }
    // routes with a body (valid here, so that the query is what is refused), a trailing-slash twin
    requests.push(['POST', '/v1/ridge/m/predict', { x: [[1]] }], ['POST', '/v1/session', { token: 't' }], ['GET', '/v1/models/', undefined]);
    expect(requests.length).toBeGreaterThan(12);
    for (const [method, url, body] of requests) {
      const r = await s.call(method, `${url}?x=1`, body);
      expect(r.status, `${method} ${url}?x=1: ${r.text}`).toBe(400);
      const known = method === 'GET' && url === '/v1/jobs' ? '; known: state, kind' : ': none are taken here';
      expect(r.json).toMatchObject({ code: 'InvalidRequest', name: 'RequestValidationError', problems: [`querystring.x: unknown key${known}`] });
    }
    // the browser's page takes any query (a link's tracking keys): it is a page, not the API
    const page = await s.call('GET', '/?utm_source=mail');
    expect(page.status).toBe(200);
    expect(page.text).toContain('<html');
  });

  it('a route that takes no body refuses a JSON body it would ignore; an empty one is no body', async () => {
    const r = await s.call('DELETE', '/v1/jobs/abc', { force: true });
    expect(r.status, r.text).toBe(400);
    expect(r.json).toMatchObject({ code: 'InvalidRequest', problems: ['body: DELETE /v1/jobs/:id takes no body; send none (or an empty one)'] });
    const empty = await s.call('DELETE', '/v1/jobs/abc', '', { 'content-type': 'application/json' });
    expect(empty.status, empty.text).toBe(404);
    expect(empty.json.code).toBe('JobNotFound');
    // a body sent where no route matches: the 404 or 405 still answers, not a refusal of the body (review s43)
    const none = await s.call('POST', '/v1/nothing', { a: 1 });
    expect([none.status, none.json.code]).toEqual([404, 'RouteNotFound']);
    const method = await s.call('PUT', '/v1/jobs', { a: 1 });
    expect(method.status, method.text).toBe(405);
  });
});
