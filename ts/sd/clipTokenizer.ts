/**
 * The CLIP BPE tokenizer of SD 1.x, from a model folder's tokenizer/vocab.json and merges.txt
 * (SD exports ship no tokenizer.json). Matches transformers' CLIPTokenizer without ftfy:
 * NFC, whitespace collapsed, lower case, CLIP's split pattern, byte-level symbols, BPE with
 * "</w>" word ends, then <|startoftext|> … <|endoftext|>, truncated and padded to 77.
 */
import { join } from 'node:path';

import { FormatError, InvalidArgumentError } from '../errors.js';
import { fileOpenError } from '../io/byteStream.js';
import { readJsonObject } from '../io/json.js';
import { describeNumber } from '../ridge/alphas.js';
import { checkInteger } from '../ridge/options.js';
import { checkModelFile, modelPathExists, readModelFile } from './modelRoots.js';

const PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;

/** GPT-2/CLIP's reversible map from bytes to printable unicode characters. */
export function bytesToUnicode(): Map<number, string> {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const map = new Map<number, string>();
  bs.forEach((b, i) => map.set(b, String.fromCodePoint(cs[i])));
  return map;
}

/**
 * The longest context taken. SD 1.x's text encoder takes 77 tokens (its position embeddings); 16384 is far past any
 * CLIP's and keeps a row's allocation bounded (each encode() allocates maxLength ids).
 */
export const MAX_CLIP_LENGTH = 16384;
/** The shortest context: <|startoftext|> and <|endoftext|> (a shorter row failed at encode() with a RangeError). */
export const MIN_CLIP_LENGTH = 2;

/** ClipTokenizer's options: the context length and special tokens (CLIP's by default). */
export interface ClipTokenizerOptions {
  /** Tokens per row, BOS and EOS included (default 77): an integer in 2..16384. */
  maxLength?: number;
  bosToken?: string;
  eosToken?: string;
  padToken?: string;
}

export class ClipTokenizer {
  readonly maxLength: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  private readonly ranks = new Map<string, number>();
  private readonly byteMap = bytesToUnicode();
  private readonly cache = new Map<string, string[]>();

  constructor(
    private readonly vocab: Record<string, number>,
    merges: string[],
    options: ClipTokenizerOptions = {},
  ) {
    this.maxLength = options.maxLength === undefined ? 77 : checkInteger(options.maxLength, 'maxLength', 'ClipTokenizer', MIN_CLIP_LENGTH, MAX_CLIP_LENGTH);
    const id = (tok: string): number => {
      const v = vocab[tok];
      if (v === undefined) throw new FormatError(`CLIP vocabulary has no token '${tok}'`);
      return v;
    };
    // (only a missing token takes CLIP's: a null one is refused as any other wrong value, as maxLength's is)
    const token = (name: 'bosToken' | 'eosToken' | 'padToken', fallback: string): string => {
      const v: unknown = options[name];
      if (v === undefined) return fallback;
      if (typeof v !== 'string' || v === '') throw new InvalidArgumentError(`ClipTokenizer ${name}: expected a token (a non-empty string), got ${describeNumber(v)}`);
      return v;
    };
    this.bosId = id(token('bosToken', '<|startoftext|>'));
    this.eosId = id(token('eosToken', '<|endoftext|>'));
    this.padId = id(token('padToken', '<|endoftext|>'));
    merges.forEach((m, i) => this.ranks.set(m, i));
  }

  /** Reads tokenizer/vocab.json, merges.txt and (if present) tokenizer_config.json of a model folder. */
  static async fromFolder(modelDir: string): Promise<ClipTokenizer> {
    const dir = join(modelDir, 'tokenizer');
    // (under a service's model roots, each file inside them, links followed, and read from the very file checked)
    const read = (p: string) => readModelFile(p, 'the file');
    for (const f of ['vocab.json', 'merges.txt', 'tokenizer_config.json']) await checkModelFile(join(dir, f), 'the file');
    // A missing or malformed file is a typed error naming it (file:line:column for JSON).
    const vocab = (await readJsonObject(join(dir, 'vocab.json'), 'a CLIP vocabulary (token → id)', read)) as Record<string, number>;
    let mergesText: string;
    try {
      mergesText = (await read(join(dir, 'merges.txt'))).toString('utf8');
    } catch (e) {
      throw fileOpenError(join(dir, 'merges.txt'), e);
    }
    const merges = mergesText
      .split('\n')
      .filter((l, i) => !(i === 0 && l.startsWith('#version')) && l.trim().length > 0);
    const options: ClipTokenizerOptions = {};
    // No tokenizer_config.json: SD 1.x defaults; one that is present must parse.
    if (await modelPathExists(join(dir, 'tokenizer_config.json'), 'the file')) {
      const cfg = await readJsonObject(join(dir, 'tokenizer_config.json'), 'a tokenizer config object', read);
      const tokenName = (v: unknown): string | undefined =>
        typeof v === 'string' ? v : v && typeof v === 'object' && 'content' in v ? String(v.content) : undefined;
      options.padToken = tokenName(cfg.pad_token);
      options.bosToken = tokenName(cfg.bos_token);
      options.eosToken = tokenName(cfg.eos_token);
      // (transformers writes about 1e30 for "no limit": taken as unset, 77; a value below that is checked here so
      // that the error names the file and the field)
      const m = cfg.model_max_length;
      if (typeof m === 'number' && m < 1e6) {
        if (!Number.isInteger(m) || m < MIN_CLIP_LENGTH || m > MAX_CLIP_LENGTH) {
          const path = join(dir, 'tokenizer_config.json');
          throw new FormatError(`${path}: model_max_length: expected an integer in ${MIN_CLIP_LENGTH}..${MAX_CLIP_LENGTH} (tokens per row, <|startoftext|> and <|endoftext|> included), got ${m}`, {
            path,
            field: 'model_max_length',
          });
        }
        options.maxLength = m;
      }
    }
    return new ClipTokenizer(vocab, merges, options);
  }

