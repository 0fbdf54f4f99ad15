/**
 * JSON as Python's json.dumps writes it: bare NaN, Infinity and -Infinity where a number goes (allow_nan, its
 * default). diffusers saves every DPMSolverMultistepScheduler config with `"lambda_min_clipped": -Infinity`, which
 * JSON.parse refuses. Those three tokens, outside strings, are read as the numbers they stand for; the rest is JSON.
 */

import { FormatError } from '../errors.js';
import { parseJson } from './json.js';

const NUMBERS: Record<string, number> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };

/** Where Python's NaN / Infinity / -Infinity stand in `text`, outside strings. */
function* pythonNumbers(text: string): Generator<{ at: number; token: string }> {
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      // skip the string, escapes included
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
      continue;
    }
    if (c !== 'N' && c !== 'I' && c !== '-') continue;
    const token = text.startsWith('-Infinity', i) ? '-Infinity' : text.startsWith('Infinity', i) ? 'Infinity' : text.startsWith('NaN', i) ? 'NaN' : null;
    if (!token) continue;
    yield { at: i, token };
    i += token.length - 1;
  }
}

/** Parses `text` as JSON that may hold Python's NaN / Infinity / -Infinity; throws JSON.parse's SyntaxError otherwise. */
export function parsePythonJson(text: string): unknown {
  // (a string no file holds, new at each call: the tokens are swapped for it, JSON.parse runs, and a reviver swaps
  // the numbers back)
  const MARK = `\u0000bl-py-${Math.random().toString(36).slice(2)}:`;
  let out = '';
  let from = 0;
  for (const { at, token } of pythonNumbers(text)) {
    out += text.slice(from, at) + JSON.stringify(MARK + token);
    from = at + token.length;
  }
  if (from === 0) return JSON.parse(text);
  out += text.slice(from);
  return JSON.parse(out, (_key, v: unknown) => (typeof v === 'string' && v.startsWith(MARK) && Object.hasOwn(NUMBERS, v.slice(MARK.length)) ? NUMBERS[v.slice(MARK.length)] : v));
}

/**
 * parsePythonJson of the file `path`'s text (a leading byte-order mark allowed), whose syntax error is a
 * FormatError naming `path:line:column` and what was expected there, as parseJson names a JSON file's.
 */
export function parsePythonJsonFile(text: string, path: string): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return parsePythonJson(body);
  } catch (e) {
    if (!(e instanceof SyntaxError)) throw e;
  }
  // the Python numbers as JSON ones of the same length ('-Infinity' as '0' and 8 spaces), so that the syntax error
  // is found where it is in the file
  let masked = '';
  let from = 0;
  for (const { at, token } of pythonNumbers(body)) {
    masked += body.slice(from, at) + '0'.padEnd(token.length);
    from = at + token.length;
  }
  parseJson(masked + body.slice(from), path);
  throw new FormatError(`${path}: not valid JSON`, { path });
}
