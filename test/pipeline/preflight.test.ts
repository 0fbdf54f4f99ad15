/**
 * reconstruct's checks before any work: a U-Net exported at one latent size (as the demo world's is) against
 * img2img.size, and sessions without betas, are reported by the dry run and the real run alike, naming the
 * field and the value to use, with no run folder made.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { featureNetworkModel } from '../../ts/demo/models.js';
import { extractNsd } from '../../ts/nsd/extract.js';
import { resolveConfig } from '../../ts/pipeline/config.js';
import { preflight } from '../../ts/pipeline/preflight.js';
import { reconstruct } from '../../ts/pipeline/reconstruct.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import { planRun, resolvePlanOptions } from '../../ts/sd/samplingOptions.js';
import { readSchedulerConfig } from '../../ts/sd/schedulerConfig.js';
import { onnx } from '../helpers/onnx.js';
import { synthNsd, type SynthNsdResult } from '../../ts/synth/nsd.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-reconstruct-preflight-'));
let nsd: SynthNsdResult;
/** An SD fixture whose U-Net takes 16×16 latents only (img2img at 128 px). */
let fixed = '';
let runs = 0;

beforeAll(async () => {
  nsd = await synthNsd({ out: join(tmp, 'nsd'), grid: [8, 8, 8], designSessions: 4, sessions: 3, trialsPerSession: 60, sharedImages: 10, imageSize: 16, formats: ['nifti'], seed: 9 });
  fixed = join(tmp, 'sd');
  await writeSdFixture(fixed);
  const path = join(fixed, 'unet', 'model.onnx');
  const m = onnx.ModelProto.decode(await readFile(path));
  const dims = m.graph!.input!.find((i) => i.name === 'sample')!.type!.tensorType!.shape!.dim!;
  dims[2] = { dimValue: 16 };
  dims[3] = { dimValue: 16 };
  await mkdir(join(fixed, 'unet'), { recursive: true });
  await writeFile(path, onnx.ModelProto.encode(m).finish());
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const config = (extra: Record<string, unknown> = {}, nsdExtra: Record<string, unknown> = {}) => ({
  out: join(tmp, `run-${++runs}`),
  nsd: { root: nsd.root, subject: 1, ...nsdExtra },
  model: { dir: fixed },
  decoders: { z: { roi: 'nsdgeneral' }, c: { roi: 'nsdgeneral' } },
  ...extra,
});

/** The dry run and the real run both refuse `cfg` before any stage, naming every pattern, and make no run folder. */
async function refusedUpFront(cfg: ReturnType<typeof config>, ...patterns: RegExp[]): Promise<void> {
  for (const dryRun of [true, false]) {
    const err = await reconstruct(cfg, { dryRun }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err, `dryRun ${dryRun}`).not.toBeNull();
    expect(err!.name).toBe('PreflightError');
    for (const p of patterns) expect(err!.message, `dryRun ${dryRun}`).toMatch(p);
    expect(existsSync(cfg.out), 'no run folder').toBe(false);
  }
}

describe("reconstruct's preflight", () => {
  it("checks img2img.size against the U-Net's fixed latent size, naming the field and the size to set", async () => {
    await refusedUpFront(config(), new RegExp(`img2img\\.size 512 gives 64×64 latents, but ${join(fixed, 'unet', 'model.onnx')} takes sample of 16×16 only: set img2img\\.size to 128`));
    await refusedUpFront(config({ img2img: { size: 256 } }), /img2img\.size 256 gives 32×32 latents, .* set img2img\.size to 128/);
    const pre = await preflight(resolveConfig(config({ img2img: { size: 128 } })));
    // the 3 sessions with betas show 9 of the design's 10 shared images: the extraction's test rows
    expect(pre.testIds.length).toBe(9);
  });

  it("checks img2img.eta against the largest the model folder's schedule allows (maxEta), naming the field and the bound", async () => {
    // (ddim, 50 steps, strength 0.8, the compvis rule: the plan's own maxEta, from the fixture's SD 1.5 scheduler config)
    const g = { size: 128, scheduler: 'ddim' as const, steps: 50, strength: 0.8, rule: 'compvis' as const };
    const file = await readSchedulerConfig(fixed, { scheduler: 'ddim' });
    const { maxEta } = planRun(resolvePlanOptions({ schedule: file.schedule, scheduler: 'ddim' }, { steps: 50, strength: 0.8, img2imgRule: 'compvis' }));
    expect(maxEta).toBeGreaterThan(1);
    expect(maxEta).toBeLessThan(1.5);
    const shown = maxEta.toPrecision(8).slice(0, 6);
    await refusedUpFront(
      config({ img2img: { ...g, eta: 1.5 } }),
      new RegExp(`img2img\\.eta 1\\.5 is too large for this schedule: .* up to eta ${shown.replace('.', '\\.')}\\d* here \\(50 steps, strength 0\\.8\\)`),
    );
    // at the bound and below it, the preflight passes
    await preflight(resolveConfig(config({ img2img: { ...g, eta: 1 } })));
    await preflight(resolveConfig(config({ img2img: { ...g, eta: maxEta } })));
  });

  it("checks img2img.steps against the model folder's schedule (leading spacing, steps_offset 1: at most 999), naming the field and the bound", async () => {
    // (the schema allows 1..1000; the fixture's SD 1.5 scheduler config makes 1000 reach timestep 1000)
    const g = { size: 128, scheduler: 'ddim' as const, strength: 0.8, rule: 'diffusers' as const };
    await refusedUpFront(config({ img2img: { ...g, steps: 1000 } }), /img2img\.steps 1000 is too many for this model's schedule \(.*scheduler_config\.json\): .*img2img\.steps is at most 999 here/);
    await preflight(resolveConfig(config({ img2img: { ...g, steps: 999 } })));
  });

  it('refuses an img2img.strength that runs no step with img2img.steps, naming both fields', async () => {
    // (it named none: 'img2img (ddim, steps 3, strength 0.3): strength 0.3 with 3 steps runs no denoising step …')
    const g = { size: 128, scheduler: 'ddim' as const, rule: 'diffusers' as const };
    await refusedUpFront(config({ img2img: { ...g, steps: 3, strength: 0.3 } }), /img2img\.strength 0\.3 with img2img\.steps 3 runs no denoising step: .*\(e\.g\. img2img\.strength 0\.333334 with img2img\.steps 3\)/);
  });

  it('checks that every session has betas for the subject', async () => {
    await refusedUpFront(
      config({ img2img: { size: 128 } }, { sessions: '1-3,50' }),
      new RegExp(`nsd\\.sessions: session 50 of subject 1 has no betas \\(\\.hdf5 or \\.nii\\.gz\\) in ${nsd.root} .*; sessions with betas: 1-3`),
    );
    await refusedUpFront(config({ img2img: { size: 128 } }, { sessions: '2-4', format: 'nifti' }), /nsd\.sessions: session 4 of subject 1 has no betas \(\.nii\.gz\) .*betas_session04\.nii\.gz\); sessions with betas: 1-3/);
    await preflight(resolveConfig(config({ img2img: { size: 128 } }, { sessions: '2-3' })));
  });

  it('reads nsd.sessions given as a list of session numbers as the string form (the config refused a list)', async () => {
    await refusedUpFront(config({ img2img: { size: 128 } }, { sessions: [1, 2, 3, 50] }), /nsd\.sessions: session 50 of subject 1 has no betas .*; sessions with betas: 1-3/);
    const asString = await preflight(resolveConfig(config({ img2img: { size: 128 } }, { sessions: '2-3' })));
    const asList = await preflight(resolveConfig(config({ img2img: { size: 128 } }, { sessions: [3, 2] })));
    expect(asList.testIds).toEqual(asString.testIds);
  });

  it("checks a mask file's grid against the subject's betas, naming both grids and both files", async () => {
    // another subject's (here another dataset's) mask: the extract stage would refuse it only after the run began
    const other = await synthNsd({ out: join(tmp, 'nsd-other-grid'), grid: [10, 8, 12], designSessions: 1, sessions: 1, trialsPerSession: 60, sharedImages: 10, imageSize: 16, formats: ['nifti'], seed: 3 });
    const mask = join(other.root, 'nsddata', 'ppdata', 'subj01', 'func1pt8mm', 'roi', 'nsdgeneral.nii.gz');
    const betas = join(nsd.root, 'nsddata_betas', 'ppdata', 'subj01', 'func1pt8mm', 'betas_fithrf_GLMdenoise_RR', 'betas_session01.nii.gz');
    await refusedUpFront(
      config({ img2img: { size: 128 }, decoders: { z: { roi: mask }, c: { roi: 'nsdgeneral' } } }),
      new RegExp(`decoders\\.z\\.roi: the mask ${mask} is on a 10×8×12 grid but subject 1's betas \\(${betas}\\) are on 8×8×8; expected a mask on the subject's grid`),
    );
    const err = await preflight(resolveConfig(config({ img2img: { size: 128 }, decoders: { z: { roi: mask }, c: { roi: mask } } }))).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/decoders\.z\.roi: the mask [\s\S]*decoders\.c\.roi: the mask /);
    // a mask file on the subject's grid passes
    await preflight(resolveConfig(config({ img2img: { size: 128 }, decoders: { z: { roi: join(nsd.root, 'nsddata', 'ppdata', 'subj01', 'func1pt8mm', 'roi', 'nsdgeneral.nii.gz') }, c: { roi: 'nsdgeneral' } } })));
  });

  it("img2img with fewer than 8 steps under the default 'compvis' rule is warned of, in the dry run too, naming img2img.rule 'diffusers'", async () => {
    const few = await preflight(resolveConfig(config({ img2img: { size: 128, steps: 4 } })));
    // strength 0.8, 4 DDIM steps (steps_offset 1): noised to t = 751, denoised from t = 501 (docs/pipeline.md)
    expect(few.warnings).toEqual([
      "img2img.steps 4 with img2img.rule 'compvis' (the default, TN's noise level): the latent is noised to t = 751 but the first step denoises it as t = 501, " +
        "and with fewer than 8 steps that noise stays in the images (worse than z-only); set img2img.rule to 'diffusers' (noise at the first step that runs), or use 8 steps or more",
    ]);
    const dry = await reconstruct(config({ img2img: { size: 128, steps: 4 } }), { dryRun: true });
    expect(dry.plan!.filter((l) => l.startsWith('warning: '))).toEqual([`warning: ${few.warnings[0]}`]);
    // the 'diffusers' rule, or 8 steps: no warning
    expect((await preflight(resolveConfig(config({ img2img: { size: 128, steps: 4, rule: 'diffusers' } })))).warnings).toEqual([]);
    expect((await preflight(resolveConfig(config({ img2img: { size: 128, steps: 8 } })))).warnings).toEqual([]);
  }, 120_000);

  it('refuses a seed count whose images cannot fit where the run writes them, before any stage, naming img2img.seeds', async () => {
    // 9 test images × (1e9 seeds + 1) + 9: more files than any file system holds (ext4's most is 2³²), more than
    // a TB even at deflate's best ratio where inodes are not counted
    await refusedUpFront(
      config({ img2img: { size: 128, seeds: 1e9 } }),
      /img2img\.seeds 1000000000 for 9 test image\(s\) at 128 px: the run writes 9,000,000,018 image file\(s\) \(each test image's original, its z-only image and one per seed\), more (files than the [\d,]+|than the [\d.]+ \w+ free on) .*; use fewer seeds \(img2img\.seeds\) or test images \(nsd\.testImages\), or another run folder \(out\)/,
    );
    // the default 5 seeds: no problem, no warning
    expect((await preflight(resolveConfig(config({ img2img: { size: 128 } })))).warnings).toEqual([]);
  }, 120_000);

  it("counts the test images of the sessions read, as the extraction does: the dry run's 'N test images' and the --test-images shortfall agree", async () => {
    // session 1 shows fewer of the shared images than the subject's 4 design sessions
    const ex = await extractNsd({ root: nsd.root, subject: 1, roi: 'nsdgeneral', sessions: '1' });
    const inSession = Array.from(ex.testImageIds).sort((a, b) => a - b);
    const all = await preflight(resolveConfig(config({ img2img: { size: 128 } })));
    expect(inSession.length).toBeLessThan(all.testIds.length);
    const pre = await preflight(resolveConfig(config({ img2img: { size: 128 } }, { sessions: '1' })));
    expect(pre.testIds).toEqual(inSession);
    const n = inSession.length;
    const dry = await reconstruct(config({ img2img: { size: 128 } }, { sessions: '1', testImages: n + 1 }), { dryRun: true });
    expect(dry.testImages).toBe(n);
    expect(dry.plan!.find((l) => l.startsWith('subject 1: '))).toMatch(new RegExp(`^subject 1: ${n} test images;`));
    expect(dry.warnings).toContain(`nsd.testImages is ${n + 1}, but subject 1 has only ${n} test image${n === 1 ? '' : 's'} (shared images) in the sessions read: all ${n} are reconstructed`);
  }, 120_000);

  it("checks each feature network's declared output and input size, naming the field, before any stage", async () => {
    const net = join(tmp, 'net.onnx');
    await writeFile(net, featureNetworkModel());
    const netOf = (extra: Record<string, unknown>) => ({ name: 'DemoNet', path: net, inputSize: 16, metric: 'identification', ...extra });
    await refusedUpFront(
      config({ img2img: { size: 128 }, evaluation: { networks: [netOf({ output: 'fc7' })] } }),
      new RegExp(`evaluation\\.networks\\[0\\]\\.output: feature network 'DemoNet' \\(${net}\\) has no output 'fc7'; it has features`),
    );
    // a network exported at 32×32 only
    const fixedNet = join(tmp, 'net32.onnx');
    const m = onnx.ModelProto.decode(featureNetworkModel());
    const dims = m.graph!.input![0].type!.tensorType!.shape!.dim!;
    dims[2] = { dimValue: 32 };
    dims[3] = { dimValue: 32 };
    await writeFile(fixedNet, onnx.ModelProto.encode(m).finish());
    await refusedUpFront(
      config({ img2img: { size: 128 }, evaluation: { networks: [netOf({}), netOf({ name: 'Fixed', path: fixedNet })] } }),
      /evaluation\.networks\[1\]\.inputSize 16: feature network 'Fixed' .* takes 'images' of 32×32 only: set inputSize to 32/,
    );
    // (and a network that fits passes: the default output, any size)
    const pre = await preflight(resolveConfig(config({ img2img: { size: 128 }, evaluation: { networks: [netOf({}), netOf({ name: 'Fixed', path: fixedNet, inputSize: 32, output: 'features' })] } })));
    expect(pre.testIds.length).toBe(9);
  }, 60_000);
});
