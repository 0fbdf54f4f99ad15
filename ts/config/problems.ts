/**
 * Turns ajv's errors into one line per problem, naming the field, what was expected (read from the field's
 * schema) and what arrived: "run.json: nsd.subject: expected an integer from 1 to 8, got number 9".
 * Unknown keys are named with the known ones and a "did you mean" when one is close.
 */
import type { ErrorObject } from 'ajv';

import type { Schema } from './paths.js';

/** A short description of a value, for "got ...". */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

const q = (v: unknown) => JSON.stringify(v);

function countPhrase(min: number | undefined, max: number | undefined): string {
  if (min !== undefined && min === max) return ` of ${min} item${min === 1 ? '' : 's'}`;
  if (min !== undefined && max !== undefined) return ` of ${min} to ${max} items`;
  if (min) return ` of at least ${min} item${min === 1 ? '' : 's'}`;
  if (max !== undefined) return ` of at most ${max} items`;
  return '';
}

/** What a schema accepts, in words ("an integer from 1 to 8", "one of "r2", "pearson"", "a non-empty string or null"). */
export function expectedOf(s: Schema): string {
  const tagged = s.discriminator as { propertyName: string } | undefined;
  const union = (s.anyOf ?? s.oneOf) as Schema[] | undefined;
  if (tagged && union) return `an object whose "${tagged.propertyName}" is one of ${tagKinds(s).map(q).join(', ')}`;
  if (union) {
    const each = union.map(expectedOf);
    return each.length > 2 || each.some((e) => e.includes(' or ')) ? `${each.slice(0, -1).join(', ')}, or ${each[each.length - 1]}` : each.join(' or ');
  }
  if ('const' in s) return q(s.const);
  if (Array.isArray(s.enum)) return `one of ${s.enum.map(q).join(', ')}`;
  switch (s.type) {
    case 'object':
      return 'an object';
    case 'boolean':
      return 'true or false';
    case 'null':
      return 'null';
    case 'string': {
      if (s.format === 'path') return 'a path';
      if (s.format === 'region') return 'a region spec or a mask path';
      // a pattern's `title` says in words what it matches
      if (typeof s.pattern === 'string') return `a string ${s.title ? `${s.title}` : `matching /${s.pattern}/`}`;
      return (s.minLength as number) > 0 ? 'a non-empty string' : 'a string';
    }
    case 'array': {
      // a tuple (items as a list) of one type reads like an array of that type
      const items = (Array.isArray(s.items) ? s.items[0] : s.items) as Schema | undefined;
      return `an array${countPhrase(s.minItems as number | undefined, s.maxItems as number | undefined)}${items ? `, each ${expectedOf(items)}` : ''}`;
    }
    case 'number':
    case 'integer': {
      const kind = s.type === 'integer' ? 'an integer' : 'a number';
      const [lower, upper] = [s.minimum ?? s.exclusiveMinimum, s.maximum ?? s.exclusiveMaximum];
      const [lowerIn, upperIn] = [s.minimum !== undefined, s.maximum !== undefined];
      // two inclusive bounds read as a range ("an integer from 1 to 8"), not ">= 1 <= 8"; with an exclusive one as an
      // interval ("a number in (0, 1]", as sd img2img's --strength says it), not "> 0 <= 1"
      const range =
        lower !== undefined && upper !== undefined
          ? lowerIn && upperIn
            ? ` from ${lower} to ${upper}`
            : ` in ${lowerIn ? '[' : '('}${lower}, ${upper}${upperIn ? ']' : ')'}`
          : lower !== undefined
            ? ` ${lowerIn ? '>=' : '>'} ${lower}`
            : upper !== undefined
              ? ` ${upperIn ? '<=' : '<'} ${upper}`
              : '';
      return `${kind}${range}${s.multipleOf !== undefined ? `, a multiple of ${s.multipleOf}` : ''}`;
    }
    default:
      return 'a valid value';
  }
}

/** The kinds a tagged union accepts. */
export function tagKinds(s: Schema): string[] {
  const tag = (s.discriminator as { propertyName: string }).propertyName;
  return ((s.oneOf ?? s.anyOf) as Schema[]).map((b) => ((b.properties as Record<string, Schema>)[tag]?.const as string) ?? '?');
}

/** Edits between a and b, a swap of two neighbouring letters counting as one ("tokne" is one from "token"). */
export function editDistance(a: string, b: string): number {
  // (optimal string alignment: three rows of the Levenshtein table, the one before last for the swaps)
  let before = new Array<number>(b.length + 1).fill(0);
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = new Array<number>(b.length + 1);
    cur[0] = i;
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) cur[j] = Math.min(cur[j], before[j - 2] + 1);
    }
    before = prev;
    prev = cur;
  }
  return prev[b.length];
}

