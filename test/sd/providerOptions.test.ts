/**
 * Execution-provider settings at the public boundary: providerLibrary / providerOptions checked once
 * (strings only, non-empty keys, the device as deviceId, a library only for provider 'cuda'), and the
 * engine's answer on a machine without CUDA — a provider library that does not exist is a
 * BackendUnavailableError naming it; a CPU session reports its route.
 */
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { BackendUnavailableError, InvalidArgumentError } from '../../ts/errors.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { OnnxModel } from '../../ts/sd/OnnxModel.js';
import { checkProviderSettings } from '../../ts/sd/native.js';
import { ensureFixtures } from './fixtures.js';

let root = '';
beforeAll(async () => {
  root = await ensureFixtures();
});

describe('provider settings', () => {
  it('passes strings through and returns only what was given', () => {
    expect(checkProviderSettings({}, 'x')).toEqual({});
    expect(
      checkProviderSettings({ provider: 'cuda', providerLibrary: '/opt/ort/libonnxruntime_providers_cuda.so', providerOptions: { use_tf32: '0' } }, 'x'),
    ).toEqual({ providerLibrary: '/opt/ort/libonnxruntime_providers_cuda.so', providerOptions: { use_tf32: '0' } });
  });

  it('refuses what the provider could not take, naming the caller and the field', () => {
    const bad: [object, RegExp][] = [
      [{ providerOptions: { use_tf32: 0 } }, /Diffusion\.load: providerOptions\.use_tf32 must be a string, got number/],
      [{ providerOptions: { use_tf32: true } }, /providerOptions\.use_tf32 must be a string/],
      [{ providerOptions: { '': '1' } }, /providerOptions has an empty key/],
      [{ providerOptions: { device_id: '1' } }, /device_id is not taken: give the device as deviceId/],
      [{ providerOptions: ['use_tf32=0'] }, /providerOptions must be a plain object of strings/],
      [{ providerOptions: null }, /providerOptions must be a plain object/],
      [{ providerOptions: 'use_tf32=0' }, /providerOptions must be a plain object/],
      [{ provider: 'cuda', providerLibrary: '' }, /providerLibrary must be a file path/],
      [{ provider: 'cuda', providerLibrary: 7 }, /providerLibrary must be a file path/],
      [{ providerLibrary: '/x/libonnxruntime_providers_cuda.so' }, /providerLibrary is for provider 'cuda', but provider is "cpu"/],
      // (the engine dropped them without a word: the CPU provider takes no options)
      [{ providerOptions: { use_tf32: '0' } }, /Diffusion\.load: providerOptions \(use_tf32\) are for an execution provider such as 'cuda', but provider is "cpu", which takes none/],
      [{ provider: 'cpu', providerOptions: { a: '1', b: '2' } }, /providerOptions \(a, b\) are for an execution provider/],
    ];
    for (const [options, message] of bad) {
      expect(() => checkProviderSettings(options, 'Diffusion.load'), JSON.stringify(options)).toThrow(InvalidArgumentError);
      expect(() => checkProviderSettings(options, 'Diffusion.load'), JSON.stringify(options)).toThrow(message);
    }
  });

  it('Diffusion.load and OnnxModel.load check before loading anything', async () => {
    const dir = join(root, 'optimum-1.24');
    await expect(Diffusion.load(dir, { providerOptions: { use_tf32: 0 as unknown as string } })).rejects.toThrow(
      /Diffusion\.load: providerOptions\.use_tf32 must be a string/,
    );
    await expect(
      OnnxModel.load(join(dir, 'unet', 'model.onnx'), { provider: 'cpu', providerLibrary: '/x/libonnxruntime_providers_cuda.so' }),
    ).rejects.toThrow(/OnnxModel\.load: providerLibrary is for provider 'cuda'/);
  });

  it('a provider library that does not exist is BackendUnavailableError naming it; CPU reports its route', async () => {
    const file = join(root, 'optimum-1.24', 'text_encoder', 'model.onnx');
    const missing = '/nonexistent/brainlatent-test/libonnxruntime_providers_cuda.so';
    const load = OnnxModel.load(file, { provider: 'cuda', providerLibrary: missing, providerOptions: { use_tf32: '0' } });
    await expect(load).rejects.toThrow(BackendUnavailableError);
    await expect(load).rejects.toThrow(missing);
    const model = await OnnxModel.load(file, { intraOpThreads: 1 });
    try {
      expect(model.provider).toBe('cpu');
    } finally {
      model.dispose();
    }
    const sd = await Diffusion.load(join(root, 'optimum-1.24'), { components: ['unet'], intraOpThreads: 1 });
    try {
      expect(sd.info.provider).toBe('cpu');
    } finally {
      sd.dispose();
    }
  });
});

describe('thread counts', () => {
  it('are integers from 0 to 1024, refused by Diffusion.load and OnnxModel.load before anything loads', async () => {
    const dir = join(root, 'optimum-1.24');
    // (past 2^31 − 1: an out-of-range conversion to the engine's int, review s35-r6; past 1024: ONNX Runtime makes and
    // spins every thread up front, and 99999999 grew to 24 GB before it was killed, review s36-r3)
    for (const bad of [-2, 1.5, Number.NaN, '2', 1025, 2 ** 31]) {
      await expect(Diffusion.load(dir, { intraOpThreads: bad as number })).rejects.toThrow(
        `Diffusion.load intraOpThreads: expected an integer in 0..1024 (0: ONNX Runtime's default), got ${typeof bad === 'string' ? 'string "2"' : bad}`,
      );
    }
    await expect(Diffusion.load(dir, { interOpThreads: -1 })).rejects.toThrow(InvalidArgumentError);
    await expect(Diffusion.load(dir, { maxRowsPerRun: 2 ** 40 })).rejects.toThrow('Diffusion.load maxRowsPerRun: expected an integer in 0..2147483647, got 1099511627776');
    await expect(OnnxModel.load(join(dir, 'unet', 'model.onnx'), { intraOpThreads: -1 })).rejects.toThrow(/^OnnxModel\.load intraOpThreads: expected an integer in 0\.\.1024 \(0: ONNX Runtime's default\), got -1$/);
    const sd = await Diffusion.load(dir, { intraOpThreads: 0, interOpThreads: 1, components: ['unet'] });
    sd.dispose();
  });
});
