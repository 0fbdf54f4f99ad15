/**
 * Model folders that are not SD 1.x ONNX exports: a corrupt or truncated .onnx is a FormatError naming the file
 * and what was expected (the engine maps ONNX Runtime's INVALID_PROTOBUF / INVALID_GRAPH status codes to
 * InvalidModel); an empty or wrong folder lists each <component>/model.onnx it lacks before any file in it is read (it used
 * to report tokenizer/vocab.json: file not found).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { BrainlatentError, FormatError, InvalidArgumentError, MissingFileError } from '../../ts/errors.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { OnnxModel } from '../../ts/sd/OnnxModel.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-model-folder-'));
const good = join(tmp, 'good');
beforeAll(async () => {
  await writeSdFixture(good);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function loadError(dir: string, options: Parameters<typeof Diffusion.load>[1] = {}): Promise<BrainlatentError> {
  try {
    (await Diffusion.load(dir, options)).dispose();
  } catch (e) {
    return e as BrainlatentError;
  }
  throw new Error(`${dir} loaded`);
}

/** A copy of the fixture folder whose unet/model.onnx holds `bytes`. */
async function withUnet(name: string, bytes: Uint8Array): Promise<string> {
  const dir = join(tmp, name);
  await writeSdFixture(dir);
  writeFileSync(join(dir, 'unet', 'model.onnx'), bytes);
  return dir;
}

describe('a corrupt .onnx', () => {
  it('filled with garbage is a FormatError naming the file and what was expected', async () => {
    const dir = await withUnet('garbage', Buffer.from('this is not a protobuf, just text \x00\xff\xfe'));
    const e = await loadError(dir);
    expect(e).toBeInstanceOf(FormatError);
    expect(e.code).toBe('FormatError');
    expect(e.message).toContain(join(dir, 'unet', 'model.onnx'));
    expect(e.message).toMatch(/not a valid ONNX model .*expected an ONNX model file/);
  });

  it('truncated is a FormatError too', async () => {
    const whole = readFileSync(join(good, 'unet', 'model.onnx'));
    const dir = await withUnet('truncated', whole.subarray(0, Math.floor(whole.length / 2)));
    const e = await loadError(dir, { components: ['unet'] });
    expect(e).toBeInstanceOf(FormatError);
    expect(e.message).toContain(join(dir, 'unet', 'model.onnx'));
  });

  it('the intact fixture still loads', async () => {
    (await Diffusion.load(good)).dispose();
  });
});

describe('an empty or wrong model folder', () => {
  it('lists every missing */model.onnx and what the folder must contain, not tokenizer/vocab.json', async () => {
    const dir = join(tmp, 'empty');
    mkdirSync(dir);
    const e = await loadError(dir);
    expect(e).toBeInstanceOf(MissingFileError);
    expect(e.code).toBe('MissingFile');
    expect(e.message).toContain(`model folder ${dir} has no text_encoder/model.onnx, unet/model.onnx, vae_encoder/model.onnx, vae_decoder/model.onnx`);
    expect(e.message).toMatch(/an SD 1\.x ONNX export .* has .*tokenizer\/vocab\.json.*; found: nothing$/);
    expect(e.message).not.toMatch(/file not found/);
  });

  it('a folder of something else says what it holds', async () => {
    const dir = join(tmp, 'other');
    mkdirSync(join(dir, 'unet'), { recursive: true });
    writeFileSync(join(dir, 'README.md'), 'hi');
    writeFileSync(join(dir, 'unet', 'model.onnx'), readFileSync(join(good, 'unet', 'model.onnx')));
    const e = await loadError(dir);
    expect(e.message).toMatch(/has no text_encoder\/model\.onnx, vae_encoder\/model\.onnx, vae_decoder\/model\.onnx .*found: README\.md, unet\/model\.onnx$/);
    // only the components asked for must be there
    (await Diffusion.load(dir, { components: ['unet'] })).dispose();
    await expect(Diffusion.load(dir, { components: ['unet', 'vae' as 'unet'] })).rejects.toThrow(/unknown component 'vae'/);
    await expect(Diffusion.load(dir, { components: ['unet', 'vae' as 'unet'] })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('a folder or model file that is not there is a MissingFileError naming it (code MissingFile, as RidgeModel.load says)', async () => {
    const nope = join(tmp, 'nope');
    const e = await loadError(nope);
    expect(e).toBeInstanceOf(MissingFileError);
    expect(e.code).toBe('MissingFile');
    expect(e.message).toBe(`model folder ${nope} does not exist; expected an SD 1.x ONNX model folder`);
    const onnx = await OnnxModel.load(join(nope, 'unet', 'model.onnx')).then(
      () => null,
      (err: unknown) => err as BrainlatentError,
    );
    expect(onnx).toBeInstanceOf(MissingFileError);
    expect(onnx?.message).toBe(`OnnxModel.load: ${join(nope, 'unet', 'model.onnx')} does not exist; expected an ONNX model file`);
    // one component missing from a folder that has the others
    const partial = join(tmp, 'partial');
    mkdirSync(join(partial, 'unet'), { recursive: true });
    writeFileSync(join(partial, 'unet', 'model.onnx'), readFileSync(join(good, 'unet', 'model.onnx')));
    const part = await loadError(partial, { components: ['unet', 'vae_decoder'] });
    expect(part).toBeInstanceOf(MissingFileError);
    expect(part.message).toContain(`model folder ${partial} has no vae_decoder/model.onnx`);
  });
});
