/**
 * Output paths checked before a command does any work: a fit that runs for minutes must not end on "EISDIR: illegal
 * operation on a directory, rename". Each refusal names the option (or the config field), the path as given and
 * what was expected. The checks write nothing. A file output (`checkOutputFile`: a model, a .npy, a PNG) goes into a
 * folder that exists, under its format's extension, and is none of the command's input files; a folder output (a run
 * folder, an extraction) may lie below missing folders, which its writer creates.
 */
import { stat } from 'node:fs/promises';
import { dirname, extname, sep } from 'node:path';

import { InvalidArgumentError } from '../errors.js';
import { cacheFolderProblem, outputPathProblem, swapInProblem, type NamedInput, type OutputKind } from '../io/outputProblem.js';
import { assertCacheFolderApart } from '../nsd/cacheApart.js';
import { runFolderOverlap } from '../pipeline/runFolderInputs.js';

export type { OutputKind };

/**
 * Throws an InvalidArgumentError unless `path` can take an output of `kind`: a file output must not be an existing
 * folder (nor a device or other non-file) and its folder must exist (no folder is created for a file), a folder
 * output must not be an existing file, and the nearest existing folder above it must be a writable folder (a parent
 * that is a file can never become one). `option` names where the path came from ('--out', 'run.json: out'); `what`
 * says what is written there ('the model (.safetensors)'). `replaced`: a folder swapped in whole (swapInProblem).
 */
export async function checkOutputPath(option: string, path: string, kind: OutputKind, what: string, opts: { replaced?: boolean } = {}): Promise<void> {
  const expected = kind === 'file' ? `a file path for ${what}` : `a folder for ${what}`;
  const refuse = (problem: string) => new InvalidArgumentError(`${option} ${path}: ${problem}; expected ${expected}`);
  if (path.trim() === '') throw new InvalidArgumentError(`${option}: got an empty path; expected ${expected}`);
  if (kind === 'file' && (path.endsWith('/') || path.endsWith(sep))) throw refuse('ends with a path separator (a folder)');
  const problem = (await outputPathProblem(path, kind)) ?? (opts.replaced ? await swapInProblem(path) : null);
  if (problem) throw refuse(problem);
  // (a parent that is a file was named above: here it is missing)
  if (kind === 'file' && !(await statOrNull(dirname(path)))?.isDirectory()) {
    throw refuse(`its folder ${dirname(path)} does not exist (no folder is created for a file output)`);
  }
}

/**
 * checkOutputPath for an extraction cache folder: an existing folder this user may read but not write in (a lab's
 * shared cache on a read-only mount) is accepted, its entries served and what it lacks extracted without being cached.
 */
export async function checkCacheFolderPath(option: string, path: string): Promise<void> {
  const expected = 'expected a folder for completed extractions (the cache)';
  if (path.trim() === '') throw new InvalidArgumentError(`${option}: got an empty path; ${expected}`);
  const problem = await cacheFolderProblem(path);
  if (problem) throw new InvalidArgumentError(`${option} ${path}: ${problem}; ${expected}`);
}

/** The files a command reads, by the flag that names them: [['--x', 'X.npy'], ['--groups', undefined], …]. */
export type InputFiles = readonly (readonly [flag: string, path: string | undefined])[];

/** A file output: its format's extension, what it holds, and the command's input files it must not overwrite. */
export interface OutputFile {
  /** '.npy', '.png', '.safetensors': a name without an extension gets it, another extension is refused. */
  ext: string;
  /** What is written, for the refusals: 'the predictions (.npy)'. */
  what: string;
  /** The extension's refusal says why: 'ridge predict writes .npy predictions', 'img2img writes PNG images'. */
  writes: string;
  inputs?: InputFiles;
}

/**
 * `path` checked as `checkOutputPath` does for a file, with its extension added when it has none, and refused when it
 * has another (the data would not be what the name says) or is one of `inputs` (writing it would destroy an input the
 * command reads: `ridge predict --x X.npy --out X.npy`). Returns the path to write.
 */
export async function checkOutputFile(option: string, path: string, out: OutputFile): Promise<string> {
  // the name as given first: an existing folder or a trailing '/' is refused, not written below as <name>.png
  await checkOutputPath(option, path, 'file', out.what);
  const ext = extname(path);
  if (ext !== '' && ext.toLowerCase() !== out.ext) {
    throw new InvalidArgumentError(`${option} ${path}: ${out.writes}; expected a ${out.ext} name (or one without an extension: ${out.ext} is added), got ${ext}`);
  }
  const name = ext === '' ? `${path}${out.ext}` : path;
  if (name !== path) await checkOutputPath(option, name, 'file', out.what);
  await checkNotAnInput(option, name, out.inputs ?? [], out.what);
  return name;
}

/**
 * Refuses an output `path` that is one of the command's input files: the same file (device and inode, so a symlink
 * or a hard link to an input is that input), which the write would replace. A path not yet there is no input.
 */
export async function checkNotAnInput(option: string, path: string, inputs: InputFiles, what: string): Promise<void> {
  const out = await statOrNull(path);
  if (!out) return;
  for (const [flag, input] of inputs) {
    if (input === undefined) continue;
    const s = await statOrNull(input);
    if (s && s.dev === out.dev && s.ino === out.ino) {
      const same = input === path ? `is also ${flag}` : `is the same file as ${flag} ${input}`;
      throw new InvalidArgumentError(`${option} ${path}: ${same}, an input; writing ${what} there would overwrite it; expected a path that is none of the inputs`);
    }
  }
}

/**
 * Refuses a run folder (`encode`/`reconstruct --out`) that is one of the inputs, lies inside an input folder or holds
 * an input: the run writes there and --force removes what it wrote (runFolderOverlap; encode() and reconstruct()
 * refuse the same, naming the config's field).
 */
export async function checkRunFolderApart(option: string, path: string, inputs: readonly NamedInput[]): Promise<void> {
  const problem = await runFolderOverlap(option, path, inputs);
  if (problem) throw new InvalidArgumentError(problem);
}

/** Refuses an extraction cache folder (a config's nsd.cacheDir, --cache) that overlaps an input (ts/nsd/cacheApart.ts's rule). */
export async function checkCacheFolderApart(option: string, path: string, inputs: readonly NamedInput[]): Promise<void> {
  await assertCacheFolderApart(option, path, inputs);
}

async function statOrNull(path: string): Promise<Awaited<ReturnType<typeof stat>> | null> {
  try {
    return await stat(path);
  } catch {
    return null;
  }
}
