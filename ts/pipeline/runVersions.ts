/**
 * What a run folder's run.json records of the software and the engine that wrote it (its `versions`). The engine's
 * thread count is among them: float sums split over another number of threads round in another order, so a run
 * with other threads may choose another alpha where two are near-tied (docs/batch.md), and a reader comparing two
 * runs must be able to see it (review s45).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { packageRoot } from '../native/binding.js';
import { buildInfo } from '../native/buildInfo.js';

export function runVersions(): Record<string, string> {
  let pkg = 'unknown';
  try {
    pkg = (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    // not in a package tree
  }
  const engine = buildInfo();
  return { brainlatent: pkg, node: process.version, platform: `${process.platform} ${process.arch}`, blas: engine.blas, engineThreads: String(engine.threads) };
}
