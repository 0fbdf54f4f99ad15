/**
 * Child process of the ridge and encoding benches: loads the .npy files, fits, predicts, prints one
 * JSON line (peak RSS is this process's). Arguments: dir nAlphas folds [cvMethod] [groupSize], where a
 * group size > 0 puts consecutive rows in groups of that size (CV folds grouped by image).
 */
import { readMatrixNpy, readNpy } from '../io/npy.js';
import { nativeSync, useEngineArrayAllocator } from '../native/call.js';
import { RidgeCV } from '../ridge/RidgeCV.js';
import { logspace } from '../ridge/alphas.js';
import { heldOutR2 } from './ridgeData.js';

const [dir, nAlphas, folds, cvMethod, groupSize] = process.argv.slice(2);
useEngineArrayAllocator();
// (the bench's --threads: its processes get the count by environment, bench/ridge.ts threadEnv)
if (process.env.BRAINLATENT_BENCH_THREADS) nativeSync((b) => b.setThreads(Number(process.env.BRAINLATENT_BENCH_THREADS)));
const xTrain = await readMatrixNpy(`${dir}/x_train.npy`, 'X train');
const yTrain = await readMatrixNpy(`${dir}/y_train.npy`, 'Y train');
const xTest = await readMatrixNpy(`${dir}/x_test.npy`, 'X test');
const yTest = await readMatrixNpy(`${dir}/y_test.npy`, 'Y test');
const signal = (await readNpy(`${dir}/signal.npy`)).data as Uint8Array;
const groups = Number(groupSize ?? 0) > 0 ? Int32Array.from({ length: xTrain.rows }, (_, i) => Math.floor(i / Number(groupSize))) : undefined;
const t0 = performance.now();
const model = await new RidgeCV({
  alphas: logspace(1e1, 1e7, Number(nAlphas)),
  folds: Number(folds),
  groups,
  cvMethod: (cvMethod ?? 'auto') as 'auto' | 'per-fold' | 'exact',
}).fit(xTrain, yTrain);
const seconds = (performance.now() - t0) / 1000;
const pred = model.predict(xTest);
console.log(
  JSON.stringify({
    seconds,
    test_r2: heldOutR2(pred.data, yTest.data, yTest.rows, yTest.cols, signal),
    alphas: Array.from(model.bestAlphas),
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    threads: nativeSync((b) => b.getThreads()),
    info: model.info,
  }),
);
