/**
 * reconstruct's messages name a config field in the words of the form used. The flags-only form (no --config) was
 * told "set img2img.rule to 'diffusers'" (the few-steps warning, --steps' help), a field it had no flag for: it now
 * has sd img2img's --rule, --scheduler, --eta and --strength, and each message names a field by its flag where the
 * flag gave it or there is no file ("use --rule diffusers"), a field without a flag as "use --config with <field>"; the
 * config form names the file's fields and where to set them ("set img2img.rule to 'diffusers' in recon.json, or use
 * --rule diffusers"). The library's callers (no command line) keep the fields' names: test/pipeline/preflight.test.ts.
 *
 * `reconstruct --size` (img2img.size) and the preflight's hint for a U-Net exported at one latent size: the flags-only
 * form was told "set img2img.size to 128", a config field it has no file to set; it is told "use --size 128", and a
 * config file's form where to set the field (below, 'img2img.size for a U-Net of one latent size').
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { registerReconstructCommand } from '../../../ts/cli/commands/reconstruct.js';
import { fieldNames } from '../../../ts/config/fieldNames.js';
import { InvalidArgumentError } from '../../../ts/errors.js';
import { writeSdFixture } from '../../../ts/sd/fixture.js';
import { onnx } from '../../helpers/onnx.js';
import { synthNsd } from '../../../ts/synth/nsd.js';
import { runCommands, stderrOf } from '../../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-cli-recflags-'));
const nsdRoot = join(tmp, 'nsd');
/** An NSD root whose subject 1 lacks session 2's betas, between sessions 1 and 3 that have them. */
const gapRoot = join(tmp, 'nsd-gap');
/** An NSD root too small for 5 folds: subject 1's one session shows 2 training images, 3 times each (6 rows). */
const tinyRoot = join(tmp, 'nsd-tiny');
/** An SD fixture whose U-Net takes 16×16 latents only (img2img at 128 px, --size 128): its probes are quick. */
const model = join(tmp, 'sd');

beforeAll(async () => {
  const world = { grid: [8, 8, 8] as [number, number, number], designSessions: 4, sessions: 3, trialsPerSession: 60, sharedImages: 10, imageSize: 16, formats: ['nifti' as const], seed: 9 };
  await synthNsd({ out: nsdRoot, ...world });
  await synthNsd({ out: gapRoot, ...world });
  await synthNsd({ ...world, out: tinyRoot, designSessions: 1, sessions: 1, trialsPerSession: 12, sharedImages: 2 });
  await rm(join(gapRoot, 'nsddata_betas', 'ppdata', 'subj01', 'func1pt8mm', 'betas_fithrf_GLMdenoise_RR', 'betas_session02.nii.gz'));
  await writeSdFixture(model);
  const path = join(model, 'unet', 'model.onnx');
  const m = onnx.ModelProto.decode(await readFile(path));
  const dims = m.graph!.input!.find((i) => i.name === 'sample')!.type!.tensorType!.shape!.dim!;
  dims[2] = { dimValue: 16 };
  dims[3] = { dimValue: 16 };
  await mkdir(join(model, 'unet'), { recursive: true });
  await writeFile(path, onnx.ModelProto.encode(m).finish());
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const run = (...args: string[]) => runCommands([registerReconstructCommand], ['reconstruct', ...args]);

/** The error the command line is refused with (its warnings on stderr kept out of the test's output). */
async function refusal(...args: string[]): Promise<Error> {
  let err: Error | undefined;
  await stderrOf(async () => {
    err = await run(...args).then(() => undefined, (e: Error) => e);
  });
  if (!err) throw new Error(`not refused: reconstruct ${args.join(' ')}`);
  return err;
}

/** The warnings a dry run that passes printed (its plan's 'warning: ' lines). */
async function warnings(...args: string[]): Promise<string[]> {
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string | Uint8Array) => ((out += String(s)), true)) as typeof process.stdout.write;
  try {
    await stderrOf(() => run(...args));
  } finally {
    process.stdout.write = write;
  }
  return out.split('\n').filter((l) => l.startsWith('warning: ')).map((l) => l.slice('warning: '.length));
}

