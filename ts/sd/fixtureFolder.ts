/**
 * Whether `sd fixture` may write its random-weight models into a folder: a new or empty one, or one it wrote before
 * (model_index.json names `_brainlatent_fixture`). Any other folder is refused: a real model's unet/model.onnx was
 * replaced by random weights, and an NSD root or a folder of unrelated files were written into.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { InvalidArgumentError } from '../errors.js';

async function entries(dir: string): Promise<string[] | null> {
  try {
    return await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    // (a file where a variant's folder is to be written: not one to write into; --out itself is checkOutputPath's)
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return ['(a file)'];
    throw e;
  }
}

async function isFixture(dir: string): Promise<boolean> {
  try {
    const index = JSON.parse(await readFile(join(dir, 'model_index.json'), 'utf8')) as Record<string, unknown> | null;
    return typeof index === 'object' && index !== null && '_brainlatent_fixture' in index;
  } catch {
    return false;
  }
}

/** Whether one folder may be written: new, empty, or a fixture; else the names it holds, for the refusal. */
async function foreignEntries(dir: string): Promise<string[]> {
  const names = await entries(dir);
  if (names === null || names.length === 0 || (await isFixture(dir))) return [];
  return names;
}

/**
 * Refuses `dir` (named `flag`) unless it is new, empty or a fixture. With `variants` (--variant all) only the
 * subfolders of those names are written, each checked so; other entries beside them are left alone (the test runner's
 * build/sd-fixtures holds the suites' own models beside the variants).
 */
export async function checkFixtureFolder(flag: string, dir: string, variants?: readonly string[]): Promise<void> {
  const refuse = (where: string, names: string[]) => {
    const shown = names.sort().slice(0, 5).join(', ') + (names.length > 5 ? `, … (${names.length} entries)` : '');
    throw new InvalidArgumentError(
      `${flag} ${where} exists and is not a fixture folder (it holds ${shown}); sd fixture writes random-weight models into it, ` +
        'over what is there: expected a new or empty folder, or one sd fixture wrote',
    );
  };
  if (!variants) {
    const foreign = await foreignEntries(dir);
    if (foreign.length) refuse(dir, foreign);
    return;
  }
  for (const v of variants) {
    const foreign = await foreignEntries(join(dir, v));
    if (foreign.length) refuse(join(dir, v), foreign);
  }
}
