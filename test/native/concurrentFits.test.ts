/**
 * Concurrent engine jobs take turns at BLAS (native/core/include/brainlatent/blas_turn.h): threaded OpenBLAS spun
 * when several jobs called it at once (four per-fold-primal fits took 64 s on two cores against 0.9 s for one), so
 * each BLAS/LAPACK call now holds the process's turn. Four fits on four routes at once, interleaving call by call,
 * give the same bits as each fit alone: every call still has all of BLAS's threads, in the same order within a fit.
 */
import { expect, it } from 'vitest';

import { RidgeCV } from '../../ts/ridge/RidgeCV.js';
import { planted } from '../helpers/random.js';

const SOLVERS = ['per-fold-primal', 'per-fold-kernel', 'exact-primal', 'exact-kernel'] as const;

/** What a fit returns that its computation decides, as plain arrays (toEqual then compares them bit for bit). */
const outcome = (m: Awaited<ReturnType<RidgeCV['fit']>>) => ({
  route: m.info?.route,
  coef: Array.from(m.coef.data),
  intercept: Array.from(m.intercept),
  bestAlphas: Array.from(m.bestAlphas),
  cvScores: Array.from(m.cvScores.data),
});

it('four fits on four routes at once give the bits each gives alone', async () => {
  // (560 features: the primal routes' eigendecompositions take linalg's blocked path, from 512, one turn per panel)
  const { x, y } = planted(300, 560, 40, 23);
  const fit = (solver: (typeof SOLVERS)[number]) => new RidgeCV({ alphas: [1, 10, 100, 1000], folds: 5, solver }).fit(x, y);
  const alone = [];
  for (const solver of SOLVERS) alone.push(outcome(await fit(solver)));
  const together = (await Promise.all(SOLVERS.map(fit))).map(outcome);
  expect(together.map((o) => o.route)).toEqual(['primal', 'kernel', 'primal', 'kernel']);
  for (let i = 0; i < SOLVERS.length; i++) expect(together[i], SOLVERS[i]).toEqual(alone[i]);
  // (the routes differ in their last bits: four different computations interleaved, not one repeated)
  expect(alone[0].coef).not.toEqual(alone[1].coef);
});
