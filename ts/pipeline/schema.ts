/**
 * A small declarative schema for JSON configs: every problem is collected (unknown keys, wrong types,
 * out-of-range values) with its path, so one run reports all of them at once.
 */
export type Schema =
  | { kind: 'object'; fields: Record<string, Field> }
  | { kind: 'number'; integer?: boolean; min?: number; max?: number; exclusiveMin?: boolean }
  | { kind: 'string'; nonEmpty?: boolean }
  | { kind: 'boolean' }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'array'; of: Schema; minLength?: number }
  | { kind: 'nullable'; of: Schema };

export interface Field {
  schema: Schema;
  optional?: boolean;
}

export const req = (schema: Schema): Field => ({ schema });
export const opt = (schema: Schema): Field => ({ schema, optional: true });

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

function expected(s: Schema): string {
  switch (s.kind) {
    case 'object': return 'an object';
    case 'string': return s.nonEmpty ? 'a non-empty string' : 'a string';
    case 'boolean': return 'true or false';
    case 'enum': return `one of ${s.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'array': return `an array${s.minLength ? ` of at least ${s.minLength}` : ''} of ${expected(s.of)}`;
    case 'nullable': return `${expected(s.of)} or null`;
    case 'number': {
      const parts = [s.integer ? 'an integer' : 'a number'];
      if (s.min !== undefined) parts.push(`${s.exclusiveMin ? '>' : '>='} ${s.min}`);
      if (s.max !== undefined) parts.push(`<= ${s.max}`);
      return parts.join(' ');
    }
  }
}

/** Validates `value` against `schema`; returns one message per problem ("path: expected ..., got ..."). */
export function validate(value: unknown, schema: Schema, path: string, errors: string[] = []): string[] {
  const fail = () => errors.push(`${path}: expected ${expected(schema)}, got ${describe(value)}`);
  switch (schema.kind) {
    case 'nullable':
      if (value !== null) validate(value, schema.of, path, errors);
      break;
    case 'object': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        fail();
        break;
      }
      const obj = value as Record<string, unknown>;
      for (const key of Object.keys(obj)) {
        if (!(key in schema.fields)) {
          errors.push(`${path}.${key}: unknown key (known: ${Object.keys(schema.fields).join(', ')})`);
        }
      }
      for (const [key, field] of Object.entries(schema.fields)) {
        if (obj[key] === undefined) {
          if (!field.optional) errors.push(`${path}.${key}: required, expected ${expected(field.schema)}`);
        } else validate(obj[key], field.schema, `${path}.${key}`, errors);
      }
      break;
    }
    case 'array':
      if (!Array.isArray(value) || value.length < (schema.minLength ?? 0)) fail();
      else value.forEach((v, i) => validate(v, schema.of, `${path}[${i}]`, errors));
      break;
    case 'number': {
      const n = value as number;
      const ok =
        typeof value === 'number' &&
        Number.isFinite(n) &&
        (!schema.integer || Number.isInteger(n)) &&
        (schema.min === undefined || (schema.exclusiveMin ? n > schema.min : n >= schema.min)) &&
        (schema.max === undefined || n <= schema.max);
      if (!ok) fail();
      break;
    }
    case 'string':
      if (typeof value !== 'string' || (schema.nonEmpty && value.length === 0)) fail();
      break;
    case 'boolean':
      if (typeof value !== 'boolean') fail();
      break;
    case 'enum':
      if (typeof value !== 'string' || !schema.values.includes(value)) fail();
      break;
  }
  return errors;
}
