/**
 * bench:encoding — an encoding fit shaped like NSD's (8,859 training images, 16,384 features, 15,724
 * nsdgeneral voxels, 10 alphas, 5 grouped folds): wall time, GEMM rate and peak memory, with the same
 * protocol on a reduced size run by brainlatent and by scikit-learn (RidgeCV, alpha per target) for the
 * ratio. Appends a record to bench/results/encoding.jsonl.
 *
 *   npm run bench:encoding [-- --skip-full] [-- --reduced-only]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { packageRoot } from '../native/binding.js';
import { nativeSync } from '../native/call.js';
import { appendBenchRecord } from './benchRecord.js';
import { kernelsLine, sameKernelsEnv } from './blasKernels.js';
import { plantedData, writeBenchData, type RidgeBenchShape } from './ridgeData.js';

const FULL: RidgeBenchShape = { name: 'nsd-encoding', nTrain: 8859, nTest: 982, p: 16384, t: 15724 };
const REDUCED: RidgeBenchShape = { name: 'reduced', nTrain: 2000, nTest: 400, p: 4096, t: 2048 };
const N_ALPHAS = 10, FOLDS = 5, GROUP = 3;

interface Run {
  seconds: number;
  test_r2: number;
  alphas: number[];
  peak_rss_mb: number;
  info?: { gemmFlops: number; route: string; cvMethod: string; eigPrecision: string; secondsDecompose: number };
}

function ours(dir: string): Run {
  const worker = path.join(path.dirname(fileURLToPath(import.meta.url)), 'ridgeWorker.js');
  return JSON.parse(execFileSync(process.execPath, [worker, dir, String(N_ALPHAS), String(FOLDS), 'auto', String(GROUP)], { maxBuffer: 1 << 28, env: sameKernelsEnv() }).toString()) as Run;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const native = nativeSync((b) => b);
  const peak = native.sgemmGflops(2048, 3);
  const log = (l: string) => console.log(l);
  log(`SGEMM peak ${peak.toFixed(0)} GFLOP/s; BLAS ${native.buildInfo().blas}; threads ${native.getThreads()}`);
  log(kernelsLine());
  const record: Record<string, unknown> = { sgemmPeakGflops: peak, blasCore: native.buildInfo().blasCore, nAlphas: N_ALPHAS, folds: FOLDS, groupSize: GROUP };
  for (const s of args.includes('--skip-full') ? [REDUCED] : [REDUCED, FULL]) {
    const dir = mkdtempSync(path.join(tmpdir(), `bl-enc-${s.name}-`));
    try {
      log(`\n${s.name}: ${s.nTrain} training images, ${s.p} features, ${s.t} voxels, ${N_ALPHAS} alphas, ${FOLDS} grouped folds (groups of ${GROUP})`);
      const tg = performance.now();
      await writeBenchData(dir, s, plantedData(s));
      log(`  data generated in ${((performance.now() - tg) / 1000).toFixed(1)} s`);
      const r = ours(dir);
      const gflops = (r.info?.gemmFlops ?? 0) / 1e9 / r.seconds;
      log(`  brainlatent RidgeCV: ${r.seconds.toFixed(1)} s, ${gflops.toFixed(0)} GFLOP/s, peak RSS ${r.peak_rss_mb.toFixed(0)} MB, held-out R² ${r.test_r2.toFixed(4)} [${r.info?.route}, ${r.info?.cvMethod}, decomposition ${r.info?.eigPrecision} ${r.info?.secondsDecompose.toFixed(1)} s]`);
      const row: Record<string, unknown> = {
        shape: s,
        brainlatent: {
          seconds: r.seconds, gflops, peakRssMb: r.peak_rss_mb, testR2: r.test_r2, route: r.info?.route, cvMethod: r.info?.cvMethod,
          eigPrecision: r.info?.eigPrecision, secondsDecompose: r.info?.secondsDecompose,
        },
      };
      if (s === REDUCED) {
        const sk = JSON.parse(
          execFileSync('/usr/bin/python3', [path.join(packageRoot, 'bench', 'sklearn_ridge.py'), dir, String(N_ALPHAS)], { maxBuffer: 1 << 28, env: sameKernelsEnv() }).toString(),
        ) as Run;
        log(`  scikit-learn RidgeCV (alpha per target: LOO/GCV, float64): ${sk.seconds.toFixed(1)} s, peak RSS ${sk.peak_rss_mb.toFixed(0)} MB, held-out R² ${sk.test_r2.toFixed(4)}`);
        log(`  ratio scikit-learn / brainlatent: ${(sk.seconds / r.seconds).toFixed(2)}×`);
        row.sklearn = { seconds: sk.seconds, peakRssMb: sk.peak_rss_mb, testR2: sk.test_r2 };
        row.ratio = sk.seconds / r.seconds;
      }
      record[s.name] = row;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    if (args.includes('--reduced-only')) break;
  }
  const file = appendBenchRecord('encoding', record);
  log(`\nrecorded in ${path.relative(process.cwd(), file)}`);
}

await main();
