import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runBatch, type BatchReport } from '../../ts/batch/runBatch.js';
import { ManifestError, resolveManifest } from '../../ts/batch/manifest.js';
import { planBatch, planNodes, probePlan } from '../../ts/batch/graph.js';
import { getBatchStatus, waitForBatch } from '../../ts/batch/inspect.js';
import { submitBatch, submitPlan } from '../../ts/batch/submit.js';
import type { DemoWorld } from '../../ts/demo/world.js';
import { betasPath } from '../../ts/nsd/paths.js';
import { reconstruct } from '../../ts/pipeline/reconstruct.js';
import { redisAvailable, startRedis, type TestRedis } from './redis.js';
import { batchManifest, batchWorld, singleConfig } from './world.js';

// One world for every batch test (building it is the slow part): four synthetic subjects, the fourth's
// first session of betas corrupted after the world is built.
const dir = mkdtempSync(join(tmpdir(), 'bl-batch-'));
let world: DemoWorld;
const metrics = (runFolder: string) => readFileSync(join(runFolder, 'metrics.json'), 'utf8');
const single: Record<number, string> = {};

beforeAll(async () => {
  world = await batchWorld(dir);
  // subject 4: a betas file that is not HDF5 at all (a download that saved an error page)
  writeFileSync(betasPath(world.nsdRoot, 4, 1, 'hdf5'), '<html><body>403 Forbidden</body></html>\n');
  // the reference: single-process reconstructions of two subjects
  for (const s of [1, 2, 3]) single[s] = metrics((await reconstruct(singleConfig(world, s, join(dir, `single${s}`)))).out);
}, 900_000);

describe('the batch manifest', () => {
  it('lists every problem at once: schema errors, then the expanded configs', async () => {
    const bad = { name: '1bad', out: 'x', subjects: [1, 9], analyses: [{ name: 'r', kind: 'nope', config: {} }], extra: 1 };
    const e = (() => {
      try {
        resolveManifest(bad);
      } catch (err) {
        return err as ManifestError;
      }
      throw new Error('no error');
    })();
    expect(e).toBeInstanceOf(ManifestError);
    const text = e.problems.join('\n');
    expect(text).toMatch(/manifest\.extra: unknown key/);
    expect(text).toMatch(/manifest\.name: must match pattern/);
    expect(text).toMatch(/manifest\.subjects\[1\]/);
    expect(text).toMatch(/manifest\.analyses\[0\]\.kind/);
    // schema-valid, but the configs are not: each problem once, named by analysis and subject
    const m = batchManifest(world, 'b', join(dir, 'never'), [1, 2]);
    (m.analyses[0].config as Record<string, unknown>).img2img = { strength: 2, seeds: 0 };
    let problems: string[] = [];
    try {
      resolveManifest({ ...m, subjects: [1, { subject: 2, overrides: { nope: {} } }] });
    } catch (err) {
      problems = (err as ManifestError).problems;
    }
    expect(problems.some((p) => /img2img\.strength/.test(p) && /subj01/.test(p))).toBe(true);
    expect(problems.some((p) => /img2img\.seeds/.test(p))).toBe(true);
    expect(problems.some((p) => /overrides\.nope: no analysis is named 'nope'/.test(p))).toBe(true);
  });

  it('substitutes the subject into templates and plans deterministic job ids', async () => {
    const m = batchManifest(world, 'ids', join(dir, 'ids'), [2, { subject: 3, name: 'third', overrides: { recon: { img2img: { seeds: 1 } } } }]);
    (m.analyses[0].config as Record<string, unknown>).nsd = { captions: null, sessions: null, cacheDir: `${join(dir, 'cache')}/{subj}` };
    const r = resolveManifest(m);
    expect(r.subjects.map((s) => s.name)).toEqual(['subj02', 'third']);
    const cfg = r.subjects[0].analyses[0].config as { nsd: { cacheDir: string; subject: number }; out: string };
    expect(cfg.nsd.cacheDir).toBe(join(dir, 'cache', 'subj02'));
    expect(cfg.nsd.subject).toBe(2);
    expect(cfg.out).toBe(join(dir, 'ids', 'subj02', 'recon'));
    const ids = planNodes(await planBatch(r)).map((n) => n.id);
    expect(ids).toEqual(planNodes(await planBatch(resolveManifest(m))).map((n) => n.id));
    // 8 test images in shards of 4 × 2 seeds; the third subject has one seed
    expect(ids.filter((i) => i.startsWith('ids.subj02.recon.img2img.'))).toEqual([
      'ids.subj02.recon.img2img.k0-0.i0-3',
      'ids.subj02.recon.img2img.k0-0.i4-7',
      'ids.subj02.recon.img2img.k1-1.i0-3',
      'ids.subj02.recon.img2img.k1-1.i4-7',
    ]);
    expect(ids.filter((i) => i.startsWith('ids.third.recon.img2img.'))).toHaveLength(2);
    expect(ids).toContain('ids.third.betas');
  });
});

