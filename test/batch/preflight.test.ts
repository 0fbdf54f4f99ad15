import { existsSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { BatchManifest } from '../../ts/batch/manifest.js';
import type { DemoWorld } from '../../ts/demo/world.js';
import { betasPath } from '../../ts/nsd/paths.js';
import { resolveConfig } from '../../ts/pipeline/config.js';
import { preflight } from '../../ts/pipeline/preflight.js';
import { batchManifest, batchWorld, encodeTemplate, reconTemplate, singleConfig } from './world.js';
import { runCommand } from '../helpers/nodeChild.js';

// `batch plan|submit|run` check each subject × analysis's inputs with the pipelines' own preflight before anything
// is queued or run, so that a wrong size or a subject without betas shows now, not hours later on a worker.

const dir = mkdtempSync(join(tmpdir(), 'bl-batch-preflight-'));
const cli = join(__dirname, '..', '..', 'dist', 'cli', 'main.js');
let world: DemoWorld;

beforeAll(async () => {
  world = await batchWorld(dir, [1, 2]);
  // subject 2 has no betas at all
  for (let s = 1; s <= 4; s++) rmSync(betasPath(world.nsdRoot, 2, s, 'hdf5'), { force: true });
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function manifestFile(name: string, m: BatchManifest): string {
  const f = join(dir, `${name}.json`);
  writeFileSync(f, JSON.stringify(m));
  return f;
}

async function brainlatent(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const r = await runCommand(process.execPath, [cli, ...args], { hangLimitMs: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Subjects 1 and 2 at an img2img size the world's U-Net cannot take (it has a fixed latent size). */
function badManifest(name: string): BatchManifest {
  const m = batchManifest(world, name, join(dir, name), [1, 2]);
  const t = reconTemplate(world) as { img2img: Record<string, unknown> };
  m.analyses[0].config = { ...t, img2img: { ...t.img2img, size: 32 } };
  return m;
}

// a port nothing listens on: a command that got past its preflight fails on Redis instead
const noRedis = 'redis://:pw-preflight@127.0.0.1:1';

describe('batch preflight', () => {
  it('batch plan lists every problem by subject and analysis, and exits 1; a good manifest passes', { timeout: 120_000 }, async () => {
    const bad = await brainlatent('batch', 'plan', manifestFile('bad', badManifest('bad')));
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/jobs, 2 subjects; preflight: \d+ problems/);
    expect(bad.stderr).toMatch(/batch bad: the preflight found \d+ problems in 2 of 2 subject × analysis pairs;/);
    // the same problem in two subjects is listed once, naming both
    expect(bad.stderr).toMatch(/ {2}- subj01, subj02 × recon: img2img\.size 32 gives 4×4 latents, but .*unet.* takes sample of 8×8 only/);
    expect(bad.stderr).toMatch(/ {2}- subj02 × recon: .*betas/);
    expect(bad.stderr).not.toMatch(/subj01 × recon: .*betas/);
    expect(bad.stderr).toContain('--no-preflight');

    const good = await brainlatent('batch', 'plan', manifestFile('good', batchManifest(world, 'good', join(dir, 'good'), [1])));
    expect(good.stderr).toBe('');
    expect(good.status).toBe(0);
    expect(good.stdout).toMatch(/jobs, 1 subject; preflight: no problems/);
  });

  it('a path missing on this machine is named as such, with the flag for data that only the workers see', { timeout: 120_000 }, async () => {
    const m = batchManifest(world, 'elsewhere', join(dir, 'elsewhere'), [1, 2]);
    m.nsd = { root: join(dir, 'only-on-the-workers') };
    m.analyses.push({ name: 'enc', kind: 'encode', config: { ...encodeTemplate(world), model: join(dir, 'model-on-the-workers') } });
    const f = manifestFile('elsewhere', m);
    const r = await brainlatent('batch', 'plan', f);
    expect(r.status).toBe(1);
    // the NSD root all four pairs use is one problem, listed once naming them all; the model only enc uses, another
    expect(r.stdout).toMatch(/jobs, 2 subjects; preflight: 2 problems\n$/);
    expect(r.stderr).toMatch(/batch elsewhere: the preflight found 2 problems in 4 of 4 subject × analysis pairs; /);
    const listed = r.stderr.split('\n').filter((l) => l.startsWith('  - '));
    expect(listed).toEqual([
      `  - subj01, subj02 × recon, enc: NSD root ${join(dir, 'only-on-the-workers')} does not exist on this machine`,
      `  - subj01, subj02 × enc: model folder ${join(dir, 'model-on-the-workers')} does not exist on this machine`,
    ]);
    expect(r.stderr).toMatch(/if the data and models live only there, skip these checks with --no-preflight/);
    const skipped = await brainlatent('batch', 'plan', f, '--no-preflight');
    expect(skipped.status).toBe(0);
    expect(skipped.stdout).toMatch(/preflight skipped/);
  });

  it('batch submit refuses before Redis is asked and writes nothing; --no-preflight skips the checks', { timeout: 120_000 }, async () => {
    const f = manifestFile('sub', badManifest('sub'));
    const r = await brainlatent('batch', 'submit', f, '--redis', noRedis);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^brainlatent: BatchPreflightError: batch sub: the preflight found .*; nothing was submitted:/);
    expect(r.stderr).toMatch(/subj01, subj02 × recon: img2img\.size 32/);
    expect(existsSync(join(dir, 'sub', 'batch.json'))).toBe(false);
    const skipped = await brainlatent('batch', 'submit', f, '--redis', noRedis, '--no-preflight');
    expect(skipped.status).toBe(1);
    expect(skipped.stderr).toMatch(/RedisUnreachable/);
    expect(skipped.stderr).not.toMatch(/pw-preflight/);
  });

  it('batch run (local and --redis) refuses before running anything', { timeout: 120_000 }, async () => {
    const f = manifestFile('run', badManifest('run'));
    for (const extra of [[], ['--redis', noRedis]]) {
      const r = await brainlatent('batch', 'run', f, '--concurrency', '1', ...extra);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/BatchPreflightError: batch run: the preflight found .*; nothing was run:/);
      expect(existsSync(join(dir, 'run'))).toBe(false);
    }
  });

  // Each subject's run may fit on its file system and all of them together not: a batch under one root is checked
  // as a whole (seeds chosen so that one run writes ~60% of the files the file system can still hold, two ~120%).
  const fs = statfsSync(dir);
  const roomy = Number(fs.files) > 0 && Number(fs.ffree) < 1e9;
  it.runIf(roomy)('refuses subjects whose images fit one at a time and not together on one file system', { timeout: 120_000 }, async (ctx) => {
    const one = await preflight(resolveConfig(singleConfig(world, 1, join(dir, 'probe-images'))));
    const nTest = one.images!.images.files / (2 + 2); // (seeds 2: the original, the z-only image and two samples each)
    const seeds = Math.ceil((0.6 * Number(fs.ffree)) / nTest);
    const perRun = nTest * (seeds + 2);
    // (each run's least bytes fit: 1 + ~70 bytes a file at 64 px)
    if (perRun * 2 * 80 > Number(fs.bavail) * Number(fs.bsize)) ctx.skip();
    const m = batchManifest(world, 'together', join(dir, 'together'), [{ subject: 1, name: 'a' }, { subject: 1, name: 'b' }]);
    const t = reconTemplate(world) as { img2img: Record<string, unknown> };
    m.analyses[0].config = { ...t, img2img: { ...t.img2img, seeds } };
    const r = await brainlatent('batch', 'plan', manifestFile('together', m));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/batch together: the preflight found 1 problem in 2 of 2 subject × analysis pairs;/);
    const listed = r.stderr.split('\n').filter((l) => l.startsWith('  - '));
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatch(
      new RegExp(
        `^  - a, b × recon: the 2 runs on the file system of ${dir} write ${(2 * perRun).toLocaleString('en-US')} image file\\(s\\) together, ` +
          'more files than the [\\d,]+ it can still hold \\(each run alone fits\\); use fewer seeds \\(img2img\\.seeds\\) or test images \\(nsd\\.testImages\\), ' +
          'or put some of the runs on another file system$',
      ),
    );
    // what to do: not "fix them: the workers' jobs … would fail on them too" (each job checks its own run alone)
    expect(r.stderr).toContain('runs whose images together overfill a file system: fewer seeds or test images, or some of the runs elsewhere; --no-preflight would let them fill it');
    expect(r.stderr).not.toContain('fix them');
    // one of them alone passes (warned only: as photographs its images would not fit)
    const alone = batchManifest(world, 'alone', join(dir, 'alone'), [{ subject: 1, name: 'a' }]);
    alone.analyses[0].config = m.analyses[0].config;
    const a = await brainlatent('batch', 'plan', manifestFile('alone', alone));
    expect(a.status).toBe(0);
    expect(a.stdout).toMatch(/preflight: no problems/);
  });
});
