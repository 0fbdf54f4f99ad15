import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { BatchError } from '../../ts/batch/errors.js';
import { planBatch } from '../../ts/batch/graph.js';
import { batchUnderRoots, resolveManifest, type ResolvedBatch } from '../../ts/batch/manifest.js';
import { submitPlan } from '../../ts/batch/submit.js';
import { redisAvailable, redisTestBed } from './redis.js';

// A service's batch carries its root (ResolvedBatch.modelRoots → every job's BatchNode.modelRoots), and the roots
// are part of the batch's identity (its hash). Before, they were not: the same manifest submitted from a service
// with another root (or from the CLI, with none) mapped onto the jobs already queued, which hold their model files
// to the other root. No workers: the jobs only wait in the queue.

const { dir, url } = redisTestBed('bl-batch-roots-');

const batch = (name: string, retry?: { attempts: number; backoffMs: number }): ResolvedBatch =>
  resolveManifest(
    {
      name,
      out: join(dir, 'out', name),
      nsd: { root: join(dir, 'nsd') },
      subjects: [1],
      analyses: [{ name: 'recon', kind: 'reconstruct', config: { model: { dir: join(dir, 'models', 'sd') } } }],
      ...(retry ? { retry } : {}),
    },
    { source: 'manifest' },
  );

describe("a batch's model roots are part of its identity", () => {
  it('the same manifest under two roots hashes differently; without roots, as before roots existed', async () => {
    const b = batch('h');
    const a = batchUnderRoots(b, ['/srv/a']);
    expect(a.modelRoots).toEqual(['/srv/a']);
    expect(a.hash).not.toBe(b.hash);
    expect(batchUnderRoots(b, ['/srv/b']).hash).not.toBe(a.hash);
    expect(batchUnderRoots(b, ['/srv/a']).hash).toBe(a.hash);
    // (a CLI batch's hash is unchanged: plans saved before keep matching theirs)
    expect(batchUnderRoots(b, []).hash).toBe(b.hash);
    const plan = await planBatch(a);
    expect(plan.hash).toBe(a.hash);
    expect(plan.modelRoots).toEqual(['/srv/a']);
  });
});

describe.skipIf(!redisAvailable)('submitting a batch again from a service with another root', () => {
  it('is refused, not mapped onto the jobs queued under the other root; the same root maps onto them as before', { timeout: 60_000 }, async () => {
    const b = batch('same');
    const first = await submitPlan(await planBatch(batchUnderRoots(b, [join(dir, 'a')])), { redis: url() });
    expect(first).toMatchObject({ added: ['subj01'], existing: [] });
    // was { added: [], existing: ['subj01'] }: B's client was answered by jobs held to A's root
    const other = submitPlan(await planBatch(batchUnderRoots(b, [join(dir, 'b')])), { redis: url() });
    await expect(other).rejects.toThrow(BatchError);
    await expect(other).rejects.toThrow(/^batch 'same' was submitted before with other model roots \(by a service with another root folder, or from the command line\): /);
    // the CLI's (no roots) likewise
    await expect(submitPlan(await planBatch(b), { redis: url() })).rejects.toThrow(/^batch 'same' was submitted before with other model roots/);
    // the same service again: its jobs, as a resubmission always found them
    const again = await submitPlan(await planBatch(batchUnderRoots(b, [join(dir, 'a')])), { redis: url() });
    expect(again).toMatchObject({ added: [], existing: ['subj01'] });
  });

  it('another manifest under the same name and roots keeps its own message', { timeout: 60_000 }, async () => {
    await submitPlan(await planBatch(batchUnderRoots(batch('edited'), [join(dir, 'a')])), { redis: url() });
    const edited = batchUnderRoots(batch('edited', { attempts: 9, backoffMs: 1 }), [join(dir, 'a')]);
    await expect(submitPlan(await planBatch(edited), { redis: url() })).rejects.toThrow(/^batch 'edited' was submitted before from another manifest/);
  });
});
