/**
 * The run folder: run.json (config, hash, versions), one marker per finished stage (stages/<name>.json,
 * written last, so an interrupted stage is redone), and the naming of every output.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { configHash, type ReconstructConfig } from './config.js';

export const STAGES = ['extract', 'features', 'decoders', 'zonly', 'img2img', 'evaluate', 'report'] as const;
export type StageName = (typeof STAGES)[number];

export interface RunManifest<C = ReconstructConfig> {
  format: 'brainlatent-run';
  version: 1;
  configHash: string;
  createdAt: string;
  config: C;
  versions: Record<string, string>;
}

export interface StageMarker {
  /** A reconstruct stage, or another pipeline's stage id (encode: extract, fit.z, …). */
  stage: string;
  configHash: string;
  seconds: number;
  finishedAt: string;
  outputs: string[];
  summary?: Record<string, unknown>;
}

export const paths = (out: string) => ({
  run: join(out, 'run.json'),
  stage: (s: string) => join(out, 'stages', `${s}.json`),
  ids: join(out, 'data', 'image_ids.json'),
  zFeatures: join(out, 'features', 'z.npy'),
  cFeatures: join(out, 'features', 'c.npy'),
  featureIds: join(out, 'features', 'image_ids.npy'),
  decoder: (t: 'z' | 'c') => join(out, 'decoders', `${t}.safetensors`),
  decoded: (t: 'z' | 'c') => join(out, 'decoded', `${t}.npy`),
  decoderSummary: join(out, 'decoders', 'summary.json'),
  /** Per-target accuracy of a decoder on the test images (r between decoded and true feature). */
  targetAccuracy: (t: 'z' | 'c') => join(out, 'decoders', `${t}_target_r.npy`),
  images: join(out, 'images'),
  /** Names as in the reference code: {imgidx:05}_org.png, {imgidx:05}_{k:03}.png; z-only {imgidx:05}_z.png. imgidx = 73k id − 1. */
  original: (id: number) => join(out, 'images', `${String(id - 1).padStart(5, '0')}_org.png`),
  zonly: (id: number) => join(out, 'images', `${String(id - 1).padStart(5, '0')}_z.png`),
  sample: (id: number, k: number) => join(out, 'images', `${String(id - 1).padStart(5, '0')}_${String(k).padStart(3, '0')}.png`),
  metricsCsv: join(out, 'metrics.csv'),
  metricsJson: join(out, 'metrics.json'),
  perImageCsv: join(out, 'metrics_per_image.csv'),
  report: join(out, 'report.html'),
});

export async function readManifest(out: string): Promise<RunManifest | null> {
  const p = paths(out).run;
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(await readFile(p, 'utf8')) as RunManifest;
  } catch {
    return null;
  }
}

/** A folder's conflict with this config: null if it is empty, new, or holds this same run. */
export async function runFolderConflict(config: { out: string }): Promise<string | null> {
  const m = await readManifest(config.out);
  if (m === null) {
    if (existsSync(paths(config.out).run)) return `${paths(config.out).run} exists but is not a brainlatent run manifest`;
    return null;
  }
  const hash = configHash(config);
  if (m.configHash !== hash) {
    return `run folder ${config.out} holds another run's outputs (config ${m.configHash}, this config ${hash}); use another --out, or --force to replace them`;
  }
  return null;
}

export async function writeManifest(config: { out: string }, versions: Record<string, string>): Promise<void> {
  await mkdir(config.out, { recursive: true });
  const m: RunManifest<unknown> = { format: 'brainlatent-run', version: 1, configHash: configHash(config), createdAt: new Date().toISOString(), config, versions };
  await writeFile(paths(config.out).run, JSON.stringify(m, null, 2));
}

/** A stage is done when its marker matches the config and all its outputs exist. */
export async function stageDone(config: { out: string }, stage: string): Promise<boolean> {
  const p = paths(config.out).stage(stage);
  if (!existsSync(p)) return false;
  try {
    const m = JSON.parse(await readFile(p, 'utf8')) as StageMarker;
    return m.configHash === configHash(config) && m.outputs.every((o) => existsSync(join(config.out, o)));
  } catch {
    return false;
  }
}

export async function readStageMarker(config: { out: string }, stage: string): Promise<StageMarker | null> {
  try {
    return JSON.parse(await readFile(paths(config.out).stage(stage), 'utf8')) as StageMarker;
  } catch {
    return null;
  }
}

export async function markStage(config: { out: string }, marker: Omit<StageMarker, 'configHash' | 'finishedAt'>): Promise<void> {
  await mkdir(join(config.out, 'stages'), { recursive: true });
  const m: StageMarker = { ...marker, configHash: configHash(config), finishedAt: new Date().toISOString() };
  await writeFile(paths(config.out).stage(marker.stage), JSON.stringify(m, null, 2));
}

/** --force: forget every stage (outputs are overwritten as the stages run again). */
export async function clearStages(out: string): Promise<void> {
  await rm(join(out, 'stages'), { recursive: true, force: true });
}
