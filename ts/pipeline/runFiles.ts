/**
 * Which files in a run folder a run wrote, for --force (runFolder's clearRunFolder): those go, every other file
 * stays, even inside a folder a run writes to (a user's data/participants.csv, maps/my_contrast.nii.gz, images/ of
 * their own in an encode folder). A file is a run's when
 * - a stage marker of the previous run lists it as an output (or lists a folder holding it): what finished;
 * - its name is one reconstruct or encode gives its outputs (RUN_FILE_PATTERNS), or one the previous run's config
 *   gives its tables and maps (runConfigFiles, from run.json's config): what an interrupted stage left before
 *   writing its marker;
 * - an interrupted clearing listed it (the clearing marker's `removing`);
 * - it is under the run's own temporary folder for features computed uncached, which a killed batch job left
 *   (uncachedFeatures.ts): never a file of the user's.
 * The extraction cache (`cache/`, keyed by its inputs), the folder's lock and run.json's rewrite lock are never a
 * run's outputs (a rewrite killed while it held the latter leaves it, taken over by the next).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';

import { mapFile } from '../encoding/mapFiles.js';
import { LOCK_FILE } from '../io/folderLock.js';
import { UNCACHED_FEATURES_FILES } from './uncachedFeatures.js';

/** The lock file of a run folder's run.json rewrites (runRecord.ts). */
export const RUN_JSON_LOCK = '.run.json.lock';

/**
 * The names reconstruct, encode and the demo give the files they write, as paths relative to the run folder ('/'
 * separated). test/pipeline/runFolder and the pipelines' tests (encode, demo) check that every file of a real run matches one.
 */
export const RUN_FILE_PATTERNS: readonly RegExp[] = [
  // both pipelines: the manifest, stage markers (and img2img's partial records, batch shards' markers)
  /^run\.json$/,
  /^stages\//,
  /^data\/image_ids\.json$/,
  /^report\.html$/,
  // reconstruct (runFolder's paths()), and the demo's stamp of the world it ran on
  /^features\/(z|c|image_ids)\.npy$/,
  /^decoders\/((z|c)\.safetensors|summary\.json|(z|c)_target_r\.npy)$/,
  /^decoded\/(z|c)\.npy$/,
  // (samples 000–999, then 1000 and on: paths() pads the seed to three digits)
  /^images\/\d{5}_(org|z|\d{3,})\.png$/,
  /^metrics(\.csv|\.json|_per_image\.csv)$/,
  /^demo-world\.json$/,
  // a batch's features job's uncached copy of a shared entry, which a kill left (uncachedFeatures.ts): the run's temporary
  UNCACHED_FEATURES_FILES,
  // encode (encoding/runPaths' encodePaths(), the report's files); maps and computed tables: runConfigFiles
  /^data\/(noise_ceiling\.npy|maps\.json)$/,
  /^features\/embed\/(z|c|image_ids)\.npy$/,
  /^features\/embed\/shapes\.json$/,
  /^fits\/[^/]+\/((r|r2|best_alphas)\.npy|fit\.json)$/,
  /^banded\/[^/]+\/((r|r2|band_weights|best_alphas|shared|r2_without_\d+|unique_\d+)\.npy|banded\.json)$/,
  /^maps\/noise-ceiling\.nii\.gz$/,
  /^mosaics\/noise-ceiling\.png$/,
  /^regions\.csv$/,
  /^encoding\.json$/,
  /^report_files\/(niivue\.umd\.js|NIIVUE-LICENSE\.txt)$/,
];

/**
 * The files an encode config names after its feature sets and joint models (exactly, as the maps stage names
 * them: mapFile()): each table's maps and mosaics (held-out r, r/√NC, log10 alpha), each joint model's (r, R², R²
 * without each set, alpha, γ, unique, shared), and a computed table's features/<key>.npy (a z_c set's, a U-Net
 * set's per layer × timestep). Names a user may give files beside them (maps/z_thresholded.nii.gz) are not among
 * them. `config` is run.json's, as written (read defensively: a config of another version may lack any of these).
 */
export function runConfigFiles(config: unknown): Set<string> {
  const c = (config ?? {}) as { featureSets?: unknown; banded?: unknown };
  const list = (v: unknown): Record<string, unknown>[] => (Array.isArray(v) ? v.filter((s) => typeof s?.name === 'string') : []);
  const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
  const numbers = (v: unknown): number[] => (Array.isArray(v) ? v.filter((x): x is number => typeof x === 'number') : []);
  const files = new Set<string>();
  const map = (r: Parameters<typeof mapFile>[0]) => {
    const { file, mosaic } = mapFile(r);
    files.add(file.split(sep).join('/')).add(mosaic.split(sep).join('/'));
  };
  for (const set of list(c.featureSets)) {
    const name = set.name as string;
    // a table per set, or (U-Net) per layer × timestep: encoding/runPaths' tableSpecs
    const tables: [string, string][] =
      set.kind === 'unet'
        ? strings(set.layers).flatMap((layer, li) => numbers(set.timesteps).map((t): [string, string] => [`${name}:${layer}@t${t}`, `${name}.L${li}.t${t}`]))
        : [[name, name]];
    for (const [table, key] of tables) {
      for (const kind of ['r', 'r-over-sqrt-nc', 'alpha'] as const) map({ kind, featureSet: table });
      if (set.kind === 'unet' || set.kind === 'zc') files.add(`features/${key}.npy`);
    }
  }
  for (const model of list(c.banded)) {
    const banded = model.name as string;
    for (const kind of ['banded-r', 'banded-r2', 'banded-alpha', 'shared'] as const) map({ kind, banded });
    for (const space of strings(model.sets)) for (const kind of ['banded-r2-without', 'band-weight', 'unique'] as const) map({ kind, banded, space });
  }
  return files;
}