describe('batch run, the local default', () => {
  let report: BatchReport;
  const out = join(dir, 'local');
  beforeAll(async () => {
    report = await runBatch(batchManifest(world, 'local', out, [1, 2, 3, 4]), { concurrency: 2 });
  }, 900_000);

  it('completes every good subject with the metrics of a single-process reconstruct, exactly', () => {
    expect(report.state).toBe('failed'); // subject 4
    for (const s of [1, 2, 3]) expect(metrics(join(out, `subj0${s}`, 'recon'))).toBe(single[s]);
    const cells = report.summary.filter((c) => c.subject === 'subj01');
    expect(cells.every((c) => c.state === 'done')).toBe(true);
    expect(cells.find((c) => c.stage === 'img2img')).toMatchObject({ jobs: 5, finished: 5 });
  });

  it('fails the subject with corrupt data alone, with its reason, and runs the others', () => {
    const s4 = report.summary.filter((c) => c.subject === 'subj04');
    const betas = s4.find((c) => c.stage === 'betas')!;
    expect(betas.state).toBe('failed');
    expect(betas.reason).toMatch(/FormatError: .*betas_session01\.hdf5: not an HDF5 file/);
    expect(report.jobs.find((j) => j.id === 'local.subj04.betas')!.attempts).toBe(1); // an input error is not retried
    expect(s4.filter((c) => c.stage !== 'betas').every((c) => c.state === 'blocked')).toBe(true);
    expect(existsSync(join(out, 'subj04', 'recon', 'metrics.json'))).toBe(false);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(summary.state).toBe('failed');
  });

  it('runs nothing when the finished batch is run again', async () => {
    const stamp = statSync(join(out, 'subj01', 'recon', 'images', '00000_000.png'), { throwIfNoEntry: false })?.mtimeMs;
    const again = await runBatch(batchManifest(world, 'local', out, [1, 2]), { concurrency: 2 });
    expect(again.state).toBe('done');
    expect(again.jobs.every((j) => j.state === 'skipped')).toBe(true);
    for (const s of [1, 2]) expect(metrics(join(out, `subj0${s}`, 'recon'))).toBe(single[s]);
    if (stamp !== undefined) expect(statSync(join(out, 'subj01', 'recon', 'images', '00000_000.png')).mtimeMs).toBe(stamp);
  });
});

// ---- through BullMQ on a real redis-server ----

const cli = join(process.cwd(), 'dist', 'cli', 'main.js');
const workers: ChildProcess[] = [];

