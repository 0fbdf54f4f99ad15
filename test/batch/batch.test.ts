import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runBatch, type BatchReport } from '../../ts/batch/runBatch.js';
import { ManifestError, resolveManifest } from '../../ts/batch/manifest.js';
import { MAX_SHARDS_PER_ANALYSIS, planBatch, planNodes, probePlan, widenedShards } from '../../ts/batch/graph.js';
import { getBatchStatus, waitForBatch } from '../../ts/batch/inspect.js';
import { submitBatch, submitPlan } from '../../ts/batch/submit.js';
import type { DemoWorld } from '../../ts/demo/world.js';
import { betasPath } from '../../ts/nsd/paths.js';
import { reconstruct } from '../../ts/pipeline/reconstruct.js';
import { encode, encodeResult, encodeStages } from '../../ts/encoding/encode.js';
import { descendants, running } from './procs.js';
import { redisAvailable, startRedis, type TestRedis } from './redis.js';
import { batchManifest, batchWorld, encodeTemplate, sharedManifest, singleConfig } from './world.js';

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

// the world, the runs and the stress outputs: gigabytes after a few runs if left behind
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The single-process encode of subject 1 with the encoding template (run once, for every comparison). */
let singleEncodeRun: ReturnType<typeof encode> | undefined;
const singleEncode = () => (singleEncodeRun ??= encode({ ...encodeTemplate(world), out: join(dir, 'enc-single'), nsd: { ...(encodeTemplate(world).nsd as object), root: world.nsdRoot, subject: 1 } } as Parameters<typeof encode>[0]));

/** An encoding run folder's numbers: encoding.json's feature sets and banded models, and every map's voxels. */
function encodeNumbers(folder: string): unknown {
  const summary = JSON.parse(readFileSync(join(folder, 'encoding.json'), 'utf8'));
  const maps = Object.fromEntries(
    readdirSync(join(folder, 'maps'))
      .filter((f) => f.endsWith('.nii.gz'))
      .map((f) => [f, createHash('sha256').update(gunzipSync(readFileSync(join(folder, 'maps', f)))).digest('hex')]),
  );
  expect(Object.keys(maps).length).toBeGreaterThan(3);
  return { featureSets: summary.featureSets, banded: summary.banded, maps };
}

