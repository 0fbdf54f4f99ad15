/**
 * A key of an extract stage's outputs by their content (StageMarker.outputKey): what the stages after it read of an
 * extraction — its betas, the 73k id of every row, the voxels, the counts and options — and the stage's own files.
 * Not where, when or from which file times it was made: the extraction cache's key holds the betas files' sizes and
 * times, so a betas file copied without them (`cp`, `rsync` without -t) or touched makes a new cache entry, the same
 * numbers, and this same key.
 */
import { createHash, type Hash } from 'node:crypto';

import type { NsdExtraction } from '../nsd/output.js';

const bytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function addExtraction(hash: Hash, e: NsdExtraction): void {
  // the manifest less what names the source files and the run (its cache key, time, the software's version)
  const { key: _key, createdAt: _createdAt, software: _software, sources: _sources, ...content } = e.manifest;
  hash.update(JSON.stringify(content));
  hash.update(`\0train ${e.train.rows}x${e.train.cols}\0`).update(bytes(e.train.data));
  hash.update(`\0test ${e.test.rows}x${e.test.cols}\0`).update(bytes(e.test.data));
  hash.update('\0trainIds\0').update(bytes(e.trainImageIds));
  hash.update('\0testIds\0').update(bytes(e.testImageIds));
  hash.update('\0voxels\0').update(bytes(e.voxels));
}

/** The content key of the extractions an extract stage made and of the files it wrote (their text), in order. */
export function extractionContentKey(extractions: readonly NsdExtraction[], files: readonly string[]): string {
  const hash = createHash('sha256');
  for (const [i, e] of extractions.entries()) {
    hash.update(`\0extraction ${i}\0`);
    addExtraction(hash, e);
  }
  for (const [i, f] of files.entries()) hash.update(`\0file ${i}\0`).update(f);
  return hash.digest('hex').slice(0, 32);
}
