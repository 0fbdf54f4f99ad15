/**
 * Output paths checked before a command does any work: a fit that runs for minutes must not end on "EISDIR: illegal
 * operation on a directory, rename". Each refusal names the option (or the config field), the path as given and
 * what was expected. The check writes nothing: missing parent folders are created later, by the writer.
 */
import { sep } from 'node:path';

import { InvalidArgumentError } from '../errors.js';
import { outputPathProblem, type OutputKind } from '../io/outputProblem.js';

export type { OutputKind };

/**
 * Throws an InvalidArgumentError unless `path` can take an output of `kind`: a file output must not be an existing
 * folder (nor a device or other non-file), a folder output must not be an existing file, and the nearest existing
 * folder above it must be a writable folder (a parent that is a file can never become one). `option` names where
 * the path came from ('--out', 'run.json: out'); `what` says what is written there ('the model (.safetensors)').
 */
export async function checkOutputPath(option: string, path: string, kind: OutputKind, what: string): Promise<void> {
  const expected = kind === 'file' ? `a file path for ${what}` : `a folder for ${what}`;
  const refuse = (problem: string) => new InvalidArgumentError(`${option} ${path}: ${problem}; expected ${expected}`);
  if (path.trim() === '') throw new InvalidArgumentError(`${option}: got an empty path; expected ${expected}`);
  if (kind === 'file' && (path.endsWith('/') || path.endsWith(sep))) throw refuse('ends with a path separator (a folder)');
  const problem = await outputPathProblem(path, kind);
  if (problem) throw refuse(problem);
}
