import { join } from 'node:path';

import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';

import { probePlan } from '../../ts/batch/graph.js';
import { cancelBatch, getBatchStatus, STALLED_MESSAGE } from '../../ts/batch/inspect.js';
import { keys } from '../../ts/batch/redis.js';
import { submitPlan } from '../../ts/batch/submit.js';
import { purgeOfJob } from '../../ts/batch/worker.js';
import { until } from '../helpers/waitFor.js';
import { cliWorker, redisAvailable, redisTestBed } from './redis.js';

// `batch cancel --purge` removes a batch's jobs, its record and its cancel mark. A worker that hung meanwhile (its lock
// expired, so the purge took its job for a dead worker's and removed it) and then resumed found neither job nor mark,
// and said "Redis no longer has the job (restarted without its data?): stopping it here; submit the batch again": the
// wrong cause and the wrong advice for a batch its user had purged. The purge now leaves a tombstone with a TTL.
// Here the worker (a CLI process) is hung for real with SIGSTOP while its probe runs, and resumed after the purge.

const { dir, url } = redisTestBed('bl-purge-tombstone-');

const WRONG = /no longer has the job|restarted without its data|submit the batch again|runs again|another worker has the job/;

describe('the tombstone of a purge', () => {
  const stone = JSON.stringify({ at: '2026-03-02T10:00:00.000Z' });
  it('is the purge of a job submitted before it', () => {
    expect(purgeOfJob(stone, 'nsd4@2026-03-01T09:00:00.000Z')).toBe('2026-03-02T10:00:00.000Z');
    // (a job queued by a version that did not record its submission)
    expect(purgeOfJob(stone, undefined)).toBe('2026-03-02T10:00:00.000Z');
  });
  it('is not the purge of a job of the batch submitted again since, nor anything without a tombstone that reads', () => {
    expect(purgeOfJob(stone, 'nsd4@2026-03-02T10:05:00.000Z')).toBeNull();
    expect(purgeOfJob(null, 'nsd4@2026-03-01T09:00:00.000Z')).toBeNull();
    expect(purgeOfJob('{not json', 'nsd4@2026-03-01T09:00:00.000Z')).toBeNull();
    expect(purgeOfJob('null', undefined)).toBeNull();
  });
});

describe.skipIf(!redisAvailable)('a worker that resumes after its batch was purged', () => {
  it('says the batch was cancelled and purged, not that Redis lost its data', { timeout: 120_000 }, async () => {
    const plan = probePlan('pt', 1, join(dir, 'pt'), 60_000);
    const id = plan.subjects[0].shared[0].id;
    const { child: worker, log } = cliWorker(url(), ['--name', 'sleeper', '--lock-ms', '1000', '--poll', '100']);
    const client = new Redis(url());
    try {
      await submitPlan(plan, { redis: url() });
      await until(`${id} running`, async () => (await getBatchStatus('pt', { redis: url() })).jobs.find((j) => j.id === id && j.state === 'active' && j.fraction > 0));
      // hung: nothing of the worker runs (its lock keeper's thread neither), so its lock expires
      worker.kill('SIGSTOP');
      await until('its lock to expire', async () => (await getBatchStatus('pt', { redis: url() })).jobs.find((j) => j.id === id && j.message === STALLED_MESSAGE));
      expect(await cancelBatch('pt', { redis: url(), purge: true, waitMs: 3000 })).toEqual({ removed: 2, running: 0 });
      await expect(getBatchStatus('pt', { redis: url() })).rejects.toThrow(/no batch 'pt'/);

      // the tombstone: when it was purged, kept 7 days
      const stone = JSON.parse((await client.get(keys.purged('pt')))!) as { at: string };
      expect(Date.parse(stone.at)).toBeGreaterThan(Date.now() - 60_000);
      const ttl = await client.ttl(keys.purged('pt'));
      expect(ttl).toBeGreaterThan(7 * 86_400 - 60);
      expect(ttl).toBeLessThanOrEqual(7 * 86_400);

      worker.kill('SIGCONT');
      const esc = id.replace(/\./g, '\\.');
      const said = new RegExp(
        `${esc}(: its batch was cancelled and purged \\(batch cancel --purge, at ${stone.at}\\): stopping it here| \\S+ here in .*, but that could not be recorded \\(Missing key .*\\): its batch was cancelled and purged \\(batch cancel --purge, at ${stone.at}\\))\\n`,
      );
      await until('the worker to say why its job is gone', async () => said.test(log()) || WRONG.test(log()), 30_000).catch((e: Error) => {
        throw new Error(`${e.message} (log: ${log()})`);
      });
      expect(log().split('\n').filter((l) => l.includes(id) && WRONG.test(l))).toEqual([]);
      expect(log()).toMatch(said);
    } finally {
      client.disconnect();
      worker.kill('SIGCONT');
      worker.kill('SIGKILL');
    }
  });
});
