/** Reading a JSON config file for a command: its paths are relative to the file. */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

import { resolveConfigPaths } from '../config/paths.js';
import { InvalidArgumentError, MissingFileError } from '../errors.js';

/** The parsed file with every path field (from `schema`) made absolute against the file's folder. Validation comes later, in the library. */
export async function readConfigFile(file: string, schema: object): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new MissingFileError(`config file ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new InvalidArgumentError(`config file ${file} is not valid JSON: ${(e as Error).message}`);
  }
  return resolveConfigPaths(schema, value, dirname(resolve(file))) as Record<string, unknown>;
}
