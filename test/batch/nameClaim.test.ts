import { readFileSync } from 'node:fs';
import net from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';

import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';

import { planBatch, probePlan } from '../../ts/batch/graph.js';
import { batchUnderRoots, legacyBatchHash, resolveManifest } from '../../ts/batch/manifest.js';
import { BatchNameTakenError, claimJobBatchName } from '../../ts/server/jobs/batchName.js';
import type { JobSpec } from '../../ts/server/jobs/JobRunner.js';
import { RedisUnreachableError } from '../../ts/batch/errors.js';
import { BatchClaimedError, cancelBatch, getBatchStatus, listBatches, listClaims, recordedBatchHash, retryBatch } from '../../ts/batch/inspect.js';
import { claimBatchName, releaseBatchName } from '../../ts/batch/nameClaim.js';
import { keys, redisConnection, shownRedisUrl } from '../../ts/batch/redis.js';
import { submitPlan } from '../../ts/batch/submit.js';
import { cancelLine } from '../../ts/cli/commands/batch.js';
import { runCommand } from '../helpers/nodeChild.js';
import { redisAvailable, redisTestBed } from './redis.js';

// A batch name is held atomically: two manifests submitted at once under one name (`batch submit` twice, or the CLI
// and a service) were both recorded — each read "no record", then each wrote its own — so one batch's jobs ran under
// the other's record and plan. Now exactly one is recorded and the other refused; a service's claim on a name (taken
// at its HTTP submission, before its job records the batch) holds it against other manifests until recorded or released.
// Tiny probe plans (no worker: nothing runs).

const { dir, url } = redisTestBed('bl-nameclaim-');

