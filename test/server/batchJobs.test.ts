import { existsSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { DemoWorld } from '../../ts/demo/world.js';
import { batchManifest, batchWorld, encodeTemplate, singleConfig } from '../batch/world.js';
import { readEvents, startTestServer, type TestServer } from './helpers.js';

// Reconstruct jobs and manifests run on the batch layer (a process pool, every stage a job, img2img in shards);
// the service follows them stage by stage.
let s: TestServer;
let world: DemoWorld;
beforeAll(async () => {
  s = await startTestServer();
  world = await batchWorld(s.root, [1, 2, 3]); // the subjects these tests use
  symlinkSync('/etc', join(s.root, 'escape-subj01'));
}, 600_000);
afterAll(async () => s?.stop());

/** Config paths as the service's clients write them: relative to its root. */
const rel = (p: string) => p.slice(s.root.length + 1);
const single = (subject: number, out: string) => {
  const c = singleConfig(world, subject, out) as unknown as { nsd: { root: string }; model: { dir: string } };
  return { ...c, nsd: { ...c.nsd, root: rel(c.nsd.root) }, model: { ...c.model, dir: rel(c.model.dir) } };
};

// whole pipelines in job processes: minutes on a loaded 2-core machine (the CI's), seconds on a quiet one
describe('jobs on the batch layer', { timeout: 600_000 }, () => {
  it('runs a reconstruct config as a batch of one: every stage in order over SSE, the metrics, the report in its own folder', async () => {
    const r = await s.call('POST', '/v1/jobs', { kind: 'reconstruct', config: single(1, 'runs/s1') });
    expect(r.status, r.text).toBe(202);
    expect(r.json.stages).toEqual(['betas', 'extract', 'features', 'decoders', 'zonly', 'img2img', 'evaluate', 'report']);
    const events = await readEvents(`${s.url}/v1/jobs/${r.json.id}/events`);
    const last = events[events.length - 1];
    expect(last.event, JSON.stringify(last.data.error)).toBe('result');
    expect(events.filter((e) => e.event === 'stage').map((e) => e.data.stage)).toEqual(r.json.stages);
    const result = last.data.result;
    expect(result.metrics.final['Pixels(2WI)']).toBeGreaterThan(0.5);
    // which metrics are accuracies and which distances, as a demo job's result says: the page shows 2WI in % from it
    expect(result.metrics.better).toMatchObject({ PixCorr: 'higher', SSIM: 'higher', 'Pixels(2WI)': 'higher' });
    expect(result.testImages).toBe(8);
    // and the images each metric left out of its mean, having no correlation, as metrics.json has them (before: absent)
    expect(result.metrics.images).toBe(8);
    expect(result.metrics.leftOut).toEqual(JSON.parse(readFileSync(join(s.root, 'runs', 's1', 'metrics.json'), 'utf8')).leftOut);
    expect(Object.keys(result.metrics.leftOut.final)).toEqual(Object.keys(result.metrics.final));
    expect(result.counts.failed).toBe(0);
    expect(existsSync(join(s.root, 'runs', 's1', 'report.html'))).toBe(true);
    // the batch's own plan and summary stay out of the run folder
    expect(readdirSync(join(s.root, 'runs', 's1')).filter((f) => f.startsWith('batch') || f === 'summary.json')).toEqual([]);
    const report = await s.call('GET', `/v1/jobs/${r.json.id}/files/report.html`);
    expect(report.headers.get('content-type')).toMatch(/^text\/html/);
  });

  it("runs an encode config as a batch of one: its stages are encode's own (from its feature sets), every one in order over SSE", async () => {
    const t = encodeTemplate(world) as { model: string };
    const r = await s.call('POST', '/v1/jobs', { kind: 'encode', config: { ...t, model: rel(t.model), out: 'enc/s3', nsd: { ...(t as unknown as { nsd: object }).nsd, root: rel(world.nsdRoot), subject: 3 } } });
    expect(r.status, r.text).toBe(202);
    expect(r.json.stages).toEqual(['betas', 'extract', 'ceiling', 'embed', 'fit.z', 'fit.c', 'banded.z+c', 'maps', 'report']);
    const events = await readEvents(`${s.url}/v1/jobs/${r.json.id}/events`);
    const last = events[events.length - 1];
    expect(last.event, JSON.stringify(last.data.error)).toBe('result');
    expect(events.filter((e) => e.event === 'stage').map((e) => e.data.stage)).toEqual(r.json.stages);
    expect(existsSync(join(s.root, 'enc', 's3', 'report.html'))).toBe(true);
    // the result's summary, as the page shows it: what encode() returns, the whole mask's row of regions.csv
    const encoding = last.data.result.encoding;
    expect(encoding).toMatchObject({ trainImages: expect.any(Number), testImages: expect.any(Number), noiseCeiling: expect.any(Boolean) });
    expect(encoding.voxels).toBeGreaterThan(0);
    expect(encoding.featureSets.map((f: { name: string; model: string }) => `${f.name}:${f.model}`)).toEqual(['z:ridge', 'c:ridge', 'z+c:banded']);
    const csv = readFileSync(join(s.root, 'enc', 's3', 'regions.csv'), 'utf8').trim().split('\n').map((l) => l.split(','));
    for (const f of encoding.featureSets) {
      const row = csv.find((c) => c[0] === f.name && c[1] === 'mask')!;
      expect(Number(row[4])).toBe(encoding.voxels);
      expect(f.meanR).toBeCloseTo(Number(row[5]), 3);
      if (encoding.noiseCeiling) {
        expect(f.meanRNormalised).toBeCloseTo(Number(row[7]), 3);
        // voxels_over_ceiling and mean_r_over_mean_sqrt_nc
        expect(f.voxelsOverCeiling).toBe(Number(row[8]));
        expect(f.ratioOfMeans).toBeCloseTo(Number(row[9]), 3);
      } else {
        expect(f.meanRNormalised).toBeNull();
        expect([f.voxelsOverCeiling, f.ratioOfMeans]).toEqual([null, null]);
      }
    }
  });

  it('runs a manifest: both subjects, progress as one stage, the summary per subject × stage', async () => {
    const manifest = batchManifest(world, 'two', 'batches/two', [1, 2]);
    const body = { kind: 'batch', manifest: { ...manifest, nsd: { root: rel(manifest.nsd!.root!) }, analyses: manifest.analyses.map((a) => ({ ...a, config: { ...a.config, model: { ...(a.config.model as object), dir: rel((a.config.model as { dir: string }).dir) } } })) } };
    const r = await s.call('POST', '/v1/jobs', body);
    expect(r.status, r.text).toBe(202);
    expect(r.json.out).toBe('batches/two');
    const events = await readEvents(`${s.url}/v1/jobs/${r.json.id}/events`);
    const last = events[events.length - 1];
    expect(last.event, JSON.stringify(last.data.error)).toBe('result');
    const fractions = events.filter((e) => e.event === 'progress').map((e) => e.data.fraction);
    expect(fractions[fractions.length - 1]).toBe(1);
    expect(last.data.result.state).toBe('done');
    expect(last.data.result.summary.map((c: { subject: string }) => c.subject)).toContain('subj02');
    expect(existsSync(join(s.root, 'batches', 'two', 'subj02', 'recon', 'report.html'))).toBe(true);
    expect((await s.call('GET', `/v1/jobs/${r.json.id}/files/summary.json`)).json.state).toBe('done');
  });

  it('cancels a reconstruct job in the middle of its img2img shards: no img2img marker, no temporaries', async () => {
    const config = single(2, 'runs/cancelled');
    const r = await s.call('POST', '/v1/jobs', { kind: 'reconstruct', config: { ...config, img2img: { ...(config as unknown as { img2img: object }).img2img, steps: 400 } } });
    let sent = false;
    const events = await readEvents(`${s.url}/v1/jobs/${r.json.id}/events`, {}, (e) => {
      if (!sent && e.event === 'progress' && e.data.stage === 'img2img' && e.data.fraction > 0) {
        sent = true;
        void s.call('DELETE', `/v1/jobs/${r.json.id}`);
      }
    });
    const last = events[events.length - 1];
    expect(last.event).toBe('error');
    expect(last.data.state).toBe('cancelled');
    const run = join(s.root, 'runs', 'cancelled');
    expect(existsSync(join(run, 'stages', 'zonly.json'))).toBe(true);
    expect(existsSync(join(run, 'stages', 'img2img.json'))).toBe(false);
    expect(readdirSync(run, { recursive: true }).filter((f) => /(^|\/)\.[^/]*tmp/.test(String(f)))).toEqual([]);

    // The same body again resumes the run: its finished stages are announced 'skipped' over SSE (never
    // 'running') and left out of the stage-duration histogram.
    const metric = async (stage: string) => Number(new RegExp(`^brainlatent_job_stage_duration_seconds_count\\{kind="reconstruct",stage="${stage}"\\} (\\d+)$`, 'm').exec((await s.call('GET', '/metrics')).text)?.[1] ?? 0);
    const before = await Promise.all(['betas', 'extract', 'zonly'].map(metric));
    const again = await s.call('POST', '/v1/jobs', { kind: 'reconstruct', config: { ...config, img2img: { ...(config as unknown as { img2img: object }).img2img, steps: 400 } } });
    let stopped = false;
    const resumed = await readEvents(`${s.url}/v1/jobs/${again.json.id}/events`, {}, (e) => {
      if (!stopped && e.event === 'stage' && e.data.stage === 'img2img') {
        stopped = true;
        void s.call('DELETE', `/v1/jobs/${again.json.id}`);
      }
    });
    expect(resumed[resumed.length - 1].data.state).toBe('cancelled');
    expect(resumed.filter((e) => e.event === 'stage').map((e) => [e.data.stage, e.data.status])).toEqual([
      ['betas', 'skipped'],
      ['extract', 'skipped'],
      ['features', 'skipped'],
      ['decoders', 'skipped'],
      ['zonly', 'skipped'],
      ['img2img', 'running'],
    ]);
    expect(await Promise.all(['betas', 'extract', 'zonly'].map(metric))).toEqual(before);
  });

  it("refuses a manifest whose templates lead outside the root, naming each expanded config's field", async () => {
    const manifest = batchManifest(world, 'bad', '../outside', [1]);
    const r = await s.call('POST', '/v1/jobs', { kind: 'batch', manifest: { ...manifest, analyses: [{ ...manifest.analyses[0], config: { ...manifest.analyses[0].config, nsd: { captions: '/etc/captions.csv' } } }] } });
    expect(r.status).toBe(400);
    const p = r.json.problems.join('\n');
    expect(p).toMatch(/body\.manifest\.out: '\.\.' is not allowed/);
    expect(p).toMatch(/body\.manifest\.analyses\[0\]\.config\.nsd\.captions: the path is outside/);
    // and after expansion: a template that only leaves the root once its subject is filled in
    const later = await s.call('POST', '/v1/jobs', { kind: 'batch', manifest: { ...manifest, out: 'b', analyses: [{ ...manifest.analyses[0], config: { ...manifest.analyses[0].config, nsd: { captions: 'escape-{subj}/c.csv' } } }] } });
    expect(later.status).toBe(400);
    expect(later.json.problems.join('\n')).toMatch(/body\.manifest \(subj01\/recon\) config\.nsd\.captions: the path leads outside .* symbolic link/);
  });
});
