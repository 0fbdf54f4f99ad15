/**
 * Input files named on the command line as the matching output flag named them: `ridge fit --out m1` writes
 * m1.safetensors (the extension is added, ts/cli/outputPath.ts), so `ridge predict --model m1` most likely means
 * that file. A missing name without an extension beside a file of that name with it says so, rather than the
 * reader's bare "file not found".
 */
import { existsSync } from 'node:fs';
import { extname } from 'node:path';

import { MissingFileError } from '../errors.js';

/**
 * Throws a MissingFileError naming `flag` and the file with `ext` when `path` does not exist, has no extension
 * and `path + ext` does; otherwise returns `path` as given (its reader reports anything else).
 */
export function checkInputFile(flag: string, path: string, ext: string, writtenBy?: string): string {
  if (extname(path) !== '' || existsSync(path) || !existsSync(`${path}${ext}`)) return path;
  const why = writtenBy ? ` (${writtenBy} adds ${ext} to a name without an extension)` : '';
  throw new MissingFileError(`${flag} ${path}: file not found; did you mean ${path}${ext}?${why}`);
}
