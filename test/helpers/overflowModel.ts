import { RidgeModel } from '../../ts/ridge/RidgeModel.js';

/**
 * Saves a ridge model (4 features → 2 targets) whose coefficients are finite, so it loads, but whose products
 * overflow float32 for ordinary inputs: its predictions are ±Inf, which the service must answer as a 500.
 */
export async function saveOverflowingRidgeModel(path: string): Promise<void> {
  const f = (n: number, v: number) => new Float32Array(n).fill(v);
  await new RidgeModel({
    coef: { data: f(4 * 2, 3e38), rows: 4, cols: 2 },
    intercept: f(2, 0),
    xMean: f(4, 0),
    xScale: f(4, 1),
    bestAlphas: f(2, 1),
    bestScores: f(2, 0),
    cvScores: { data: f(2, 0), rows: 1, cols: 2 },
    settings: { alphas: [1], nFolds: 2, foldKind: 'contiguous', score: 'r2', fitIntercept: true, standardize: false },
  }).save(path);
}
