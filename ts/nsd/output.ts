import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError, MissingFileError, ShapeError } from '../errors.js';
import { readNpy, writeNpy } from '../io/npy.js';
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
}

export interface NsdManifest {
  format: 'brainlatent-nsd-extraction';
  version: 1;
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
  files: Record<string, { shape: number[]; dtype: string; meaning: string }>;
}

export const EXTRACTION_FILES = {
  train: 'train_betas.npy',
  test: 'test_betas.npy',
  trainIds: 'train_image_ids.npy',
  testIds: 'test_image_ids.npy',
  voxels: 'voxels.npy',
  manifest: 'manifest.json',
} as const;

/** Describes the files in the manifest (shapes filled from the data). */
export function describeFiles(ex: Omit<NsdExtraction, 'manifest' | 'fromCache'>): NsdManifest['files'] {
  const F = EXTRACTION_FILES;
  return {
    [F.train]: { shape: [ex.train.rows, ex.train.cols], dtype: 'float32', meaning: 'train rows × voxels' },
    [F.test]: { shape: [ex.test.rows, ex.test.cols], dtype: 'float32', meaning: 'test rows × voxels' },
    [F.trainIds]: { shape: [ex.trainImageIds.length], dtype: 'int32', meaning: "NSD 73k id (1-based) of each train row; the ridge's CV groups" },
    [F.testIds]: { shape: [ex.testImageIds.length], dtype: 'int32', meaning: 'NSD 73k id (1-based) of each test row' },
    [F.voxels]: {
      shape: [ex.voxels.length / 3, 3],
      dtype: 'int32',
      meaning: 'x, y, z grid index of each column; flat NIfTI index = x + X·(y + Y·z) on the grid in "grid"',
    },
  };
}

/**
 * Writes the extraction into `dir`: the .npy files first, manifest.json last, so a folder with a manifest is
 * complete. With `atomic`, everything goes to a sibling temporary folder renamed into place at the end.
 */
export async function writeNsdExtraction(dir: string, ex: NsdExtraction, atomic = false): Promise<void> {
  const target = atomic ? `${dir}.partial-${process.pid}-${Date.now()}` : dir;
  await mkdir(target, { recursive: true });
  try {
    const F = EXTRACTION_FILES;
    await writeNpy(join(target, F.train), ex.train.data, [ex.train.rows, ex.train.cols]);
    await writeNpy(join(target, F.test), ex.test.data, [ex.test.rows, ex.test.cols]);
    await writeNpy(join(target, F.trainIds), ex.trainImageIds, [ex.trainImageIds.length]);
    await writeNpy(join(target, F.testIds), ex.testImageIds, [ex.testImageIds.length]);
    await writeNpy(join(target, F.voxels), ex.voxels, [ex.voxels.length / 3, 3]);
    await writeFile(join(target, F.manifest), JSON.stringify(ex.manifest, null, 2) + '\n');
    if (atomic) {
      await rm(dir, { recursive: true, force: true });
      await rename(target, dir);
    }
  } catch (e) {
    if (atomic) await rm(target, { recursive: true, force: true });
    throw e;
  }
}

/** Loads an extraction folder written by writeNsdExtraction. */
export async function readNsdExtraction(dir: string): Promise<NsdExtraction> {
  const F = EXTRACTION_FILES;
  let manifest: NsdManifest;
  try {
    manifest = JSON.parse(await readFile(join(dir, F.manifest), 'utf8')) as NsdManifest;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new MissingFileError(`${join(dir, F.manifest)}: file not found`);
    throw new FormatError(`${join(dir, F.manifest)}: not a readable manifest (${e instanceof Error ? e.message : String(e)})`);
  }
  const matrix = async (name: string): Promise<Matrix> => {
    const a = await readNpy(join(dir, name));
    if (!(a.data instanceof Float32Array) || a.shape.length !== 2) {
      throw new ShapeError(`${join(dir, name)}: expected a 2-D float32 array, got ${a.dtype} (${a.shape.join(', ')})`);
    }
    return { data: a.data, rows: a.shape[0], cols: a.shape[1] };
  };
  const ints = async (name: string): Promise<Int32Array> => {
    const a = await readNpy(join(dir, name));
    if (!(a.data instanceof Int32Array)) throw new ShapeError(`${join(dir, name)}: expected int32, got ${a.dtype}`);
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
