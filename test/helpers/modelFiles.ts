/**
 * Model files altered one tensor or metadata key at a time, and the check that a load refuses one: the tests of
 * RidgeModel.load and BandedRidgeModel.load share them (a saved model, a copy with one thing changed, the error).
 */
import { join } from 'node:path';

import { expect } from 'vitest';

import { FormatError } from '../../ts/errors.js';
import { readSafetensors, writeSafetensors } from '../../ts/io/safetensors.js';
import { tempDir } from './tempDir.js';

export type TensorCopy = { data: Float32Array | Float64Array | Int32Array; shape: number[] };

/** A model saved to a fresh folder (removed when the test ends), and `write(name, patch, metadata)`: a copy of its file with `patch` applied to copies of its tensors. */
export async function alteredCopies(model: { save(path: string): Promise<unknown> }, prefix: string) {
  const dir = tempDir(prefix);
  await model.save(join(dir, 'ok.safetensors'));
  const file = await readSafetensors(join(dir, 'ok.safetensors'));
  const write = async (name: string, patch: (t: Record<string, TensorCopy>) => void = () => {}, metadata: Record<string, string> = {}) => {
    const tensors: Record<string, TensorCopy> = {};
    for (const [k, t] of Object.entries(file.tensors)) tensors[k] = { data: (t.data as Float32Array).slice(), shape: [...t.shape] };
    patch(tensors);
    const path = join(dir, name);
    await writeSafetensors(path, tensors, { ...file.metadata, ...metadata });
    return path;
  };
  return { dir, file, write };
}

/** `load(path)` rejects with a FormatError whose message is `path: message` (or matches it) and whose field is `field`. */
export async function expectRefused(load: (path: string) => Promise<unknown>, path: string, message: string | RegExp, field: string): Promise<void> {
  const err = await load(path).then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(FormatError);
  if (typeof message === 'string') expect((err as FormatError).message).toBe(`${path}: ${message}`);
  else expect((err as FormatError).message).toMatch(message);
  expect((err as FormatError).field).toBe(field);
}
