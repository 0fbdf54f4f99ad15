/**
 * The service's file system boundary: every path a client names (in a config, a model to load, a file of a run
 * folder) must resolve inside one root folder. Relative paths are taken from the root; a `..` segment is refused
 * outright (even one that would land inside); and the real path of the deepest existing ancestor must lie inside
 * the root's real path, so a symbolic link cannot lead out of it either.
 */
import { realpathSync } from 'node:fs';
import { lstat, realpath } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';

import { BrainlatentError } from '../errors.js';

/** A path that would leave the root. The message names the field, never a file's contents. */
export class PathOutsideRootError extends BrainlatentError {
  readonly field: string;
  constructor(field: string, reason: string) {
    super(`${field}: ${reason}`, 'PathOutsideRoot');
    this.field = field;
  }
}

const inside = (root: string, p: string) => p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);

/**
 * The real path of `p`, or of its deepest existing ancestor joined with the rest (for outputs not yet written); null
 * when a part of it is a symbolic link whose target does not exist (where it leads is not looked at: refused as a link
 * leading out whether or not its target exists, so no answer tells whether a path outside the root exists, and an
 * output is never written through it).
 */
async function realpathOfExisting(p: string): Promise<string | null> {
  let head = p;
  const tail: string[] = [];
  for (;;) {
    try {
      const real = await realpath(head);
      return tail.length ? resolve(real, ...tail.reverse()) : real;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
      if (await lstat(head).then((s) => s.isSymbolicLink(), () => false)) return null;
      const up = dirname(head);
      if (up === head) return p;
      tail.push(head.slice(up.length + (up.endsWith(sep) ? 0 : 1)));
      head = up;
    }
  }
}

// where a path also starts: after a JSON or C string's escaped newline, tab or carriage return ('a\n/srv/x' in a
// .txt or .csv that holds JSON, or in a .json file that does not parse), whose letter would otherwise continue a name
const AFTER_ESCAPE = String.raw`(?<=\\[ntr])`;

// a root's path where it starts a path (not inside a longer one), and, alone, where it ends one ('root.' ends a sentence)
const NOT_AFTER_PATH = String.raw`(?:(?<![\w.~/-])|${AFTER_ESCAPE})`;
const NOT_BEFORE_NAME = String.raw`(?![\w~/-]|\.[\w.~-])`;
const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * `text` with every absolute path under one of `roots` made relative to it ("/data/runs/s1/x.npy" → "runs/s1/x.npy",
 * the root itself → "."): what a client is told names files as the API does, not where the server keeps them.
 */
export function rootRelative(text: string, roots: readonly string[]): string {
  let out = text;
  for (const [under, itself] of rootPatterns(roots)) {
    out = out.replace(under, '');
    if (itself) out = out.replace(itself, '.');
  }
  return out;
}

/** Per root, the longest first (a root inside another is replaced as itself): a path under it, and the root alone. */
const patterns = new Map<string, [RegExp, RegExp | null][]>();
function rootPatterns(roots: readonly string[]): [RegExp, RegExp | null][] {
  const key = roots.join('\0');
  let p = patterns.get(key);
  if (!p) {
    p = [...new Set(roots)]
      .sort((a, b) => b.length - a.length)
      .map((root) => {
        const r = root.endsWith(sep) && root.length > 1 ? root.slice(0, -1) : root;
        const head = r === sep ? '' : escapeRegExp(r);
        return [new RegExp(`${NOT_AFTER_PATH}${head}/(?=[^/\\s])`, 'g'), head ? new RegExp(`${NOT_AFTER_PATH}${head}${NOT_BEFORE_NAME}`, 'g') : null];
      });
    // (a service has one root, as given and as its real path; the bound only keeps a caller with many from growing it)
    if (patterns.size >= 64) patterns.clear();
    patterns.set(key, p);
  }
  return p;
}

/** What a served text file shows in place of a server path outside the root (the ONNX Runtime library's, …). */
export const SERVER_PATH = '<server path>';

/**
 * Where a path can start: not after a character that continues a name, a relative path or a URL ('a/b', '1/2',
 * './x', '~/x', 'a-/x', '%2F/x', '@/alias', a glob's '*', '#/route', '?/q', '(a)/b', '[::1]/x', '${dir}/x', a URL's
 * '//host'); so after anything else: a quote of any kind (" ' ` and their HTML escapes '&quot;' '&#39;', which end
 * in ';'), a space, '>' (text after a tag), '|', '=', ':', ',', an opening bracket, or the start of the text.
 */
export const PATH_START = String.raw`(?:(?<![\p{L}\p{N}\p{M}_.~%+@*#?/\-)\]}])|${AFTER_ESCAPE})`;
/**
 * A character of a path's segment: not a space, a quote, a bracket, a separator, and not the start of an HTML
 * character reference ('/x/y&quot;' ends before '&quot;'). For a regular expression with the 'u' flag.
 */
export const PATH_CHAR = String.raw`(?:(?!&(?:#\d+|#[xX][\da-fA-F]+|[a-zA-Z]\w*);)[^\s"'\x60<>\\/:,;|()[\]{}])`;

// an absolute path of two or more segments where a path can start, or a file URL's ('file:///etc/x'); not
// '</div>' (one segment), not 'a/b', not a URL's 'https://host/a/b'
const OUTSIDE_PATH = new RegExp(`(?:${PATH_START}|(?<=\\bfile:\\/\\/))\\/${PATH_CHAR}+(?:\\/${PATH_CHAR}*)+`, 'gu');

