/**
 * With `serve --redis` a batch's name is its identity in the shared queues. A manifest whose name another manifest's
 * batch holds there was accepted (202) and then failed at once with the batch layer's refusal, which tells to run
 * 'brainlatent batch cancel lab1 --purge' (a web user cannot): it is a 409 BatchNameTaken at submission now, naming
 * body.manifest.name; the very manifest of that batch is still accepted (it resumes the batch). Without Redis the
 * name keys nothing shared, and the same body runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { recordedBatchHash } from '../../ts/batch/inspect.js';
import { redisAvailable, startRedis, type TestRedis } from '../batch/redis.js';
import { startTestServer, until, type TestServer } from './helpers.js';

if (!redisAvailable) console.warn('no redis-server (apt-get install redis-server): the batch name tests are skipped');

/** A manifest whose data only the workers see (a service with Redis leaves such pairs to the jobs): it waits in Redis, no worker takes it. */
const manifest = (out: string) => ({
  name: 'lab1',
  out,
  nsd: { root: 'only-on-the-workers/nsd' },
  subjects: [1],
  analyses: [{ name: 'recon', kind: 'reconstruct', config: { model: { dir: 'only-on-the-workers/sd' } } }],
});

describe.skipIf(!redisAvailable)("a batch job's name with --redis", { timeout: 120_000 }, () => {
  let redis: TestRedis;
  let s: TestServer;
  beforeAll(async () => {
    redis = await startRedis();
    s = await startTestServer({ redis: redis.url, jobs: { workers: 0 } });
  }, 60_000);
  afterAll(async () => {
    await s?.stop();
    await redis?.dispose();
  });

  const cancelled = async (id: string) => {
    expect((await s.call('DELETE', `/v1/jobs/${id}`)).status).toBe(202);
    await until(async () => ((await s.call('GET', `/v1/jobs/${id}`)).json.state === 'cancelled' ? true : undefined), 60_000, `${id} to be cancelled`);
  };

  it("refuses a manifest whose name another manifest's batch holds (409 BatchNameTaken), and takes that batch's own again", async () => {
    const first = await s.call('POST', '/v1/jobs', { kind: 'batch', manifest: manifest('batches/a') });
    expect(first.status, first.text).toBe(202);
    await until(async () => (await recordedBatchHash('lab1', { redis: redis.url })) ?? undefined, 60_000, 'the batch to reach Redis');

    // another manifest under the same name (another out): refused now, not accepted to fail at once
    const other = await s.call('POST', '/v1/jobs', { kind: 'batch', manifest: manifest('batches/b') });
    expect(other.status, other.text).toBe(409);
    expect(other.json).toMatchObject({ error: 'Conflict', code: 'BatchNameTaken', name: 'BatchNameTakenError' });
    expect(other.json.message).toBe(
      "body.manifest.name 'lab1' is taken: a batch of that name from another manifest — or from this manifest submitted from the command line or by a service with another root folder (a service's batch includes its root) — is in this service's Redis; give this manifest another name, or, if that batch was submitted by this service from this very manifest, submit it again to resume it (its finished jobs are kept)",
    );
    expect(other.json.message).not.toContain('--purge');
    expect((await s.call('GET', '/v1/jobs?kind=batch')).json.jobs.map((j: { id: string }) => j.id)).toEqual([first.json.id]);

    // under another name it is taken; and the first manifest again (its job ended) resumes its batch
    const renamed = await s.call('POST', '/v1/jobs', { kind: 'batch', manifest: { ...manifest('batches/b'), name: 'lab2' } });
    expect(renamed.status, renamed.text).toBe(202);
    await cancelled(first.json.id);
    const again = await s.call('POST', '/v1/jobs', { kind: 'batch', manifest: manifest('batches/a') });
    expect(again.status, again.text).toBe(202);
    await cancelled(renamed.json.id);
    await cancelled(again.json.id);
  });
});
