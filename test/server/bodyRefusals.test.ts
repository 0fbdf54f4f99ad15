/**
 * A body its content parser refuses (not JSON, empty, a refused key, or a body sent to a route that takes none) is
 * answered before any part of the request is validated, and so it was answered in another form: Fastify's message
 * alone ('Body cannot be empty when content-type is set to ...', 'the body is not valid JSON: ...'), no `problems`,
 * nothing naming the body as the validator's 400 names each field. Now each is a 400 with the validator's fields:
 * `problems` with one line naming the body and what was expected (JSON, application/json), and the validator's
 * message; its `code` stays Fastify's (FST_ERR_CTP_*), which clients may branch on.
 */
import Fastify, { errorCodes } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { sendError } from '../../ts/server/httpErrors.js';
import { startServerWithRidge, type TestServer } from './helpers.js';

let s: TestServer;
beforeAll(async () => {
  s = await startServerWithRidge('z');
});
afterAll(async () => s?.stop());

const JSON_TYPE = { 'content-type': 'application/json' };
const NOT_JSON = /^body: expected JSON \(application\/json\), got text that stops being JSON at line \d+, column \d+: /;

/** The fields of an answer, and its status. */
const shape = (r: { status: number; json: Record<string, unknown> }) => ({ status: r.status, fields: Object.keys(r.json ?? {}).sort() });

describe('a body its content parser refuses', () => {
  it("is answered with the validator's fields: one problem naming the body and what was expected, and its message", async () => {
    const validated = await s.call('POST', '/v1/jobs', { kind: 'demo', out: 'd', steps: 0 });
    expect(shape(validated)).toEqual({ status: 400, fields: ['code', 'error', 'message', 'name', 'problems'] });
    const cases: [string, Promise<{ status: number; json: any; text: string }>, string, string | RegExp][] = [
      ['text that is not JSON', s.call('POST', '/v1/jobs', '{"kind": ', JSON_TYPE), 'FST_ERR_CTP_INVALID_JSON_BODY', NOT_JSON],
      ['an empty body sent as JSON', s.call('POST', '/v1/jobs', '', JSON_TYPE), 'FST_ERR_CTP_EMPTY_JSON_BODY', 'body: expected JSON (application/json), got an empty body'],
      [
        'a __proto__ key',
        s.call('POST', '/v1/jobs', '{"kind": "demo", "__proto__": {}}', JSON_TYPE),
        'FST_ERR_CTP_INVALID_JSON_BODY',
        'body: expected JSON (application/json) without a __proto__ key, or a constructor key holding a prototype, got JSON that holds one (such keys are refused)',
      ],
      ['not JSON, to a data route', s.call('POST', '/v1/ridge/z/predict', '{"x": [[1, 2, 3, 4]]]', JSON_TYPE), 'FST_ERR_CTP_INVALID_JSON_BODY', NOT_JSON],
      ['not JSON, a large body (decoded in a thread)', s.call('POST', '/v1/ridge/z/predict', `{"x": [${'[1, 2, 3, 4],'.repeat(30_000)}]}`, JSON_TYPE), 'FST_ERR_CTP_INVALID_JSON_BODY', NOT_JSON],
      ['an empty body sent as JSON, to a data route', s.call('POST', '/v1/ridge/z/predict', '', JSON_TYPE), 'FST_ERR_CTP_EMPTY_JSON_BODY', 'body: expected JSON (application/json), got an empty body'],
      ['a body where none is taken', s.call('DELETE', '/v1/jobs/x', '{"a": 1}', JSON_TYPE), 'InvalidRequest', 'body: DELETE /v1/jobs/:id takes no body; send none (or an empty one)'],
    ];
    for (const [what, answer, code, problem] of cases) {
      const r = await answer;
      expect(shape(r), what).toEqual(shape(validated));
      expect([r.json.error, r.json.code], what).toEqual(['Bad Request', code]);
      expect(r.json.problems, what).toEqual([typeof problem === 'string' ? problem : expect.stringMatching(problem)]);
      expect(r.json.message, what).toBe(`the request body is not valid (1 problem):\n  - ${r.json.problems[0]}`);
    }
  });

  it("another 400 of Fastify's content parsing names the body with Fastify's words; its other 4xx are left as they are", async () => {
    const app = Fastify();
    app.setErrorHandler((e, req, reply) => sendError(e, req, reply));
    app.get('/length', async () => {
      throw new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH();
    });
    app.get('/other', async () => {
      throw new errorCodes.FST_ERR_BAD_URL('/x');
    });
    try {
      const length = await app.inject({ method: 'GET', url: '/length' });
      expect([length.statusCode, length.json()]).toEqual([
        400,
        {
          error: 'Bad Request',
          problems: ['body: Request body size did not match Content-Length'],
          message: 'the request body is not valid (1 problem):\n  - body: Request body size did not match Content-Length',
          code: 'FST_ERR_CTP_INVALID_CONTENT_LENGTH',
          name: 'FastifyError',
        },
      ]);
      const other = await app.inject({ method: 'GET', url: '/other' });
      // (its message as Fastify says it, listed as its one problem: every 400 has `problems`)
      expect([other.statusCode, Object.keys(other.json()).sort(), other.json().code]).toEqual([400, ['code', 'error', 'message', 'name', 'problems'], 'FST_ERR_BAD_URL']);
      expect(other.json().problems).toEqual([other.json().message]);
    } finally {
      await app.close();
    }
  });
});
