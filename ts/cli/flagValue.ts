/**
 * Numeric flags that set a config field (`reconstruct --seeds 3` sets img2img.seeds): each is checked here, at the
 * command line, against the field's own schema, so a bad value is reported against the flag that gave it
 * ("--seeds: expected an integer >= 1, got 0") rather than against the config file, which may not hold it at all.
 */
import { expectedOf } from '../config/problems.js';
import { InvalidArgumentError } from '../errors.js';
// (a plain decimal number as typed: no hex, no 'Infinity', no blank, which Number() reads as 0)
import { DECIMAL } from '../ridge/alphas.js';

type Schema = Record<string, unknown>;


/**
 * The schema of the field at `path` (through nested `properties`), with a `null` branch dropped: a flag always
 * gives a value. Throws if the schema has no such field (a programming error).
 */
export function fieldSchema(schema: object, path: string[]): Schema {
  let s = schema as Schema;
  for (const key of path) {
    const next = (s.properties as Record<string, Schema> | undefined)?.[key];
    if (!next) throw new Error(`fieldSchema: no field '${path.join('.')}' in the schema`);
    s = next;
  }
  const union = s.anyOf as Schema[] | undefined;
  const values = union?.filter((b) => b.type !== 'null');
  return values?.length === 1 ? values[0] : s;
}

/** `text` as the number `field` (type number or integer, with its bounds) accepts, or an error naming `flag`. */
export function numberFlag(text: string, flag: string, field: Schema): number {
  const v = Number(text);
  const ok =
    DECIMAL.test(text.trim()) &&
    Number.isFinite(v) &&
    (field.type !== 'integer' || Number.isSafeInteger(v)) &&  // (beyond 2⁵³ an integer is not held exactly)
    (typeof field.minimum !== 'number' || v >= field.minimum) &&
    (typeof field.maximum !== 'number' || v <= field.maximum) &&
    (typeof field.exclusiveMinimum !== 'number' || v > field.exclusiveMinimum) &&
    (typeof field.exclusiveMaximum !== 'number' || v < field.exclusiveMaximum) &&
    (typeof field.multipleOf !== 'number' || Number.isInteger(v / field.multipleOf));
  if (ok) return v;
  const got = DECIMAL.test(text) ? text : `'${text}'`;
  throw new InvalidArgumentError(`${flag}: expected ${expectedOf(field)}, got ${got}`);
}

/** An integer flag from `min` (to `max`): "--folds: expected an integer >= 2, got 1". */
export function integerFlag(text: string, flag: string, min: number, max?: number): number {
  return numberFlag(text, flag, { type: 'integer', minimum: min, ...(max === undefined ? {} : { maximum: max }) });
}

/** A decimal number flag, optionally above a bound: "--divisor: expected a number > 0, got 0". */
export function decimalFlag(text: string, flag: string, above?: number): number {
  return numberFlag(text, flag, { type: 'number', ...(above === undefined ? {} : { exclusiveMinimum: above }) });
}

/** A flag whose value must be one of `choices`, checked here so the error names the flag, not the library option. */
export function choiceFlag<T extends string>(text: string, flag: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(text)) throw new InvalidArgumentError(`${flag}: expected ${choices.join(', ')}, got '${text}'`);
  return text as T;
}
