/**
 * Banded ridge benchmark: BandedRidgeCV (standardised X, as encode's banded fits) against a plain numpy version of the
 * same protocol (bench/numpy_banded.py: himalaya's random search, per γ and fold an eigendecomposition and every
 * alpha's held-out R², float64 eigh, float32 GEMMs), on planted-map data split into bands, measured in the same run.
 * The script searches the engine's own candidates γ (gammas.npy, written by the engine's worker) on its folds
 * (folds.npy), so both choices can be compared target by target: the same alpha, the same γ (near-ties between
 * candidates make γ differ more often than alpha). Each fit runs in a fresh process, the engine's and numpy's
 * alternated `repeats` times; the median of each is reported. Appends a record to bench/results/banded.jsonl.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { InvalidArgumentError } from '../errors.js';
import { checkInteger } from '../ridge/options.js';
import { readNpy, writeNpy } from '../io/npy.js';
import { packageRoot } from '../native/binding.js';
import { nativeSync } from '../native/call.js';
import { logspace } from '../ridge/alphas.js';
import { appendBenchRecord } from './benchRecord.js';
import { kernelsLine } from './blasKernels.js';
import { plantedData } from './ridgeData.js';
import { threadEnv } from './ridge.js';

export interface BandedBenchShape {
  name: string;
  /** Samples (rows). */
  n: number;
  /** Columns of each band, in order. */
  bands: number[];
  /** Targets. */
  t: number;
}

export const BANDED_SHAPES: BandedBenchShape[] = [
  // the demo world's banded.z+c (docs/encoding.md, "Benchmark"): 392 × (16,384 + 4,928) → 1,508 voxels
  { name: 'demo', n: 392, bands: [16384, 4928], t: 1508 },
  { name: 'medium', n: 1000, bands: [4096, 1024], t: 4096 },
];

export interface BandedBenchOptions {
  /** Names from BANDED_SHAPES, or shapes of one's own (the tests' tiny one). Default: 'demo'. */
  shapes?: (string | BandedBenchShape)[];
  /** The plain numpy script of the same protocol (default true). */
  numpy?: boolean;
  /** Alphas, log-spaced over 1e1..1e7 (default 7: one per decade). */
  alphas?: number;
  folds?: number;
  /** Random-search candidates γ (default 100, himalaya's and encode's). */
  candidates?: number;
  /** Fits of each, alternated, each in a fresh process; the median is reported (default 1). */
  repeats?: number;
  /** Threads of both fits (the engine's by BRAINLATENT_BENCH_THREADS, numpy's by OPENBLAS_NUM_THREADS: threadEnv); default: all cores. */
  threads?: number;
  python?: string;
  log?: (line: string) => void;
}

interface EngineRun {
  seconds: number;
  best_alpha: number[];
  best_gamma: number[];
  peak_rss_mb: number;
  threads: number;
  info: { route: string; solver: string; eigPrecision: string; gemmFlops: number; nGammas: number; refitGroups: number };
}
interface NumpyRun { seconds: number; gram: number; search: number; eigh: number; refit: number; refit_groups: number; candidates: number }

const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor((v.length - 1) / 2)];

const checkCount = (v: number, name: string, min: number): number => checkInteger(v, name, 'bench banded', min);

/** The shapes named (or given), each checked. */
function chosenShapes(list: (string | BandedBenchShape)[]): BandedBenchShape[] {
  return list.map((s) => {
    if (typeof s !== 'string') return s;
    const found = BANDED_SHAPES.find((b) => b.name === s);
    if (!found) throw new InvalidArgumentError(`bench banded --shapes: unknown shape '${s}' (expected ${BANDED_SHAPES.map((b) => b.name).join(', ')})`);
    return found;
  });
}

/** Writes planted-map data of `s` as band_<i>.npy (its columns of X) and y.npy; returns the band files. */
async function writeBandedData(dir: string, s: BandedBenchShape): Promise<string[]> {
  const p = s.bands.reduce((a, w) => a + w, 0);
  const d = plantedData({ name: s.name, nTrain: s.n, nTest: 0, p, t: s.t });
  const files: string[] = [];
  let col0 = 0;
  for (const [b, w] of s.bands.entries()) {
    const band = new Float32Array(s.n * w);
    for (let i = 0; i < s.n; i++) band.set(d.xTrain.subarray(i * p + col0, i * p + col0 + w), i * w);
    files.push(`band_${b}.npy`);
    await writeNpy(path.join(dir, files[b]), band, [s.n, w]);
    col0 += w;
  }
  await writeNpy(path.join(dir, 'y.npy'), d.yTrain, [s.n, s.t]);
  return files;
}

/** Fraction of targets where the two choices agree (alphas within float32's rounding, γ the same candidate). */
function agreement(a: ArrayLike<number>, b: ArrayLike<number>, relTol = 0): number {
  let same = 0;
  for (let j = 0; j < a.length; j++) if (Math.abs(a[j] - b[j]) <= relTol * Math.abs(a[j])) same++;
  return same / a.length;
}

