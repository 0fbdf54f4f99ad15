/**
 * The layout of an SD 1.x ONNX model folder (a diffusers/optimum export), checked before anything in it is
 * read: a wrong or empty folder is reported as the components it lacks and what it holds, not as the first
 * file some reader happened to open (tokenizer/vocab.json). The engine checks the same on load
 * (native/core/src/sd_pipeline.cpp) for its own callers.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { InvalidArgumentError, MissingFileError } from '../errors.js';

export const SD_COMPONENTS = ['text_encoder', 'unet', 'vae_encoder', 'vae_decoder'] as const;
export type SdComponent = (typeof SD_COMPONENTS)[number];

const isFile = (p: string): boolean => existsSync(p) && statSync(p).isFile();

/** What the folder holds, as the engine lists it: `name/` for folders, `name/model.onnx` when one is inside. */
function listFound(dir: string): string {
  const entries = readdirSync(dir, { withFileTypes: true })
    .map((e) => (e.isDirectory() ? `${e.name}/${isFile(join(dir, e.name, 'model.onnx')) ? 'model.onnx' : ''}` : e.name))
    .sort();
  return entries.length ? entries.join(', ') : 'nothing';
}

/**
 * Throws a MissingFileError naming every `<component>/model.onnx` of `components` (default: all four) that `dir`
 * lacks, what an SD 1.x ONNX folder must contain, and what it holds (an unknown component name is an
 * InvalidArgumentError). `dir` must be an existing folder.
 */
export function checkModelLayout(dir: string, components: readonly string[] = SD_COMPONENTS): void {
  for (const c of components) {
    if (!(SD_COMPONENTS as readonly string[]).includes(c)) {
      throw new InvalidArgumentError(`components: unknown component '${c}': expected ${SD_COMPONENTS.join(', ')}`);
    }
  }
  const missing = components.filter((c) => !isFile(join(dir, c, 'model.onnx')));
  if (missing.length === 0) return;
  throw new MissingFileError(
    `model folder ${dir} has no ${missing.map((c) => `${c}/model.onnx`).join(', ')} ` +
      `(an SD 1.x ONNX export — diffusers/optimum — has ${SD_COMPONENTS.map((c) => `${c}/model.onnx`).join(', ')}, ` +
      `tokenizer/vocab.json and tokenizer/merges.txt); found: ${listFound(dir)}`,
  );
}