/** The known name closest to `name`, when it is close enough to be a typo. */
export function closest(name: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = k.toLowerCase() === name.toLowerCase() ? 0 : editDistance(name.toLowerCase(), k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return bestD <= Math.max(1, Math.floor(name.length / 3)) ? best : undefined;
}

/** The string constants a schema allows (an enum, or a union of consts). */
function choices(s: Schema): string[] {
  if (Array.isArray(s.enum)) return s.enum.filter((v): v is string => typeof v === 'string');
  const union = (s.anyOf ?? s.oneOf) as Schema[] | undefined;
  return union && !s.discriminator ? union.flatMap((b) => (typeof b.const === 'string' ? [b.const] : [])) : [];
}

/** " (did you mean "pearson"?)" for a string close to one of the allowed constants. */
function suggestion(s: Schema, v: unknown): string {
  const near = typeof v === 'string' ? closest(v, choices(s)) : undefined;
  return near ? ` (did you mean "${near}"?)` : '';
}

/** Path segments from a JSON pointer (/featureSets/0/kind). */
function segments(pointer: string): string[] {
  return pointer === '' ? [] : pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/**
 * "config.nsd.subject", "run.json: featureSets[1].kind", "body.ridge"; a source that already names a field of a
 * file continues its path: "nsd4.json: analyses[1].config" → "nsd4.json: analyses[1].config.featureSets[0].name".
 */
export function fieldLabel(source: string, segs: string[]): string {
  let p = '';
  for (const s of segs) p += /^\d+$/.test(s) ? `[${s}]` : /^[A-Za-z_$][\w$]*$/.test(s) ? `.${s}` : `[${q(s)}]`;
  if (/: \S/.test(source)) return `${source}${p}`;
  if (/[/\\]|\.json$/i.test(source)) return p ? `${source}: ${p.replace(/^\./, '')}` : source;
  return `${source}${p}`;
}

interface Item {
  segs: string[];
  text: string;
}

/**
 * The branch of a union that an object value is meant for: the only one of type object (`5 | {subject: 5, …}`,
 * `{…} | null`), or -1. Its errors at the object's own path (an unknown key, a required one) say more than the
 * union's "expected an integer or an object, got an object".
 */
function objectBranch(u: ErrorObject): number {
  const data: unknown = u.data;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return -1;
  const branches = (((u.parentSchema ?? {}) as Schema)[u.keyword] ?? []) as Schema[];
  const objects = branches.flatMap((b, i) => (b.type === 'object' ? [i] : []));
  return objects.length === 1 ? objects[0] : -1;
}

/** One message per problem, in the order ajv found them. */
export function problemsFrom(errors: readonly ErrorObject[], source: string): string[] {
  const unions = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf');
  // inside a union, an error belongs to one branch: those at the union's own path are summed up by the union's
  // message, but for the object branch an object value is meant for, which speaks for itself
  const inBranch = (e: ErrorObject, u: ErrorObject) => e !== u && e.schemaPath.startsWith(`${u.schemaPath}/`);
  const inObjectBranch = (e: ErrorObject, u: ErrorObject) => {
    const b = objectBranch(u);
    return b >= 0 && e.schemaPath.startsWith(`${u.schemaPath}/${b}/`);
  };
  const items: Item[] = [];
  const seen = new Set<string>();
  const add = (segs: string[], text: string) => {
    const key = `${segs.join('\u0000')}\u0001${text}`;
    if (!seen.has(key)) {
      seen.add(key);
      items.push({ segs, text });
    }
  };
  const valueDone = new Set<string>();
  for (const e of errors) {
    const at = segments(e.instancePath);
    const parent = (e.parentSchema ?? {}) as Schema;
    if (unions.some((u) => inBranch(e, u) && e.instancePath === u.instancePath && !inObjectBranch(e, u))) continue;
    switch (e.keyword) {
      case 'required': {
        const name = (e.params as { missingProperty: string }).missingProperty;
        const prop = ((parent.properties ?? {}) as Record<string, Schema>)[name] ?? {};
        add([...at, name], `required, expected ${expectedOf(prop)}`);
        break;
      }
      case 'additionalProperties': {
        const name = (e.params as { additionalProperty: string }).additionalProperty;
        const known = Object.keys((parent.properties ?? {}) as object);
        const near = closest(name, known);
        // (an object that takes no keys: a route's query string without parameters)
        add([...at, name], known.length === 0 ? 'unknown key: none are taken here' : `unknown key${near ? ` (did you mean "${near}"?)` : ''}; known: ${known.join(', ')}`);
        break;
      }
      case 'discriminator': {
        const p = e.params as { error: 'tag' | 'mapping'; tag: string; tagValue: unknown };
        const kinds = tagKinds(parent).map(q).join(', ');
        if (p.tagValue === undefined) add([...at, p.tag], `required, expected one of ${kinds}`);
        else {
          const near = typeof p.tagValue === 'string' ? closest(p.tagValue, tagKinds(parent)) : undefined;
          add([...at, p.tag], `expected one of ${kinds}, got ${describeValue(p.tagValue)}${near ? ` (did you mean "${near}"?)` : ''}`);
        }
        break;
      }
      case 'anyOf':
      case 'oneOf': {
        // a value that matched a branch's type and failed inside it is reported by those inner errors
        const deeper = errors.some((o) => inBranch(o, e) && (o.instancePath.startsWith(`${e.instancePath}/`) || inObjectBranch(o, e)));
        if (!deeper) add(at, `expected ${expectedOf(parent)}, got ${describeValue(e.data)}${suggestion(parent, e.data)}`);
        break;
      }
      default: {
        if (valueDone.has(e.instancePath)) break;
        valueDone.add(e.instancePath);
        add(at, `expected ${expectedOf(parent)}, got ${describeValue(e.data)}${suggestion(parent, e.data)}`);
      }
    }
  }
  return items.map((i) => `${fieldLabel(source, i.segs)}: ${i.text}`);
}
