/**
 * Results past Node's limit for memory handed over from native code (buffer.constants.MAX_LENGTH, 4 GiB on Node 20)
 * are copied into an ArrayBuffer of JS's: handed over, Node refused them after running their finalizer, and
 * node-addon-api freed them again, a double free that ended the process ("free(): double free detected", exit 134)
 * after a RidgeCV fit of 32,800 × 32,800 coefficients (review s35-r6). Here the limit is set low
 * (BRAINLATENT_MAX_EXTERNAL_BYTES), so that small results take that path, and their values are checked.
 */
import { pathToFileURL } from 'node:url';

import { describe, expect, it } from 'vitest';

import { distModule } from '../helpers/dist.js';
import { runModule } from '../helpers/nodeChild.js';

describe('results past the limit for memory handed over from native code', () => {
  it('are copied whole: a fit, a prediction and a filled output past it equal those under it', async () => {
    const script = `
      const { RidgeCV } = await import(${JSON.stringify(pathToFileURL(distModule('ridge/RidgeCV')).href)});
      let s = 7;
      const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
      const matrix = (rows, cols) => ({ data: Float32Array.from({ length: rows * cols }, rand), rows, cols });
      // coefficients of 700 × 800 floats: 2.2 MB, past the 1 MiB copied anyway and past the 2 MiB limit set
      const x = matrix(120, 700), y = matrix(120, 800);
      const model = await new RidgeCV({ alphas: [1, 10, 100], folds: 3 }).fit(x, y);
      const pred = await model.predictAsync(matrix(900, 700));
      let sum = 0;
      for (const v of model.coef.data) sum += v;
      let psum = 0;
      for (const v of pred.data) psum += v;
      // an output the engine fills (new_result): 700,000 Philox normals, 2.8 MB
      const { binding } = await import(${JSON.stringify(pathToFileURL(distModule('native/binding')).href)});
      const noise = binding().philoxNormal(1, 0, 0, 0, 700000);
      let nsum = 0;
      for (const v of noise) nsum += v;
      process.stdout.write(JSON.stringify({ coef: model.coef.data.length, sum, pred: pred.data.length, psum, nsum, copies: binding().largeResultCopies() }));
    `;
    const under = await runModule(script, 120_000);
    const past = await runModule(script, 120_000, { ...process.env, BRAINLATENT_MAX_EXTERNAL_BYTES: String(2 * 2 ** 20) });
    expect(under.status, under.stderr).toBe(0);
    expect(past.status, past.stderr).toBe(0);
    const { copies: copiesUnder, ...a } = JSON.parse(under.stdout), { copies: copiesPast, ...b } = JSON.parse(past.stdout);
    expect(a.coef).toBe(700 * 800);
    expect(b).toEqual(a);
    // the path ran: none copied under Node's own limit; past the one set, the coefficients and the noise (a
    // prediction goes into an array of JS's, allocated by the caller)
    expect(copiesUnder).toBe(0);
    expect(copiesPast).toBe(2);
  }, 240_000);
});
