/**
 * What an interrupted img2img stage (or batch shard) had finished: its (image block, seed) units, each recorded
 * once its PNGs are written (atomically), so that the next run computes only the rest — on real SD a stage is
 * hours, and a kill otherwise lost all of it. The record holds a key of the config, of what the stages img2img
 * reads from made (their markers; an extraction's content key) and of img2img's recipe version: a record made over
 * other decoders or z-only images (an upstream stage ran again since), or by a version of the stage that keyed its
 * noise otherwise, is not used; one made before an extraction ran again with the same data is. Kept in stages/img2img.partial/ (removed with the run's outputs by --force) until the
 * stage finishes; the folder goes with the last record in it (a finished run folder has none).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';

import { writeJsonAtomic } from '../io/atomicWrite.js';
import { configHash, type ReconstructConfig } from './config.js';
import { outputIdentities, stageRecipe, upstreamKey } from './runFolder.js';
import { packageVersion } from './runVersions.js';

/** The stages whose outputs img2img reads (directly or through them). */
const UPSTREAM = ['extract', 'features', 'decoders', 'zonly'];

interface Record {
  key: string;
  /** Finished units: [first image's position in the test list, seed index]. */
  done: [number, number][];
  /**
   * Of the record's config and img2img recipe, and the brainlatent that wrote it, said apart from the key: an older
   * version finding a later recipe's record refuses the folder (runFolder's newerRecipeStages) instead of making those
   * samples again over the newer ones. Absent in records written before.
   */
  configHash?: string;
  recipe?: number;
  brainlatent?: string;
}

export interface Img2ImgProgress {
  /** Whether unit (i0, k) was finished by an earlier run over the same inputs. */
  has(i0: number, k: number): boolean;
  /** Records unit (i0, k) as finished (its PNGs written). */
  add(i0: number, k: number): Promise<void>;
  /** The stage (or shard) has finished: its marker takes over. The record goes, and the folder if no other shard's is left. */
  remove(): Promise<void>;
}

/**
 * What img2img is made from, as a key of the stages it reads from (runFolder's upstreamKey): a stage that ran again
 * writes another marker (its finishing time at least), so images made before it are not taken for current ones; an
 * extraction that ran again and made the same data (its content key) leaves it as it was. A batch shard's marker
 * records it (batch/runNode.ts). (Markers without a content key enter as written, as before that key existed.)
 */
export async function img2imgUpstreamKey(config: ReconstructConfig): Promise<string> {
  return upstreamKey(config, UPSTREAM);
}

/** The stages whose markers img2imgUpstreamKey covers. */
export const IMG2IMG_UPSTREAM: readonly string[] = UPSTREAM;

/** The record of the img2img units finished in `config.out` for the shard named `label`. */
export async function img2imgProgress(config: ReconstructConfig, label: string): Promise<Img2ImgProgress> {
  const file = join(config.out, 'stages', 'img2img.partial', `${label}.json`);
  // (what the record says apart from its key, taken once: the key is made of them)
  const made = { configHash: configHash(config), recipe: stageRecipe('img2img'), brainlatent: packageVersion() };
  const hash = createHash('sha256').update(made.configHash).update(label).update(`\0recipe ${made.recipe}`);
  for (const [s, identity] of await outputIdentities(config, UPSTREAM)) hash.update(`\0${s}\0`).update(identity);
  const key = hash.digest('hex').slice(0, 32);
  const earlier = await readFile(file, 'utf8').then((t) => JSON.parse(t) as Record, () => null);
  const done = new Set(earlier?.key === key && Array.isArray(earlier.done) ? earlier.done.map(([i, k]) => `${i}/${k}`) : []);
  const units = (): [number, number][] => [...done].map((u) => u.split('/').map(Number) as [number, number]);
  return {
    has: (i0, k) => done.has(`${i0}/${k}`),
    add: async (i0, k) => {
      done.add(`${i0}/${k}`);
      // a shard finishing beside this one may remove the empty folder between the write's mkdir and its open: write again
      for (let attempt = 1; ; attempt++) {
        try {
          await writeJsonAtomic(file, { key, done: units(), ...made } satisfies Record);
          return;
        } catch (e) {
          if (attempt === 3 || existsSync(dirname(file))) throw e;
        }
      }
    },
    remove: async () => {
      await rm(file, { force: true });
      // an empty folder stayed in every finished run folder; one holding another shard's record (or anything else) is kept
      await rmdir(dirname(file)).catch(() => undefined);
    },
  };
}
