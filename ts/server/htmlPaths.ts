/**
 * A served HTML report without the server's paths, as the run-file route serves .json/.csv/.txt files: paths under
 * the root root-relative, any other absolute path (an NSD root or a model folder a CLI run used, named in a
 * warning) and any relative path that climbs out of the root (the reconstruct report names its model and NSD folders
 * relative to the run folder: '../../../opt/models/sd') replaced by '<server path>'.
 *
 * The page is rewritten by context, so that the markup and its scripts still work: text, comments and attribute
 * values get the full rewrite with the marker escaped ('&lt;server path&gt;': a bare '<server path>' would open an
 * element); the string literals of a JSON data block (<script type="application/json">) get it inside each literal,
 * re-encoded with '<' as \u003c; data: URLs (content, not paths) are left alone in both; inline scripts,
 * event-handler and style attributes and <style> get the root-relative rewrite only (an outside path's pattern also
 * matches a regular expression literal); other data blocks (the encoding report's base64 volumes) are left alone.
 */
import { dirname, resolve } from 'node:path';

import { PATH_CHAR, PATH_START, SERVER_PATH } from './rootPaths.js';

export interface PathHiding {
  /** Root-relative, and other absolute paths replaced by SERVER_PATH (RootFolder.hidden). */
  hidden(text: string): string;
  /** Root-relative only (RootFolder.shown). */
  shown(text: string): string;
  /** Whether the absolute path `abs` is inside the root (RootFolder.holds). */
  holds(abs: string): boolean;
}

const ESCAPED_MARKER = '&lt;server path&gt;';

// a comment; a doctype or CDATA; a script or style element with its raw text; any other start or end tag (quoted
// attribute values may hold '>')
const TOKEN = /<!--[\s\S]*?(?:-->|$)|<![^>]*>?|<(script|style)\b((?:"[^"]*"|'[^']*'|[^'">])*)>([\s\S]*?)(<\/\1(?=[\s/>])[^>]*>|$)|<\/?[a-zA-Z][^\s/>]*(?:"[^"]*"|'[^']*'|[^'">])*>?/gi;

// an attribute with a value: its name, '=', and the value double-quoted, single-quoted or bare
const ATTRIBUTE = /(\s[^\s"'>/=]+)(\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+))/g;

// a relative path that starts by climbing ('../'), where a path can start (after '&quot;' too, as an absolute one)
const CLIMBING_PATH = new RegExp(`${PATH_START}(?:\\.\\.\\/)+(?:${PATH_CHAR}|\\/)*`, 'gu');

// a data: URL (an embedded image)
const DATA_URL = /^\s*data:/i;

// a JSON string literal
const JSON_STRING = /"(?:[^"\\\n]|\\.)*"/g;

/** `html` (a report at `file`, absolute) as the client is shown it. */
export function hiddenHtml(html: string, file: string, paths: PathHiding): string {
  const from = dirname(file);
  // climbing paths that leave the root hidden first (the full rewrite leaves relative paths alone), then the rest
  // (a text without '/' names no path: most of a page's pieces, left as they are without a regular expression run)
  const full = (text: string) => (text.includes('/') ? paths.hidden(text.replace(CLIMBING_PATH, (p) => (paths.holds(resolve(from, p)) ? p : SERVER_PATH))) : text);
  const shown = (text: string) => (text.includes('/') ? paths.shown(text) : text);
  const inMarkup = (text: string) => full(text).split(SERVER_PATH).join(ESCAPED_MARKER);
  const inJson = (block: string) =>
    block.replace(JSON_STRING, (literal) => {
      let value: unknown;
      try {
        value = JSON.parse(literal);
      } catch {
        return literal;
      }
      if (typeof value !== 'string' || DATA_URL.test(value)) return literal;
      const v = full(value);
      return v === value ? literal : JSON.stringify(v).replace(/</g, '\\u003c');
    });

  const tag = (t: string) =>
    t.replace(ATTRIBUTE, (all, name: string, eq: string, dq?: string, sq?: string, bare?: string) => {
      const value = dq ?? sq ?? bare ?? '';
      // (a data: URL is content, not a path: a JPEG's base64 starts '/9j/', which reads as one after the comma)
      if (DATA_URL.test(value)) return all;
      const code = /^\s*(?:on|style$)/i.test(name);
      const v = code ? shown(value) : inMarkup(value);
      if (v === value) return all;
      if (dq !== undefined) return `${name}${eq}"${v}"`;
      if (sq !== undefined) return `${name}${eq}'${v}'`;
      return `${name}${eq}"${v.replace(/"/g, '&quot;')}"`;
    });

  let out = '';
  let last = 0;
  for (const m of html.matchAll(TOKEN)) {
    out += inMarkup(html.slice(last, m.index));
    last = m.index + m[0].length;
    const [all, raw, attrs, body, end] = m;
    if (all.startsWith('<!--')) out += inMarkup(all);
    else if (all.startsWith('<!')) out += all;
    else if (raw === undefined) out += tag(all);
    else {
      const type = /\stype\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+))/i.exec(attrs ?? '');
      const kind = (type?.[1] ?? type?.[2] ?? type?.[3] ?? '').trim().toLowerCase();
      const content =
        raw.toLowerCase() === 'style' || kind === '' || /javascript|ecmascript|^module$/.test(kind) ? shown(body)
        : /(?:^|[/+])json$/.test(kind) ? inJson(body)
        : body; // a data block of another kind (base64 volumes): as it is
      out += `${tag(`<${raw}${attrs}>`)}${content}${end}`;
    }
  }
  return out + inMarkup(html.slice(last));
}
