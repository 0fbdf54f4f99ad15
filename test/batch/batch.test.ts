import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { runBatch, type BatchReport } from '../../ts/batch/runBatch.js';
import { ManifestError, resolveManifest } from '../../ts/batch/manifest.js';
import { planBatch, planNodes } from '../../ts/batch/graph.js';
import type { DemoWorld } from '../../ts/demo/world.js';
import { betasPath } from '../../ts/nsd/paths.js';
import { reconstruct } from '../../ts/pipeline/reconstruct.js';
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
  for (const s of [1, 2]) single[s] = metrics((await reconstruct(singleConfig(world, s, join(dir, `single${s}`)))).out);
});

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
    report = await runBatch(batchManifest(world, 'local', out, [1, 2, 4]), { concurrency: 2 });
  });

  it('completes every good subject with the metrics of a single-process reconstruct, exactly', () => {
    expect(report.state).toBe('failed'); // subject 4
    for (const s of [1, 2]) expect(metrics(join(out, `subj0${s}`, 'recon'))).toBe(single[s]);
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
