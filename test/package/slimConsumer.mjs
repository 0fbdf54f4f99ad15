// Runs inside a fresh consumer project that installed the packed tarball with --omit=optional
// (scripts/consumer-check.mjs --slim): the library works without its optional dependencies, and what
// needs one says which and how to install it, with the pins of the package's own package.json.
//   node slimConsumer.mjs
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { getBatchStatus, MissingDependencyError, RidgeCV } from 'brainlatent';

// (the package exports no ./package.json: the consumer project's own node_modules, where npm put it)
const pkgDir = join(process.cwd(), 'node_modules', 'brainlatent');
const pins = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).optionalDependencies;
const install = (...names) => `npm install ${names.map((n) => `${n}@${pins[n]}`).join(' ')}`;

// 1. A ridge fit: y = 2·x0 − x2, recovered.
{
  let s = 7;
  const n = 60, p = 3;
  const x = new Float32Array(n * p).map(() => (s = (s * 48271) % 2147483647) / 2147483647 - 0.5);
  const y = new Float32Array(n).map((_, i) => 2 * x[i * p] - x[i * p + 2]);
  const model = await new RidgeCV({ alphas: [1e-3, 1] }).fit({ data: x, rows: n, cols: p }, { data: y, rows: n, cols: 1 });
  const coef = Array.from(model.coef.data, (v) => Math.round(v * 100) / 100);
  assert.deepEqual(coef, [2, 0, -1]);
  console.log(`ridge: fit without the optional dependencies, coefficients ${JSON.stringify(coef)}`);
}

// 2. The batch queues on Redis: refused before any connection, naming bullmq and ioredis.
{
  const e = await getBatchStatus('b', { redis: 'redis://127.0.0.1:1' }).catch((x) => x);
  assert.ok(e instanceof MissingDependencyError, `getBatchStatus: expected a MissingDependencyError, got ${e}`);
  assert.equal(e.install, install('bullmq', 'ioredis'));
  console.log(`batch --redis: ${e.message}`);
}

// 3. The report charts (vega, vega-lite), through the module that renders them.
{
  const { renderVegaLiteSvg } = await import(pathToFileURL(join(pkgDir, 'dist', 'charts', 'vegaSvg.js')).href);
  const e = await renderVegaLiteSvg({ mark: 'point', data: { values: [] } }).catch((x) => x);
  assert.ok(e instanceof MissingDependencyError, `renderVegaLiteSvg: expected a MissingDependencyError, got ${e}`);
  assert.equal(e.install, install('vega', 'vega-lite'));
  console.log(`charts: ${e.message}`);
}
