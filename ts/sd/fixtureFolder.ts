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

/**
 * Refuses `dir` (named `flag`) unless it is new, empty or a fixture; with `variants` (--variant all), a folder holding
 * only fixtures in subfolders of those names.
 */
export async function checkFixtureFolder(flag: string, dir: string, variants?: readonly string[]): Promise<void> {
  const names = await entries(dir);
  if (names === null || names.length === 0) return;
  if (!variants && (await isFixture(dir))) return;
  if (variants) {
    const foreign = [];
    for (const n of names) if (!variants.includes(n) || !((await entries(join(dir, n)))?.length === 0 || (await isFixture(join(dir, n))))) foreign.push(n);
    if (foreign.length === 0) return;
    names.splice(0, names.length, ...foreign);
  }
  const shown = names.sort().slice(0, 5).join(', ') + (names.length > 5 ? `, … (${names.length} entries)` : '');
  throw new InvalidArgumentError(
    `${flag} ${dir} exists and is not a fixture folder (it holds ${shown}); sd fixture writes random-weight models into it, ` +
      'over what is there: expected a new or empty folder, or one sd fixture wrote',
  );
}
