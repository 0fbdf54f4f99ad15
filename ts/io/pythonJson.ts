/**
 * JSON as Python's json.dumps writes it: bare NaN, Infinity and -Infinity where a number goes (allow_nan, its
 * default). diffusers saves every DPMSolverMultistepScheduler config with `"lambda_min_clipped": -Infinity`, which
 * JSON.parse refuses. Those three tokens, outside strings, are read as the numbers they stand for; the rest is JSON.
 */

const NUMBERS: Record<string, number> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };

/** Parses `text` as JSON that may hold Python's NaN / Infinity / -Infinity; throws JSON.parse's SyntaxError otherwise. */
export function parsePythonJson(text: string): unknown {
  // (a string no file holds, new at each call: the tokens are swapped for it, JSON.parse runs, and a reviver swaps
  // the numbers back)
  const MARK = `\u0000bl-py-${Math.random().toString(36).slice(2)}:`;
  let out = '';
  let from = 0;
  let replaced = false;
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
    out += text.slice(from, i) + JSON.stringify(MARK + token);
    i += token.length - 1;
    from = i + 1;
    replaced = true;
  }
  if (!replaced) return JSON.parse(text);
  out += text.slice(from);
  return JSON.parse(out, (_key, v: unknown) => (typeof v === 'string' && v.startsWith(MARK) && Object.hasOwn(NUMBERS, v.slice(MARK.length)) ? NUMBERS[v.slice(MARK.length)] : v));
}