export async function runBandedBench(opts: BandedBenchOptions = {}): Promise<unknown> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const nAlphas = checkCount(opts.alphas ?? 7, 'alphas', 1), folds = checkCount(opts.folds ?? 5, 'folds', 2);
  const candidates = checkCount(opts.candidates ?? 100, 'candidates', 1), repeats = checkCount(opts.repeats ?? 1, 'repeats', 1);
  if (opts.threads !== undefined) checkCount(opts.threads, 'threads', 1);
  const python = opts.python ?? '/usr/bin/python3';
  const shapes = chosenShapes(opts.shapes ?? ['demo']);
  const worker = path.join(path.dirname(fileURLToPath(import.meta.url)), 'bandedWorker.js');
  const script = path.join(packageRoot, 'bench', 'numpy_banded.py');
  // (the engine's worker sets its own thread count from BRAINLATENT_BENCH_THREADS, numpy's BLAS from OPENBLAS_NUM_THREADS)
  const env = threadEnv(opts.threads);
  log(kernelsLine());
  const alphas = logspace(1e1, 1e7, nAlphas);
  const results: Record<string, unknown>[] = [];
  for (const s of shapes) {
    const dir = mkdtempSync(path.join(tmpdir(), `bl-banded-${s.name}-`));
    try {
      log(
        `\n${s.name}: ${s.n} samples × (${s.bands.join(' + ')}) features in ${s.bands.length} bands → ${s.t} targets, ` +
          `${candidates} candidates γ, ${nAlphas} alphas 1e1..1e7, ${folds} folds` + (opts.threads ? `, ${opts.threads} thread(s)` : ''),
      );
      const bands = await writeBandedData(dir, s);
      const ours: EngineRun[] = [];
      const theirs: NumpyRun[] = [];
      for (let i = 0; i < repeats; i++) {
        ours.push(
          JSON.parse(
            execFileSync(process.execPath, [worker, dir, bands.join(','), 'y.npy', String(nAlphas), String(folds), String(candidates)], { env, maxBuffer: 1 << 28 }).toString(),
          ) as EngineRun,
        );
        if (opts.numpy === false) continue;
        // (gammas.npy and folds.npy: the engine's, written by its worker just before)
        theirs.push(
          JSON.parse(
            execFileSync(python, [script, dir, bands.join(','), 'y.npy', 'folds.npy', path.join(dir, 'gammas.npy'), `1e1:1e7:${nAlphas}`, dir], { env, maxBuffer: 1 << 28 }).toString(),
          ) as NumpyRun,
        );
      }
      const first = ours[0];
      const seconds = median(ours.map((r) => r.seconds));
      const gflops = first.info.gemmFlops / 1e9 / seconds;
      log(
        `  brainlatent BandedRidgeCV: ${seconds.toFixed(2)} s (median of ${ours.length}: ${ours.map((r) => r.seconds.toFixed(2)).join(', ')}), ` +
          `${gflops.toFixed(0)} GFLOP/s effective GEMM rate, peak RSS ${first.peak_rss_mb.toFixed(0)} MB [${first.info.solver}, eigh ${first.info.eigPrecision}, ${first.info.refitGroups} refit groups]`,
      );
      const row: Record<string, unknown> = {
        shape: s,
        loadAverage: os.loadavg(),
        brainlatent: {
          seconds, runs: ours.map((r) => r.seconds), gflops, peakRssMb: first.peak_rss_mb,
          solver: first.info.solver, route: first.info.route, eigPrecision: first.info.eigPrecision, refitGroups: first.info.refitGroups, threads: first.threads,
        },
      };
      if (theirs.length) {
        const npSeconds = median(theirs.map((r) => r.seconds));
        const npAlpha = (await readNpy(path.join(dir, 'best_alpha.npy'))).data as Float32Array;
        const npGamma = (await readNpy(path.join(dir, 'best_gamma.npy'))).data as Int32Array;
        // (the script's alphas are numpy's logspace of the same range: equal to the engine's up to float32's rounding)
        const alphaAgreement = agreement(Float32Array.from(first.best_alpha), npAlpha, 1e-6);
        const gammaAgreement = agreement(first.best_gamma, npGamma);
        const np = theirs[theirs.length - 1];
        log(
          `  numpy, same protocol (float32 GEMMs, float64 eigh): ${npSeconds.toFixed(2)} s (median of ${theirs.length}: ${theirs.map((r) => r.seconds.toFixed(2)).join(', ')}; ` +
            `Grams ${np.gram.toFixed(2)} s, search ${np.search.toFixed(2)} s of which eigh ${np.eigh.toFixed(2)} s, refit ${np.refit.toFixed(2)} s), ` +
            `same alpha for ${(100 * alphaAgreement).toFixed(1)}% of targets, same γ for ${(100 * gammaAgreement).toFixed(1)}%; fit ${(npSeconds / seconds).toFixed(2)}× faster`,
        );
        row.numpy = {
          seconds: npSeconds, runs: theirs.map((r) => r.seconds), gramSeconds: np.gram, searchSeconds: np.search, eighSeconds: np.eigh, refitSeconds: np.refit,
          refitGroups: np.refit_groups, alphaAgreement, gammaAgreement, fitSpeedup: npSeconds / seconds,
        };
      }
      results.push(row);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const record = { blasCore: nativeSync((b) => b.buildInfo().blasCore), nAlphas, alphas, folds, candidates, repeats, threads: opts.threads ?? null, results };
  const file = appendBenchRecord('banded', record);
  log(`\nrecorded in ${path.relative(process.cwd(), file)}`);
  return record;
}