/** Lines of a subject's shared-features log: one per computation, `<z|c>-<key> <pid> <images>`. */
const computedLog = (out: string, subject: string) => readFileSync(join(out, subject, 'cache', 'features', 'computed.log'), 'utf8').trim().split('\n');

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
    expect(text).toMatch(/manifest\.name: expected a string of letters, digits, _ or -, starting with a letter \(64 at most\), got the string "1bad"/);
    expect(text).toMatch(/manifest\.subjects\[1\]/);
    expect(text).toMatch(/manifest\.analyses\[0\]\.kind/);
    // schema-valid, but the configs are not: each problem once, named by its field in the manifest (and by its
    // subjects when not every subject has it)
    const m = batchManifest(world, 'b', join(dir, 'never'), [1, 2]);
    (m.analyses[0].config as Record<string, unknown>).img2img = { strength: 2, seeds: 0 };
    let problems: string[] = [];
    try {
      resolveManifest({ ...m, subjects: [1, { subject: 2, overrides: { nope: {} } }] });
    } catch (err) {
      problems = (err as ManifestError).problems;
    }
    expect(problems.filter((p) => /^manifest\.analyses\[0\]\.config\.img2img\.strength: /.test(p))).toHaveLength(1);
    expect(problems.join('\n')).not.toMatch(/subj0/);
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
  it('cuts a large seed count into at most MAX_SHARDS_PER_ANALYSIS shards of more seeds each, every seed in one', async () => {
    const m = batchManifest(world, 'many', join(dir, 'many'), [1]);
    const config = m.analyses[0].config as Record<string, unknown>;
    m.analyses[0].config = { ...config, img2img: { ...(config.img2img as object), seeds: 100_000 } };
    const resolved = resolveManifest(m);
    const plan = await planBatch(resolved);
    const shards = planNodes(plan).flatMap((n) => (n.work.kind === 'shard' ? [n.work.shard] : []));
    expect(shards.length).toBeGreaterThan(MAX_SHARDS_PER_ANALYSIS / 2);
    expect(shards.length).toBeLessThanOrEqual(MAX_SHARDS_PER_ANALYSIS);
    const seeds = shards.filter((s) => s.imageStart === 0).reduce((n, s) => n + s.seedEnd - s.seedStart, 0);
    expect(seeds).toBe(100_000);
    // `batch plan` says why the shards are not the manifest's (4 images × 1 seed); a plan of the shards asked says nothing
    const per = shards[0].seedEnd - shards[0].seedStart;
    expect(widenedShards(resolved, plan)).toEqual([
      `subj01 × recon: img2img in ${shards.length.toLocaleString('en-US')} shards of ${per} seeds, not the 1 per shard asked: a subject × analysis has at most 10,000 (the same samples)`,
    ]);
    const asked = resolveManifest(batchManifest(world, 'few', join(dir, 'few'), [1]));
    expect(widenedShards(asked, await planBatch(asked))).toEqual([]);
  });

  it('plans one shared job per z or c recipe that two or more analyses have, and none for a recipe of one', async () => {
    const m = batchManifest(world, 'sh', join(dir, 'sh'), [1]);
    const recon = m.analyses[0];
    const config = recon.config as Record<string, unknown>;
    m.analyses = [
      recon,
      { ...recon, name: 'strength', config: { ...config, img2img: { ...(config.img2img as object), strength: 0.5 } } },
      { ...recon, name: 'sampled', config: { ...config, features: { ...(config.features as object), zMode: 'sample' } } },
    ];
    const nodes = planNodes(await planBatch(resolveManifest(m)));
    const users = (n: (typeof nodes)[number]) => (n.work.kind === 'sharedFeatures' ? n.work.consumers.map((c) => c.config.out.split('/').pop()) : []);
    // c: the three alike; z: the posterior mean of two (the sampled z is nobody else's: computed by its own stage)
    expect(nodes.filter((n) => n.work.kind === 'sharedFeatures').map((n) => [n.stage, users(n)])).toEqual([
      ['features.z', ['recon', 'strength']],
      ['features.c', ['recon', 'strength', 'sampled']],
    ]);
    const sampled = nodes.find((n) => n.id === 'sh.subj01.sampled.features')!;
    expect(sampled.work.kind).toBe('featuresLink');
    expect(sampled.deps).toEqual(['sh.subj01.sampled.extract', nodes.find((n) => n.stage === 'features.c')!.id]);
    // a manifest of one analysis has no shared job
    expect(planNodes(await planBatch(resolveManifest(batchManifest(world, 'one', join(dir, 'one'), [1])))).some((n) => /\.shared\./.test(n.id))).toBe(false);
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

  it('reruns an img2img shard whose marker an earlier version wrote (no recipe: its noise keyed otherwise), and what follows it', async () => {
    const markers = join(out, 'subj01', 'recon', 'stages', 'img2img.shards');
    const file = join(markers, readdirSync(markers).filter((f) => f.endsWith('.json')).sort()[0]);
    const marker = JSON.parse(readFileSync(file, 'utf8'));
    expect(marker.recipe).toBe(2);
    const { recipe: _, ...old } = marker;
    writeFileSync(file, JSON.stringify(old));
    const again = await runBatch(batchManifest(world, 'local', out, [1]), { concurrency: 2 });
    expect(again.state).toBe('done');
    const ran = again.jobs.filter((j) => j.state === 'done').map((j) => j.id);
    expect(ran.filter((id) => /img2img\..+/.test(id))).toHaveLength(1);
    expect(ran).toEqual(expect.arrayContaining(['local.subj01.recon.img2img', 'local.subj01.recon.evaluate']));
    expect(JSON.parse(readFileSync(file, 'utf8')).recipe).toBe(2);
    expect(metrics(join(out, 'subj01', 'recon'))).toBe(single[1]);
  });
});

