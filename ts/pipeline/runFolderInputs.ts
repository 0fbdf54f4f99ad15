/**
 * A run folder apart from what the run reads: a run writes its files into its folder and `--force` removes what a
 * run wrote there (stages/, features/, data/, …), so an `out` that is the NSD root, lies inside the model folder or
 * holds a feature file could overwrite or delete an input. encode(), reconstruct() and their preflights (the dry
 * runs', the batch's) refuse such a folder before the lock or anything else touches it; the CLI does too, naming
 * its flag (ts/cli/outputPath.ts). The same rule holds for the extraction cache a config names (nsd.cacheDir: the
 * rule is ts/nsd/cacheApart.ts's, which extractNsd applies itself) and for `nsd extract`'s --out and --cache.
 */
import { configPaths, type Schema } from '../config/paths.js';
import { cacheFolderProblem, folderInputOverlap, type NamedInput } from '../io/outputProblem.js';
import { cacheFolderOverlap } from '../nsd/cacheApart.js';
import { betasDir } from '../nsd/paths.js';

/** The config fields that name outputs, not inputs: the run folder itself and the extraction cache it writes. */
const OUTPUT_FIELDS = new Set(['out', 'nsd.cacheDir']);

/**
 * What a run of `config` reads, by field: every path its schema declares (the NSD root, the model folder, a
 * feature file, a mask, the captions, …) but its outputs, and the subject's betas folder, which may be a link out
 * of the NSD root. `names` renames fields a caller took from flags ({ 'nsd.root': '--nsd' }).
 */
export function runFolderInputs(schema: Schema, config: { out: string; nsd: { root: string; subject: number } }, names: Record<string, string> = {}): NamedInput[] {
  const fields = configPaths(schema, config).filter((p) => !OUTPUT_FIELDS.has(p.field));
  const root = names['nsd.root'] ?? 'nsd.root';
  return [
    ...fields.map((p): NamedInput => [names[p.field] ?? p.field, p.value]),
    [`the betas folder of ${root}`, betasDir(config.nsd.root, config.nsd.subject)],
  ];
}

/**
 * The refusal of a run folder that overlaps an input, or null: `label` names where the folder came from ('out',
 * '--out', 'run.json: out').
 */
export async function runFolderOverlap(label: string, out: string, inputs: readonly NamedInput[]): Promise<string | null> {
  const overlap = await folderInputOverlap(out, inputs);
  if (overlap === null) return null;
  return (
    `${label} ${out}: ${overlap}, an input; the run writes its files into its folder and --force removes them, so it could overwrite or delete what it reads; ` +
    'expected a run folder apart from the inputs (none of them, inside none, holding none)'
  );
}

/**
 * Both folders a run of `config` writes — its run folder `out` and, when the config names one, its extraction cache
 * `nsd.cacheDir` (the default, <out>/cache, lies in the run folder) — against what it reads: every refusal. `labels`
 * name the two fields as the caller's user wrote them (default 'out' and 'nsd.cacheDir').
 */
export async function runOutputOverlaps(
  schema: Schema,
  config: { out: string; nsd: { root: string; subject: number; cacheDir?: string | null } },
  labels: { out?: string; cacheDir?: string } = {},
  names: Record<string, string> = {},
): Promise<string[]> {
  const inputs = runFolderInputs(schema, config, names);
  const problems = [await runFolderOverlap(labels.out ?? 'out', config.out, inputs)];
  const cache = config.nsd.cacheDir;
  if (typeof cache === 'string') {
    const label = labels.cacheDir ?? 'nsd.cacheDir';
    problems.push(await cacheFolderOverlap(label, cache, inputs));
    // a cache the entry cannot be written in (below a file, a broken link) failed after the whole extraction, as
    // "ENOENT … mkdir" or the library's option name (review s44); an existing read-only one serves its entries, and
    // what it lacks is extracted without being cached (said at the extract stage)
    const unwritable = await cacheFolderProblem(cache);
    if (unwritable) problems.push(`${label} ${cache}: ${unwritable}; expected a folder for completed extractions`);
  }
  return problems.filter((p): p is string => p !== null);
}
