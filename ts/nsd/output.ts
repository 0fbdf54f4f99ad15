import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError, InvalidArgumentError, ShapeError } from '../errors.js';
import { recoverInterruptedDir, withAtomicDir, writeJsonAtomic } from '../io/atomicWrite.js';
import { fileOpenError } from '../io/byteStream.js';
import { crc32Hex } from '../io/crc32.js';
import { assertFinite } from '../io/finite.js';
import { readNpy, writeNpy } from '../io/npy.js';
import { bytesOf } from '../io/typedArrays.js';
import type { Matrix } from '../matrix.js';

/** What `nsd extract` produces: matrices, the 73k id of every row, the voxels, and a manifest. */
export interface NsdExtraction {
  train: Matrix;
  test: Matrix;
  /** NSD 73k id (1-based) of each train row: also the groups vector for the ridge's CV folds. */
  trainImageIds: Int32Array;
  testImageIds: Int32Array;
  /** voxels × 3 int32: the (x, y, z) grid index of each column. */
  voxels: Int32Array;
  manifest: NsdManifest;
  /** True when loaded from the cache rather than extracted. */
  fromCache: boolean;
  /**
   * Set by extractNsd when it wrote this extraction to its cache folder: the entries there it removed as replaced
   * (made from an earlier version of a file it has just read: never loadable again). Empty when none.
   */
  removedFromCache?: RemovedCacheEntry[];
  /**
   * Set with removedFromCache: the entries it would have removed as replaced but left, with why (a live process
   * loading one; another user's that this user cannot delete). Empty when none.
   */
  keptInCache?: KeptCacheEntry[];
  /**
   * Set by extractNsd when its cache folder could not take this extraction (an existing folder this user may not
   * write in: a shared cache on a read-only mount, another user's; or a damaged entry of its key there that this user
   * cannot delete: another user's, in a sticky shared folder or a folder of theirs), in words, naming the entry and
   * what to do: the extraction was returned, not cached.
   */
  notCached?: string;
}

/** An extraction cache entry that was removed (ts/nsd/cache.ts): where it was, its size and why it went. */
export interface RemovedCacheEntry {
  path: string;
  bytes: number;
  why: string;
}

/** An extraction cache entry an upkeep chose to remove but left: where it is and why it stays (cache prune's words). */
export interface KeptCacheEntry {
  path: string;
  why: string;
}

/** The manifest layout writeNsdExtraction writes, the one readNsdExtraction reads. */
export const NSD_MANIFEST_VERSION = 1;

/** The version of `m` (a parsed manifest.json) when a newer brainlatent wrote it (a number above ours), else null. */
export function newerManifestVersion(m: unknown): number | null {
  const v = (m as { version?: unknown } | null)?.version;
  return typeof v === 'number' && v > NSD_MANIFEST_VERSION ? v : null;
}

export interface NsdManifest {
  format: 'brainlatent-nsd-extraction';
  version: typeof NSD_MANIFEST_VERSION;
  /** Hash of inputs, options and source-file sizes and times. */
  key: string;
  createdAt: string;
  software: { name: string; version: string };
  inputs: {
    root: string;
    subject: number;
    roi: string;
    roiFile: string;
    roiValues: number[] | null;
    sessions: number[];
    betasFormat: string;
    trialsPerSession: number;
  };
  options: {
    zscore: 'session' | 'train' | 'none';
    /** The z-score's SD: ddof 1 (sample) or 0 (population); absent when zscore is 'none'. */
    ddof?: 0 | 1;
    averageTrain: boolean;
    averageTest: boolean;
    /** Raw betas were divided by this (NSD: int16 percent signal change × 300). */
    divisor: number;
  };
  sources: { path: string; size: number; mtimeMs: number }[];
  grid: [number, number, number];
  counts: {
    trainTrials: number;
    testTrials: number;
    trainRows: number;
    testRows: number;
    trainImages: number;
    testImages: number;
    voxels: number;
    /** How many test images were seen 1, 2, 3... times in the chosen sessions. */
    testRepetitions: Record<string, number>;
    /** Voxels with zero spread when z-scoring (left at 0). */
    flatVoxels: number;
  };
  /**
   * Each data file's shape, dtype and meaning, and the CRC-32 of its data (the bytes after the .npy header,
   * ts/io/crc32.ts), which a load checks: a file damaged since (a disk, a copy) is refused, and in the cache it is a
   * damaged entry, extracted again. `crc32` is absent in manifests from before it was kept (their data are read unchecked).
   */
  files: Record<string, { shape: number[]; dtype: string; meaning: string; crc32?: string }>;
}

