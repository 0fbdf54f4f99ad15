/**
 * What `--dry-run`'s estimates are made of, for reconstruct and encode alike: timing a short probe (the
 * fastest of a few runs), probe inputs that cost what real ones do, the work a subject's design implies, and
 * a RidgeCV fit's time at a real shape from a small fit.
 */
import { loadavg } from 'node:os';

import type { Matrix } from '../matrix.js';
import { availableSessions, sessionBetasFile, sessionTrialCount, type BetasFormatChoice } from '../nsd/betas.js';
import { nsdTrialTable, readNsdDesign } from '../nsd/expdesign.js';
import { DEFAULT_MAX_SESSION, parseSessions } from '../nsd/extract.js';
import { RidgeCV } from '../ridge/RidgeCV.js';
import type { RgbImages } from '../sd/tensor.js';

export interface StageEstimate {
  /** Estimated wall time of the stage on this machine; 0 for a stage that will be skipped. */
  seconds: number;
  /** What was measured and how it was scaled, in words. */
  basis: string;
}

export const SKIPPED: StageEstimate = { seconds: 0, basis: 'outputs exist: skipped' };

/**
 * A stage timed on one batch and scaled to the run: `load` + `perBatch` × n/k batches, with a basis whose arithmetic is the estimate's ("0.17 s per batch of 8 images × 50 batches (400
 * images)", not "a batch of 8 in 0.17 s × 400 images", which reads as 400 batches). A last, partial batch counts its
 * share, as in the seconds.
 */
export function batchedEstimate(o: { load?: number; perBatch: number; k: number; n: number; what?: string }): StageEstimate {
  const batches = o.n / o.k;
  const load = o.load ?? 0;
  const count = Number.isInteger(batches) ? String(batches) : batches.toFixed(1);
  return {
    seconds: load + o.perBatch * batches,
    basis:
      (load > 0 ? `model load ${load.toFixed(1)} s + ` : '') +
      `${o.perBatch.toFixed(2)} s per batch of ${o.k} images${o.what ? ` (${o.what})` : ''} × ${count} batches (${o.n} images)`,
  };
}

const now = () => performance.now() / 1000;

export async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = now();
  const r = await f();
  return [r, now() - t0];
}

/** The fastest of `n` runs: on a shared machine the minimum is the steadiest measure of the work itself. */
export async function fastest(f: () => Promise<unknown>, n = 2): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < n; i++) best = Math.min(best, (await timed(f))[1]);
  return best;
}

/** Deterministic standard-normal-ish values for probe inputs (the cost does not depend on them). */
export function noise(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 4294967296;
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = scale * (u + s / 4294967296 - 1) * 2.449; // sum of two uniforms, unit variance
  }
  return out;
}

export function randomImages(count: number, size: number, seed: number): RgbImages {
  const data = new Uint8Array(count * size * size * 3);
  const v = noise(data.length, seed);
  for (let i = 0; i < data.length; i++) data[i] = Math.max(0, Math.min(255, 128 + 50 * v[i]));
  return { data, count, height: size, width: size };
}

export interface DesignShape {
  sessions: number[];
  /** Distinct training images and their trials; distinct test images (all in the sessions). */
  trainImages: number;
  trainTrials: number;
  testImages: number;
  testIds: number[];
}

/** The work a subject's sessions imply, from the design (no betas read). */
export async function designShape(nsd: { root: string; subject: number; sessions: string | number[] | null; format: BetasFormatChoice }): Promise<DesignShape> {
  const sessions =
    nsd.sessions === null
      ? await availableSessions(nsd.root, nsd.subject, nsd.format, DEFAULT_MAX_SESSION)
      : typeof nsd.sessions === 'string'
        ? parseSessions(nsd.sessions)
        : [...new Set(nsd.sessions)].sort((a, b) => a - b); // (a list, as the extraction reads it: each session once, ascending)
  const file = await sessionBetasFile(nsd.root, nsd.subject, sessions[0], nsd.format);
  const T = await sessionTrialCount(file);
  const table = nsdTrialTable(await readNsdDesign(nsd.root), nsd.subject, sessions, T, file.path);
  const train = new Set<number>();
  const test = new Set<number>();
  let trainTrials = 0;
  table.imageId.forEach((id, k) => {
    if (table.test[k]) test.add(id);
    else {
      train.add(id);
      trainTrials++;
    }
  });
  return { sessions, trainImages: train.size, trainTrials, testImages: test.size, testIds: [...test] };
}

