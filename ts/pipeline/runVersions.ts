/**
 * What a run folder records of the software and the engine that computed it: run.json's `versions` (the process
 * that last ran the run's command there) and each stage's own record in its marker (`ranWith`: the process that
 * computed that stage, which in a batch may be another worker on another machine, and in a resumed run an earlier
 * process). The engine's thread count is among them: float sums split over another number of threads round in
 * another order, so a run with other threads may choose another alpha where two are near-tied (docs/batch.md), and
 * a reader comparing two runs must be able to see it (review s45).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

import { packageRoot } from '../native/binding.js';
import { buildInfo } from '../native/buildInfo.js';
import type { OrtUse } from '../native/ortUse.js';

/** ONNX Runtime's fields when no ONNX model ran: said, not left out, so that a reader knows none did. */
export const ORT_NOT_USED = 'not used';

/** This package's version ('unknown' outside a package tree); unlike runVersions, without loading the engine. */
export function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown'; // not in a package tree
  }
}

export function runVersions(): Record<string, string> {
  const pkg = packageVersion();
  const engine = buildInfo();
  return { brainlatent: pkg, node: process.version, platform: `${process.platform} ${process.arch}`, blas: engine.blas, engineThreads: String(engine.threads) };
}

/**
 * The ONNX Runtime fields of a record, from the uses the work made (ts/native/ortUse.ts): `onnxruntime` and
 * `onnxruntimeLibrary` where a model ran on the engine's ONNX Runtime (its version, the library it loaded),
 * `onnxruntimeNode` where one ran on onnxruntime-node's JavaScript API (a feature network of the evaluation: that
 * package's version), and `onnxruntime: 'not used'` where no ONNX model ran at all.
 */
export function ortVersions(uses: readonly OrtUse[]): Record<string, string> {
  const engine = uses.filter((u) => u.via === 'engine');
  const node = uses.filter((u) => u.via === 'onnxruntime-node');
  if (!engine.length && !node.length) return { onnxruntime: ORT_NOT_USED };
  // (one engine library per process: more than one would be listed as they came)
  const list = (of: OrtUse[], field: (u: OrtUse) => string | undefined) => [...new Set(of.map(field))].join(', ');
  return {
    ...(engine.length ? { onnxruntime: list(engine, (u) => u.version), onnxruntimeLibrary: list(engine, (u) => u.library) } : {}),
    ...(node.length ? { onnxruntimeNode: list(node, (u) => u.version) } : {}),
  };
}

/**
 * What computed a stage, as its marker records it (`ranWith`): this process's versions (runVersions), its host, and
 * the ONNX Runtime the stage ran its models on (or that it ran none).
 */
export function stageVersions(uses: readonly OrtUse[]): Record<string, string> {
  return { ...runVersions(), hostname: hostname(), ...ortVersions(uses) };
}
