/**
 * A model folder's JSON and text files (issue #11): an absent optional file means the SD 1.x default, but one that
 * is present and malformed is a typed error naming the file, line and column, never silently ignored.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { FormatError, MissingFileError } from '../../ts/errors.js';
import { ClipTokenizer } from '../../ts/sd/clipTokenizer.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { tempDir } from '../helpers/tempDir.js';

const vocab = { '<|startoftext|>': 0, '<|endoftext|>': 1, 'a</w>': 2, a: 3 };

function modelDir(files: Record<string, string>): string {
  const dir = tempDir('bl-modelfiles-');
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

describe('CLIP tokenizer files', () => {
  it('reads vocab.json and merges.txt; no tokenizer_config.json means SD 1.x defaults', async () => {
    const dir = modelDir({ 'tokenizer/vocab.json': JSON.stringify(vocab), 'tokenizer/merges.txt': '#version: 0.2\n' });
    const t = await ClipTokenizer.fromFolder(dir);
    expect(Array.from(t.encode('a').slice(0, 4))).toEqual([0, 2, 1, 1]);
  });

  it('a malformed vocab.json is a FormatError at its line and column', async () => {
    const dir = modelDir({ 'tokenizer/vocab.json': '{\n  "a": 1,\n  "b" 2\n}', 'tokenizer/merges.txt': '' });
    const e = await ClipTokenizer.fromFolder(dir).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(FormatError);
    expect((e as Error).message).toContain(`${join(dir, 'tokenizer', 'vocab.json')}:3:7`);
  });

  it('a vocab.json holding null is refused naming the file', async () => {
    const dir = modelDir({ 'tokenizer/vocab.json': 'null', 'tokenizer/merges.txt': '' });
    await expect(ClipTokenizer.fromFolder(dir)).rejects.toThrow(/vocab\.json: expected a CLIP vocabulary.*found null/);
  });

  it('a missing merges.txt is a MissingFileError naming it', async () => {
    const dir = modelDir({ 'tokenizer/vocab.json': JSON.stringify(vocab) });
    const e = await ClipTokenizer.fromFolder(dir).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(MissingFileError);
    expect((e as Error).message).toBe(`${join(dir, 'tokenizer', 'merges.txt')}: file not found`);
  });

  it('a tokenizer_config.json that is present but malformed is an error, not silently the defaults', async () => {
    const dir = modelDir({ 'tokenizer/vocab.json': JSON.stringify(vocab), 'tokenizer/merges.txt': '', 'tokenizer/tokenizer_config.json': '{"pad_token": }' });
    await expect(ClipTokenizer.fromFolder(dir)).rejects.toThrow(/tokenizer_config\.json:1:15: not valid JSON/);
  });

  it("a tokenizer_config.json model_max_length that cannot hold BOS and EOS (or is not an integer) is a FormatError naming the file and field", async () => {
    const files = (m: unknown) => ({ 'tokenizer/vocab.json': JSON.stringify(vocab), 'tokenizer/merges.txt': '', 'tokenizer/tokenizer_config.json': JSON.stringify({ model_max_length: m }) });
    for (const m of [1, 0, -1, 2.5, 20000]) {
      const dir = modelDir(files(m));
      const path = join(dir, 'tokenizer', 'tokenizer_config.json');
      const e = await ClipTokenizer.fromFolder(dir).catch((x: unknown) => x);
      expect(e, String(m)).toBeInstanceOf(FormatError);
      expect((e as Error).message).toBe(`${path}: model_max_length: expected an integer in 2..16384 (tokens per row, <|startoftext|> and <|endoftext|> included), got ${m}`);
      expect(e).toMatchObject({ path, field: 'model_max_length' });
    }
    // transformers' "no limit" (about 1e30) is CLIP's 77, as before; 16 is taken
    expect((await ClipTokenizer.fromFolder(modelDir(files(1e30)))).maxLength).toBe(77);
    expect((await ClipTokenizer.fromFolder(modelDir(files(16)))).encode('a').length).toBe(16);
  });
});

describe('VAE config', () => {
  it('a malformed vae_decoder/config.json is a FormatError naming it before any model is loaded', async () => {
    // (placeholder model files: the layout check, which runs first, looks for them; none is loaded)
    const layout = Object.fromEntries(['text_encoder', 'unet', 'vae_encoder', 'vae_decoder'].map((c) => [`${c}/model.onnx`, '']));
    const dir = modelDir({ ...layout, 'vae_decoder/config.json': '{"scaling_factor": 0.18215,}' });
    const e = await Diffusion.load(dir).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(FormatError);
    expect((e as Error).message).toMatch(new RegExp(`${join(dir, 'vae_decoder', 'config.json')}:1:\\d+: not valid JSON`));
  });
});
