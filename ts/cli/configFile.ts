/** Reading a JSON config file for a command: its paths are relative to the file. */
import { dirname, resolve } from 'node:path';

import { resolveConfigPaths } from '../config/paths.js';
import { FormatError } from '../errors.js';
import { readJsonFile } from '../io/json.js';

/**
 * The parsed file with every path field (from `schema`) made absolute against the file's folder. A missing file is
 * a MissingFileError, a syntax error a FormatError naming file:line:column. Validation comes later, in the library.
 * `command` ('reconstruct', 'encode') is the one reading it, named in the remedy for a run record.
 */
export async function readConfigFile(file: string, schema: object, command?: 'reconstruct' | 'encode'): Promise<Record<string, unknown>> {
  const value = await readJsonFile(file);
  runRecordProblem(file, value, command);
  return resolveConfigPaths(schema, value, dirname(resolve(file))) as Record<string, unknown>;
}

/**
 * A run folder's own run.json given as --config (the help's examples named configs run.json too) was refused with
 * nine problems none of which said what the file is ("out: required, …, version: unknown key, config: unknown
 * key"). It is refused, naming what it is and how to reuse its config, rather than read as its `.config`: that
 * config is the resolved one (every default filled in, every path absolute, `out` the folder the record lies in),
 * so taking it would quietly pin this version's defaults and resume or overwrite that run folder, and a record of
 * the other command (an encode's given to reconstruct) would be read as a config of the wrong kind. Saving
 * `.config` as a file is one jq command, and makes the choice the user's.
 */
function runRecordProblem(file: string, value: unknown, command: 'reconstruct' | 'encode' | undefined): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return;
  const v = value as Record<string, unknown>;
  if (v.format !== 'brainlatent-run') return;
  const config = v.config;
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    // (run.json while --force clears the folder, or a record without its config)
    throw new FormatError(`${file} is a run record (format "brainlatent-run") that holds no config${v.clearing === true ? ' (the marker of a run folder being cleared)' : ''}; expected a ${command ?? 'reconstruct or encode'} config`, { path: file });
  }
  const c = config as Record<string, unknown>;
  const writer = 'featureSets' in c ? 'encode' : 'reconstruct';
  const name = writer === 'encode' ? 'enc.json' : 'recon.json';
  const out = typeof c.out === 'string' ? ` (its out is ${c.out}, the folder of that run, which resumes there unless --out names another)` : '';
  const other = command === undefined || writer === command ? '' : `, to be run with brainlatent ${writer}, not ${command}`;
  throw new FormatError(
    `${file} is a run record (format "brainlatent-run", written by ${writer} into its run folder), not a config; its config is under .config, resolved${other}. ` +
      `To run that config again, save it as a config file: jq .config ${file} > ${name}, then brainlatent ${writer} --config ${name}${out}`,
    { path: file },
  );
}
