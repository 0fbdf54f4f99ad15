/**
 * The copies of the U-Net (with layers exposed) that earlier builds wrote to the OS temp folder; the copy is now made
 * in memory (ts/encoding/unetLayers.ts) and nothing is written. A copy is model.onnx (as large as the U-Net's own:
 * GBs for an export with its weights inside) beside symlinks to the U-Net's external weight files. Three namings,
 * all of builds versioned 0.1.0 (git history of ts/encoding/unetLayers.ts):
 * - 15d21fe…bc9372e^: `<tmp>/brainlatent-unet-layers/<16 hex digits>/`, one per model and layer list, shared by the
 *   runs of those builds and never removed;
 * - bc9372e…b45774e^: `<tmp>/brainlatent-unet-layers-XXXXXX/` (mkdtemp), removed when its use ended, left by a run
 *   killed first;
 * - b45774e…51ba620^: `<tmp>/brainlatent-unet-layers-<host>-<pid>-XXXXXX/`, removed once its process is dead
 *   (removeDeadProcessTemps).
 * The first two carry no pid, so whether a process still uses one cannot be asked; one is removed when nothing can:
 * it has the shape those builds gave it (model.onnx that reads as an ONNX model, nothing else but symlinks, folders
 * and model.onnx's atomic temporaries), it is this user's, and neither it nor anything in it has changed for
 * LEGACY_COPY_AGE_MS. Those builds loaded a copy within seconds of writing it and never read it again (ONNX Runtime
 * holds the loaded model; the symlinks' targets, the weights, are not touched: a symlink is removed, not followed).
 * Called at the start of every encode run (encode.ts) and at every exposure of the U-Net's layers (unetLayers.ts).
 */
import { lstat, open, readdir, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { removeDeadProcessTemps } from '../io/processTemp.js';

/** The prefix of the U-Net copies' folders (all three namings). */
export const UNET_COPY_PREFIX = 'brainlatent-unet-layers';

/** A copy without a pid is removed once it and its contents are this old: 6 hours, far beyond a load of the copy. */
export const LEGACY_COPY_AGE_MS = 6 * 3600 * 1000;

/** mkdtemp's six characters after the prefix's '-'. */
const MKDTEMP_RE = new RegExp(`^${UNET_COPY_PREFIX}-[A-Za-z0-9]{6}$`);
/** The shared folder's copies: the first 16 hex digits of a sha256. */
const KEYED_RE = /^[0-9a-f]{16}$/;
/** model.onnx's temporary while it was written atomically (ts/io/atomicWrite.ts names them so). */
const MODEL_TMP_RE = /^\.model\.onnx\.tmp-[0-9a-f]{6}-\d+-[0-9a-f]{8}$/;

type Stat = Awaited<ReturnType<typeof lstat>>;

const mine = (s: Stat) => typeof process.getuid !== 'function' || s.uid === process.getuid();

/** A protobuf ModelProto as these builds wrote it starts with field 1 (ir_version, a varint): tag byte 0x08. */
async function readsAsOnnx(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const { bytesRead, buffer } = await fh.read(Buffer.alloc(1), 0, 1, 0);
    return bytesRead === 1 && buffer[0] === 0x08;
  } finally {
    await fh.close();
  }
}

/**
 * The newest modification time in folder `dir` (its own and every entry's, links not followed) when it holds nothing but
 * symlinks, folders and (`top`) model.onnx and model.onnx's temporaries; null when it holds anything else.
 */
async function newestChangeOfCopy(dir: string, top: boolean): Promise<number | null> {
  let newest = (await lstat(dir)).mtimeMs;
  for (const name of await readdir(dir)) {
    const p = join(dir, name);
    const s = await lstat(p);
    if (!mine(s)) return null;
    newest = Math.max(newest, s.mtimeMs);
    if (s.isSymbolicLink()) continue;
    if (s.isDirectory()) {
      const inner = await newestChangeOfCopy(p, false);
      if (inner === null) return null;
      newest = Math.max(newest, inner);
    } else if (!(top && s.isFile() && (name === 'model.onnx' || MODEL_TMP_RE.test(name)))) return null;
  }
  return newest;
}

/** Removes the copy at `dir` when it is one, this user's, and unchanged for `minAgeMs`; true when it did. */
async function removeIfLegacyCopy(dir: string, now: number, minAgeMs: number): Promise<boolean> {
  try {
    const s = await lstat(dir);
    if (!s.isDirectory() || !mine(s)) return false;
    const model = await lstat(join(dir, 'model.onnx')).catch(() => null);
    if (!model?.isFile() || !(await readsAsOnnx(join(dir, 'model.onnx')))) return false;
    const newest = await newestChangeOfCopy(dir, true);
    if (newest === null || now - newest < minAgeMs) return false;
    // model.onnx last: a removal cut short leaves a folder that is still recognised (and removed) next time
    for (const name of await readdir(dir)) if (name !== 'model.onnx') await rm(join(dir, name), { recursive: true, force: true });
    await rm(join(dir, 'model.onnx'), { force: true });
    await rmdir(dir);
    return true;
  } catch {
    return false; // best effort: one that changes or vanishes meanwhile, or cannot be removed, is left
  }
}

/**
 * Removes the U-Net copies earlier builds left in `parent` (default: the OS temp folder) that no process can be
 * using: the pid-tagged ones of dead processes of this host, and the two older namings' once unchanged for
 * `minAgeMs` (LEGACY_COPY_AGE_MS). Returns the folders removed. Best effort.
 */
export async function removeLeftUnetCopies(parent = tmpdir(), options: { now?: number; minAgeMs?: number } = {}): Promise<string[]> {
  const now = options.now ?? Date.now();
  const minAgeMs = options.minAgeMs ?? LEGACY_COPY_AGE_MS;
  const removed = await removeDeadProcessTemps(parent, UNET_COPY_PREFIX);
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return removed;
  }
  for (const n of names) {
    if (MKDTEMP_RE.test(n) && (await removeIfLegacyCopy(join(parent, n), now, minAgeMs))) removed.push(join(parent, n));
  }
  if (!names.includes(UNET_COPY_PREFIX)) return removed;
  const shared = join(parent, UNET_COPY_PREFIX);
  const sharedStat = await lstat(shared).catch(() => null);
  if (!sharedStat?.isDirectory() || !mine(sharedStat)) return removed;
  const keys = await readdir(shared).catch(() => [] as string[]);
  for (const k of keys) if (KEYED_RE.test(k) && (await removeIfLegacyCopy(join(shared, k), now, minAgeMs))) removed.push(join(shared, k));
  // the shared folder itself once it holds nothing more (rmdir refuses a folder that is not empty)
  await rmdir(shared).then(() => removed.push(shared), () => undefined);
  return removed;
}
