/**
 * The demo world's words: every word the scene captions use, a CLIP-style BPE vocabulary in which each
 * is one token, and a fixed embedding per word (content words get seeded random unit vectors, function
 * words zero), which is what the demo text encoder looks up.
 */
import { wordVocabulary, type WordVocabulary } from '../sd/clipTokenizer.js';
import { rng } from '../sd/fixture.js';
import { BACKGROUNDS, COLOURS, POSITIONS, SHAPES, SIZES, sceneCaption } from '../synth/scenes.js';

export const FUNCTION_WORDS = ['a', 'an', 'at', 'the', 'in', 'on', 'and', 'against', 'picture', 'of'];

/** Content words of the scene captions (shapes, colours, sizes, position and background words). */
export function contentWords(): string[] {
  const words = new Set<string>([...SHAPES, ...Object.keys(COLOURS), ...SIZES]);
  for (const p of POSITIONS) for (const w of p.split(' ')) words.add(w);
  for (const b of BACKGROUNDS) {
    const caption = sceneCaption([], b);
    for (const w of caption.split(/\s+/)) if (w && !FUNCTION_WORDS.includes(w)) words.add(w);
  }
  return [...words].sort();
}

export type DemoVocabulary = WordVocabulary;

/** vocab.json / merges.txt: 256 byte symbols, the same with </w>, one merged token per word, specials. */
export function demoVocabulary(): DemoVocabulary {
  return wordVocabulary([...contentWords(), ...FUNCTION_WORDS]);
}

/** The embedding table [size, dim]: content words seeded random unit vectors, everything else 0. */
export function wordEmbeddings(v: DemoVocabulary, dim: number, seed: number): Float32Array {
  const table = new Float32Array(v.size * dim);
  const content = new Set(contentWords());
  const r = rng(seed);
  for (const [id, w] of [...v.words.entries()].sort((a, b) => a[0] - b[0])) {
    if (!content.has(w)) continue;
    const row = table.subarray(id * dim, (id + 1) * dim);
    let n = 0;
    for (let k = 0; k < dim; k++) {
      // sum of uniforms: close enough to Gaussian for near-orthogonal directions
      row[k] = r() + r() + r();
      n += row[k] * row[k];
    }
    n = Math.sqrt(n);
    for (let k = 0; k < dim; k++) row[k] /= n;
  }
  return table;
}