export const EXTRACTION_FILES = {
  train: 'train_betas.npy',
  test: 'test_betas.npy',
  trainIds: 'train_image_ids.npy',
  testIds: 'test_image_ids.npy',
  voxels: 'voxels.npy',
  manifest: 'manifest.json',
} as const;

/** Describes the files in the manifest (shapes filled from the data, and each file's data checksum). */
export function describeFiles(ex: Omit<NsdExtraction, 'manifest' | 'fromCache'>): NsdManifest['files'] {
  const F = EXTRACTION_FILES;
  const crc = (a: Float32Array | Int32Array) => crc32Hex(bytesOf(a));
  return {
    [F.train]: { shape: [ex.train.rows, ex.train.cols], dtype: 'float32', meaning: 'train rows × voxels', crc32: crc(ex.train.data) },
    [F.test]: { shape: [ex.test.rows, ex.test.cols], dtype: 'float32', meaning: 'test rows × voxels', crc32: crc(ex.test.data) },
    [F.trainIds]: { shape: [ex.trainImageIds.length], dtype: 'int32', meaning: "NSD 73k id (1-based) of each train row; the ridge's CV groups", crc32: crc(ex.trainImageIds) },
    [F.testIds]: { shape: [ex.testImageIds.length], dtype: 'int32', meaning: 'NSD 73k id (1-based) of each test row', crc32: crc(ex.testImageIds) },
    [F.voxels]: {
      shape: [ex.voxels.length / 3, 3],
      dtype: 'int32',
      meaning: 'x, y, z grid index of each column; flat NIfTI index = x + X·(y + Y·z) on the grid in "grid"',
      crc32: crc(ex.voxels),
    },
  };
}

/**
 * Refuses `data`, read from `path` (file `name` of the extraction), when the manifest records a CRC-32 of it that
 * its bytes do not give: a FormatError naming the file (field 'crc32'), which the cache takes for damage.
 */
function checkDataCrc(path: string, name: string, manifest: NsdManifest, data: Float32Array | Int32Array): void {
  const recorded = manifest.files?.[name]?.crc32;
  if (recorded === undefined) return;
  const now = crc32Hex(bytesOf(data));
  if (now !== recorded) {
    throw new FormatError(
      `${path}: its data fail their checksum (CRC-32 ${now}, ${EXTRACTION_FILES.manifest} records ${recorded}): the file changed after the extraction was written ` +
        '(a damaged disk or copy); extract it again',
      { path, field: 'crc32' },
    );
  }
}

/**
 * Writes the extraction as the folder `dir`, built under a temporary name and swapped into place whole
 * (ts/io/atomicWrite), so `dir` is always a complete extraction — the old one or the new one, never new betas
 * beside an old manifest — even if the process is killed. manifest.json is written last.
 */
export async function writeNsdExtraction(dir: string, ex: NsdExtraction): Promise<void> {
  await assertExtractionReplaceable(dir);
  await writeExtractionFolder(dir, ex);
}

/**
 * writeNsdExtraction without its refusal of a folder that holds anything but an extraction: for a cache entry, whose
 * name (`subjNN_<roi>_<20-hex key>`) only the cache gives, so that a damaged one (its manifest unreadable) is replaced.
 */