let runs = 0;
const flagsForm = (root = nsdRoot) => ['--nsd', root, '--subject', '1', '--model', model, '--out', join(tmp, `run-${++runs}`), '--size', '128', '--dry-run'];
/** A config file of these img2img fields (and the fixture's size), and its command line. */
function configForm(img2img: Record<string, unknown> = {}, root = nsdRoot): { cfg: string; args: string[] } {
  const cfg = join(tmp, `recon-${++runs}.json`);
  writeFileSync(cfg, JSON.stringify({ out: `run-${runs}`, nsd: { root, subject: 1 }, model: { dir: model }, img2img: { size: 128, ...img2img } }));
  return { cfg, args: ['--config', cfg, '--dry-run'] };
}

// strength 0.8, 4 DDIM steps (steps_offset 1): noised to t = 751, denoised from t = 501 (test/pipeline/preflight.test.ts)
const FEW_STEPS =
  ": the latent is noised to t = 751 but the first step denoises it as t = 501, and with fewer than 8 steps that noise stays in the images (worse than z-only); ";

describe("reconstruct's few-steps warning in the form used", () => {
  it('the flags-only form is told to use --rule diffusers, and --rule diffusers takes the warning away', async () => {
    expect(await warnings(...flagsForm(), '--steps', '4')).toEqual([
      `--steps 4 with --rule compvis (the default, TN's noise level)${FEW_STEPS}use --rule diffusers (noise at the first step that runs), or use 8 steps or more`,
    ]);
    expect(await warnings(...flagsForm(), '--steps', '4', '--rule', 'diffusers')).toEqual([]);
  }, 120_000);

  it('the config form is told to set img2img.rule in the file, or to use --rule; a flag that gave a field is named', async () => {
    const { cfg, args } = configForm({ steps: 4 });
    expect(await warnings(...args)).toEqual([
      `img2img.steps 4 with img2img.rule 'compvis' (the default, TN's noise level)${FEW_STEPS}set img2img.rule to 'diffusers' in ${cfg}, or use --rule diffusers (noise at the first step that runs), or use 8 steps or more`,
    ]);
    expect(await warnings(...args, '--rule', 'diffusers')).toEqual([]);
    // the file's rule is the file's; --steps gave the steps
    const other = configForm({ rule: 'compvis' });
    expect(await warnings(...other.args, '--steps', '4')).toEqual([
      `--steps 4 with img2img.rule 'compvis' (the default, TN's noise level)${FEW_STEPS}set img2img.rule to 'diffusers' in ${other.cfg}, or use --rule diffusers (noise at the first step that runs), or use 8 steps or more`,
    ]);
    // --rule compvis on the command line: the rule by its flag, as its hint
    expect((await warnings(...configForm({ steps: 4 }).args, '--rule', 'compvis'))[0]).toMatch(/^img2img\.steps 4 with --rule compvis .*; use --rule diffusers \(noise at the first step that runs\), or use 8 steps or more$/);
  }, 120_000);
});

