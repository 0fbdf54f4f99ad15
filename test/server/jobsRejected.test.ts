/**
 * A job refused with 503 because the job queue is full is counted in pool_rejected_total{pool="jobs"}, as the
 * compute pools' refusals are: before, the metric counted only predict and img2img refusals.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startTestServer, type TestServer } from './helpers.js';

let s: TestServer;
// no job may wait: every submission is refused at once (the runner never starts anything)
beforeAll(async () => {
  s = await startTestServer({ jobs: { concurrency: 1, maxQueued: 0 } });
});
afterAll(async () => {
  await s?.stop();
});

const rejected = async () => {
  const m = (await s.call('GET', '/metrics')).text;
  const line = m.split('\n').find((l) => l.startsWith('brainlatent_pool_rejected_total{pool="jobs"}'));
  return line === undefined ? 0 : Number(line.split(' ').pop());
};

describe('a job refused because the job queue is full', () => {
  it('answers 503 QueueFull with Retry-After and is counted under pool="jobs"', async () => {
    expect(await rejected()).toBe(0);
    for (let i = 1; i <= 2; i++) {
      const r = await s.call('POST', '/v1/jobs', { kind: 'demo', out: `demo${i}`, sessions: 4, testImages: 4, seeds: 1, steps: 3 });
      expect(r.status, r.text).toBe(503);
      expect(r.json.code).toBe('QueueFull');
      expect(r.headers.get('retry-after')).toBe('60');
      expect(await rejected()).toBe(i);
    }
    // the help text names the pools it counts
    expect((await s.call('GET', '/metrics')).text).toMatch(/^# HELP brainlatent_pool_rejected_total .*jobs \(POST \/v1\/jobs/m);
  });
});
