/**
 * A run folder apart from what the run reads: a run writes its files into its folder and `--force` removes what a
 * run wrote there (stages/, features/, data/, …), so an `out` that is the NSD root, lies inside the model folder or
 * holds a feature file could overwrite or delete an input. encode(), reconstruct() and their preflights (the dry
 * runs', the batch's) refuse such a folder before the lock or anything else touches it; the CLI does too, naming
 * its flag (ts/cli/outputPath.ts).
 */
import { configPaths, type Schema } from '../config/paths.js';
import { folderInputOverlap, type NamedInput } from '../io/outputProblem.js';
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