describe("reconstruct's img2img plan problems name the field as it was given", () => {
  it('eta above the schedule\'s maxEta: --eta where the flag gave it, img2img.eta from the file', async () => {
    const tooLarge = (label: string) => new RegExp(`cannot start the reconstruction:\\n  - ${label} 1\\.5 is too large for this schedule: .* up to eta 1\\.0\\d* here \\(50 steps, strength 0\\.8\\)`);
    expect((await refusal(...flagsForm(), '--eta', '1.5')).message).toMatch(tooLarge('--eta'));
    const { args } = configForm({ eta: 1.5 });
    expect((await refusal(...args)).message).toMatch(tooLarge('img2img\\.eta'));
    expect((await refusal(...configForm().args, '--eta', '1.5')).message).toMatch(tooLarge('--eta'));
    // (eta 1 is within SD's bound: the plan passes)
    expect(await warnings(...flagsForm(), '--eta', '1')).toEqual([]);
  }, 120_000);

  it('steps past the schedule and a strength that runs no step: their bounds by the flags in the flags-only form', async () => {
    const tooMany = await refusal(...flagsForm(), '--steps', '1000', '--rule', 'diffusers');
    expect(tooMany.message).toMatch(/--steps 1000 is too many for this model's schedule \(.*scheduler_config\.json\): .*; --steps is at most 999 here/);
    expect(tooMany.message).not.toContain('img2img.');
    expect((await refusal(...configForm({ steps: 1000, rule: 'diffusers' }).args)).message).toMatch(/img2img\.steps 1000 is too many .*; img2img\.steps is at most 999 here/);
    const none = await refusal(...flagsForm(), '--steps', '3', '--strength', '0.3', '--rule', 'diffusers');
    expect(none.message).toMatch(/--strength 0\.3 with --steps 3 runs no denoising step: .*\(e\.g\. --strength 0\.333334 with --steps 3\)/);
    // (the file's strength, the flag's steps)
    expect((await refusal(...configForm({ strength: 0.3, rule: 'diffusers' }).args, '--steps', '3')).message).toMatch(
      /img2img\.strength 0\.3 with --steps 3 runs no denoising step: .*\(e\.g\. img2img\.strength 0\.333334 with --steps 3\)/,
    );
  }, 120_000);

  it("what only ddim defines: the flags' names in the flags-only form, the file's where the file gave them", async () => {
    const euler = await refusal(...flagsForm(), '--scheduler', 'euler');
    expect(euler.name).toBe('ConfigError');
    expect(euler.message).toContain('--rule: the compvis img2img rule is defined for the ddim scheduler only, not euler (--scheduler)');
    expect(euler.message).not.toContain('img2img.');
    expect((await refusal(...flagsForm(), '--scheduler', 'euler', '--rule', 'diffusers', '--eta', '0.5')).message).toContain(
      '--eta: eta > 0 is defined for the ddim scheduler only, not euler (--scheduler)',
    );
    const { cfg, args } = configForm({ scheduler: 'euler' });
    expect((await refusal(...args)).message).toContain(`${cfg}: img2img.rule: the compvis img2img rule is defined for the ddim scheduler only, not euler (img2img.scheduler)`);
    expect((await refusal(...configForm().args, '--scheduler', 'euler')).message).toContain(': img2img.rule: the compvis img2img rule is defined for the ddim scheduler only, not euler (--scheduler)');
    // --scheduler euler with --rule diffusers runs: the dry run plans it
    expect(await warnings(...flagsForm(), '--scheduler', 'euler', '--rule', 'diffusers')).toEqual([]);
  }, 120_000);
});

/** A dry run's output (the plan on stdout), warnings and all. */
async function plan(...args: string[]): Promise<string> {
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string | Uint8Array) => ((out += String(s)), true)) as typeof process.stdout.write;
  try {
    await stderrOf(() => run(...args));
  } finally {
    process.stdout.write = write;
  }
  return out;
}

