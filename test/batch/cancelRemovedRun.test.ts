import { join } from 'node:path';

import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';

import { probePlan } from '../../ts/batch/graph.js';
import { keys, PREFIX } from '../../ts/batch/redis.js';
import { submitPlan } from '../../ts/batch/submit.js';
import { createWorker } from '../../ts/batch/worker.js';
import { until } from '../helpers/waitFor.js';
import { redisAvailable, redisTestBed } from './redis.js';

// `batch cancel` removes a running job whose lock has expired (its worker hung, or was silent past --lock-ms). When
// that worker goes on, Redis has no job: it said "Redis no longer has the job (restarted without its data?): …
// submit the batch again", the wrong cause and the wrong advice for a batch its user cancelled. Here the cancel's
// end state is made by hand while the probe runs: the batch's cancel mark set and the job removed from Redis.

const { dir, workers, url } = redisTestBed('bl-cancel-removed-');

const WRONG = /no longer has the job|restarted without its data|submit the batch again|runs again|another worker has the job/;

/** Sets the batch's cancel mark and removes the job as `batch cancel` does one whose worker seems gone. */
async function cancelAndRemove(batch: string, queue: string, id: string): Promise<void> {
  const client = new Redis(url());
  try {
    const job = `${PREFIX}:${queue}:${id}`;
    await client.multi().set(keys.cancelled(batch), '1').del(job, `${job}:lock`, `${job}:logs`).lrem(`${PREFIX}:${queue}:active`, 0, id).exec();
  } finally {
    client.disconnect();
  }
}

async function runAndCancel(batch: string, lockMs: number): Promise<{ id: string; lines: string[] }> {
  const lines: string[] = [];
  let probing!: () => void;
  const probeRuns = new Promise<void>((r) => (probing = r));
  const w = await createWorker({
    redis: url(), name: `w-${batch}`, pollMs: 100, lockMs, onLog: (l) => lines.push(l),
    onEvent: (e) => {
      if (e.job?.stage === 'probe' && e.job.fraction > 0) probing();
    },
  });
  workers.push(w);
  const plan = probePlan(batch, 1, join(dir, batch), 20_000);
  const { id, queue } = plan.subjects[0].shared[0];
  await submitPlan(plan, { redis: url() });
  await probeRuns;
  await cancelAndRemove(batch, queue, id);
  await until('the run here to end', async () => lines.find((l) => l.startsWith(`${id}: its run here stopped`) || l.startsWith(`${id} failed here`)), 30_000).catch((e: Error) => {
    throw new Error(`${e.message} (log: ${lines.join(' | ')})`);
  });
  // (closed before the next test submits: a worker left polling took the next test's probe in 2 of 4 runs on a loaded
  // machine, whose own worker then never saw it run)
  await w.close();
  return { id, lines };
}

describe.skipIf(!redisAvailable)('a running job that batch cancel removed', () => {
  // (its lock renewed every 250 ms: the lock keeper, or the worker's cancel check every 2 s, notices first)
  it("is said removed by the batch's cancel, not lost by Redis, with no advice to submit again", { timeout: 60_000 }, async () => {
    const { id, lines } = await runAndCancel('cgone', 1000);
    const said = lines.filter((l) => l.startsWith(id));
    expect(said.filter((l) => WRONG.test(l))).toEqual([]);
    expect(said).toContainEqual(
      expect.stringMatching(new RegExp(`^${id.replace(/\./g, '\\.')}(: the batch's cancel \\(batch cancel\\) removed the job: stopping it here| failed here \\(batch cancelled\\), but that could not be recorded \\(Missing key .*\\): the batch's cancel \\(batch cancel\\) removed the job)$`)),
    );
  });

  // (no lock renewal before the test ends: the cancel check stops it, and its failure finds the job gone)
  it("stopped by the cancel check, its failure that cannot be recorded is said to be the cancel's removal", { timeout: 60_000 }, async () => {
    const { id, lines } = await runAndCancel('cgone2', 240_000);
    expect(lines.filter((l) => l.startsWith(id) && WRONG.test(l))).toEqual([]);
    expect(lines).toContainEqual(expect.stringMatching(/^cgone2\.probe\.p0000 failed here \(batch cancelled\), but that could not be recorded \(Missing key .*\): the batch's cancel \(batch cancel\) removed the job$/));
  });
});