async function raw<T>(fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis(redisConnection(url()));
  try {
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

describe.skipIf(!redisAvailable)('a batch name held in Redis', { timeout: 60_000 }, () => {
  it('of two manifests submitted at once under one name, exactly one is recorded and the other refused', async () => {
    const out = join(dir, 'race');
    const plans = [probePlan('race', 2, out, 10), probePlan('race', 5, out, 10)];
    const results = await Promise.allSettled(plans.map((p) => submitPlan(p, { redis: url() })));
    const ok = results.map((r) => r.status === 'fulfilled');
    expect(ok.filter(Boolean)).toHaveLength(1);
    const winner = plans[ok.indexOf(true)];
    const loser = results[ok.indexOf(false)] as PromiseRejectedResult;
    expect(loser.reason.message).toMatch(/^batch 'race' was submitted before from another manifest/);
    // the record and the plan on disk (what `batch retry` resubmits) are both the winner's
    expect(await recordedBatchHash('race', { redis: url() })).toBe(winner.hash);
    expect(JSON.parse(readFileSync(join(out, 'batch.json'), 'utf8')).hash).toBe(winner.hash);
  });

  it("a service's claim holds the name against another manifest until released, and gives way to its own plan's record", async () => {
    const out = join(dir, 'cl');
    const mine = probePlan('cl', 2, out, 10);
    const other = probePlan('cl', 3, out, 10);
    // two jobs of one plan (resubmitted) hold one claim; another plan is refused while either holds it
    expect(await claimBatchName(url(), 'cl', mine.hash, 'job-a')).toBeNull();
    expect(await claimBatchName(url(), 'cl', mine.hash, 'job-b')).toBeNull();
    expect(await claimBatchName(url(), 'cl', other.hash, 'job-c')).toEqual({ by: 'claim', hash: mine.hash, jobs: ['job-a', 'job-b'] });
    await expect(submitPlan(other, { redis: url() })).rejects.toThrow(
      `batch 'cl' is claimed by a service's job for another manifest, not submitted yet (plan ${mine.hash}, this one ${other.hash}; held by jobs job-a, job-b of the service that accepted it); give this one another name, or wait for that job to end (one that ends before submitting frees the name); a claim left by a service that stopped before its job ran is removed with 'brainlatent batch cancel cl --redis ${shownRedisUrl(url())} --purge'`,
    );
    await releaseBatchName(url(), 'cl', 'job-a');
    expect(await claimBatchName(url(), 'cl', other.hash, 'job-c')).toEqual({ by: 'claim', hash: mine.hash, jobs: ['job-b'] });
    // the claim's own plan records the batch, which replaces the claim; another plan then meets the record
    await submitPlan(mine, { redis: url() });
    expect(await raw((r) => r.exists(keys.claim('cl')))).toBe(0);
    expect(await claimBatchName(url(), 'cl', other.hash, 'job-c')).toMatchObject({ by: 'record', record: { hash: mine.hash } });
    // the last holder's release, after the record: changes nothing
    await releaseBatchName(url(), 'cl', 'job-b');
    expect(await recordedBatchHash('cl', { redis: url() })).toBe(mine.hash);
  });

  it("a claim whose jobs all ended without recording frees the name; one left behind is removed by 'batch cancel --purge'", async () => {
    const first = probePlan('gone', 2, join(dir, 'gone'), 10);
    const second = probePlan('gone', 4, join(dir, 'gone'), 10);
    expect(await claimBatchName(url(), 'gone', first.hash, 'job-1')).toBeNull();
    await releaseBatchName(url(), 'gone', 'job-1');
    expect(await claimBatchName(url(), 'gone', second.hash, 'job-2')).toBeNull();

    // job-2's service stopped before its job ran: the claim stays; a cancel without --purge says what it is
    await expect(cancelBatch('gone', { redis: url() })).rejects.toThrow(
      `batch 'gone' is not submitted yet: claimed by a service's job for plan ${second.hash} (job job-2 of that service); cancel that job on its service, or remove the claim with --purge (one left by a service that stopped before its job ran)`,
    );
    const purged = await cancelBatch('gone', { redis: url(), purge: true });
    expect(purged).toEqual({ removed: 0, running: 0, claim: second.hash, claimHolders: ['job-2'] });
    expect(cancelLine('gone', purged, true)).toBe(`batch gone: not submitted yet; purged: a service's claim on the name (plan ${second.hash} held by job job-2 of the service that accepted it) removed`);
    await submitPlan(first, { redis: url() });
    expect(await recordedBatchHash('gone', { redis: url() })).toBe(first.hash);
    expect(await listBatches({ redis: url() })).toContain('gone');
  });

  // A claimed name was invisible to `batch status NAME` / `batch retry NAME` / the list ('no batch lab4 in this Redis
  // (submitted batches: …)') while submit and cancel knew it
  it('a claimed name is shown by status (and --json), marked in the list, and named by retry', { timeout: 60_000 }, async () => {
    const plan = probePlan('held', 2, join(dir, 'held'), 10);
    expect(await claimBatchName(url(), 'held', plan.hash, 'svc-7')).toBeNull();
    const words = `claimed by a service's job for plan ${plan.hash} (job svc-7 of that service)`;
    const claimed = `batch 'held' is ${words}, not submitted yet: nothing to show or retry until that job submits it`;
    await expect(getBatchStatus('held', { redis: url() })).rejects.toThrow(claimed);
    await expect(getBatchStatus('held', { redis: url() })).rejects.toBeInstanceOf(BatchClaimedError);
    await expect(retryBatch('held', { redis: url() })).rejects.toThrow(claimed);
    expect(await listClaims({ redis: url() })).toEqual([{ batch: 'held', hash: plan.hash, jobs: ['svc-7'] }]);

    const cli = join(__dirname, '..', '..', 'dist', 'cli', 'main.js');
    const brainlatent = (...args: string[]) => runCommand(process.execPath, [cli, ...args], { hangLimitMs: 60_000 });
    const json = await brainlatent('batch', 'status', 'held', '--redis', url(), '--json');
    expect([json.status, JSON.parse(json.stdout)]).toEqual([0, { batch: 'held', state: 'claimed', claim: { hash: plan.hash, jobs: ['svc-7'] } }]);
    const text = await brainlatent('batch', 'status', 'held', '--redis', url());
    expect([text.status, text.stdout]).toEqual([0, `batch held: ${words}, not submitted yet\n`]);
    const list = await brainlatent('batch', 'status', '--redis', url());
    expect(list.stdout.split('\n')).toContain(`held  (${words}, not submitted yet)`);
    const retry = await brainlatent('batch', 'retry', 'held', '--redis', url());
    expect(retry.status).toBe(1);
    expect(retry.stderr).toContain(claimed);
    await releaseBatchName(url(), 'held', 'svc-7');
  });

  // The claim's client had no command timeout (redis.ts's probe has one): a Redis that accepted the connection but did
  // not answer left a submission, a cancel or a service's shutdown waiting for ever. The calls are raced against a
  // generous guard only so that a hang fails the test instead of the file: the assertion is the error, not the time.
  const settled = (p: Promise<unknown>) =>
    Promise.race([p.then((v) => ({ ok: v }), (e: unknown) => ({ err: e })), new Promise((r) => setTimeout(() => r({ hung: true }), 20_000).unref())]);

  it('a Redis that accepts the connection and never answers fails the claim and the release with RedisUnreachableError', async () => {
    const silent = net.createServer(() => {}).listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const sockets: net.Socket[] = [];
    silent.on('connection', (s) => sockets.push(s));
    const at = `redis://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    try {
      for (const call of [() => claimBatchName(at, 'mute', 'h', 'job-1'), () => releaseBatchName(at, 'mute', 'job-1')]) {
        const r = (await settled(call())) as { err?: Error };
        expect(r.err).toBeInstanceOf(RedisUnreachableError);
        expect(r.err!.message).toBe(`Redis at ${at} did not answer within 2 s (running but stalled?)`);
      }
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  it('a Redis that stalls after connecting (CLIENT PAUSE of writes) fails the claim with RedisUnreachableError naming the URL', async () => {
    const plan = probePlan('stall', 2, join(dir, 'stall'), 10);
    await raw((r) => r.call('CLIENT', 'PAUSE', '8000', 'WRITE'));
    try {
      const r = (await settled(claimBatchName(url(), 'stall', plan.hash, 'job-s'))) as { err?: Error };
      expect(r.err).toBeInstanceOf(RedisUnreachableError);
      expect(r.err!.message).toBe(`Redis at ${shownRedisUrl(url())} did not answer within 2 s (running but stalled?)`);
    } finally {
      await raw((r) => r.call('CLIENT', 'UNPAUSE'));
    }
    // (the paused claim may have run once the pause ended: either way the name is this plan's)
    expect(await claimBatchName(url(), 'stall', plan.hash, 'job-s')).toBeNull();
    await releaseBatchName(url(), 'stall', 'job-s');
  });

  // s24 took a batch config's relative paths (captions, feature files, ncsnr…) from the manifest's folder, which changed
  // batch hashes: a batch submitted before, resubmitted with the same manifest, met its own record under another hash
  // and was told it came 'from another manifest'. Its queued jobs still read those paths from the working folder (under
  // a service: unchecked against its root), so it is not resumed; the refusal now says what it is and what to run.
  // The hashes below are what the code before s24 (a5891ca^'s resolveManifest) computed for this manifest and base.
  it("a batch recorded under its pre-s24 hash is recognised as this manifest's, with the purge to run", async () => {
    const manifest = {
      name: 'older', out: 'runs', nsd: { root: 'nsd' }, subjects: [1, 2],
      analyses: [{ name: 'enc', kind: 'encode', config: {
        model: 'models/sd', nsd: { captions: 'caps/{subj}.csv' }, noiseCeiling: 'nc/ncsnr.nii.gz',
        featureSets: [{ name: 'f', kind: 'file', path: 'feats/f.npy', ids: 'feats/ids.npy' }, { name: 'z', kind: 'z' }],
      } }],
    };
    const base = '/srv/bl-legacy';
    const batch = resolveManifest(manifest, { baseDir: base });
    expect([legacyBatchHash(batch), batch.hash]).toEqual(['4c1a48533cef1662', '40d78fff3e5ac7dc']);
    const underRoot = batchUnderRoots(batch, [base]);
    expect([legacyBatchHash(underRoot), underRoot.hash]).toEqual(['9585212b17442c1c', '3253383c06335898']);
    // a manifest with no relative config paths hashes as it did: no legacy hash
    expect(legacyBatchHash(resolveManifest({ ...manifest, analyses: [{ name: 'enc', kind: 'encode', config: { model: '/m/sd', featureSets: [{ name: 'z', kind: 'z' }] } }] }, { baseDir: base }))).toBeUndefined();

    // the CLI: the record an older version wrote (bare) meets this manifest's plan
    const record = (hash: string) => JSON.stringify({ id: 'older', hash, out: batch.out, submittedAt: '2026-12-01T00:00:00.000Z', subjects: [], jobs: [] });
    await raw((r) => r.set(keys.batch('older'), record('4c1a48533cef1662')));
    const plan = await planBatch(batch);
    await expect(submitPlan(plan, { redis: url() })).rejects.toThrow(
      `batch 'older' was submitted before from this manifest by an earlier version of brainlatent, which took the relative paths of its analyses' configs (captions, networks, feature files, ids, ncsnr, masks) from the working folder, not from the manifest's (plan 4c1a48533cef1662, now 40d78fff3e5ac7dc): its queued jobs still read them that way, so it is not resumed as this one; remove it with 'brainlatent batch cancel older --redis ${shownRedisUrl(url())} --purge' and submit this manifest again (its run folders record the older config: add --force to redo them)`,
    );
    // another manifest's record is still 'another manifest'
    await raw((r) => r.set(keys.batch('older'), record('0123456789abcdef')));
    await expect(submitPlan(plan, { redis: url() })).rejects.toThrow(/^batch 'older' was submitted before from another manifest/);

    // a service (root /srv/bl-legacy): the record its older version wrote under the root → a 409 saying so
    await raw((r) => r.set(keys.batch('older'), record('9585212b17442c1c')));
    const spec = { id: 'job-older', kind: 'batch', out: batch.out, outShown: 'runs', input: { kind: 'batch', batch }, modelRoots: [base] } as JobSpec;
    const refusal = await claimJobBatchName(url(), spec).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(BatchNameTakenError);
    expect((refusal as BatchNameTakenError).takenBy).toBe('olderPaths');
    expect((refusal as Error).message).toBe(
      `body.manifest.name 'older' is taken by a batch of this very manifest submitted by an earlier version of brainlatent, which took the relative paths of its analyses' configs (captions, networks, feature files, ids, ncsnr, masks) from the service's working folder, not from its root: its queued jobs still read them that way, so it cannot be resumed here; have that batch removed with 'brainlatent batch cancel older --redis <this service's Redis URL> --purge', then submit this manifest again with another out (its run folders record the older config)`,
    );
    await cancelBatch('older', { redis: url(), purge: true });
  });
});
