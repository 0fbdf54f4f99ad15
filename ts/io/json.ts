/**
 * JSON files the user hands us (configs, scheduler and tokenizer files, manifests): a missing file is a
 * MissingFileError, a syntax error a FormatError with the file, line and column, and a document that is not
 * what the caller needs (e.g. `null` where an object is expected) a FormatError naming the file.
 */
import { createRequire } from 'node:module';
import type { ParseError } from 'jsonc-parser';
import { FormatError, LimitError } from '../errors.js';
import { fileOpenError } from './byteStream.js';
import { readCappedFile } from './readWhole.js';

// jsonc-parser only explains a syntax error: loaded then, not at every command's start-up (~20 ms).
const requireJsonc = () => createRequire(import.meta.url)('jsonc-parser') as typeof import('jsonc-parser');

/** Largest JSON file read (a CLIP vocab.json is ~1 MB); raise with BRAINLATENT_MAX_JSON_BYTES. */
export function maxJsonBytes(): number {
  const env = Number(process.env.BRAINLATENT_MAX_JSON_BYTES);
  return Number.isFinite(env) && env > 0 ? env : 256 * 2 ** 20;
}

/** Parses JSON `text` from `path`; a syntax error names `path:line:column` and what was wrong there. */
export function parseJson(text: string, path: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    const where = jsonSyntaxError(text);
    // The file's own bytes are never quoted: a service may be asked to read any file, and its errors go to the client.
    if (!where) throw new FormatError(`${path}: not valid JSON`, { path });
    if (where.tooDeep) throw new FormatError(`${path}: not valid JSON (nested too deeply to say where)`, { path });
    throw new FormatError(`${path}:${where.line}:${where.column}: not valid JSON: ${where.what}${where.atEnd ? ' at the end of the file' : ''}`, { path, field: `line ${where.line}` });
  }
  // (JSON.parse reads 1e999 as Infinity, which a later check would report as "Infinity", never written there)
  const beyond = numbersBeyondFloat64(text, value, 1);
  if (beyond.count > 0 && beyond.found.length === 0)
    throw new FormatError(`${path}: holds a number beyond float64's range (such as 1e999), nested too deeply to say where; finite numbers are required`, { path });
  if (beyond.count > 0) {
    const [first] = beyond.found;
    const { line, column } = lineColumn(text, first.offset);
    const field = first.path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`)).join('').replace(/^\./, '');
    throw new FormatError(
      `${path}:${line}:${column}: ${field ? `${field}: ` : ''}${first.text.length > 40 ? `${first.text.slice(0, 40)}…` : first.text} is beyond float64's range (±1.8e308)` +
        `${beyond.count > 1 ? ` (and ${beyond.count - 1} more such number${beyond.count > 2 ? 's' : ''})` : ''}; finite numbers are required`,
      { path, field: field || `line ${line}` },
    );
  }
  return value;
}