/** What a run folder holds: the files a run wrote (`remove`) and the others (`keep`), relative paths, sorted. */
export interface RunFiles {
  remove: string[];
  keep: string[];
}

/** What a folder's walk found: its files, and the sub-folders it could not read (kept, named as such). */
interface FolderWalk {
  files: string[];
  unreadable: string[];
}

/**
 * Every file under `folder` (relative, '/'-separated), but the lock and the extraction cache (not walked), one folder
 * at a time: a sub-folder that cannot be read (another user's, mode 000) is reported, not taken for an empty folder
 * — that would make a run folder full of outputs look like one holding none. A missing folder has no files; one that
 * exists but cannot be read is an error.
 */
async function folderFiles(folder: string): Promise<FolderWalk> {
  // (resolved: a folder given as 'runs/a/' or '/x//y' is named otherwise by the entries' paths)
  const out = resolve(folder);
  const walk: FolderWalk = { files: [], unreadable: [] };
  const visit = async (rel: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(rel ? join(out, rel) : out, { withFileTypes: true });
    } catch (e) {
      if (rel === '' && (e as NodeJS.ErrnoException).code === 'ENOENT') return;
      if (rel === '') throw e;
      walk.unreadable.push(rel);
      return;
    }
    for (const e of entries) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (rel === '' && (e.name === LOCK_FILE || e.name === RUN_JSON_LOCK || e.name === 'cache')) continue;
      // (a link is not followed: it is a file here, removed as a link when it is a run's)
      if (e.isDirectory()) await visit(path);
      else walk.files.push(path);
    }
  };
  await visit('');
  walk.files.sort();
  walk.unreadable.sort();
  return walk;
}

/** The outputs the stage markers under stages/ list (files or folders), relative paths. */
async function markedOutputs(out: string, files: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  for (const f of files.filter((f) => f.startsWith('stages/') && f.endsWith('.json'))) {
    try {
      const m = JSON.parse(await readFile(join(out, f), 'utf8')) as { outputs?: unknown } | null;
      for (const o of Array.isArray(m?.outputs) ? m.outputs : []) {
        if (typeof o !== 'string') continue;
        const parts = o.split(/[\\/]/).filter((p) => p !== '' && p !== '.');
        // (never outside the folder, never the cache or the lock)
        if (parts.length && !parts.includes('..') && parts[0] !== 'cache' && parts[0] !== LOCK_FILE) found.push(parts.join('/'));
      }
    } catch {
      // an unreadable marker lists nothing
    }
  }
  return found;
}

/**
 * Splits the files of run folder `out` into the previous run's outputs and the rest. `config` is the previous run's
 * config (run.json's), `removing` what an interrupted clearing was removing, `wholeEntries` top-level entries all of
 * whose files go (a clearing begun by a version that removed whole entries).
 */
export async function runFiles(out: string, config: unknown, removing: readonly string[] = [], wholeEntries: readonly string[] = []): Promise<RunFiles> {
  const { files, unreadable } = await folderFiles(out);
  const marked = await markedOutputs(out, files);
  const named = runConfigFiles(config);
  const listed = new Set([...removing, ...marked, ...wholeEntries]);
  // a file listed, or under a folder listed (a marker may name a folder), or named as a run names its outputs
  const isListed = (f: string) => f.split('/').some((_, i, parts) => listed.has(parts.slice(0, i + 1).join('/')));
  const isRun = (f: string) => isListed(f) || named.has(f) || RUN_FILE_PATTERNS.some((p) => p.test(f));
  const keep = [...files.filter((f) => !isRun(f)), ...unreadable.map((d) => `${d}/ (unreadable: kept)`)].sort();
  return { remove: files.filter(isRun), keep };
}

/** The top-level entries of `files` (relative paths), sorted: what a message names. */
export const topEntries = (files: readonly string[]): string[] => [...new Set(files.map((f) => f.split('/')[0]))].sort();

/**
 * Whether relative path `file` has a name a run gives its outputs (RUN_FILE_PATTERNS, and those of the run's config
 * `config`), without its markers: what an interrupted stage's files are known by.
 */
export function runFileNamed(file: string, config: unknown): boolean {
  return runConfigFiles(config).has(file) || RUN_FILE_PATTERNS.some((p) => p.test(file));
}