/** `text` with the server's paths under `roots` made root-relative, and every other absolute path replaced by SERVER_PATH. */
export function hiddenPaths(text: string, roots: readonly string[]): string {
  return rootRelative(text, roots).replace(OUTSIDE_PATH, SERVER_PATH);
}

// a JSON string literal (outside them a JSON text has no quote, so a scan from its start finds each one whole), and
// when it is a key with a string value, that value too
const JSON_MEMBER = /("(?:[^"\\\n]|\\.)*")(?:(\s*:\s*)("(?:[^"\\\n]|\\.)*"))?/g;

/** What a served .json file shows in place of a host's name (the machine that computed a stage). */
export const SERVER_HOST = '<server host>';

/**
 * The keys whose string value is a machine's name: runVersions.ts' records (run.json's `versions`, its
 * `stageVersions`, a stage marker's `ranWith` and `ranWithParts`, a shared feature entry's entry.json). A host's
 * name has no form to find it by, as a path has, so it is found by the key that holds it.
 */
const HOST_KEYS = new Set(['hostname']);

/**
 * A JSON text (a served .json file) with its string values and keys rewritten by `hide` (paths hidden: hiddenPaths,
 * RootFolder.hidden), each literal decoded first: a path after an escape ('a\n/opt/x', '\/opt\/x', '\u002fopt/x')
 * is found as the value holds it, and a rewritten literal is encoded again, the rest of the text (its layout, its
 * numbers) left as it is. The string value of a `hostname` key, wherever it is nested, is replaced by SERVER_HOST
 * (a service does not tell its clients its machines' names). A text that is not JSON is given to `hide` whole.
 */
export function hiddenInJson(text: string, hide: (text: string) => string): string {
  try {
    JSON.parse(text);
  } catch {
    return hide(text);
  }
  const rewritten = (literal: string) => {
    const value = JSON.parse(literal) as string;
    const v = hide(value);
    return v === value ? literal : JSON.stringify(v);
  };
  return text.replace(JSON_MEMBER, (_all, first: string, colon?: string, value?: string) => {
    if (colon === undefined || value === undefined) return rewritten(first);
    const host = HOST_KEYS.has(JSON.parse(first) as string);
    return `${rewritten(first)}${colon}${host ? JSON.stringify(SERVER_HOST) : rewritten(value)}`;
  });
}

/** hiddenPaths in a JSON text's string values (hiddenInJson). */
export function hiddenJsonPaths(text: string, roots: readonly string[]): string {
  return hiddenInJson(text, (t) => hiddenPaths(t, roots));
}

export class RootFolder {
  /** The root's real path (symbolic links resolved once, at start). */
  readonly path: string;
  /** The root as given, made absolute (may differ from `path` through a link, e.g. /tmp on macOS). */
  private readonly given: string;

  constructor(root: string) {
    this.given = resolve(root);
    this.path = realpathSync(this.given);
  }

  /** `text` (an error's message) with the server's paths under the root shown relative to it. */
  shown(text: string): string {
    return rootRelative(text, [this.path, this.given]);
  }

  /** `text` (a served run file's) with paths under the root relative to it and any other server path hidden. */
  hidden(text: string): string {
    return hiddenPaths(text, [this.path, this.given]);
  }


  /** Whether the absolute path `abs` is the root or inside it (as written: symbolic links are not followed). */
  holds(abs: string): boolean {
    const p = resolve(abs);
    return inside(this.path, p) || inside(this.given, p);
  }

  /**
   * `p` (relative to the root, or absolute inside it) as an absolute real path inside the root; throws
   * PathOutsideRootError naming `field` otherwise. The target need not exist yet (an output folder).
   */
  async resolve(p: string, field: string): Promise<string> {
    if (typeof p !== 'string' || p.length === 0) throw new PathOutsideRootError(field, 'expected a path');
    if (p.includes('\0')) throw new PathOutsideRootError(field, 'a path cannot contain a NUL character');
    if (p.split(/[\\/]+/).includes('..')) throw new PathOutsideRootError(field, `'..' is not allowed in paths (paths are relative to the service's root)`);
    const abs = isAbsolute(p) ? resolve(p) : resolve(this.path, p);
    if (!inside(this.path, abs)) throw new PathOutsideRootError(field, 'the path is outside the service\'s root folder');
    const real = await realpathOfExisting(abs);
    if (real === null || !inside(this.path, real)) throw new PathOutsideRootError(field, 'the path leads outside the service\'s root folder through a symbolic link');
    return real;
  }

  /** `abs` relative to the root, for showing to clients ("runs/subj01"). */
  relative(abs: string): string {
    return relative(this.path, abs) || '.';
  }
}

/**
 * The file `rel` inside `folder` (a run folder), for the file routes: no `..`, no absolute paths, and its real
 * path inside the folder's real path. Returns null when it would leave the folder or does not exist.
 */
export async function fileInside(folder: string, rel: string): Promise<string | null> {
  if (rel.includes('\0') || isAbsolute(rel) || rel.split(/[\\/]+/).includes('..')) return null;
  let realFolder: string;
  let real: string;
  try {
    realFolder = await realpath(folder);
    real = await realpath(resolve(realFolder, rel));
  } catch {
    return null;
  }
  return inside(realFolder, real) ? real : null;
}