describe('an encoding analysis in a batch', () => {
  it('runs as one job per encode stage, with the results of a single-process encode, exactly', async () => {
    const out = join(dir, 'enc');
    const tpl = encodeTemplate(world);
    const report = await runBatch({ name: 'enc', out, nsd: { root: world.nsdRoot }, subjects: [1], analyses: [{ name: 'enc', kind: 'encode', config: tpl }] }, { concurrency: 2 });
    expect(report.jobs.filter((j) => j.state !== 'done').map((j) => `${j.id}: ${j.state} ${j.reason ?? ''}`)).toEqual([]);
    const single = await singleEncode();
    const stages = encodeStages(single.config).map((s) => s.id);
    expect(stages).toEqual(expect.arrayContaining(['extract', 'embed', 'fit.z', 'fit.c', 'banded.z+c', 'maps', 'report']));
    expect(report.jobs.filter((j) => j.analysis === 'enc').map((j) => j.stage)).toEqual(stages);
    const batch = await encodeResult({ ...single.config, out: join(out, 'subj01', 'enc'), nsd: { ...single.config.nsd, cacheDir: join(out, 'subj01', 'cache') } });
    expect(batch.featureSets.map((f) => f.name)).toEqual(single.featureSets.map((f) => f.name));
    for (const [i, f] of batch.featureSets.entries()) {
      expect(f.meanR).toBe(single.featureSets[i].meanR);
      expect(Array.from(f.r)).toEqual(Array.from(single.featureSets[i].r));
    }
    expect(Array.from(batch.banded[0].unique['z'] ?? [])).toEqual(Array.from(single.banded[0].unique['z'] ?? []));
  }, 600_000);
});

describe('shared features', () => {
  const out = join(dir, 'shared');
  let reconSingle: string;
  beforeAll(async () => {
    // the references: the two analyses run on their own, in single processes
    reconSingle = metrics((await reconstruct(singleConfig(world, 1, join(dir, 'single1-t0'), 0))).out);
    await singleEncode();
  }, 900_000);

  it('a reconstruction and an encoding of one subject compute z and c once, as graph jobs both depend on, with the results of separate runs, exactly', async () => {
    const plan = planNodes(await planBatch(resolveManifest(sharedManifest(world, 'shared', out, [1]))));
    const shared = plan.filter((n) => n.work.kind === 'sharedFeatures');
    expect(shared.map((n) => n.stage).sort()).toEqual(['features.c', 'features.z']);
    expect(shared.every((n) => /^shared\.subj01\.shared\.[zc]-[0-9a-f]{12}$/.test(n.id) && n.deps.join() === 'shared.subj01.betas')).toBe(true);
    const links = plan.filter((n) => n.work.kind === 'featuresLink');
    expect(links.map((n) => n.id)).toEqual(['shared.subj01.recon.features', 'shared.subj01.enc.embed']);
    for (const l of links) expect(l.deps).toEqual(expect.arrayContaining(shared.map((n) => n.id)));

    const report = await runBatch(sharedManifest(world, 'shared', out, [1]), { concurrency: 2 });
    expect(report.jobs.filter((j) => j.state !== 'done' && j.stage !== 'betas').map((j) => `${j.id}: ${j.state} ${j.reason ?? ''}`)).toEqual([]);
    // what ran: one computation of z and one of c (the log of the cache), by the shared jobs, none in the analyses
    expect(computedLog(out, 'subj01').map((l) => l[0]).sort()).toEqual(['c', 'z']);
    const cells = report.summary.filter((c) => c.subject === 'subj01');
    for (const stage of ['features.z', 'features.c']) expect(cells.find((c) => c.analysis === null && c.stage === stage)).toMatchObject({ state: 'done', jobs: 1 });
    for (const [analysis, stage] of [['recon', 'features'], ['enc', 'embed']]) {
      const marker = JSON.parse(readFileSync(join(out, 'subj01', analysis, 'stages', `${stage}.json`), 'utf8'));
      expect(marker.summary.computedHere).toEqual([]);
      expect(Object.values(marker.summary.sharedFeatures).sort()).toEqual(computedLog(out, 'subj01').map((l) => l.split(' ')[0]).sort());
    }
    // the results: those of the separate single-process runs, bit for bit
    expect(metrics(join(out, 'subj01', 'recon'))).toBe(reconSingle);
    expect(encodeNumbers(join(out, 'subj01', 'enc'))).toEqual(encodeNumbers((await singleEncode()).out));
    // run again: nothing runs, nothing is computed
    const again = await runBatch(sharedManifest(world, 'shared', out, [1]), { concurrency: 2 });
    expect(again.jobs.every((j) => j.state === 'skipped')).toBe(true);
    expect(computedLog(out, 'subj01')).toHaveLength(2);
  }, 600_000);
});

