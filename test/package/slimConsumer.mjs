// Runs inside a fresh consumer project that installed the packed tarball with --omit=optional
// (scripts/consumer-check.mjs --slim): the library works without its optional dependencies, and what
// needs one says which and how to install it, with the pins of the package's own package.json.
// The reports of demo and encode are written without their charts and viewer, each a note with the install line.
//   node slimConsumer.mjs
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
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

// 4. The smallest demo and an encode on its world, through the installed CLI: both run to the end (exit 0) and
// write their reports, each chart (or the brain viewer) a note with the install line, and warn in one line.
{
  const cli = (...args) => spawnSync('npx', ['--no-install', 'brainlatent', ...args], { encoding: 'utf8', timeout: 300_000 });
  const warnings = (stderr) => stderr.split('\n').filter((l) => l.startsWith('warning: '));
  const demo = cli('demo', '--out', 'demo', '--image-size', '16', '--test-images', '2', '--seeds', '1', '--steps', '8'); // (fewer adds the compvis few-steps warning)
  assert.equal(demo.status, 0, `brainlatent demo exited ${demo.status ?? demo.signal}:\n${demo.stdout}${demo.stderr}`);
  const charts = install('vega', 'vega-lite');
  assert.deepEqual(warnings(demo.stderr).map((l) => l.includes(`not installed (optional dependencies of brainlatent); ${charts}, then`)), [true], demo.stderr);
  const report = readFileSync(join('demo', 'run', 'report.html'), 'utf8');
  const notes = report.match(/<div class="missing-dependency"[^]*?<\/div>/g) ?? [];
  assert.equal(notes.length, 6, 'the demo report: a note for each of its 6 charts');
  for (const n of notes) assert.ok(n.includes(`<code>${charts}</code>`), n);
  assert.ok(report.includes('<table id="metrics">') && !report.includes('<svg'));
  console.log(`demo: report.html with ${notes.length} chart notes; ${warnings(demo.stderr)[0]}`);

  const world = join(process.cwd(), 'demo', 'world');
  writeFileSync('enc.json', JSON.stringify({ out: 'enc', nsd: { root: join(world, 'nsd'), subject: 1 }, model: join(world, 'model'), imageSize: 16, featureSets: [{ name: 'z', kind: 'z' }] }));
  const enc = cli('encode', '--config', 'enc.json');
  assert.equal(enc.status, 0, `brainlatent encode exited ${enc.status ?? enc.signal}:\n${enc.stdout}${enc.stderr}`);
  const viewer = install('@niivue/niivue');
  assert.deepEqual(warnings(enc.stderr).map((l) => l.includes(`${viewer}, then`)), [true], enc.stderr);
  const encReport = readFileSync(join('enc', 'report.html'), 'utf8');
  assert.ok(encReport.includes('<b>Brain viewer not included.</b>') && encReport.includes(`<code>${viewer}</code>`));
  assert.ok(encReport.includes('src="mosaics/z.png"') && !existsSync(join('enc', 'report_files')));
  console.log(`encode: report.html with the viewer's note; ${warnings(enc.stderr)[0]}`);
}
