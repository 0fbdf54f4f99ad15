/**
 * The one JSON Schema validator for configs (ajv, the validator Fastify uses). Its options are exported so a
 * Fastify app can validate route bodies exactly as the CLI and the library do:
 * `Fastify({ ajv: { customOptions: CONFIG_AJV_OPTIONS } })`.
 */
import type { Ajv, Options, ValidateFunction } from 'ajv';
import { ajvPackage } from '../lazyPackages.js';
import type { TSchema } from '@sinclair/typebox';

export const CONFIG_AJV_OPTIONS = {
  /** Every problem at once, not the first. */
  allErrors: true,
  /** The schemas' defaults are the only defaults. */
  useDefaults: true,
  /** Unknown keys are errors (the schemas say additionalProperties: false), never silently dropped. */
  removeAdditional: false,
  coerceTypes: false,
  /** Feature sets are `oneOf` tagged by `kind`: check only the branch the kind names. */
  discriminator: true,
  /** Errors carry the offending value and its schema, for messages that say what was expected and what arrived. */
  verbose: true,
  strict: true,
  /** Annotations for the CLI and the service: which strings are paths (resolved against the config's folder). */
  formats: { path: true, region: true },
} satisfies Options;

let shared: Ajv | null = null;
const compiled = new WeakMap<object, ValidateFunction>();

/** The shared ajv instance (created on first use, when ajv itself is loaded). */
export function configAjv(): Ajv {
  shared ??= new (ajvPackage().Ajv)(CONFIG_AJV_OPTIONS);
  return shared;
}

/** The compiled validator of a schema (compiled once). It fills in defaults in place. */
export function validatorFor(schema: TSchema): ValidateFunction {
  let v = compiled.get(schema);
  if (!v) {
    v = configAjv().compile(schema);
    compiled.set(schema, v);
  }
  return v;
}
