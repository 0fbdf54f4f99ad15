/**
 * The layout of an SD 1.x ONNX model folder (a diffusers/optimum export), checked before anything in it is
 * read: a wrong or empty folder is reported as the components it lacks and what it holds, not as the first
 * file some reader happened to open (tokenizer/vocab.json). The engine checks the same on load
 * (native/core/src/sd_pipeline.cpp) for its own callers.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { FormatError, InvalidArgumentError, MissingFileError } from '../errors.js';

import { checkedModelFile } from './modelRoots.js';

export const SD_COMPONENTS = ['text_encoder', 'unet', 'vae_encoder', 'vae_decoder'] as const;
export type SdComponent = (typeof SD_COMPONENTS)[number];

const isFile = (p: string): boolean => existsSync(p) && statSync(p).isFile();

/**
 * Whether `p` is a file. Under model roots (a service's), a link leading outside them throws its refusal whether or
 * not anything is there (isFile would follow it: a client could tell whether /etc/… exists from the answer).
 */
async function isModelFile(p: string): Promise<boolean> {
  const checked = await checkedModelFile(p, 'the model file');
  return checked === null ? isFile(p) : checked !== 'missing' && isFile(p);
}

/** isModelFile, with a link leading outside the roots listed as not found (listing it must not tell either). */
async function foundModelFile(p: string): Promise<boolean> {
  try {
    return await isModelFile(p);
  } catch (e) {
    if (e instanceof FormatError) return false;
    throw e;
  }
}

/** What the folder holds, as the engine lists it: `name/` for folders, `name/model.onnx` when one is inside. */
async function listFound(dir: string): Promise<string> {
  const entries: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    entries.push(e.isDirectory() ? `${e.name}/${(await foundModelFile(join(dir, e.name, 'model.onnx'))) ? 'model.onnx' : ''}` : e.name);
  }
  entries.sort();
  return entries.length ? entries.join(', ') : 'nothing';
}

/**
 * Throws a MissingFileError naming every `<component>/model.onnx` of `components` (default: all four) that `dir`
 * lacks, what an SD 1.x ONNX folder must contain, and what it holds (an unknown component name is an
 * InvalidArgumentError). `dir` must be an existing folder. Under model roots, a component's model.onnx that links
 * outside them is their FormatError, whether or not its target exists (modelRoots.ts).
 */
export async function checkModelLayout(dir: string, components: readonly string[] = SD_COMPONENTS): Promise<void> {
  for (const c of components) {
    if (!(SD_COMPONENTS as readonly string[]).includes(c)) {
      throw new InvalidArgumentError(`components: unknown component '${c}': expected ${SD_COMPONENTS.join(', ')}`);
    }
  }
  const missing: string[] = [];
  for (const c of components) if (!(await isModelFile(join(dir, c, 'model.onnx')))) missing.push(c);
  if (missing.length === 0) return;
  throw new MissingFileError(
    `model folder ${dir} has no ${missing.map((c) => `${c}/model.onnx`).join(', ')} ` +
      `(an SD 1.x ONNX export — diffusers/optimum — has ${SD_COMPONENTS.map((c) => `${c}/model.onnx`).join(', ')}, ` +
      `tokenizer/vocab.json and tokenizer/merges.txt); found: ${await listFound(dir)}`,
  );
}

/**
 * The checks Diffusion.load makes of a model folder before reading any file: there, a folder, with the components'
 * files (an empty or wrong folder lists every one missing). For a command to make them before it builds or writes
 * anything (bench samplers --model).
 */
export async function checkModelFolder(dir: string, components?: readonly string[]): Promise<void> {
  // (a path that is not there is a MissingFileError, as RidgeModel.load's is: code MissingFile in-process and over HTTP)
  if (!existsSync(dir)) throw new MissingFileError(`model folder ${dir} does not exist; expected an SD 1.x ONNX model folder`);
  if (!statSync(dir).isDirectory()) throw new InvalidArgumentError(`model folder ${dir} is a file; expected an SD 1.x ONNX model folder`);
  await checkModelLayout(dir, components);
}