// ---- through BullMQ on a real redis-server ----

const cli = join(process.cwd(), 'dist', 'cli', 'main.js');
type WorkerProc = ChildProcess & {
  log: () => string;
  name: string;
  /** Calls `fn` with each whole line of the worker's stderr as it arrives (not at a later look); returns its removal. */
  onLine: (fn: (line: string) => void) => () => void;
};
const workers: WorkerProc[] = [];

/** A `brainlatent worker` process with short lock and stall intervals (a killed worker's job returns in ~3–5 s). */
function startWorker(url: string, name: string, extra: string[] = []): WorkerProc {
  const p = spawn(process.execPath, [cli, 'worker', '--redis', url, '--name', name, '--lock-ms', '3000', '--stall-ms', '1000', '--poll', '250', ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
  }) as WorkerProc;
  let log = '';
  const listeners = new Set<(line: string) => void>();
  p.stderr!.on('data', (d: Buffer) => {
    const whole = log.lastIndexOf('\n') + 1; // where the line not yet ended starts
    log += d.toString();
    const end = log.lastIndexOf('\n');
    if (end >= whole) for (const line of log.slice(whole, end).split('\n')) for (const fn of [...listeners]) fn(line);
  });
  p.log = () => log;
  p.onLine = (fn) => {
    listeners.add(fn);
    return () => listeners.delete(fn);
  };
  p.name = name;
  workers.push(p);
  return p;
}

const alive = (p: ChildProcess) => p.exitCode === null && p.signalCode === null;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits for a condition with a generous deadline (the machine may be loaded: never assert a duration). With
 * `batch`, it gives up as soon as that batch has ended without the condition (its failures say why).
 */
