import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { isInputError } from '../../ts/batch/errors.js';
import type { BatchNode, BatchPlan, NodeWork } from '../../ts/batch/graph.js';
import { waitForBatch } from '../../ts/batch/inspect.js';
import { runLocal } from '../../ts/batch/localRunner.js';
import { runNode } from '../../ts/batch/runNode.js';
import type { BatchEvent } from '../../ts/batch/status.js';
import { submitPlan } from '../../ts/batch/submit.js';
import { createWorker } from '../../ts/batch/worker.js';
import { LockedError } from '../../ts/errors.js';
import { LOCK_FILE, lockFolder } from '../../ts/io/folderLock.js';
import { configHash, type ReconstructConfig } from '../../ts/pipeline/config.js';
import { PreflightError } from '../../ts/pipeline/errors.js';
import { clearRunFolder, markStage, writeManifest } from '../../ts/pipeline/runFolder.js';
import { distModule } from '../helpers/dist.js';
import { redisAvailable, redisTestBed } from './redis.js';

// A batch's run folders are locked as reconstruct's and encode's are (review s28-r4): the local runner holds every
// run folder of its plan for the whole run, a worker's job holds its own for its duration (an img2img shard only
// checks it is free), and a job of a folder that another config's run took over (--force) says so. Hand-made plans
// of one or two jobs in folders made for them: no world, no model.

const { dir, workers, url } = redisTestBed('bl-runfolder-lock-');
const shard = { seedStart: 0, seedEnd: 1, imageStart: 0, imageEnd: -1 };

/** A reconstruct config as far as these jobs read it before the lock and run.json checks: its folder and hash. */
const config = (out: string, tag = 'a') => ({ out, tag, img2img: { seeds: 1 } }) as unknown as ReconstructConfig;

function job(batch: string, analysis: string, stage: string, work: NodeWork, queue: BatchNode['queue'] = 'compute'): BatchNode {
  return { id: `${batch}.s.${analysis}.${stage}`, batch, subject: 's', analysis, stage, queue, deps: [], work };
}

/** One subject; each analysis a chain of `steps` (a group of shards before its merge). */
function plan(id: string, analyses: { name: string; out: string; steps: BatchPlan['subjects'][number]['analyses'][number]['steps'] }[], attempts = 1): BatchPlan {
  const last = analyses.map((a) => a.steps[a.steps.length - 1] as BatchNode);
  const root: BatchNode = { id: `${id}.s`, batch: id, subject: 's', analysis: null, stage: 'subject', queue: 'control', deps: last.map((n) => n.id), work: { kind: 'subject' } };
  return { id, out: join(dir, id), hash: id, retry: { attempts, backoffMs: 100 }, subjects: [{ name: 's', root, shared: [], analyses: analyses.map((a) => ({ ...a, kind: 'reconstruct' })) }] };
}

/** A finished img2img stage of `c` in its folder: its merge job is skipped. */
async function finishedImg2img(c: ReconstructConfig): Promise<void> {
  mkdirSync(c.out, { recursive: true });
  await writeManifest(c, {});
  await markStage(c, { stage: 'img2img', seconds: 0, outputs: [] });
}

/** Another process holding `folder` as reconstruct does (lockFolder), until killed. */
async function holder(folder: string): Promise<{ pid: number; kill: () => Promise<void> }> {
  const child = spawn(
    process.execPath,
    ['--input-type=module', '-e', `import('${distModule('io/folderLock')}').then(async (m) => { await m.lockFolder(${JSON.stringify(folder)}, 'brainlatent reconstruct --config other.json'); console.log('locked'); setInterval(() => {}, 1000); })`],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((res, rej) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && res());
    child.on('exit', (c) => rej(new Error(`holder exited ${c}`)));
  });
  return {
    pid: child.pid!,
    kill: async () => {
      child.kill('SIGKILL');
      await new Promise((r) => child.on('exit', r));
    },
  };
}

describe('a local batch run and its run folders', () => {
  it('is refused at start, nothing run, when another process holds one of its folders; the folders it took are released', { timeout: 60_000 }, async () => {
    const free = join(dir, 'local-refused', 'a-free');
    const held = join(dir, 'local-refused', 'b-held');
    await finishedImg2img(config(free));
    mkdirSync(held, { recursive: true });
    const other = await holder(held);
    const events: BatchEvent[] = [];
    try {
      const p = plan('lr', [
        { name: 'a', out: free, steps: [job('lr', 'a', 'img2img', { kind: 'merge', config: config(free), shards: [] })] },
        { name: 'b', out: held, steps: [job('lr', 'b', 'img2img', { kind: 'merge', config: config(held), shards: [] })] },
      ]);
      const err = await runLocal(p, { concurrency: 1, onEvent: (e) => events.push(e) }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LockedError);
      expect((err as Error).message).toMatch(new RegExp(`^${held} is in use by pid ${other.pid} on .* \\("brainlatent reconstruct --config other\\.json", since `));
      expect(events).toEqual([]);
      expect(existsSync(join(free, LOCK_FILE))).toBe(false);
      expect(existsSync(join(held, 'run.json'))).toBe(false);
    } finally {
      await other.kill();
    }
  });

  it("holds them for the whole run; its jobs, in the pool's processes, run under its locks", { timeout: 60_000 }, async () => {
    const folder = join(dir, 'local-held', 'recon');
    await finishedImg2img(config(folder));
    const during: unknown[] = [];
    const p = plan('lh', [{ name: 'a', out: folder, steps: [job('lh', 'a', 'img2img', { kind: 'merge', config: config(folder), shards: [shard] })] }]);
    const r = await runLocal(p, {
      concurrency: 1,
      onEvent: (e) => {
        if (e.job?.state === 'active') during.push(existsSync(join(folder, LOCK_FILE)) ? JSON.parse(readFileSync(join(folder, LOCK_FILE), 'utf8')).pid : null);
      },
    });
    expect(r.jobs.map((j) => `${j.id} ${j.state}`)).toEqual(['lh.s.a.img2img skipped', 'lh.s skipped']);
    expect(during).toEqual([process.pid, process.pid]);
    expect(existsSync(join(folder, LOCK_FILE))).toBe(false);
  });
});