describe('reconstruct --sessions: nsd.sessions on the command line (it said "use --config with nsd.sessions")', () => {
  it("the session-gap warning names --sessions in the flags-only form, nsd.sessions in the file's", async () => {
    const gap = 'subject 1: session 2 has no betas (looked for ';
    const [flagsOnly] = await warnings(...flagsForm(gapRoot));
    expect(flagsOnly).toContain(gap);
    expect(flagsOnly).toMatch(/without --sessions the run reads only the sessions that have betas \(1, 3\); restore the file, or use --sessions the sessions you mean to read$/);
    const { cfg, args } = configForm({}, gapRoot);
    expect((await warnings(...args))[0]).toMatch(
      new RegExp(`with nsd\\.sessions null .*; restore the file, or set nsd\\.sessions to the sessions you mean to read in ${cfg.replace(/[.]/g, '\\.')}, or use --sessions the sessions you mean to read$`),
    );
    // the sessions chosen: no gap to warn of
    expect(await warnings(...flagsForm(gapRoot), '--sessions', '1,3')).toEqual([]);
  }, 120_000);

  it('reads the sessions it names, as nsd.sessions does; over the file\'s nsd.sessions', async () => {
    const extract = (out: string) => out.split('\n').find((l) => l.startsWith('run  extract'));
    expect(extract(await plan(...flagsForm()))).toMatch(/ × 3 sessions \(uncached\)$/);
    expect(extract(await plan(...flagsForm(), '--sessions', '2'))).toMatch(/session 2 of both regions read in .* × 1 sessions \(uncached\)$/);
    expect(extract(await plan(...flagsForm(), '--sessions', '1-2'))).toMatch(/ × 2 sessions \(uncached\)$/);
    expect(extract(await plan(...configForm().args, '--sessions', '1,3'))).toMatch(/ × 2 sessions \(uncached\)$/);
    // the flag over the file's field
    const cfg = join(tmp, `recon-${++runs}.json`);
    writeFileSync(cfg, JSON.stringify({ out: `run-${runs}`, nsd: { root: nsdRoot, subject: 1, sessions: [1, 2, 3] }, model: { dir: model }, img2img: { size: 128 } }));
    expect(extract(await plan('--config', cfg, '--dry-run'))).toMatch(/ × 3 sessions/);
    expect(extract(await plan('--config', cfg, '--dry-run', '--sessions', '3'))).toMatch(/session 3 of both regions read in .* × 1 sessions/);
  }, 120_000);

  it('a bad --sessions is refused naming the flag, before any work; a session without betas by the preflight, naming it too', async () => {
    const refused = async (spec: string) => (await refusal(...flagsForm(), '--sessions', spec)).message;
    expect(await refused('3-1')).toBe('--sessions: range "3-1" runs backwards; a range goes from the lower session to the higher (1-3)');
    expect(await refused('x')).toBe('--sessions: "x" is not a session number or a range like 1-37');
    expect(await refused('0')).toBe('--sessions: "0": sessions are numbered from 1');
    expect(await refused('')).toBe('--sessions: "" names no session; expected numbers and ranges such as "1-37" or "1-10,12"');
    // with other bad flags, all at once
    expect((await refusal(...flagsForm(), '--sessions', 'x', '--eta', '-1')).message).toBe('--sessions: "x" is not a session number or a range like 1-37; --eta: expected a number >= 0, got -1');
    // with a config file: listed with the file's problems
    const bad = configForm({ steps: 0 });
    expect((await refusal(...bad.args, '--sessions', '0')).message).toMatch(/--sessions: "0": sessions are numbered from 1$/);
    expect((await refusal(...flagsForm(gapRoot), '--sessions', '1-3')).message).toMatch(/^cannot start the reconstruction:\n  - --sessions: session 2 of subject 1 has no betas /);
    expect(readdirSync(tmp).filter((n) => n.startsWith('run-'))).toEqual([]);
  }, 120_000);
});

describe('the test-images shortfall warning names the field in the form used (it said "nsd.testImages (--test-images)" in every form)', () => {
  const shortfall = (label: string) => `${label} is 100, but subject 1 has only 9 test images (shared images) in the sessions read: all 9 are reconstructed`;
  it('--test-images in the flags-only form and where the flag gave it; the file\'s field, with the flag, where the file gave it', async () => {
    expect(await warnings(...flagsForm(), '--test-images', '100')).toEqual([shortfall('--test-images')]);
    const cfg = join(tmp, `recon-${++runs}.json`);
    writeFileSync(cfg, JSON.stringify({ out: `run-${runs}`, nsd: { root: nsdRoot, subject: 1, testImages: 100 }, model: { dir: model }, img2img: { size: 128 } }));
    expect(await warnings('--config', cfg, '--dry-run')).toEqual([shortfall(`nsd.testImages in ${cfg} (or --test-images)`)]);
    expect(await warnings(...configForm().args, '--test-images', '100')).toEqual([shortfall('--test-images')]);
  }, 120_000);
});

