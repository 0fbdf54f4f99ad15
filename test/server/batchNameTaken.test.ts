/**
 * With `serve --redis` a batch's name is its identity in the shared queues. A manifest whose name another manifest's
 * batch holds there was accepted (202) and then failed at once with the batch layer's refusal, which tells to run
 * 'brainlatent batch cancel lab1 --purge' (a web user cannot): it is a 409 BatchNameTaken at submission now, naming
 * body.manifest.name; the very manifest of that batch is still accepted (it resumes the batch). Without Redis the
 * name keys nothing shared, and the same body runs. The name is claimed at submission, atomically: two manifests of one
 * name submitted at once were both accepted (each saw no record: the job's process records the batch later).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Redis } from 'ioredis';

import { recordedBatchHash } from '../../ts/batch/inspect.js';
import { resolveManifest } from '../../ts/batch/manifest.js';
import { keys, redisConnection } from '../../ts/batch/redis.js';
import { redisAvailable, startRedis, type TestRedis } from '../batch/redis.js';
import { startTestServer, until, type TestServer } from './helpers.js';

if (!redisAvailable) console.warn('no redis-server (apt-get install redis-server): the batch name tests are skipped');

/** A manifest whose data only the workers see (a service with Redis leaves such pairs to the jobs): it waits in Redis, no worker takes it. */
const manifest = (out: string, name = 'lab1') => ({
  name,
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
    s = await startTestServer({ redis: redis.url, jobs: { workers: 0, concurrency: 1 } });
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
      "body.manifest.name 'lab1' is taken: a batch of that name from another manifest — or from this manifest submitted from the command line or by a service with another root folder (a service's batch includes its root) — is in this service's Redis; give this manifest another name, or have that batch removed with 'brainlatent batch cancel lab1 --redis <this service's Redis URL> --purge' (its run folders stay on disk) and submit this one again",
    );
    // (before: 'submit it again to resume it', which a manifest that differs never does, and no way to free the name)
    expect(other.json.message).not.toContain('resume');
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

  const post = (m: ReturnType<typeof manifest>) => s.call('POST', '/v1/jobs', { kind: 'batch', manifest: m });
  // (the holding job named, so that a web user can find or cancel it: before, the 409 did not say which job)
  const claimed = (name: string, job: string) =>
    `body.manifest.name '${name}' is taken: a job accepted with another manifest of that name (${job}, by this service or another on its Redis) has not submitted its batch yet; give this manifest another name, or submit it again once that job has ended (GET /v1/jobs/ID shows a job of this service, DELETE /v1/jobs/ID cancels it; a job that ends before it submitted its batch frees the name; a claim left by a service that stopped before its job ran is removed with 'brainlatent batch cancel ${name} --redis <this service's Redis URL> --purge')`;

  it('of two manifests of one name submitted at once, accepts one and refuses the other (409); of one manifest twice at once, one runs', async () => {
    const both = await Promise.all([post(manifest('batches/r1', 'race')), post(manifest('batches/r2', 'race'))]);
    expect(both.map((r) => r.status).sort(), both.map((r) => r.text).join('\n')).toEqual([202, 409]);
    const [accepted, refused] = both[0].status === 202 ? both : [both[1], both[0]];
    expect(refused.json).toMatchObject({ code: 'BatchNameTaken', message: claimed('race', accepted.json.id) });

    // the same manifest twice at once: one job writes its folder, the other is refused as any second job of a folder
    const twice = await Promise.all([post(manifest('batches/t', 'twice')), post(manifest('batches/t', 'twice'))]);
    expect(twice.map((r) => r.status).sort(), twice.map((r) => r.text).join('\n')).toEqual([202, 409]);
    const [ran, conflict] = twice[0].status === 202 ? twice : [twice[1], twice[0]];
    expect(conflict.json).toMatchObject({ code: 'JobConflict' });
    await cancelled(accepted.json.id);
    await cancelled(ran.json.id);
  });

  it('a job that ends before its batch is recorded (cancelled while queued) frees the name for another manifest', async () => {
    // (one job at a time: the first runs, waiting in Redis for workers; the next ones wait in the service)
    const running = await post(manifest('batches/h', 'hold'));
    expect(running.status, running.text).toBe(202);
    const queued = await post(manifest('batches/f1', 'free'));
    expect(queued.status, queued.text).toBe(202);
    const other = await post(manifest('batches/f2', 'free'));
    expect(other.status, other.text).toBe(409);
    expect(other.json).toMatchObject({ code: 'BatchNameTaken', message: claimed('free', queued.json.id) });
    await cancelled(queued.json.id);
    const now = await post(manifest('batches/f2', 'free'));
    expect(now.status, now.text).toBe(202);
    await cancelled(running.json.id);
    await cancelled(now.json.id);
  });

  it('says so when the batch of that name is this very manifest recorded without the service\'s roots (the CLI, or a service before they were kept)', async () => {
    const bare = resolveManifest(manifest('batches/l', 'legacy'), { source: 'body.manifest', baseDir: s.root });
    // a record as the CLI, or a service before session 23, wrote it: no model roots, the bare manifest's hash
    const r = new Redis(redisConnection(redis.url));
    await r.set(keys.batch('legacy'), JSON.stringify({ id: 'legacy', hash: bare.hash, out: bare.out, submittedAt: new Date().toISOString(), subjects: [], jobs: [] }));
    r.disconnect();
    const refused = await post(manifest('batches/l', 'legacy'));
    expect(refused.status, refused.text).toBe(409);
    expect(refused.json).toMatchObject({
      code: 'BatchNameTaken',
      message:
        "body.manifest.name 'legacy' is taken by a batch of this very manifest recorded without this service's model roots (submitted from the command line, or by a service of a version from before a batch's identity included its root): its queued jobs are not held to this service's root, so it cannot be resumed here; give this manifest another name, or have that batch removed with 'brainlatent batch cancel legacy --redis <this service's Redis URL> --purge' (its finished stages stay on disk and are skipped) and submit it again",
    });
    // another manifest under that name is the generic refusal
    const other = await post(manifest('batches/l2', 'legacy'));
    expect(other.json.message).toMatch(/^body\.manifest\.name 'legacy' is taken: a batch of that name from another manifest/);
  });
});
