/**
 * How ONNX Runtime is to load a model file: by its path, or, when its external data lies behind links that leave
 * the model's folder, from its bytes with the locations rewritten to the files the links lead to.
 *
 * ONNX Runtime 1.30 follows links and refuses external data whose real path is outside the real folder of the
 * model file ("External data path escapes model directory"). A Hugging Face cache snapshot links every file to
 * blobs/<hash> (model.onnx and weights.pb then share blobs/ and load by path), but a `--local-dir` download of
 * huggingface_hub before 0.23 keeps model.onnx and links only the large weights.pb (over 5 MB) to the cache, and
 * other caches spread blobs over folders: those did not load. They are loaded from memory
 * (readModelWithWeightRefs: the graph alone, a few MB) with the external data read from the blobs' folder. So
 * is a model whose Constant nodes or subgraphs (If branches, Loop bodies) have external data behind links: onnx's
 * checker, which ONNX Runtime runs on them, refuses data that is a link. A folder without links is loaded by
 * path, as always, and its model.onnx is not read here, except under a service's model roots (modelRoots.ts), where
 * every model is read so that its files are checked to lie inside them, links followed, and is loaded from the bytes
 * read from the file checked, its external data from the files checked (opened by the engine, held to the device and
 * inode checked, handed to ONNX Runtime from memory): ONNX Runtime opens no path of it. (Only under roots: from
 * memory ONNX Runtime copies the weights into its own memory, where by path it maps the file.)
 */
import { lstat, readdir, realpath } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

import { InvalidArgumentError } from '../errors.js';
import { modelsConfined, verifyUnchanged, type CheckedDataFile, type CheckedFiles } from './modelRoots.js';
import { externalDataRefusal, isInside, readModelWithWeightRefs } from './onnxWeightRefs.js';

/**
 * The model file to load by path, or (`bytes` given) its bytes with its external data in `externalDataFolder`, or,
 * under model roots (`files` given), its bytes with its external data from the files checked, which the engine
 * opens and hands to ONNX Runtime itself (no path opened by ONNX Runtime).
 */
export interface ModelSource {
  path: string;
  bytes?: Uint8Array;
  externalDataFolder?: string;
  files?: CheckedDataFile[];
  /** Under model roots, the files as they were checked, to verify once ONNX Runtime has read them (verifyLoaded). */
  checked?: CheckedFiles['files'];
}

/**
 * Whether a file beside the model at `path` is a link, or lies, links followed, outside the model file's real
 * folder (any file, when model.onnx is itself a link to another folder). Only then can its external data be
 * refused: ONNX Runtime refuses data outside the real folder, and onnx's checker, which it runs on the tensors of
 * nodes (a Constant's value) and subgraphs (If, Loop, Scan), refuses data that is a link, wherever it leads. The
 * model is not read.
 */
async function mayBeRefused(path: string): Promise<boolean> {
  const dir = dirname(path);
  const modelLinked = (await lstat(path)).isSymbolicLink();
  const realDir = dirname(await realpath(path));
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.name === basename(path)) continue;
    if (e.isSymbolicLink()) return true;
    if (!modelLinked) continue;
    const real = await realpath(join(dir, e.name)).catch(() => null);
    if (real === null || !isInside(realDir, real)) return true;
  }
  return false;
}

/** How to load the model at `path` (an existing file); `what` names it in errors ('unet', 'OnnxModel'). */
export async function modelSource(path: string, what = 'model'): Promise<ModelSource> {
  // (under a service's model roots the model is read whatever its folder: its files, links followed, are checked)
  if (!modelsConfined() && !(await mayBeRefused(path))) return { path };
  const r = await readModelWithWeightRefs(path, { what });
  // (under roots: always from the bytes read from the file checked, the external data from the files checked)
  if (r.byPath && r.files === null) return { path, checked: r.checked };
  if (r.unloadable) throw new InvalidArgumentError(r.unloadable);
  return { path, bytes: r.bytes, externalDataFolder: r.dataFolder, checked: r.checked, ...(r.files ? { files: r.files } : {}) };
}

/**
 * After ONNX Runtime loaded the models of `sources` (it opens the model file and its external data again, by path):
 * throws when a file checked before is no longer the file it was (a link replaced since), after `release` (the
 * session's disposal). (Under roots every model now comes from the files checked, `files`, which ONNX Runtime
 * never reopens: a link flipped and back during the load reads nothing; this recheck stays as a second line.)
 */
export async function verifyLoaded(sources: readonly ModelSource[], release: () => void | Promise<void>): Promise<void> {
  const files = sources.flatMap((s) => s.checked ?? []);
  if (files.length === 0) return;
  try {
    await verifyUnchanged(files);
  } catch (e) {
    await release();
    throw e;
  }
}

/**
 * What to throw when ONNX Runtime failed to load models by their `paths`: the refusal of an external data location
 * outside a model's folder (absolute, or with '..'), or of an external data file shorter than its tensors need,
 * naming the file and the tensor, where there is one, else
 * `error`. ONNX Runtime refuses such locations itself, but for a Constant node's or a subgraph's tensor its message
 * comes as an invalid model (a truncated or corrupt file). The models are read only after a failure: a folder
 * without links is loaded by path without reading them.
 */
export async function loadFailure(paths: readonly string[], error: unknown): Promise<unknown> {
  for (const p of paths) {
    const refusal = await externalDataRefusal(p).catch(() => null);
    if (refusal) return refusal;
  }
  return error;
}
