/** Validation of a config against its schema: a copy with the defaults filled in, or every problem at once. */
import type { TSchema } from '@sinclair/typebox';

import { validatorFor } from './ajv.js';
import { problemsFrom } from './problems.js';
import type { Resolved } from './schemaKit.js';

export interface Checked<S extends TSchema> {
  /** The input's copy with the schema's defaults filled in (meaningful only when `problems` is empty). */
  value: Resolved<S>;
  problems: string[];
}

/**
 * Checks `input` against `schema` without touching it. `source` names it in the messages: a file name
 * ("run.json: nsd.subject: …") or a word ("config.nsd.subject: …").
 */
export function checkConfig<S extends TSchema>(schema: S, input: unknown, source: string): Checked<S> {
  let copy: unknown;
  try {
    copy = input === undefined ? undefined : structuredClone(input);
  } catch (e) {
    return { value: undefined as never, problems: [`${source}: expected JSON data (objects, arrays, strings, numbers, booleans, null), ${(e as Error).message}`] };
  }
  const validate = validatorFor(schema);
  if (validate(copy)) return { value: copy as Resolved<S>, problems: [] };
  return { value: copy as Resolved<S>, problems: problemsFrom(validate.errors ?? [], source) };
}
