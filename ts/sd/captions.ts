/**
 * Captions checked once at the public boundary (Diffusion.tokenize and encodeText): an array of strings. A number
 * among them reached the tokenizer and threw "TypeError: text.normalize is not a function".
 */
import { InvalidArgumentError } from '../errors.js';

/** What arrived, for "got …": its type, with the value where it is short. */
function described(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${typeof v} ${String(v)}`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`;
  return typeof v === 'object' ? 'an object' : typeof v;
}

/**
 * `captions` as string[], or an InvalidArgumentError naming `what` and, for an element, its index. `expected` says
 * what else the caller takes (encodeText: token ids).
 */
export function checkCaptions(captions: unknown, what: string, expected = 'an array of captions (string[])'): string[] {
  if (typeof captions === 'string') throw new InvalidArgumentError(`${what}: expected ${expected}, got a string: wrap one caption in an array, [caption]`);
  if (!Array.isArray(captions)) throw new InvalidArgumentError(`${what}: expected ${expected}, got ${described(captions)}`);
  captions.forEach((c: unknown, i) => {
    if (typeof c !== 'string') throw new InvalidArgumentError(`${what}: captions[${i}] is ${described(c)}, expected a string`);
  });
  return captions as string[];
}
