/**
 * The file and folder fields of a config, found through its schema (`format: "path"`, and `format: "region"`
 * when the region is a mask file): resolved against the config file's folder by the CLI, and listed for a
 * service that must keep every path inside its root.
 */
import { isAbsolute, resolve } from 'node:path';

/** A JSON Schema as plain JSON (e.g. CONFIG_SCHEMA, MANIFEST_SCHEMA): the config helpers read its keywords. */
export type Schema = Record<string, unknown>;

export interface ConfigPath {
  /** Where it sits ("nsd.root", "featureSets[2].path"). */
  field: string;
  value: string;
}

/** A region spec names a mask file when it looks like one (a .nii/.nii.gz name or a path with a slash). */
export const isMaskPath = (roi: string) => /\.nii(\.gz)?$/i.test(roi) || roi.includes('/');

function branchMatches(b: Schema, v: unknown): boolean {
  if ('const' in b) return b.const === v;
  if (Array.isArray(b.enum)) return b.enum.includes(v);
  switch (b.type) {
    case 'string': return typeof v === 'string';
    case 'object': return typeof v === 'object' && v !== null && !Array.isArray(v);
    case 'array': return Array.isArray(v);
    case 'null': return v === null;
    case 'number':
    case 'integer': return typeof v === 'number';
    case 'boolean': return typeof v === 'boolean';
    default: return false;
  }
}

/** A copy of `value` with `fn` applied to every path string the schema declares. Values that do not fit the schema are left alone. */
export function mapConfigPaths(schema: Schema, value: unknown, fn: (p: ConfigPath) => string, field = ''): unknown {
  const union = (schema.oneOf ?? schema.anyOf) as Schema[] | undefined;
  if (union) {
    const tag = (schema.discriminator as { propertyName: string } | undefined)?.propertyName;
    const branch = tag
      ? union.find((b) => typeof value === 'object' && value !== null && (b.properties as Record<string, Schema>)[tag]?.const === (value as Record<string, unknown>)[tag])
      : union.find((b) => branchMatches(b, value));
    return branch ? mapConfigPaths(branch, value, fn, field) : value;
  }
  if (typeof value === 'string') {
    if (schema.format === 'path' || (schema.format === 'region' && isMaskPath(value))) return fn({ field, value });
    return value;
  }
  if (Array.isArray(value) && schema.items) return value.map((v, i) => mapConfigPaths(schema.items as Schema, v, fn, `${field}[${i}]`));
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && schema.properties) {
    const props = schema.properties as Record<string, Schema>;
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, props[k] ? mapConfigPaths(props[k], v, fn, field ? `${field}.${k}` : k) : v]),
    );
  }
  return value;
}

/** Every path in a config, with its field. */
export function configPaths(schema: object, value: unknown): ConfigPath[] {
  const out: ConfigPath[] = [];
  mapConfigPaths(schema as Schema, value, (p) => (out.push(p), p.value));
  return out;
}

/** Relative paths made absolute against `base` (the config file's folder). */
export function resolveConfigPaths<T>(schema: object, value: T, base: string): T {
  return mapConfigPaths(schema as Schema, value, ({ value: p }) => (isAbsolute(p) ? p : resolve(base, p))) as T;
}