describe('a field without a flag: the flags-only form is told what is wrong in plain words, and what to change', () => {
  it("folds more than a tiny data set's training images hold: plainly too small, then --config with the most folds it holds", async () => {
    const tooSmall = (t: string) =>
      `the data set is too small for the ${t} decoder's 5-fold cross-validation (the default): 6 training rows of 2 images: 2 images cannot fill 5 folds (an image never straddles folds); ` +
      `use --config with decoders.${t}.folds set to 2 (the most these rows hold)`;
    expect((await refusal(...flagsForm(tinyRoot))).message).toBe(`cannot start the reconstruction:\n  - ${tooSmall('z')}\n  - ${tooSmall('c')}`);
    // the config form: the field, and where to set it
    const { cfg, args } = configForm({}, tinyRoot);
    expect((await refusal(...args)).message).toBe(
      'cannot start the reconstruction:\n' +
        ['z', 'c'].map((t) => `  - decoders.${t}.folds: 6 training rows of 2 images: 2 images cannot fill 5 folds (an image never straddles folds); set decoders.${t}.folds to 2 in ${cfg} (the most these rows hold)`).join('\n'),
    );
    // the count it names passes; rows that hold not even 2 folds (2 rows, one per image) are said to be too few
    const cfg2 = join(tmp, `recon-${++runs}.json`);
    writeFileSync(cfg2, JSON.stringify({ out: `run-${runs}`, nsd: { root: tinyRoot, subject: 1 }, model: { dir: model }, img2img: { size: 128 }, decoders: { z: { folds: 2 }, c: { folds: 2 } } }));
    expect(await warnings('--config', cfg2, '--dry-run')).toEqual([]);
    writeFileSync(cfg2, JSON.stringify({ out: `run-${runs}`, nsd: { root: tinyRoot, subject: 1 }, model: { dir: model }, img2img: { size: 128 }, decoders: { z: { folds: 2 }, c: { averageTrain: true } } }));
    expect((await refusal('--config', cfg2, '--dry-run')).message).toBe(
      'cannot start the reconstruction:\n  - decoders.c.folds: 2 training rows (one per image): 5 folds but only 2 samples; not even 2 folds of 2 rows each fit: use a data set with more training images',
    );
  }, 120_000);

  it('seeds whose last seed passes 2^53 − 1 with the default seed: --seeds, and how many it may be (it said "command line.img2img.seed")', async () => {
    const max = Number.MAX_SAFE_INTEGER;
    const past = `sample k is seeded 42 + k (the default seed), so the last of --seeds ${max} has seed 42 + ${max - 1}, above the largest seed ${max}`;
    expect((await refusal(...flagsForm(), '--seeds', String(max))).message).toBe(
      `command line is not a valid reconstruction config (1 problem):\n  - --seeds: ${past}; use --seeds ${max - 41} or fewer`,
    );
    // (that many passes the seed bound; the preflight then refuses the files its images would take)
    const many = (await refusal(...flagsForm(), '--seeds', String(max - 41))).message;
    expect(many).not.toContain('above the largest seed');
    expect(many).toMatch(new RegExp(`^cannot start the reconstruction:\\n  - --seeds ${max - 41} for 9 test image\\(s\\) at 128 px: the run writes [\\d,]+ image file\\(s\\)`));
    // a file's seeds: the file's field, set there or by the flag
    const seeds = configForm({ seeds: max });
    expect((await refusal(...seeds.args)).message).toContain(
      `${seeds.cfg}: img2img.seeds: sample k is seeded 42 + k (the default seed), so the last of img2img.seeds ${max} has seed 42 + ${max - 1}, above the largest seed ${max}; ` +
        `set img2img.seeds to ${max - 41} or fewer in ${seeds.cfg}, or use --seeds ${max - 41} or fewer`,
    );
    // a file's seed and the flag's seeds: the seed, or fewer seeds by the flag
    const seed = configForm({ seed: 7 });
    expect((await refusal(...seed.args, '--seeds', String(max))).message).toContain(
      `${seed.cfg}: img2img.seed: sample k is seeded img2img.seed + k, so the last of --seeds ${max} has seed 7 + ${max - 1}, above the largest seed ${max}; ` +
        `expected img2img.seed at most 1 with ${max} seeds, or use --seeds ${max - 6} or fewer`,
    );
  }, 120_000);
});

