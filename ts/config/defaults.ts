/**
 * A schema's defaults filled into a value without a validator, for constants built when a module loads
 * (pipeline/config.ts's DEFAULTS): ajv compiles the schema first, which would load it with the package's entry.
 * It does what ajv's `useDefaults` does for object properties: an absent (undefined) property that has a
 * `default` gets a copy of it, then every property present is filled in the same way, at every depth. Defaults
 * inside anyOf/oneOf branches and array items are not applied; test/config/defaults.test.ts holds the result
 * against the validator's.
 */
import type { Schema } from './paths.js';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `value`, changed in place, with `schema`'s property defaults filled in where absent. */
export function fillDefaults<T>(schema: Schema, value: T): T {
  fillObject(schema, value);
  return value;
}

function fillObject(schema: Schema, value: unknown): void {
  const properties = schema.properties;
  if (!isObject(value) || !isObject(properties)) return;
  for (const [key, sub] of Object.entries(properties)) {
    if (!isObject(sub)) continue;
    if (value[key] === undefined && 'default' in sub) value[key] = structuredClone(sub.default);
    if (value[key] !== undefined) fillObject(sub, value[key]);
  }
}
