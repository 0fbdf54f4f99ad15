/**
 * Child process of the banded bench: loads the bands and Y, fits BandedRidgeCV (standardised X, as encode's banded
 * fits), writes the candidates it searched (gammas.npy, float64 candidates × bands) and the fold of each row
 * (folds.npy) for bench/numpy_banded.py to search the same γ on the same folds, and prints one JSON line (peak RSS
 * is this process's). Arguments: dir band1.npy[,band2.npy...] y.npy nAlphas folds nIter
 */
import { readMatrixNpy, writeNpy } from '../io/npy.js';
import type { Matrix } from '../matrix.js';
import { nativeSync, useEngineArrayAllocator } from '../native/call.js';
import { BandedRidgeCV } from '../ridge/BandedRidgeCV.js';
import { logspace } from '../ridge/alphas.js';
import { assignFolds } from '../ridge/folds.js';

const [dir, bandList, yFile, nAlphas, folds, nIter] = process.argv.slice(2);
useEngineArrayAllocator();
// (the bench's --threads: bench/ridge.ts threadEnv)
if (process.env.BRAINLATENT_BENCH_THREADS) nativeSync((b) => b.setThreads(Number(process.env.BRAINLATENT_BENCH_THREADS)));
const spaces: Record<string, Matrix> = {};
for (const f of bandList.split(',')) spaces[f.replace(/\.npy$/, '')] = await readMatrixNpy(`${dir}/${f}`, `band ${f}`);
const y = await readMatrixNpy(`${dir}/${yFile}`, 'Y');
const t0 = performance.now();
const model = await new BandedRidgeCV({
  alphas: logspace(1e1, 1e7, Number(nAlphas)),
  folds: Number(folds),
  nIter: Number(nIter),
  standardize: true,
}).fit(spaces, y);
const seconds = (performance.now() - t0) / 1000;
await writeNpy(`${dir}/gammas.npy`, model.gammas, [model.gammas.length / model.nBands, model.nBands]);
await writeNpy(`${dir}/folds.npy`, assignFolds(y.rows, { folds: Number(folds) }, 'bench banded').folds, [y.rows]);
console.log(
  JSON.stringify({
    seconds,
    best_alpha: Array.from(model.bestAlpha),
    best_gamma: Array.from(model.bestGamma),
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    threads: nativeSync((b) => b.getThreads()),
    info: model.info,
  }),
);