/** Rows of a probe fit: all of them up to about 25 M values of X (at least 4 per fold). */
export const probeRows = (rows: number, cols: number, folds: number) => Math.min(rows, Math.max(folds * 4, Math.floor(2.5e7 / Math.max(1, cols))));

/** Linear in items: the per-item cost and the fixed part from probes of `a` and `b` items (a < b). */
export function twoPoint(a: number, ta: number, b: number, tb: number): { per: number; fixed: number } {
  // at most the larger probe's average: on a busy machine a slow second probe would otherwise inflate it
  const per = Math.min(tb / b, Math.max(0, (tb - ta) / (b - a)));
  return { per, fixed: Math.max(0, ta - per * a) };
}

/** A probe fit's wall time and the engine's CV and refit seconds within it, at `targets` targets. */
export interface RidgeProbe { targets: number; wall: number; cvRefit: number }

/**
 * A RidgeCV fit's time at `targets` targets from probes at two target counts (a.targets < b.targets). The CV
 * and refit seconds are not all per target: the exact routes build each fold's (I − H) blocks and projection
 * stacks per alpha whatever the number of targets, so the per-target part is their slope between the two
 * probes (never above b's average, never negative) and the rest of b's wall time is fixed. Scaling b's CV and
 * refit in proportion to the targets, as this did, counted that fixed part once per 512 targets: 81 s
 * estimated for a 3749×4928 → 12,076-voxel fit that took 21–29 s.
 */
export function ridgeCost(a: RidgeProbe, b: RidgeProbe, targets: number): number {
  if (targets <= b.targets || b.targets <= a.targets) return b.wall;
  const { per } = twoPoint(a.targets, a.cvRefit, b.targets, b.cvRefit);
  return Math.max(0, b.wall - per * b.targets) + per * targets;
}

/**
 * A RidgeCV fit's time at the real (rows × cols) shape for `targets` targets, from probe fits on random data
 * with at most 512 targets and with a quarter of those (`ridgeCost`). Rows are capped to keep the probe short;
 * time is then scaled by the engine's flop model of the two shapes (`RidgeCV.costModel`). Linear in rows, as
 * this scaled it before, holds for the primal route of a tall problem; the kernel route that NSD's encoding fits
 * take (8,859 images, 16,384 features) grows with rows squared and cubed, and was estimated 5.8× where it is ~25×.
 */
export async function ridgeEstimate(rows: number, cols: number, targets: number, alphas: number[], folds: number, signal?: AbortSignal): Promise<StageEstimate> {
  const n = probeRows(rows, cols, folds);
  const x: Matrix = { data: noise(n * cols, 7), rows: n, cols };
  const t = Math.min(targets, 512);
  const ridge = new RidgeCV({ alphas, folds, standardize: true });
  const probeAt = async (tp: number): Promise<RidgeProbe> => {
    const y: Matrix = { data: noise(n * tp, 11), rows: n, cols: tp };
    let best: RidgeProbe = { targets: tp, wall: Infinity, cvRefit: Infinity };
    for (let k = 0; k < 2; k++) {
      const [model, wall] = await timed(() => ridge.fit(x, y, { signal }));
      const i = model.info;
      // (without the engine's phase times, all of it counts as per target)
      const cvRefit = i ? i.secondsCv + i.secondsRefit : wall;
      if (wall < best.wall) best = { targets: tp, wall, cvRefit };
    }
    return best;
  };
  await ridge.fit(x, { data: noise(n * t, 11), rows: n, cols: t }, { signal }); // warm-up: thread pool, first allocations
  const b = await probeAt(t);
  const a = targets > t ? await probeAt(Math.max(1, Math.floor(t / 4))) : b;
  const scale = rows > n ? ridge.costModel(rows, cols, targets).flops / ridge.costModel(n, cols, targets).flops : 1;
  return {
    seconds: ridgeCost(a, b, targets) * scale,
    basis:
      `a ridge probe ${n}×${cols} → ${t} targets` +
      (targets > t ? ` (and → ${a.targets}), its CV and refit time per target scaled to ${targets} targets` : '') +
      (rows > n ? ` and ${rows} rows (×${scale.toFixed(1)} by the engine's flop model)` : ''),
  };
}

/** Seconds as the plans print them. */
export function formatSeconds(s: number): string {
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 600) return `${Math.round(s)} s`;
  if (s < 36_000) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** The load average (1, 5, 15 min) the estimates were measured under: probes on a busy machine run slow. */
export function loadAverage(): string {
  return loadavg()
    .map((v) => v.toFixed(2))
    .join(' ');
}