/** Where `text` stops being JSON and what was expected there (never quoting it), or null when it parses. */
export function jsonSyntaxError(text: string): { line: number; column: number; what: string; atEnd: boolean; tooDeep?: true } | null {
  const jsonc = requireJsonc();
  const errors: ParseError[] = [];
  try {
    jsonc.parse(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
  } catch (e) {
    // (jsonc-parser recurses per nesting level: ~10,000 levels overflow the stack)
    if (e instanceof RangeError) return { line: 0, column: 0, what: 'nested too deeply to say where', atEnd: false, tooDeep: true };
    throw e;
  }
  const first = errors[0];
  if (!first) return null;
  return { ...lineColumn(text, first.offset), what: describe(jsonc.printParseErrorCode(first.error)), atEnd: first.offset >= text.length };
}

/** A JSON file's bytes, at most maxJsonBytes of them (a pipe or /dev/zero is read up to the limit, not without end). */
const readJsonBytes = (path: string): Promise<Buffer> => readCappedFile(path, maxJsonBytes(), 'JSON files', 'BRAINLATENT_MAX_JSON_BYTES');

/**
 * Reads and parses a JSON file (UTF-8, a leading byte-order mark allowed). `read` reads its bytes (a model file
 * under a service's roots: readModelFile, which reads the very file it checked).
 */
export async function readJsonFile(path: string, read: (path: string) => Promise<Buffer> = readJsonBytes): Promise<unknown> {
  let bytes: Buffer;
  try {
    bytes = await read(path);
  } catch (e) {
    throw fileOpenError(path, e);
  }
  if (bytes.length > maxJsonBytes()) {
    throw new LimitError(
      `${path}: ${bytes.length} bytes is more than the ${maxJsonBytes()}-byte limit for JSON files (raise it with BRAINLATENT_MAX_JSON_BYTES)`,
      { path },
    );
  }
  let text = bytes.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return parseJson(text, path);
}

/** A number in JSON text beyond float64's range (1e999), which JSON.parse reads as ±Infinity: where, and as written. */
export interface NumberBeyondFloat64 {
  /** Keys and indices from the document's root. */
  path: (string | number)[];
  text: string;
  /** Where it starts in the text (UTF-16 offset). */
  offset: number;
}

/**
 * Whether a parsed JSON value holds ±Infinity anywhere (JSON.parse's reading of 1e999; JSON has no NaN). A stack,
 * not recursion (a document can nest deep), and numbers are tested where they are met, never pushed. Measured on
 * this 2-core machine: 30–40 ms for the 8 million numbers of a 150 MB predict body (0.47 s on the first call, before
 * the JIT; its JSON.parse took 1.4 s), 0.02 ms for a 256 KiB one (a regex pre-scan of the text took 5 ms there).
 */
function countInfinities(value: unknown): number {
  if (typeof value === 'number') return value - value !== 0 ? 1 : 0;
  let n = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    const items = Array.isArray(v) ? v : v !== null && typeof v === 'object' ? Object.values(v) : [];
    for (let i = 0; i < items.length; i++) {
      const x: unknown = items[i];
      if (typeof x === 'number') {
        if (x - x !== 0) n++;
      } else if (x !== null && typeof x === 'object') stack.push(x);
    }
  }
  return n;
}

/**
 * The numbers of JSON `text` (which JSON.parse read as `value`) beyond float64's range, which JSON.parse made
 * ±Infinity: a user wrote 1e999, never Infinity, so an error names the number as written. The first `max` (with the
 * count of all). The text is read again only when the value holds an Infinity.
 */
export function numbersBeyondFloat64(text: string, value: unknown, max = 10): { found: NumberBeyondFloat64[]; count: number } {
  const infinities = countInfinities(value);
  if (infinities === 0) return { found: [], count: 0 };
  const found: NumberBeyondFloat64[] = [];
  let count = 0;
  try {
    requireJsonc().visit(text, {
      onLiteralValue: (_v: unknown, offset: number, length: number, _line: number, _column: number, path: () => (string | number)[]) => {
        const literal = text.slice(offset, offset + length);
        if (!/^-?\d/.test(literal) || Number.isFinite(Number(literal))) return;
        if (++count <= max) found.push({ path: path(), text: literal, offset });
      },
    });
  } catch (e) {
    // (jsonc-parser recurses per nesting level: a document nested ~10,000 deep has its count, not their places)
    if (e instanceof RangeError) return { found: [], count: infinities };
    throw e;
  }
  return { found, count };
}

/** Reads a JSON file that must hold an object (not null, an array or a scalar). */
export async function readJsonObject(path: string, what = 'a JSON object', read?: (path: string) => Promise<Buffer>): Promise<Record<string, unknown>> {
  const v = await readJsonFile(path, read);
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new FormatError(`${path}: expected ${what}, found ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}`, { path });
  }
  return v as Record<string, unknown>;
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

function describe(code: string): string {
  // 'PropertyNameExpected' → 'property name expected'
  return code.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
}