  /** BPE token strings of `text`, without the start/end tokens. */
  tokenize(text: string): string[] {
    const clean = text.normalize('NFC').replace(/\s+/g, ' ').trim().toLowerCase();
    const out: string[] = [];
    for (const m of clean.matchAll(PATTERN)) {
      // the special tokens typed in a text are themselves, as transformers' CLIPTokenizer seeds its BPE cache with
      // them (BPE over their bytes made byte tokens, with a "</w>" end)
      if (m[0] === '<|startoftext|>' || m[0] === '<|endoftext|>') {
        out.push(m[0]);
        continue;
      }
      const word = [...new TextEncoder().encode(m[0])].map((b) => this.byteMap.get(b) as string).join('');
      out.push(...this.bpe(word));
    }
    return out;
  }

  /** Token ids: [bos, …, eos], truncated to maxLength with eos kept, padded with the pad id. */
  encode(text: string): Int32Array {
    const unk = this.eosId;
    const ids = this.tokenize(text).map((t) => this.vocab[t] ?? unk);
    const body = ids.slice(0, this.maxLength - 2);
    const row = new Int32Array(this.maxLength).fill(this.padId);
    row[0] = this.bosId;
    row.set(body, 1);
    row[body.length + 1] = this.eosId;
    return row;
  }

  /** Rows of encode(), one per text: [texts.length, maxLength]. */
  encodeBatch(texts: string[]): Int32Array {
    const out = new Int32Array(texts.length * this.maxLength);
    texts.forEach((t, i) => out.set(this.encode(t), i * this.maxLength));
    return out;
  }

  private bpe(token: string): string[] {
    const cached = this.cache.get(token);
    if (cached) return cached;
    const chars = [...token];
    let word = [...chars.slice(0, -1), `${chars[chars.length - 1]}</w>`];
    while (word.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const first = word[best];
      const second = word[best + 1];
      const merged: string[] = [];
      for (let i = 0; i < word.length; ) {
        if (i < word.length - 1 && word[i] === first && word[i + 1] === second) {
          merged.push(first + second);
          i += 2;
        } else {
          merged.push(word[i]);
          i += 1;
        }
      }
      word = merged;
    }
    this.cache.set(token, word);
    return word;
  }
}

export interface WordVocabulary {
  vocab: Record<string, number>;
  merges: string[];
  /** Token id of each word's single token → the word. */
  words: Map<number, string>;
  size: number;
}

/**
 * A CLIP-style vocab.json / merges.txt in which each given word is one token: the 256 byte symbols,
 * the same with </w>, the left-to-right merges that build each word, then the two specials. For
 * model folders written from nothing (test fixtures, the demo world).
 */
export function wordVocabulary(wordList: readonly string[]): WordVocabulary {
  const byteChars = [...bytesToUnicode().values()];
  const vocab: Record<string, number> = {};
  const words = new Map<number, string>();
  let id = 0;
  for (const c of byteChars) vocab[c] = id++;
  for (const c of byteChars) vocab[`${c}</w>`] = id++;
  const merges: string[] = [];
  for (const w of wordList) {
    const chars = [...w];
    let left = chars.length === 1 ? `${chars[0]}</w>` : chars[0];
    for (let i = 1; i < chars.length; i++) {
      const right = i === chars.length - 1 ? `${chars[i]}</w>` : chars[i];
      const merged = left + right;
      if (!(merged in vocab)) {
        merges.push(`${left} ${right}`);
        vocab[merged] = id++;
      }
      left = merged;
    }
    words.set(vocab[left], w);
  }
  vocab['<|startoftext|>'] = id++;
  vocab['<|endoftext|>'] = id++;
  return { vocab, merges, words, size: id };
}
