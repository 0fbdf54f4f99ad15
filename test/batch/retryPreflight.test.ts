import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { probePlan, type BatchNode, type BatchPlan } from '../../ts/batch/graph.js';
import { cancelBatch, getBatchStatus, retryBatch } from '../../ts/batch/inspect.js';
import { BatchPreflightError } from '../../ts/batch/preflight.js';
import { submitPlan } from '../../ts/batch/submit.js';
import type { ReconstructConfig } from '../../ts/pipeline/config.js';
import { runCommand } from '../helpers/nodeChild.js';
import { redisAvailable, redisTestBed } from './redis.js';

// `batch retry` checks the subjects it would resubmit with their analyses' preflight, as `batch submit` does: a
// subject that failed on its inputs would otherwise be queued to fail again. No worker runs: the jobs wait until
// the cancel, and the retry is refused or done before any would run.

const { dir, url } = redisTestBed('bl-retry-preflight-');
const cli = join(__dirname, '..', '..', 'dist', 'cli', 'main.js');

/** Probe jobs and one reconstruction stage whose NSD root and model folder do not exist here. */
function planWithInputs(id: string): BatchPlan {
  const p = probePlan(id, 2, join(dir, id), 10);
  const s = p.subjects[0];
  const config = { nsd: { root: join(dir, 'no-nsd') }, model: { dir: join(dir, 'no-model') } } as unknown as ReconstructConfig;
  const extract: BatchNode = { id: `${id}.probe.recon.extract`, batch: id, subject: s.name, analysis: 'recon', stage: 'extract', queue: 'data', deps: [], work: { kind: 'stage', config, stage: 'extract' } };
  return { ...p, hash: `${p.hash}-recon`, subjects: [{ ...s, root: { ...s.root, deps: [...s.root.deps, extract.id] }, analyses: [{ name: 'recon', kind: 'reconstruct', out: join(dir, id, 'recon'), steps: [extract] }] }] };
}

describe.skipIf(!redisAvailable)('batch retry checks the inputs of what it resubmits', () => {
  it('refuses a subject whose inputs fail the preflight, touching nothing; --no-preflight resubmits it', { timeout: 60_000 }, async () => {
    await submitPlan(planWithInputs('rp'), { redis: url() });
    await cancelBatch('rp', { redis: url() });
    const before = (await getBatchStatus('rp', { redis: url() })).jobs.map((j) => [j.id, j.state]);

    const refused = await retryBatch('rp', { redis: url() }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BatchPreflightError);
    const message = (refused as Error).message;
    expect(message).toMatch(/^batch rp: the preflight found 2 problems in 1 of 1 subject × analysis pair; nothing was resubmitted:/);
    expect(message).toContain(`probe × recon: NSD root ${join(dir, 'no-nsd')} does not exist on this machine`);
    expect(message).toContain(`probe × recon: model folder ${join(dir, 'no-model')} does not exist on this machine`);
    expect(message).toContain('--no-preflight');
    expect((await getBatchStatus('rp', { redis: url() })).jobs.map((j) => [j.id, j.state])).toEqual(before);

    // the command says the same and exits 1
    const r = await runCommand(process.execPath, [cli, 'batch', 'retry', 'rp', '--redis', url()], { hangLimitMs: 30_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/BatchPreflightError: batch rp: the preflight found 2 problems .*; nothing was resubmitted/);

    expect(await retryBatch('rp', { redis: url(), preflight: false })).toEqual({ retried: ['probe'], busy: [], replaces: [] });
    // (no worker: the resubmitted jobs wait)
    const after = await getBatchStatus('rp', { redis: url() });
    expect(before.every(([, state]) => state === 'cancelled')).toBe(true);
    expect(after.jobs.map((j) => j.state)).toEqual(after.jobs.map(() => 'waiting'));
    await cancelBatch('rp', { redis: url(), purge: true });
  });
});
