/**
 * Encode and batch jobs are preflighted at submission as reconstruct jobs are: what the job would refuse when it
 * starts (encode's own checks, each subject × analysis's for a manifest, as `batch submit` checks them) is a 400
 * listing every problem, and nothing is queued or written. Before, both were accepted (202) and failed once run.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { resolveManifest } from '../../ts/batch/manifest.js';
import type { DemoWorld } from '../../ts/demo/world.js';
import { writeManifest } from '../../ts/pipeline/runFolder.js';
import { batchPreflightProblems, SERVICE_BATCH_FOLDER_REMEDY } from '../../ts/server/jobs/jobPreflight.js';
import { batchManifest, batchWorld, encodeTemplate, reconTemplate } from '../batch/world.js';
import { startTestServer, type TestServer } from './helpers.js';

let s: TestServer;
let world: DemoWorld;
beforeAll(async () => {
  s = await startTestServer();
  world = await batchWorld(s.root, [1]);
}, 600_000);
afterAll(async () => s?.stop());

/** Config paths as the service's clients write them: relative to its root. */
const rel = (p: string) => p.slice(s.root.length + 1);
const encodeConfig = (out: string, subject: number) => {
  const t = encodeTemplate(world) as { model: string; nsd: object };
  return { ...t, model: rel(t.model), out, nsd: { ...t.nsd, root: rel(world.nsdRoot), subject } };
};
const manifest = (name: string, subjects: number[]) => {
  const m = batchManifest(world, name, `batches/${name}`, subjects);
  const recon = reconTemplate(world) as { model: { dir: string } };
  return { ...m, nsd: { root: rel(world.nsdRoot) }, analyses: [{ ...m.analyses[0], config: { ...recon, model: { ...recon.model, dir: rel(recon.model.dir) } } }] };
};

/** Nothing of a refused job: no job, no run folder, no batch plan. */
async function nothingWritten(kind: string, out: string): Promise<void> {
  expect((await s.call('GET', `/v1/jobs?kind=${kind}`)).json.jobs).toEqual([]);
  expect(existsSync(join(s.root, out))).toBe(false);
  expect(existsSync(join(s.root, '.brainlatent', 'batches')) ? readdirSync(join(s.root, '.brainlatent', 'batches')) : []).toEqual([]);
}

describe('encode and batch jobs are preflighted at submission', { timeout: 300_000 }, () => {
  it('an encode config its preflight refuses is a 400 listing its problems; nothing is queued or written', async () => {
    // subject 2 is not in this world: encode's own preflight says so (was 202, then failed)
    const r = await s.call('POST', '/v1/jobs', { kind: 'encode', config: encodeConfig('enc/bad', 2) });
    expect(r.status, r.text).toBe(400);
    expect(r.json.code).toBe('InvalidRequest');
    const problems: string[] = r.json.problems;
    expect(problems.every((p) => p.startsWith('body.config: ')), problems.join('\n')).toBe(true);
    // (the server's paths shown relative to its root)
    expect(problems).toContainEqual(expect.stringMatching(/^body\.config: subject 2 has no betas in world\/nsd \(/));
    expect(problems).toContainEqual(expect.stringMatching(/^body\.config: nsd\.roi 'streams': region streams: atlas streams not found: its volume world\/nsd\/nsddata\/ppdata\/subj02\/func1pt8mm\/roi\/streams\.nii\.gz does not exist$/));
    expect(JSON.stringify(r.json)).not.toContain(s.root);
    await nothingWritten('encode', 'enc/bad');
  });

  it('a manifest whose subject × analysis preflights fail is a 400 naming each problem once with the pairs it concerns', async () => {
    // an img2img size the world's U-Net cannot take, in both subjects; subject 2 has no data in this world
    const m = manifest('bad', [1, 2]);
    const config = m.analyses[0].config as unknown as { img2img: Record<string, unknown> };
    const bad = { ...m, analyses: [{ ...m.analyses[0], config: { ...config, img2img: { ...config.img2img, size: 32 } } }] };
    const r = await s.call('POST', '/v1/jobs', { kind: 'batch', manifest: bad });
    expect(r.status, r.text).toBe(400);
    expect(r.json.code).toBe('InvalidRequest');
    const problems: string[] = r.json.problems;
    expect(problems.every((p) => p.startsWith('body.manifest: ')), problems.join('\n')).toBe(true);
    expect(problems.filter((p) => /img2img\.size 32/.test(p))).toEqual([
      'body.manifest: subj01, subj02 × recon: img2img.size 32 gives 4×4 latents, but world/model/unet/model.onnx takes sample of 8×8 only: set img2img.size to 64',
    ]);
    expect(problems).toContainEqual(expect.stringMatching(/^body\.manifest: subj02 × recon: subject 2 has no betas in world\/nsd \(/));
    expect(JSON.stringify(r.json)).not.toContain(s.root);
    await nothingWritten('batch', 'batches/bad');
  });

  it('a good encode config and a good manifest are still accepted (202)', async () => {
    for (const body of [
      { kind: 'encode', config: encodeConfig('enc/good', 1) },
      { kind: 'batch', manifest: manifest('good', [1]) },
    ]) {
      const r = await s.call('POST', '/v1/jobs', body);
      expect(r.status, r.text).toBe(202);
      await s.call('DELETE', `/v1/jobs/${r.json.id}`);
    }
  });

  it("a run folder of another config's run is refused in the service's words (a batch job has no force)", async () => {
    const m = manifest('other', [1]);
    const out = (resolveManifest(m, { source: 'body.manifest', baseDir: s.root }).subjects[0].analyses[0].config as { out: string }).out;
    mkdirSync(out, { recursive: true });
    await writeManifest({ out, other: 'config' } as { out: string }, {});
    writeFileSync(join(out, 'metrics.json'), '{}');
    const r = await s.call('POST', '/v1/jobs', { kind: 'batch', manifest: m });
    expect(r.status, r.text).toBe(400);
    expect(r.json.problems).toEqual([expect.stringMatching(/^body\.manifest: subj01 × recon: run folder batches\/other\/.* holds another run's outputs \(metrics\.json; .*\); choose another body\.manifest\.out, or give the analysis another name/)]);
    expect(r.json.problems[0]).toContain(SERVICE_BATCH_FOLDER_REMEDY);
  });

  it('with jobs run elsewhere (Redis workers), a pair whose NSD root is missing here is left to its jobs', async () => {
    const m = manifest('there', [1]);
    const batch = resolveManifest({ ...m, nsd: { root: 'only-on-the-workers' } }, { source: 'body.manifest', baseDir: s.root });
    expect(await batchPreflightProblems(batch, true)).toEqual([]);
    expect(await batchPreflightProblems(batch, false)).toEqual([`body.manifest: subj01 × recon: NSD root ${join(s.root, 'only-on-the-workers')} does not exist on this machine`]);
  });
});
