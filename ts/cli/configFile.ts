/** Reading a JSON config file for a command: its paths are relative to the file. */
import { dirname, resolve } from 'node:path';

import { resolveConfigPaths } from '../config/paths.js';
import { readJsonFile } from '../io/json.js';

/**
 * The parsed file with every path field (from `schema`) made absolute against the file's folder. A missing file is
 * a MissingFileError, a syntax error a FormatError naming file:line:column. Validation comes later, in the library.
 */
export async function readConfigFile(file: string, schema: object): Promise<Record<string, unknown>> {
  const value = await readJsonFile(file);
  return resolveConfigPaths(schema, value, dirname(resolve(file))) as Record<string, unknown>;
}