describe("reconstruct's img2img flags are sd img2img's, checked as it checks them", () => {
  it('a bad --rule, --scheduler, --eta or --strength names its flag; nothing is written', async () => {
    await expect(run(...flagsForm(), '--rule', 'ddim')).rejects.toThrow(new InvalidArgumentError("--rule: expected one of diffusers, compvis, got 'ddim'"));
    await expect(run(...flagsForm(), '--scheduler', 'dim')).rejects.toThrow(/^--scheduler: unknown scheduler 'dim', expected one of ddim, pndm, /);
    await expect(run(...flagsForm(), '--eta', '-1')).rejects.toThrow(new InvalidArgumentError('--eta: expected a number >= 0, got -1'));
    await expect(run(...flagsForm(), '--strength', '0')).rejects.toThrow(new InvalidArgumentError('--strength: expected a number in (0, 1], got 0'));
    // every bad flag at once
    await expect(run(...flagsForm(), '--rule', 'x', '--eta', 'big')).rejects.toThrow("--eta: expected a number >= 0, got 'big'; --rule: expected one of diffusers, compvis, got 'x'");
    expect(readdirSync(tmp).filter((n) => n.startsWith('run-'))).toEqual([]);
  });

});

describe('fieldNames: one way to name a field for the form used', () => {
  const flags = { 'img2img.rule': '--rule', 'img2img.size': '--size' };
  it("a config's (the library's): every field by its name", () => {
    const n = fieldNames();
    expect([n.name('img2img.rule'), n.valued('img2img.rule', 'compvis'), n.setTo('img2img.rule', 'diffusers'), n.setTo('img2img.size', 128)]).toEqual([
      'img2img.rule',
      "img2img.rule 'compvis'",
      "set img2img.rule to 'diffusers'",
      'set img2img.size to 128',
    ]);
    expect(n.nameAndFlag('img2img.rule')).toBe('img2img.rule');
    expect(n.fromDefault('img2img.eta')).toBe(false);
  });
  it('a command line with a config file: a flag where it gave the field; the file, or the flag, to set it', () => {
    const n = fieldNames({ flags, given: ['img2img.size'], config: 'recon.json' });
    expect([n.name('img2img.rule'), n.name('img2img.size'), n.valued('img2img.size', 64)]).toEqual(['img2img.rule', '--size', '--size 64']);
    expect(n.setTo('img2img.rule', 'diffusers')).toBe("set img2img.rule to 'diffusers' in recon.json, or use --rule diffusers");
    expect(n.setTo('img2img.size', 128)).toBe('use --size 128');
    expect(n.setTo('nsd.sessions', { words: 'the sessions you mean to read' })).toBe('set nsd.sessions to the sessions you mean to read in recon.json');
    // a field named without a way to set it: the file's, with the flag the command line has for it
    expect([n.nameAndFlag('img2img.rule'), n.nameAndFlag('img2img.size'), n.nameAndFlag('nsd.sessions')]).toEqual(['img2img.rule in recon.json (or --rule)', '--size', 'nsd.sessions']);
    expect(n.fromDefault('nsd.sessions')).toBe(false);
  });
  it('the flags-only form: a field with a flag by its flag, one without by --config', () => {
    const n = fieldNames({ flags, given: [] });
    expect([n.name('img2img.rule'), n.valued('img2img.rule', 'compvis'), n.setTo('img2img.rule', 'diffusers')]).toEqual(['--rule', '--rule compvis', 'use --rule diffusers']);
    expect([n.name('img2img.eta'), n.setTo('img2img.eta', 0.5)]).toEqual(['img2img.eta', 'use --config with img2img.eta set to 0.5']);
    expect([n.nameAndFlag('img2img.rule'), n.nameAndFlag('img2img.eta')]).toEqual(['--rule', 'img2img.eta']);
    // a field without a flag has no way in but --config: its problems lead with plain words
    expect([n.fromDefault('img2img.eta'), n.fromDefault('img2img.rule')]).toEqual([true, false]);
    // (a field named like an Object.prototype key has no flag)
    expect(n.name('constructor')).toBe('constructor');
  });
});

