/**
 * A request whose path parameters, body and query string fail their schemas is told every problem in one 400.
 * Fastify validates params, then body, then the query string and answers the first that fails: before, a client
 * that fixed its body learnt only then that its query had an unknown key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startTestServer, type TestServer } from './helpers.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => s?.stop());

const QUERY_X = 'querystring.x: unknown key: none are taken here';

describe('a request that fails in several parts', () => {
  it('params, body and query string: one 400 lists every problem, in that order', async () => {
    const r = await s.call('POST', '/v1/ridge/bad%20name/predict?x=1', { x: [] });
    expect(r.status, r.text).toBe(400);
    expect(r.json).toMatchObject({ code: 'InvalidRequest', name: 'RequestValidationError' });
    expect(r.json.message).toMatch(/^the request params, body and querystring are not valid \(3 problems\):/);
    expect(r.json.problems).toHaveLength(3);
    expect(r.json.problems[0]).toMatch(/^params\.model: /);
    expect(r.json.problems[1]).toMatch(/^body\.x: /);
    expect(r.json.problems[2]).toBe(QUERY_X);
  });

  it('body and query string (a route that checks its body in its handler too: POST /v1/jobs)', async () => {
    const r = await s.call('POST', '/v1/jobs?x=1', { kind: 'demo', out: 'd', steps: 0 });
    expect(r.status, r.text).toBe(400);
    expect(r.json.message).toMatch(/^the request body and querystring are not valid \(2 problems\):/);
    expect(r.json.problems).toEqual([expect.stringMatching(/^body\.steps: /), QUERY_X]);
    // a config its schema passes whose own problems are found past it: those and the query's, together, each under
    // its own part (Fastify's refusal was the query string's: the config's problems were listed under it, as 'body')
    const enc = await s.call('POST', '/v1/jobs?x=1', { kind: 'encode', config: { out: 'e', nsd: { root: 'n', subject: 1 }, featureSets: [{ name: 'z', kind: 'z' }] } });
    expect(enc.status, enc.text).toBe(400);
    expect(enc.json.message).toMatch(/^the request body and querystring are not valid \(2 problems\):\n {2}- body\.config\.model: .*\n {2}- querystring\.x: /);
    expect(enc.json.problems).toEqual([expect.stringMatching(/^body\.config\.model: /), QUERY_X]);
  });

  it("POST /v1/jobs: a body its schema refuses, its config's own problems and the query string's, in that order", async () => {
    const config = { out: 'e', nsd: { root: 'n', subject: 9 }, featureSets: [{ name: 'z', kind: 'z' }] };
    const r = await s.call('POST', '/v1/jobs?x=1', { kind: 'encode', config });
    expect(r.status, r.text).toBe(400);
    expect(r.json.message).toMatch(/^the request body and querystring are not valid \(3 problems\):/);
    expect(r.json.problems).toEqual([expect.stringMatching(/^body\.config\.nsd\.subject: /), expect.stringMatching(/^body\.config\.model: /), QUERY_X]);
    // the query string alone, with a body whose config has problems only its own checks find: body first all the same
    const ridge = await s.call('POST', '/v1/jobs?x=1', { kind: 'ridge-fit', config: { out: 'r', x: 'missing-x.npy', y: 'missing-y.npy', alphas: 'nope' } });
    expect(ridge.status, ridge.text).toBe(400);
    expect(ridge.json.message).toMatch(/^the request body and querystring are not valid \(4 problems\):/);
    expect(ridge.json.problems).toEqual([
      "body.config.alphas: the item 'nope' at position 0 of 'nope' is not a number",
      'body.config.x: missing-x.npy: file not found',
      'body.config.y: missing-y.npy: file not found',
      QUERY_X,
    ]);
  });

  it('one part alone is answered as before', async () => {
    const q = await s.call('POST', '/v1/ridge/m/predict?x=1', { x: [[1]] });
    expect([q.status, q.json.message, q.json.problems]).toEqual([400, `the request querystring is not valid (1 problem):\n  - ${QUERY_X}`, [QUERY_X]]);
    const b = await s.call('POST', '/v1/ridge/m/predict', { x: [] });
    expect(b.status).toBe(400);
    expect(b.json.message).toMatch(/^the request body is not valid \(1 problem\):/);
    expect(b.json.problems).toEqual([expect.stringMatching(/^body\.x: /)]);
  });
});
