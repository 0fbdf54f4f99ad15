/** Writes the tiny SD model folders once (build/sd-fixtures/<variant>), safely across parallel test files. */
import { existsSync } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import { SD_FIXTURE_VARIANTS, writeSdFixture } from '../../ts/sd/fixture.js';

export const FIXTURE_ROOT = resolve(process.env.BRAINLATENT_SD_FIXTURES ?? join(import.meta.dirname, '..', '..', 'build', 'sd-fixtures'));

export async function ensureFixtures(): Promise<string> {
  for (const [name, options] of Object.entries(SD_FIXTURE_VARIANTS)) {
    const dest = join(FIXTURE_ROOT, name);
    if (existsSync(join(dest, 'model_index.json'))) continue;
    const tmp = await mkdtemp(join(FIXTURE_ROOT, `.tmp-${name}-`).replace(/\/\.tmp/, '/.tmp')).catch(async () => {
      const { mkdir } = await import('node:fs/promises');
      await mkdir(FIXTURE_ROOT, { recursive: true });
      return mkdtemp(join(FIXTURE_ROOT, `.tmp-${name}-`));
    });
    await writeSdFixture(tmp, options);
    try {
      await rename(tmp, dest);
    } catch {
      await rm(tmp, { recursive: true, force: true }); // another test file won the race
    }
  }
  return FIXTURE_ROOT;
}