/** What a run that passes printed on stdout and stderr (a dry run's plan, its warnings). */
async function printed(...args: string[]): Promise<string> {
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string | Uint8Array) => ((out += String(s)), true)) as typeof process.stdout.write;
  try {
    return (await stderrOf(() => run(...args))) + out;
  } finally {
    process.stdout.write = write;
  }
}

/** The flags-only form without --size (img2img.size's default 512, which the fixture's U-Net does not take). */
const sizeFlagsForm = (out: string) => ['--nsd', nsdRoot, '--subject', '1', '--model', model, '--out', join(tmp, out), '--dry-run'];
const unet = join(model, 'unet', 'model.onnx');

describe('reconstruct: img2img.size for a U-Net of one latent size', () => {
  it('the flags-only form is told to use --size, and --size 128 then gets through the preflight', async () => {
    const e = await refusal(...sizeFlagsForm('r1'));
    expect(e.name).toBe('PreflightError');
    // (the size by its flag too: the form has no file for the field; 512 is --size's default)
    expect(e.message).toContain(`--size 512 gives 64×64 latents, but ${unet} takes sample of 16×16 only: use --size 128`);
    expect(e.message).not.toContain('img2img.size');
    const e2 = await refusal(...sizeFlagsForm('r2'), '--size', '256');
    expect(e2.message).toContain('--size 256 gives 32×32 latents, but');
    expect(e2.message).toContain('only: use --size 128');
    // the size the hint names: the dry run plans the run (its plan on stdout), with no problem left
    const plan = await printed(...sizeFlagsForm('r3'), '--size', '128');
    expect(plan).toMatch(/img2img/);
    expect(plan).not.toMatch(/img2img\.size|latents, but/);
  }, 120_000);

  it('the config form is told where to set img2img.size, or to use --size; with --size given, --size', async () => {
    const cfg = join(tmp, 'recon.json');
    writeFileSync(cfg, JSON.stringify({ out: 'run-c', nsd: { root: nsdRoot, subject: 1 }, model: { dir: model } }));
    const e = await refusal('--config', cfg, '--dry-run');
    expect(e.name).toBe('PreflightError');
    expect(e.message).toContain(`img2img.size 512 gives 64×64 latents, but ${unet} takes sample of 16×16 only: set img2img.size to 128 in ${cfg}, or use --size 128`);
    const e2 = await refusal('--config', cfg, '--size', '64', '--dry-run');
    expect(e2.message).toContain('--size 64 gives 8×8 latents');
    expect(e2.message).toContain('only: use --size 128');
    expect(e2.message).not.toContain(`in ${cfg}`);
    // the file's size is taken, and --size overrides it
    writeFileSync(cfg, JSON.stringify({ out: 'run-c', nsd: { root: nsdRoot, subject: 1 }, model: { dir: model }, img2img: { size: 128 } }));
    expect(await printed('--config', cfg, '--dry-run')).not.toMatch(/img2img\.size|latents, but/);
    expect((await refusal('--config', cfg, '--size', '256', '--dry-run')).message).toContain('--size 256 gives 32×32 latents');
  }, 120_000);

  it('a bad --size names the flag and what img2img.size takes', async () => {
    for (const v of ['100', '0', 'big']) {
      await expect(run(...sizeFlagsForm('r4'), '--size', v)).rejects.toThrow(
        new InvalidArgumentError(`--size: expected an integer from 8 to 4096, a multiple of 8, got ${v === 'big' ? "'big'" : v}`),
      );
    }
    expect(readdirSync(tmp)).not.toContain('r4');
  });
});