async function until<T>(
  what: string,
  fn: () => Promise<T | null | undefined | false> | T | null | undefined | false,
  timeoutMs = 600_000,
  batch?: { id: string; redis: string },
): Promise<T> {
  const t0 = Date.now();
  let looked = 0;
  for (;;) {
    const v = await Promise.resolve()
      .then(fn)
      .catch(() => null);
    if (v) return v;
    if (batch && Date.now() - looked > 2000) {
      looked = Date.now();
      const st = await getBatchStatus(batch.id, { redis: batch.redis }).catch(() => null);
      if (st && st.state !== 'running') {
        const failed = st.jobs.filter((j) => j.state === 'failed').map((j) => `${j.id}: ${j.reason}`);
        throw new Error(`batch ${batch.id} ended (${st.state}) before ${what}${failed.length ? `; failed: ${failed.join('; ')}` : ''}`);
      }
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(200);
  }
}

/**
 * Freezes (SIGSTOP) a worker and its job processes in the handler of the first stderr line matching `re` that is
 * not in `tried` (a line logged before the call is taken first); fails as soon as the batch ends without one.
 */
async function freezeAtLine(
  pair: WorkerProc[],
  re: RegExp,
  tried: Set<string>,
  batch: { id: string; redis: string },
): Promise<{ p: WorkerProc; m: RegExpExecArray; tree: number[] }> {
  const offs: (() => void)[] = [];
  let settled = false;
  const frozen = new Promise<{ p: WorkerProc; m: RegExpExecArray; tree: number[] }>((resolve) => {
    const take = (p: WorkerProc, line: string): boolean => {
      const m = re.exec(line);
      if (settled || !m || tried.has(m[0])) return false;
      settled = true;
      tried.add(m[0]);
      process.kill(p.pid!, 'SIGSTOP'); // the worker first: it starts no process while its tree is read
      const tree = [p.pid!, ...descendants(p.pid!)];
      for (const pid of tree.slice(1)) process.kill(pid, 'SIGSTOP');
      resolve({ p, m, tree });
      return true;
    };
    for (const p of pair) for (const line of p.log().split('\n')) if (take(p, line)) return;
    for (const p of pair) offs.push(p.onLine((line) => void take(p, line)));
  });
  try {
    return await Promise.race([frozen, until(`a line matching ${re}`, () => settled, 900_000, batch).then(() => frozen)]);
  } finally {
    settled = true;
    for (const off of offs) off();
  }
}

/** SIGKILLs a worker and returns the processes it had started (its job processes), which must die with it. */
function killWorker(p: WorkerProc): number[] {
  const below = descendants(p.pid!);
  p.kill('SIGKILL');
  return below;
}

/** Every process a killed worker left is gone (not merely orphaned): waited for, not assumed. */
async function expectNoOrphans(pids: number[]): Promise<void> {
  await until(`the killed workers' job processes to exit (${pids.filter(running).join(', ')})`, () => pids.every((pid) => !running(pid)), 120_000);
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
  let survivor: WorkerProc;

  it('2 workers, one SIGKILLed in the middle of an img2img shard: every subject completes, with a single-process reconstruct\'s metrics; the killed worker leaves no process behind', async () => {
    const pair = [startWorker(redis.url, 'wA'), startWorker(redis.url, 'wB')];
    const sub = await submitBatch(batchManifest(world, 'bull', out, [1, 2, 3, 4], { images: 8, seeds: 2 }), { redis: redis.url });
    expect(sub.added).toEqual(['subj01', 'subj02', 'subj03', 'subj04']);
    // the worker of the first img2img shard that starts (one shard per subject, 8 images × 2 seeds) is frozen
    // with its job process (SIGSTOP) in the handler of the line that says so, then killed if the shard has not
    // finished (its marker is written last): the line arrives before the shard's first sample ends, however fast
    // the machine (polling the log every 200 ms missed every shard on a fast one, all done in 8 s); a shard that
    // finished before the freeze is let go and the next one is taken
    const shardStart = /bull\.(subj0\d)\.recon\.img2img\.(k\S+) started/;
    const tried = new Set<string>();
    let id = '';
    let victim: WorkerProc | undefined;
    while (!victim) {
      const found = await freezeAtLine(pair, shardStart, tried, { id: 'bull', redis: redis.url });
      if (existsSync(join(out, found.m[1], 'recon', 'stages', 'img2img.shards', `${found.m[2]}.json`))) {
        for (const pid of found.tree) process.kill(pid, 'SIGCONT');
        continue;
      }
      id = `bull.${found.m[1]}.recon.img2img.${found.m[2]}`;
      victim = found.p;
    }
    const orphans = killWorker(victim);
    expect(orphans.length).toBeGreaterThan(0);
    survivor = pair.find((p) => p !== victim)!;
    expect(victim.log()).not.toMatch(new RegExp(`${id.replace(/\./g, '\\.')} done`));
    await expectNoOrphans(orphans);
    const report = await waitForBatch('bull', { redis: redis.url, intervalMs: 500 });
    expect(report.state).toBe('failed'); // subject 4's data are corrupt
    for (const s of [1, 2, 3]) {
      // done, or skipped where the work was already there (the shared extraction cache)
      expect(report.summary.filter((c) => c.subject === `subj0${s}` && c.state !== 'done' && !(c.stage === 'betas' && c.state === 'skipped'))).toEqual([]);
      expect(metrics(join(out, `subj0${s}`, 'recon'))).toBe(single[s]);
    }
    // the killed job was found stalled and finished by the other worker
    const killed = report.jobs.find((j) => j.id === id)!;
    expect(killed.state).toBe('done');
    expect(killed.stalls).toBeGreaterThanOrEqual(1);
    expect(killed.worker).toBe(survivor.name);
    // the corrupt subject failed alone, at once, with its reason
    const betas = report.jobs.find((j) => j.id === 'bull.subj04.betas')!;
    expect(betas.state).toBe('failed');
    expect(betas.attempts).toBe(1);
    expect(betas.reason).toMatch(/FormatError: .*not an HDF5 file/);
    expect(report.summary.filter((c) => c.subject === 'subj04' && c.stage !== 'betas').every((c) => c.state === 'blocked')).toBe(true);
  }, 1_200_000);

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
    expect(alive(survivor)).toBe(true);
    // Redis is stopped as a job past the features starts (the decoders, the z-only decode or an img2img shard), in
    // the handler of the worker's line that says so: looking at the batch's jobs every 200 ms could miss them all
    // (the decoders alone take ~1 s on the demo world), and the batch then ended unseen
    const midway = /restart\.subj01\.recon\.(decoders|zonly|img2img)\S* started/;
    let stopped: Promise<void> | undefined;
    const off = survivor.onLine((line) => {
      if (!stopped && midway.test(line)) stopped = redis.stop();
    });
    try {
      await submitBatch(batchManifest(world, 'restart', join(dir, 'restart'), [1]), { redis: redis.url });
      await until(`a line matching ${midway}`, () => stopped !== undefined, 600_000, { id: 'restart', redis: redis.url });
    } finally {
      off();
    }
    await stopped;
    await sleep(2000);
    await redis.start();
    const report = await waitForBatch('restart', { redis: redis.url, intervalMs: 500 });
    expect(report.state).toBe('done');
    expect(metrics(join(dir, 'restart', 'subj01', 'recon'))).toBe(single[1]);
  }, 900_000);

  it('an encoding and a reconstruction through 2 worker processes: the shared z and c are computed once, and the encoding\'s numbers and maps equal the local default\'s exactly', async () => {
    for (const w of workers) if (alive(w)) w.kill('SIGKILL');
    startWorker(redis.url, 'eA');
    startWorker(redis.url, 'eB');
    const bullOut = join(dir, 'bull-shared');
    await submitBatch(sharedManifest(world, 'bullshared', bullOut, [1]), { redis: redis.url });
    const report = await waitForBatch('bullshared', { redis: redis.url, intervalMs: 500 });
    expect(report.jobs.filter((j) => j.state !== 'done' && j.stage !== 'betas').map((j) => `${j.id}: ${j.state} ${j.reason ?? ''}`)).toEqual([]);
    expect(report.jobs.filter((j) => j.stage === 'features.z' || j.stage === 'features.c').map((j) => j.state)).toEqual(['done', 'done']);
    expect(computedLog(bullOut, 'subj01').map((l) => l[0]).sort()).toEqual(['c', 'z']);
    expect(new Set(report.jobs.filter((j) => j.analysis === 'enc').map((j) => j.worker)).size).toBeGreaterThan(0);
    const local = join(dir, 'shared', 'subj01');
    expect(encodeNumbers(join(bullOut, 'subj01', 'enc'))).toEqual(encodeNumbers(join(local, 'enc')));
    expect(metrics(join(bullOut, 'subj01', 'recon'))).toBe(metrics(join(local, 'recon')));
  }, 900_000);

  it('SIGTERM: a worker returns its running job to the queue and exits; another finishes it', async () => {
    for (const w of workers) if (alive(w)) w.kill('SIGKILL');
    const leaving = startWorker(redis.url, 'leaving', ['--grace', '1']);
    await until('the worker', () => leaving.log().includes('ready'));
    await submitPlan(probePlan('sigterm', 1, join(dir, 'sigterm'), 8000), { redis: redis.url });
    await until('the probe running', () => leaving.log().includes('sigterm.probe.p0000 started'));
    leaving.kill('SIGTERM');
    const [code] = await once(leaving, 'exit');
    expect(code).toBe(0);
    expect(leaving.log()).toMatch(/sigterm\.probe\.p0000 returned to the queue/);
    startWorker(redis.url, 'rescuer');
    const report = await waitForBatch('sigterm', { redis: redis.url, intervalMs: 300 });
    expect(report.state).toBe('done');
    const probe = report.jobs.find((j) => j.stage === 'probe')!;
    expect(probe.worker).toBe('rescuer');
    expect(probe.stalls ?? 0).toBe(0); // returned, not stalled
  }, 600_000);

  // BRAINLATENT_STRESS_JOBS / _WORKERS / _KILLS make a bigger run (the defaults keep CI short)
  const stress = { jobs: Number(process.env.BRAINLATENT_STRESS_JOBS ?? 200), workers: Number(process.env.BRAINLATENT_STRESS_WORKERS ?? 4), kills: Number(process.env.BRAINLATENT_STRESS_KILLS ?? 6) };

  it(`${stress.jobs} tiny jobs across ${stress.workers} workers with ${stress.kills} kills, one job's worker killed 3 times over: each job's output exists exactly once, no kill fails the batch, no process is left behind`, async () => {
    for (const w of workers) if (alive(w)) w.kill('SIGKILL');
    let n = 0;
    const pool = Array.from({ length: stress.workers }, () => startWorker(redis.url, `s${n++}`, ['--concurrency', '2']));
    const stressOut = join(dir, 'stress');
    // three slow jobs (4 s) among the tiny ones (100 ms): long enough to find their worker and kill it
    await submitPlan(probePlan('stress', stress.jobs, stressOut, 100, { attempts: 3, backoffMs: 200 }, { count: 3, ms: 4000 }), { redis: redis.url });
    const orphans: number[] = [];
    const replace = (victim: WorkerProc) => {
      orphans.push(...killWorker(victim));
      pool[pool.indexOf(victim)] = startWorker(redis.url, `s${n++}`, ['--concurrency', '2']);
    };
    // the chase: whichever worker runs job p0000 is killed, three times over (BullMQ's default would fail it
    // at the second stall; a stall is a lost worker, not a failed attempt)
    const chased = 'stress.probe.p0000';
    for (let k = 0; k < Math.min(3, stress.kills); k++) {
      const holder = await until(`a worker running ${chased}`, () => pool.find((p) => alive(p) && p.log().includes(`${chased} started`)));
      replace(holder);
    }
    // the other kills: random workers, every 1.5 s
    for (let k = 3; k < stress.kills; k++) {
      await sleep(1500);
      replace(pool[Math.floor(Math.random() * pool.length)]);
    }
    const report = await waitForBatch('stress', { redis: redis.url, intervalMs: 500 });
    const failed = report.jobs.filter((j) => j.state !== 'done' && j.state !== 'skipped');
    expect(failed.map((j) => `${j.id}: ${j.state} ${j.reason ?? ''}`)).toEqual([]);
    expect(report.state).toBe('done');
    const p0 = report.jobs.find((j) => j.id === chased)!;
    expect(p0.stalls).toBeGreaterThanOrEqual(Math.min(3, stress.kills));
    // exactly once: one output per job, whole, published once (a re-run after a kill finds it and publishes nothing)
    // (batch.json beside them is the plan, which submitPlan writes)
    const files = readdirSync(stressOut).filter((f) => f.endsWith('.json') && !f.startsWith('.') && f !== 'batch.json');
    expect(files).toHaveLength(stress.jobs);
    for (const f of files) expect(JSON.parse(readFileSync(join(stressOut, f), 'utf8')).id).toBe(f.replace(/\.json$/, ''));
    // no job published twice (a worker killed between the publication and this log line leaves a job out of it)
    const published = readFileSync(join(stressOut, 'published.log'), 'utf8').trim().split('\n').map((l) => l.split(' ')[0]);
    expect(published.length).toBeGreaterThan(stress.jobs - stress.kills * 2 - 1);
    expect(new Set(published).size).toBe(published.length);
    // no job process of a killed worker survives it
    expect(orphans.length).toBeGreaterThan(0);
    await expectNoOrphans(orphans);
  }, 900_000);
});
