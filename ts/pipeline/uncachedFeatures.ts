/**
 * The folder of a run folder where a batch's features (embed) job computes the features of a shared entry the cache
 * cannot take (batch/sharedFeatures.ts' uncachedDir), links them into place and removes it. It is the run's own
 * temporary, never an output and never a file of the user's: a job killed before its removal (a --job-timeout, a
 * SIGKILL, a crash) leaves it, and the next holder of the folder's lock removes it (lockRunFolder), as --force does
 * (runFiles). Nothing reads what is left there: the next features job computes its own again, so a copy a kill left
 * whole is never taken for this run's features, nor one it left half written (`.<key>.tmp-…`) or half removed.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

import { removeDirWhole } from '../io/atomicWrite.js';

/** Its name in the run folder (hidden: not a result). */
export const UNCACHED_FEATURES = '.shared-features-uncached';

/**
 * Its files as runFiles sees them (relative, '/'-separated): under the folder, or under the name removeUncachedFeatures
 * moves it to before deleting it (`..shared-features-uncached.tmp-<host>-<pid>-<random>`, an atomicWrite temporary).
 */
export const UNCACHED_FEATURES_FILES = /^\.?\.shared-features-uncached(\.tmp-[0-9a-f]{6}-\d+-[0-9a-f]{8})?\//;

/**
 * Removes run folder `out`'s uncached features, whoever left them: the caller holds the folder's lock (only a job
 * under that lock writes there), so a leftover is a dead process's, on this host or another sharing the folder. The
 * folder is moved aside first (removeDirWhole), so a removal killed in its turn never leaves a part of a copy under
 * its name; a removal a kill (of any host) left under the moved-aside name goes too.
 */
export async function removeUncachedFeatures(out: string): Promise<void> {
  await removeDirWhole(join(out, UNCACHED_FEATURES));
  const names = await readdir(out).catch(() => [] as string[]);
  for (const n of names) if (UNCACHED_FEATURES_FILES.test(`${n}/`) && n !== UNCACHED_FEATURES) await rm(join(out, n), { recursive: true, force: true });
}
