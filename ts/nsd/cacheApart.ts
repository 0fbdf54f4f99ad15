/**
 * An extraction cache apart from what extractions read. Extractions write their entries into the cache folder and
 * its upkeep removes entries it judges stale (cache.ts), so a cache that is the NSD root, lies inside it or the
 * subject's betas folder, or holds them or a mask file could write into or delete from the inputs. The rule lives
 * here once: extractNsd refuses such a cacheDir itself (a library caller is protected too), and `nsd extract
 * --cache`, encode's and reconstruct's checks and preflights (nsd.cacheDir) refuse it naming their own option.
 */
import { InvalidArgumentError } from '../errors.js';
import { folderInputOverlap, type NamedInput } from '../io/outputProblem.js';
import { betasDir } from './paths.js';
import { parseRegionSpec } from './regionSpec.js';

/**
 * What an extraction of `o` reads, each named for the caller's user: the NSD root, the subject's betas folder (which
 * may be a link out of the root; left out while the subject is unknown) and the region's mask file when the region
 * is one. `names` gives the root's and the region's option names (default extractNsd's: 'root', 'roi').
 */
export function extractionInputs(o: { root: string; subject?: number; roi: string }, names: { root?: string; roi?: string } = {}): NamedInput[] {
  const root = names.root ?? 'root';
  const inputs: NamedInput[] = [[root, o.root]];
  if (o.subject !== undefined) inputs.push([`the betas folder of ${root}`, betasDir(o.root, o.subject)]);
  const mask = maskFileOf(o.roi);
  if (mask !== null) inputs.push([names.roi ?? 'roi', mask]);
  return inputs;
}

/** The mask file a region spec names, or null for an atlas region (or a spec the extraction refuses: it names it). */
function maskFileOf(roi: string): string | null {
  try {
    const r = parseRegionSpec(roi);
    return r.kind === 'file' ? r.path : null;
  } catch {
    return null;
  }
}

/**
 * The refusal of an extraction cache folder that overlaps an input (the same folder, inside one, or holding one,
 * links resolved), or null: `label` names where it came from ('cacheDir', 'nsd.cacheDir', 'run.json: nsd.cacheDir',
 * '--cache').
 */
export async function cacheFolderOverlap(label: string, dir: string, inputs: readonly NamedInput[]): Promise<string | null> {
  const overlap = await folderInputOverlap(dir, inputs);
  if (overlap === null) return null;
  return (
    `${label} ${dir}: ${overlap}, an input; extractions write their cache entries into it and the cache's upkeep removes stale ones, so it could overwrite or delete what they read; ` +
    'expected a cache folder apart from the inputs (none of them, inside none, holding none)'
  );
}

/** Throws cacheFolderOverlap's refusal as an InvalidArgumentError; nothing when the cache is apart. */
export async function assertCacheFolderApart(label: string, dir: string, inputs: readonly NamedInput[]): Promise<void> {
  const problem = await cacheFolderOverlap(label, dir, inputs);
  if (problem) throw new InvalidArgumentError(problem);
}
