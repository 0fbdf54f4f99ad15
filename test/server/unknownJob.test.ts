import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startTestServer, type TestServer } from './helpers.js';

// A job id the service does not hold (never submitted, or from before a restart: jobs are kept in memory only):
// every job route answers 404 in JSON naming the id and saying why it may be gone; the event stream too, so a
// browser's EventSource gives up on it instead of reconnecting, and the page can say so.
describe('a job the service does not know', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(async () => s?.stop());

  it.each([
    ['GET', '/v1/jobs/demo-gone-1'],
    ['GET', '/v1/jobs/demo-gone-1/events'],
    ['DELETE', '/v1/jobs/demo-gone-1'],
    ['GET', '/v1/jobs/demo-gone-1/files'],
    ['GET', '/v1/jobs/demo-gone-1/files/report.html'],
  ])('%s %s: 404, JobNotFound, the id, and that a restart forgets jobs', async (method, path) => {
    const r = await s.call(method, path, undefined, { accept: path.endsWith('/events') ? 'text/event-stream' : 'application/json' });
    expect(r.status).toBe(404);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(r.json).toMatchObject({ error: 'Not Found', code: 'JobNotFound', id: 'demo-gone-1' });
    expect(r.json.message).toBe(
      "no job 'demo-gone-1' on this service: it keeps its jobs in memory only, so a restart forgets them (their run folders stay on disk), as it forgets the oldest finished jobs beyond 1,000",
    );
  });
});