/** A `brainlatent worker` process with short lock and stall intervals (a killed worker's job returns in ~3–5 s). */
function startWorker(url: string, name: string, extra: string[] = []): ChildProcess {
  const p = spawn(process.execPath, [cli, 'worker', '--redis', url, '--name', name, '--lock-ms', '3000', '--stall-ms', '1000', '--max-stalled', '3', ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  p.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  (p as ChildProcess & { log: () => string }).log = () => log;
  workers.push(p);
  return p;
}

const alive = (p: ChildProcess) => p.exitCode === null && p.signalCode === null;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 600_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

describe.skipIf(!redisAvailable)('batch through BullMQ (redis-server started here)', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const w of workers) if (alive(w)) w.kill('SIGKILL');
    await redis?.dispose();
  });

  const out = join(dir, 'bull');
  let wA: ChildProcess;
  let wB: ChildProcess;

  it('2 workers, one SIGKILLed in the middle of an img2img shard: every subject completes, with a single-process reconstruct\'s metrics', async () => {
    wA = startWorker(redis.url, 'wA');
    wB = startWorker(redis.url, 'wB');
    const sub = await submitBatch(batchManifest(world, 'bull', out, [1, 2, 3, 4], { images: 8, seeds: 2 }), { redis: redis.url });
    expect(sub.added).toEqual(['subj01', 'subj02', 'subj03', 'subj04']);
    // the first img2img shard a worker starts (one shard per subject, 8 images × 2 seeds): kill that worker
    // as soon as it says so, in the middle of the shard
    const logOf = (p: ChildProcess) => (p as ChildProcess & { log: () => string }).log();
    const shardStart = /(bull\.subj0\d\.recon\.img2img\.k\S+) started/;
    const victim = await new Promise<{ id: string; worker: string; proc: ChildProcess }>((resolve) => {
      const pair = [[wA, 'wA'], [wB, 'wB']] as const;
      const listeners = pair.map(([p, name]) => () => {
        const m = shardStart.exec(logOf(p));
        if (!m) return;
        p.kill('SIGKILL');
        pair.forEach(([q], i) => q.stderr!.off('data', listeners[i]));
        resolve({ id: m[1], worker: name, proc: p });
      });
      pair.forEach(([p], i) => p.stderr!.on('data', listeners[i]));
    });
    expect(logOf(victim.proc)).not.toMatch(new RegExp(`${victim.id.replace(/\./g, '\\.')} done`));
    expect(existsSync(join(out, victim.id.split('.')[1], 'recon', 'stages', 'img2img.json'))).toBe(false);
    const report = await waitForBatch('bull', { redis: redis.url, intervalMs: 500 });
    expect(report.state).toBe('failed'); // subject 4's data are corrupt
    for (const s of [1, 2, 3]) {
      expect(report.summary.filter((c) => c.subject === `subj0${s}` && c.state !== 'done')).toEqual([]);
      expect(metrics(join(out, `subj0${s}`, 'recon'))).toBe(single[s]);
    }
    // the killed job was found stalled and finished by the other worker
    const killed = report.jobs.find((j) => j.id === victim.id)!;
    expect(killed.state).toBe('done');
    expect(killed.stalls).toBeGreaterThanOrEqual(1);
    expect(killed.worker).not.toBe(victim.worker);
    // the corrupt subject failed alone, at once, with its reason
    const betas = report.jobs.find((j) => j.id === 'bull.subj04.betas')!;
    expect(betas.state).toBe('failed');
    expect(betas.attempts).toBe(1);
    expect(betas.reason).toMatch(/FormatError: .*not an HDF5 file/);
    expect(report.summary.filter((c) => c.subject === 'subj04' && c.stage !== 'betas').every((c) => c.state === 'blocked')).toBe(true);
  }, 900_000);

  it('the local default gave the same numbers', () => {
    for (const s of [1, 2, 3]) expect(metrics(join(out, `subj0${s}`, 'recon'))).toBe(metrics(join(dir, 'local', `subj0${s}`, 'recon')));
  });

  it('resubmitting the finished batch runs nothing', async () => {
    const before = await getBatchStatus('bull', { redis: redis.url });
    const again = await submitBatch(batchManifest(world, 'bull', out, [1, 2, 3, 4], { images: 8, seeds: 2 }), { redis: redis.url });
    expect(again.added).toEqual([]);
    await sleep(1500);
    const after = await getBatchStatus('bull', { redis: redis.url });
    expect(after.jobs.map((j) => [j.id, j.state, j.finishedAt])).toEqual(before.jobs.map((j) => [j.id, j.state, j.finishedAt]));
  }, 300_000);

  it('Redis stopped and restarted mid-batch: the workers reconnect and the batch completes', async () => {
    const alivePeer = alive(wA) ? wA : wB;
    expect(alive(alivePeer)).toBe(true);
    await submitBatch(batchManifest(world, 'restart', join(dir, 'restart'), [1]), { redis: redis.url });
    await until('the decoders running', async () => (await getBatchStatus('restart', { redis: redis.url })).jobs.find((j) => j.stage === 'decoders' && j.state === 'active'));
    await redis.stop();
    await sleep(2000);
    await redis.start();
    const report = await waitForBatch('restart', { redis: redis.url, intervalMs: 500 });
    expect(report.state).toBe('done');
    expect(metrics(join(dir, 'restart', 'subj01', 'recon'))).toBe(single[1]);
  }, 900_000);

  it('SIGTERM: a worker returns its running job to the queue and exits; another finishes it', async () => {
    for (const w of workers) if (alive(w)) w.kill('SIGKILL');
    const leaving = startWorker(redis.url, 'leaving', ['--grace', '1']);
    const logOf = () => (leaving as ChildProcess & { log: () => string }).log();
    await until('the worker', async () => logOf().includes('ready'));
    await submitPlan(probePlan('sigterm', 1, join(dir, 'sigterm'), 8000), { redis: redis.url });
    await until('the probe running', async () => logOf().includes('sigterm.probe.p0000 started'));
    leaving.kill('SIGTERM');
    const [code] = await once(leaving, 'exit');
    expect(code).toBe(0);
    expect(logOf()).toMatch(/sigterm\.probe\.p0000 returned to the queue/);
    startWorker(redis.url, 'rescuer');
    const report = await waitForBatch('sigterm', { redis: redis.url, intervalMs: 300 });
    expect(report.state).toBe('done');
    const probe = report.jobs.find((j) => j.stage === 'probe')!;
    expect(probe.worker).toBe('rescuer');
    expect(probe.stalls ?? 0).toBe(0); // returned, not stalled
  }, 600_000);

  it('200 tiny jobs across 4 workers with random kills: each job\'s output exists exactly once', async () => {
    for (const w of workers) if (alive(w)) w.kill('SIGKILL');
    const pool = Array.from({ length: 4 }, (_, i) => startWorker(redis.url, `s${i}`, ['--concurrency', '2']));
    const stressOut = join(dir, 'stress');
    await submitPlan(probePlan('stress', 200, stressOut, 150), { redis: redis.url });
    // kill a random worker every 1.5 s and start a fresh one, six times
    let n = 4;
    for (let k = 0; k < 6; k++) {
      await sleep(1500);
      const i = Math.floor(Math.random() * pool.length);
      pool[i].kill('SIGKILL');
      pool[i] = startWorker(redis.url, `s${n++}`, ['--concurrency', '2']);
    }
    const report = await waitForBatch('stress', { redis: redis.url, intervalMs: 500 });
    expect(report.state).toBe('done');
    const files = readdirSync(stressOut).filter((f) => f !== 'executions.log');
    expect(files).toHaveLength(200);
    expect(new Set(files).size).toBe(200);
    for (const f of files) expect(JSON.parse(readFileSync(join(stressOut, f), 'utf8')).id).toBe(f.replace(/\.json$/, ''));
    const executions = readFileSync(join(stressOut, 'executions.log'), 'utf8').trim().split('\n');
    expect(new Set(executions.map((l) => l.split(' ')[0])).size).toBe(200);
  }, 900_000);
});
