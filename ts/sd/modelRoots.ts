/**
 * Where a model's files may lie once symbolic links are followed. From the CLI or the library a model folder is
 * the user's own, and a link in it is followed wherever it leads (a Hugging Face cache's snapshot links each file to
 * ../../blobs/<hash>, a `--local-dir` download links its large files into the cache). A service (`serve --root`)
 * loads folders a client names under its root, which anyone who can write there may have filled with links to
 * /etc/… or to another user's files: there a model file (model.onnx, its external data, a tokenizer's or a
 * scheduler's file) must lie, links followed, inside one of the model roots, or inside the Hugging Face cache
 * folder of its model (the nearest `models--*` folder above it as named, when that is not itself a link: the
 * blobs of a snapshot served as the root).
 *
 * The roots are the environment's BRAINLATENT_MODEL_ROOTS (folders separated by the platform's path delimiter),
 * so that the job processes a service forks inherit them; the service adds its root when it starts
 * (confineModelsTo) and a `brainlatent worker` of its queue can be given the same.
 */
import { lstat, realpath } from 'node:fs/promises';
import { basename, delimiter, dirname, isAbsolute, relative, resolve } from 'node:path';

import { FormatError } from '../errors.js';

export const MODEL_ROOTS_ENV = 'BRAINLATENT_MODEL_ROOTS';

/** The model roots (absolute); empty: model files may lie anywhere. */
export function modelRoots(): string[] {
  const v = process.env[MODEL_ROOTS_ENV] ?? '';
  return [...new Set(v.split(delimiter).filter((p) => p.length > 0).map((p) => resolve(p)))];
}

// roots added by confineModelsTo in this process, with how many services added each (one root, many test servers)
const added = new Map<string, number>();

/** Makes `root` a model root of this process and the processes it starts from now on; returns the undo. */
export function confineModelsTo(root: string): () => void {
  const r = resolve(root);
  const n = added.get(r) ?? 0;
  added.set(r, n + 1);
  if (n === 0 && !modelRoots().includes(r)) process.env[MODEL_ROOTS_ENV] = [...modelRoots(), r].join(delimiter);
  let undone = false;
  return () => {
    if (undone) return;
    undone = true;
    const left = (added.get(r) ?? 1) - 1;
    if (left > 0) {
      added.set(r, left);
      return;
    }
    added.delete(r);
    const rest = modelRoots().filter((p) => p !== r);
    if (rest.length) process.env[MODEL_ROOTS_ENV] = rest.join(delimiter);
    else delete process.env[MODEL_ROOTS_ENV];
  };
}

const inside = (folder: string, p: string) => {
  const rel = relative(folder, p);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
};

const realOr = (p: string) => realpath(p).catch(() => resolve(p));

/** The folders a model file named `named` may lie in: the roots (real paths), and its Hugging Face cache folder. */
async function allowedFolders(named: string, roots: readonly string[]): Promise<string[]> {
  const folders = await Promise.all(roots.map(realOr));
  for (let d = dirname(resolve(named)); d !== dirname(d); d = dirname(d)) {
    if (!basename(d).startsWith('models--')) continue;
    // (a models--* folder that is itself a link could lead anywhere)
    if (!(await lstat(d).then((s) => s.isSymbolicLink(), () => true))) folders.push(await realpath(d));
    break;
  }
  return folders;
}

/**
 * Throws a FormatError when model roots are set and the file `named` (a model file, or the file an external data
 * location names) lies, links followed, outside them: `what` says which file ('vocab.json', "tensor 'w''s external
 * data 'weights.pb'"), `model` the file named in the message. A missing file passes (its reader names it).
 */
export async function checkModelFile(named: string, what: string, model: string = named): Promise<void> {
  const roots = modelRoots();
  if (roots.length === 0) return;
  const real = await realpath(named).catch(() => null);
  if (real === null) return;
  const folders = await allowedFolders(model, roots);
  if (folders.some((f) => inside(f, real))) return;
  throw new FormatError(
    `${model}: ${what} leads, through a symbolic link, outside the service's root folder (and outside the model's Hugging Face cache ` +
      `folder): a service reads model files only inside its root. Copy the file into the model's folder (\`cp -L\`)`,
    { path: model, field: what },
  );
}
