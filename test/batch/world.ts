/** A small world of four synthetic subjects for the batch tests, and the manifest that processes it. */
import { cpSync, existsSync } from 'node:fs';
import { join } from 'node:path';

import { buildDemoWorld, type DemoWorld, type DemoWorldOptions } from '../../ts/demo/world.js';
import type { BatchManifest } from '../../ts/batch/manifest.js';
import type { ReconstructConfigInput } from '../../ts/pipeline/config.js';
import { withModelRoots } from '../../ts/sd/modelRoots.js';
import { builtOncePerRun } from '../helpers/runOnce.js';

/**
 * The world in `dir`/world: a copy of the one this test run built for these subjects (test/helpers/runOnce.ts), which
 * buildDemoWorld then finds intact and reuses (its manifest: the same parameters, every file its size). Each file gets
 * a world of its own to change; 35 files use one. The run's is built free of the service's model roots that a file
 * holding a service has set in its process (they would refuse the world's model, built outside them).
 */
export async function batchWorld(dir: string, subjects = [1, 2, 3, 4]): Promise<DemoWorld> {
  const options: Omit<DemoWorldOptions, 'out'> = { subjects, sessions: 4, trialsPerSession: 60, testImages: 8, distractors: 50, imageSize: 64 };
  const out = join(dir, 'world');
  if (!existsSync(out)) {
    const built = await builtOncePerRun(`batch-world-${subjects.join('-')}`, (d) => withModelRoots([], () => buildDemoWorld({ out: d, ...options })));
    cpSync(built, out, { recursive: true });
  }
  return buildDemoWorld({ out, ...options });
}

/** The reconstruct template: tiny settings, one ONNX Runtime thread (the workers run side by side). */
export function reconTemplate(w: DemoWorld, threads = 1): Record<string, unknown> {
  const { nsd: _nsd, ...rest } = w.config;
  return { ...rest, model: { ...w.config.model, threads }, img2img: { ...w.config.img2img, seeds: 2, steps: 10, batchSize: 4 } };
}

/** One reconstruct analysis, by default in shards of 4 images × 1 seed (4 shards per subject). */
export function batchManifest(w: DemoWorld, name: string, out: string, subjects: BatchManifest['subjects'], shards = { images: 4, seeds: 1 }): BatchManifest {
  return {
    name,
    out,
    nsd: { root: w.nsdRoot },
    subjects,
    analyses: [{ name: 'recon', kind: 'reconstruct', config: reconTemplate(w), shards }],
  };
}

/** The same analysis as a single-process reconstruct config of one subject. */
export function singleConfig(w: DemoWorld, subject: number, out: string, threads = 1): ReconstructConfigInput {
  return { ...(reconTemplate(w, threads) as Omit<ReconstructConfigInput, 'out' | 'nsd' | 'model'>), out, nsd: { root: w.nsdRoot, subject }, model: { ...w.config.model, threads } } as ReconstructConfigInput;
}

/**
 * A reconstruction and an encoding whose z and c are the same computation (the world's features: the
 * posterior mean at 64 px, 8 images per call, ONNX Runtime's default threads in both): the batch computes
 * them once for both.
 */
export function sharedManifest(w: DemoWorld, name: string, out: string, subjects: BatchManifest['subjects']): BatchManifest {
  return {
    name,
    out,
    nsd: { root: w.nsdRoot },
    subjects,
    analyses: [
      { name: 'recon', kind: 'reconstruct', config: reconTemplate(w, 0), shards: { images: 8, seeds: 2 } },
      { name: 'enc', kind: 'encode', config: encodeTemplate(w) },
    ],
  };
}

/** An encoding analysis (z, c and both banded) on the world's streams atlas: small, but every kind of stage. */
export function encodeTemplate(w: DemoWorld): Record<string, unknown> {
  return {
    model: w.modelDir,
    imageSize: 64,
    nsd: { roi: 'streams', zscore: 'none', captions: null },
    featureSets: [
      { name: 'z', kind: 'z' },
      { name: 'c', kind: 'c' },
    ],
    ridge: { alphas: [1, 10, 100, 1000, 10000] },
    banded: [{ name: 'z+c', sets: ['z', 'c'], nIter: 5 }],
    noiseCeiling: 'estimate',
  };
}