export async function writeExtractionFolder(dir: string, ex: NsdExtraction): Promise<void> {
  await withAtomicDir(dir, async (target) => {
    const F = EXTRACTION_FILES;
    await writeNpy(join(target, F.train), ex.train.data, [ex.train.rows, ex.train.cols]);
    await writeNpy(join(target, F.test), ex.test.data, [ex.test.rows, ex.test.cols]);
    await writeNpy(join(target, F.trainIds), ex.trainImageIds, [ex.trainImageIds.length]);
    await writeNpy(join(target, F.testIds), ex.testImageIds, [ex.testImageIds.length]);
    await writeNpy(join(target, F.voxels), ex.voxels, [ex.voxels.length / 3, 3]);
    await writeJsonAtomic(join(target, F.manifest), ex.manifest);
  });
}

/**
 * The folder is replaced whole: refuse one that holds anything but an extraction (a user's other files). Called
 * by the writer, and by `nsd extract` before it extracts, so a folder it will refuse costs no extraction first.
 */
export async function assertExtractionReplaceable(dir: string): Promise<void> {
  await recoverInterruptedDir(dir);
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR') throw new InvalidArgumentError(`${dir} is a file; the extraction is written as a folder`);
    throw e;
  }
  if (entries.length === 0) return;
  let format: unknown;
  try {
    format = (JSON.parse(await readFile(join(dir, EXTRACTION_FILES.manifest), 'utf8')) as { format?: unknown }).format;
  } catch {
    format = undefined;
  }
  if (format !== 'brainlatent-nsd-extraction') {
    throw new InvalidArgumentError(
      `${dir} exists and is not an NSD extraction folder (it holds ${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}); ` +
        'the extraction replaces its folder whole, so choose a new or empty folder',
    );
  }
}

/** Loads an extraction folder written by writeNsdExtraction. */
export async function readNsdExtraction(dir: string): Promise<NsdExtraction> {
  const F = EXTRACTION_FILES;
  await recoverInterruptedDir(dir);
  let text: string;
  try {
    text = await readFile(join(dir, F.manifest), 'utf8');
  } catch (e) {
    // (a manifest this user may not read is a FileAccessError, an I/O error itself: nothing says it is broken)
    throw fileOpenError(join(dir, F.manifest), e);
  }
  let manifest: NsdManifest;
  try {
    manifest = JSON.parse(text) as NsdManifest;
  } catch (e) {
    throw new FormatError(`${join(dir, F.manifest)}: not a readable manifest (${e instanceof Error ? e.message : String(e)})`, { path: join(dir, F.manifest) });
  }
  // (a newer layout was read as this one; one without the key, as this version)
  const version = (manifest as { version?: unknown } | null)?.version;
  if (version !== undefined && version !== NSD_MANIFEST_VERSION) {
    throw new FormatError(
      `${join(dir, F.manifest)}: version ${JSON.stringify(version)}; this brainlatent reads NSD extraction manifests of version ${NSD_MANIFEST_VERSION}` +
        (newerManifestVersion(manifest) !== null ? ' (the extraction was written by a newer brainlatent: extract again, or read it with that one)' : ''),
      { path: join(dir, F.manifest), field: 'version' },
    );
  }
  const matrix = async (name: string): Promise<Matrix> => {
    const a = await readNpy(join(dir, name));
    if (!(a.data instanceof Float32Array) || a.shape.length !== 2) {
      throw new ShapeError(`${join(dir, name)}: expected a 2-D float32 array, got ${a.dtype} (${a.shape.join(', ')})`);
    }
    // (NaN said as such first: the more telling of the two)
    assertFinite(a.data, `betas (${join(dir, name)})`, { shape: a.shape, axes: ['row', 'voxel'] });
    checkDataCrc(join(dir, name), name, manifest, a.data);
    return { data: a.data, rows: a.shape[0], cols: a.shape[1] };
  };
  const ints = async (name: string): Promise<Int32Array> => {
    const a = await readNpy(join(dir, name));
    if (!(a.data instanceof Int32Array)) throw new ShapeError(`${join(dir, name)}: expected int32, got ${a.dtype}`);
    checkDataCrc(join(dir, name), name, manifest, a.data);
    return a.data;
  };
  return {
    train: await matrix(F.train),
    test: await matrix(F.test),
    trainImageIds: await ints(F.trainIds),
    testImageIds: await ints(F.testIds),
    voxels: await ints(F.voxels),
    manifest,
    fromCache: true,
  };
}