describe("a job of a run folder that another config's run took over (--force)", () => {
  it("fails, not retried, naming the run.json it found, whether the folder is being cleared or holds the other run", async () => {
    const folder = join(dir, 'taken', 'recon');
    const mine = config(folder, 'old');
    await finishedImg2img(mine);
    const merge = job('old', 'recon', 'img2img', { kind: 'merge', config: mine, shards: [shard] });
    const ctl = { depsRan: true, progress: () => {} };
    // another batch's --force, midway: the folder emptied, run.json its clearing marker
    await clearRunFolder(folder);
    const clearing = await runNode(merge, ctl).catch((e: unknown) => e);
    expect(clearing).toBeInstanceOf(PreflightError);
    expect(isInputError(clearing)).toBe(true);
    expect((clearing as Error).message).toMatch(
      new RegExp(
        `^cannot start job old\\.s\\.recon\\.img2img:\\n  - run folder ${folder} is being cleared for another run \\(a --force started \\S+; it held config \\w{16}, this job's config is \\w{16}\\): ` +
          `another batch or run took the folder over; to apply this config, run the batch again with --force \\('batch run MANIFEST --force'; a batch submitted through Redis: 'batch retry old --redis URL --force'\\)`,
      ),
    );
    // and done: run.json is the other config's
    const theirs = config(folder, 'new');
    await writeManifest(theirs, {});
    const created = JSON.parse(readFileSync(join(folder, 'run.json'), 'utf8')).createdAt as string;
    const taken = await runNode(merge, ctl).catch((e: unknown) => e);
    expect(taken).toBeInstanceOf(PreflightError);
    expect((taken as Error).message).toContain(
      `run folder ${folder} now holds another config's run (its run.json: config ${configHash(theirs)}, created ${created}; ` +
        `this job's config is ${configHash(mine)}): another batch or run took the folder over (--force) after this one started; to apply this config, `,
    );
    expect((taken as Error).message).not.toMatch(/missing or stale/);
    // the job took the folder's lock for its duration and gave it back
    expect(existsSync(join(folder, LOCK_FILE))).toBe(false);
  });
});

describe.skipIf(!redisAvailable)("a worker's jobs and their run folders", () => {
  it('a job (and an img2img shard) in a folder that a live process holds fails naming it, after its retries', { timeout: 120_000 }, async () => {
    const a = join(dir, 'worker', 'a');
    const b = join(dir, 'worker', 'b');
    const lockA = await lockFolder(a, 'brainlatent reconstruct --config a.json');
    const lockB = await lockFolder(b, 'brainlatent reconstruct --config b.json');
    try {
      workers.push(await createWorker({ redis: url(), pollMs: 100 }));
      const p = plan(
        'wl',
        [
          { name: 'a', out: a, steps: [job('wl', 'a', 'evaluate', { kind: 'stage', config: config(a), stage: 'evaluate' })] },
          { name: 'b', out: b, steps: [{ shards: [{ ...job('wl', 'b', 'img2img', { kind: 'shard', config: config(b), shard }, 'sample'), id: 'wl.s.b.img2img.k0-0.i0-end', shard: 'k0-0.i0-end' }] }, job('wl', 'b', 'img2img', { kind: 'merge', config: config(b), shards: [shard] }, 'control')] },
        ],
        2,
      );
      await submitPlan(p, { redis: url() });
      const r = await waitForBatch('wl', { redis: url(), intervalMs: 200 });
      expect(r.state).toBe('failed');
      const of = (id: string) => r.jobs.find((j) => j.id === id)!;
      const held = (folder: string, config: string) => new RegExp(`^LockedError: ${folder} is in use by pid ${process.pid} on .* \\("brainlatent reconstruct --config ${config}", since `);
      expect(of('wl.s.a.evaluate')).toMatchObject({ state: 'failed', attempts: 2 });
      expect(of('wl.s.a.evaluate').reason).toMatch(held(a, 'a\\.json'));
      expect(of('wl.s.b.img2img.k0-0.i0-end').state).toBe('failed');
      expect(of('wl.s.b.img2img.k0-0.i0-end').reason).toMatch(held(b, 'b\\.json'));
      // nothing was written there
      expect(existsSync(join(a, 'stages'))).toBe(false);
    } finally {
      await lockA.release();
      await lockB.release();
    }
  });
});
