/**
 * `reconstruct --size` (img2img.size) and the preflight's hint for a U-Net exported at one latent size, in the words
 * of the form used: the flags-only form (no --config) was told "set img2img.size to 128", a config field it has no
 * file to set; it is told "use --size 128", and a config file's form where to set the field. The size is named as it
 * was given: by --size where the flag gave it or there is no file, else as img2img.size.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { registerReconstructCommand } from '../../../ts/cli/commands/reconstruct.js';
import { InvalidArgumentError } from '../../../ts/errors.js';
import { writeSdFixture } from '../../../ts/sd/fixture.js';
import { onnx } from '../../helpers/onnx.js';
import { synthNsd } from '../../../ts/synth/nsd.js';
import { runCommands, stderrOf } from '../../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-cli-recsize-'));
const nsdRoot = join(tmp, 'nsd');
/** An SD fixture whose U-Net takes 16×16 latents only (img2img at 128 px), as the demo world's does. */
const model = join(tmp, 'sd');

beforeAll(async () => {
  await synthNsd({ out: nsdRoot, grid: [8, 8, 8], designSessions: 4, sessions: 3, trialsPerSession: 60, sharedImages: 10, imageSize: 16, formats: ['nifti'], seed: 9 });
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
const flagsForm = (out: string) => ['--nsd', nsdRoot, '--subject', '1', '--model', model, '--out', join(tmp, out), '--dry-run'];
const unet = join(model, 'unet', 'model.onnx');

describe('reconstruct: img2img.size for a U-Net of one latent size', () => {
  it('the flags-only form is told to use --size, and --size 128 then gets through the preflight', async () => {
    const e = await refusal(...flagsForm('r1'));
    expect(e.name).toBe('PreflightError');
    // (the size by its flag too: the form has no file for the field; 512 is --size's default)
    expect(e.message).toContain(`--size 512 gives 64×64 latents, but ${unet} takes sample of 16×16 only: use --size 128`);
    expect(e.message).not.toContain('img2img.size');
    const e2 = await refusal(...flagsForm('r2'), '--size', '256');
    expect(e2.message).toContain('--size 256 gives 32×32 latents, but');
    expect(e2.message).toContain('only: use --size 128');
    // the size the hint names: the dry run plans the run (its plan on stdout), with no problem left
    const plan = await printed(...flagsForm('r3'), '--size', '128');
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
      await expect(run(...flagsForm('r4'), '--size', v)).rejects.toThrow(
        new InvalidArgumentError(`--size: expected an integer from 8 to 4096, a multiple of 8, got ${v === 'big' ? "'big'" : v}`),
      );
    }
    expect(readdirSync(tmp)).not.toContain('r4');
  });
});
