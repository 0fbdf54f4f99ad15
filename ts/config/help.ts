/**
 * A config's fields described for `--help`, generated from its schema (descriptions, types, defaults), so the
 * help cannot drift from what the validator accepts.
 */
import { expectedOf } from './problems.js';

type Schema = Record<string, unknown>;

interface Line {
  field: string;
  text: string;
  detail: string;
}

const isObject = (s: Schema) => s.type === 'object' && typeof s.properties === 'object';
const isTagged = (s: Schema) => Array.isArray(s.oneOf) && typeof s.discriminator === 'object';

function typeText(s: Schema): string {
  if (isTagged(s)) return expectedOf(s);
  if (s.type === 'array' && isObject((s.items ?? {}) as Schema)) return 'a list of objects';
  if (s.type === 'array' && isTagged((s.items ?? {}) as Schema)) return 'a list of objects';
  return expectedOf(s);
}

function walk(s: Schema, field: string, required: boolean, lines: Line[]): void {
  const parts = [typeText(s)];
  if (required) parts.push('required');
  else if ('default' in s && !(typeof s.default === 'object' && s.default !== null && !Array.isArray(s.default) && Object.keys(s.default).length === 0)) {
    parts.push(`default ${defaultText(s.default)}`);
  }
  const leaf = !isObject(s) || !field;
  if (field && (leaf || s.description)) lines.push({ field, text: (s.description as string) ?? '', detail: leaf ? parts.join('; ') : required ? 'required' : '' });
  if (isObject(s)) {
    const req = new Set((s.required as string[]) ?? []);
    for (const [k, p] of Object.entries(s.properties as Record<string, Schema>)) walk(p, field ? `${field}.${k}` : k, req.has(k), lines);
    return;
  }
  const items = s.type === 'array' ? ((s.items ?? {}) as Schema) : null;
  if (items && isObject(items)) walk(items, `${field}[]`, false, lines);
  if (items && isTagged(items)) {
    const tag = (items.discriminator as { propertyName: string }).propertyName;
    for (const b of items.oneOf as Schema[]) {
      const kind = ((b.properties as Record<string, Schema>)[tag].const as string) ?? '?';
      lines.push({ field: `${field}[] ${tag} "${kind}"`, text: (b.description as string) ?? '', detail: '' });
      const req = new Set((b.required as string[]) ?? []);
      for (const [k, p] of Object.entries(b.properties as Record<string, Schema>)) {
        if (k !== tag) walk(p, `${field}[].${k}`, req.has(k), lines);
      }
    }
  }
}

const numberText = (x: number) => {
  const r = Number(x.toPrecision(4));
  return r !== 0 && (Math.abs(r) < 1e-3 || Math.abs(r) >= 1e5) ? r.toExponential().replace('e+', 'e') : String(r);
};

/** A default as written in JSON, with very small and large numbers in exponent form (1e-6, not 0.000001). */
function defaultText(v: unknown): string {
  if (typeof v === 'number') return numberText(v);
  if (Array.isArray(v) && v.every((x) => typeof x === 'number')) return `[${v.map(numberText).join(', ')}]`;
  return JSON.stringify(v);
}

function wrap(text: string, width: number, indent: string): string[] {
  const out: string[] = [];
  let line = '';
  for (const w of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + w.length > width) {
      out.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) out.push(line);
  return out.map((l, i) => (i === 0 ? l : indent + l));
}

/** The fields of a config schema, one entry each: name, then description, type and default. */
export function configHelp(schema: object, width = 100): string {
  const lines: Line[] = [];
  walk(schema as Schema, '', false, lines);
  const col = Math.min(26, Math.max(...lines.map((l) => l.field.length)) + 2);
  const indent = ' '.repeat(col + 2);
  const out: string[] = [];
  for (const l of lines) {
    const body = wrap(`${l.text}${l.detail ? ` (${l.detail})` : ''}`, width - col - 2, indent);
    if (l.field.length >= col - 1) out.push(`  ${l.field}`, indent + body.join('\n'));
    else out.push(`  ${l.field.padEnd(col)}${body.join('\n')}`);
  }
  return out.join('\n');
}

/** JSON on one line with a space after each comma and colon. */
function flatJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(flatJson).join(', ')}]`;
  if (v !== null && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${flatJson(x)}`).join(', ')}}`;
  return JSON.stringify(v);
}

/** JSON with short objects and arrays kept on one line. */
export function compactJson(v: unknown, indent = '', width = 96): string {
  const flat = flatJson(v);
  if (flat.length + indent.length <= width || v === null || typeof v !== 'object') return flat;
  const inner = `${indent}  `;
  if (Array.isArray(v)) return `[\n${v.map((x) => inner + compactJson(x, inner, width)).join(',\n')}\n${indent}]`;
  const entries = Object.entries(v as object).map(([k, x]) => `${inner}${JSON.stringify(k)}: ${compactJson(x, inner, width)}`);
  return `{\n${entries.join(',\n')}\n${indent}}`;
}

/** The help text for a command's config: an example (the schema's first `examples` entry) and every field. */
export function schemaHelpText(schema: object, file: string): string {
  const example = ((schema as Schema).examples as unknown[] | undefined)?.[0];
  const parts: string[] = [];
  if (example !== undefined) {
    parts.push(`An example ${file} (paths are relative to the file):`, compactJson(example, '', 94).replace(/^/gm, '  '), '');
  }
  parts.push(`The fields of ${file} (every field not marked "required" may be left out):`, configHelp(schema));
  return parts.join('\n');
}
