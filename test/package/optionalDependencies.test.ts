/**
 * The optional dependencies (`npm install brainlatent --omit=optional`): the loader's MissingDependencyError names
 * the feature and package.json's pins; the import checker refuses a static import of one; and the compiled package,
 * run beside a node_modules that lacks every optional package (a slim install's layout), fits a ridge model and
 * prints its help, while `serve`, `batch … --redis`, `worker` and the report charts fail with one line that is the
 * install command.
 */
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { MissingDependencyError } from '../../ts/errors.js';
import { installCommand, isMissingPackage, loadOptional, onnxruntimeNodeInstallCommand, onnxruntimeNodeInstallLine, OPTIONAL_PACKAGES } from '../../ts/optionalDependencies.js';
import { distModule } from '../helpers/dist.js';
import { runCommand } from '../helpers/nodeChild.js';

interface Manifest {
  dependencies: Record<string, string>;
  optionalDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
}
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as Manifest;
const pin = (name: string) => `${name}@${pkg.optionalDependencies[name] ?? pkg.peerDependencies[name]}`;

/** Node's own error for a package that is not there (as `import()` throws it). */
const notFound = (name: string) => Object.assign(new Error(`Cannot find package '${name}' imported from /app/node_modules/brainlatent/dist/x.js`), { code: 'ERR_MODULE_NOT_FOUND' });

describe('the loader', () => {
  it('knows every optional dependency of package.json, and only those', () => {
    expect(Object.keys(OPTIONAL_PACKAGES).sort()).toEqual(Object.keys(pkg.optionalDependencies).sort());
    // the pins stay exact
    for (const v of Object.values(pkg.optionalDependencies)) expect(v).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it("fastify stays a regular dependency (as optional, npm 11 on Node 20 drops it: light-my-request's cookie declares Node 22)", () => {
    expect(pkg.dependencies.fastify).toBeDefined();
    expect(pkg.optionalDependencies.fastify).toBeUndefined();
  });

  it('a missing package is a MissingDependencyError naming the feature and the install command with the pins', async () => {
    const e = await loadOptional('batch queues on Redis', { bullmq: () => Promise.reject(notFound('bullmq')), ioredis: () => Promise.reject(notFound('ioredis')) }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(MissingDependencyError);
    const m = e as MissingDependencyError;
    expect(m.code).toBe('MissingDependency');
    expect(m.packages).toEqual(['bullmq', 'ioredis']);
    expect(m.install).toBe(`npm install ${pin('bullmq')} ${pin('ioredis')}`);
    expect(m.install).toBe('npm install bullmq@6.7.0 ioredis@6.0.0');
    expect(m.message).toBe(
      'batch queues on Redis needs bullmq and ioredis, which are not installed (optional dependencies of brainlatent): npm install bullmq@6.7.0 ioredis@6.0.0',
    );
  });

  it('names only the missing ones; a present package is loaded', async () => {
    const e = (await loadOptional('report charts', { vega: () => Promise.resolve({}), 'vega-lite': () => Promise.reject(notFound('vega-lite')) }).catch((x: unknown) => x)) as MissingDependencyError;
    expect(e.install).toBe(`npm install ${pin('vega-lite')}`);
    await expect(loadOptional('report charts', { vega: () => Promise.resolve({ v: 1 }) })).resolves.toEqual({ vega: { v: 1 } });
  });

  it("a package's own missing dependency, or any other failure, is not reported as the package missing", async () => {
    expect(isMissingPackage(notFound('cron-parser'), 'bullmq')).toBe(false);
    expect(isMissingPackage(notFound('vega-lite'), 'vega')).toBe(false);
    expect(isMissingPackage(notFound('@fastify/swagger'), '@fastify/swagger')).toBe(true);
    expect(isMissingPackage(Object.assign(new Error("Cannot find module 'prom-client'\nRequire stack: …"), { code: 'MODULE_NOT_FOUND' }), 'prom-client')).toBe(true);
    const broken = new SyntaxError('Unexpected token');
    await expect(loadOptional('x', { vega: () => Promise.reject(broken) })).rejects.toBe(broken);
    await expect(loadOptional('x', { vega: () => Promise.reject(notFound('vega-util')) })).rejects.toThrow("Cannot find package 'vega-util'");
  });

  it("install commands come from package.json's pins, onnxruntime-node's from peerDependencies", () => {
    expect(installCommand(['@fastify/swagger', 'prom-client'])).toBe(`npm install ${pin('@fastify/swagger')} ${pin('prom-client')}`);
    expect(onnxruntimeNodeInstallCommand()).toBe(`npm install onnxruntime-node@${pkg.peerDependencies['onnxruntime-node']}`);
    // the hints (preflight, demo, no ONNX Runtime library) skip its post-install: npm 11 runs it, and it downloads
    // CUDA binaries from NuGet, failing offline
    expect(onnxruntimeNodeInstallLine()).toBe(`ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node@${pkg.peerDependencies['onnxruntime-node']}`);
    for (const file of ['ts/pipeline/preflight.ts', 'ts/cli/commands/demo.ts', 'ts/sd/native.ts']) {
      expect(readFileSync(file, 'utf8'), file).not.toContain('onnxruntimeNodeInstallCommand');
    }
    expect(() => installCommand(['left-pad'])).toThrow(/pins no version of 'left-pad'/);
  });
});

describe('scripts/check-imports.mjs', () => {
  it('refuses a static value import, or an import() outside the loader, of an optional package', async () => {
    const { packageImportProblems } = (await import(pathToFileURL(resolve('scripts/check-imports.mjs')).href)) as {
      packageImportProblems: (rel: string, text: string) => string[];
    };
    expect(packageImportProblems('charts/x.ts', "import { parse } from 'vega';\n")).toEqual([
      "charts/x.ts imports 'vega' statically, an optional dependency (absent after --omit=optional): load it through ts/optionalDependencies.ts (`import type` is fine)",
    ]);
    expect(packageImportProblems('server/x.ts', "import swagger from '@fastify/swagger';\n")).toHaveLength(1);
    expect(packageImportProblems('batch/x.ts', "import { Queue, type Job } from 'bullmq';\n")).toHaveLength(1);
    expect(packageImportProblems('batch/x.ts', "\nconst { Queue } = await import('bullmq');\n")).toEqual([
      "batch/x.ts loads 'bullmq' itself, an optional dependency: load it through ts/optionalDependencies.ts",
    ]);
    // type-only imports are erased; the loader module is where the imports live
    expect(packageImportProblems('batch/x.ts', "import type { Queue } from 'bullmq';\n")).toEqual([]);
    expect(packageImportProblems('optionalDependencies.ts', "const m = () => import('bullmq');\n")).toEqual([]);
    // regular dependencies are fine, unknown packages are not
    expect(packageImportProblems('a.ts', "import Fastify from 'fastify';\n")).toEqual([]);
    expect(packageImportProblems('a.ts', "import x from 'left-pad';\n")).toHaveLength(1);
  });
});

/**
 * The packages the public typings (every .d.ts reachable from the entry points '.', './ridge' and './server') name, each with
 * the files that name it: import/export … from '…', import('…'), /// <reference types="…" />.
 */
function packagesNamedByTheTypings(): { files: string[]; named: Map<string, string[]> } {
  distModule('index');
  const exportsMap = JSON.parse(readFileSync('package.json', 'utf8')).exports as Record<string, string | { types: string }>;
  const specifiers = /(?:\bfrom\s+|\bimport\(\s*|<reference\s+types=)['"]([^'"]+)['"]/g;
  const seen = new Set<string>();
  const named = new Map<string, string[]>();
  // (the entry points with typings: './package.json' maps to a plain file)
  const stack = Object.values(exportsMap).flatMap((e) => (typeof e === 'string' ? [] : [resolve(e.types)]));
  expect(stack.map((f) => f.slice(resolve('.').length + 1))).toEqual(['dist/index.d.ts', 'dist/ridge/index.d.ts', 'dist/server/index.d.ts']);
  while (stack.length) {
    const file = stack.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    // (comments may quote an import: `export * from './sd/index.js'`)
    const code = readFileSync(file, 'utf8').replace(/\/\*[^]*?\*\//g, '').replace(/^\s*\/\/(?!\/).*$/gm, '');
    for (const [, spec] of code.matchAll(specifiers)) {
      if (spec.startsWith('.')) stack.push(resolve(file, '..', spec.replace(/\.js$/, '.d.ts')));
      else named.set(spec, [...(named.get(spec) ?? []), file.slice(resolve('.').length + 1)]);
    }
  }
  return { files: [...seen], named };
}

const packageOf = (s: string) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]);

describe('the public typings', () => {
  it("no .d.ts reachable from the entry points ('.', './ridge' and './server') names an optional package", () => {
    const { files, named } = packagesNamedByTheTypings();
    const optional = Object.keys(pkg.optionalDependencies);
    expect(files.length).toBeGreaterThan(50);
    expect([...named].filter(([spec]) => optional.includes(packageOf(spec))).map(([spec, by]) => `${by[0]} names '${spec}'`)).toEqual([]);
  });

  it('name only packages whose own typings compile in a consumer with `types: ["node"]` (not onnx-proto: it needs the global Long of @types/long)', () => {
    // onnx-proto's onnx.d.ts uses `Long` as a global, which only an automatically included @types/long declares: a
    // consumer that lists its types (`"types": ["node"]`, skipLibCheck false) got 24 errors `Cannot find name 'Long'`.
    // Each package here was compiled that way (scripts/consumer-check.mjs); a new one must be too before it joins.
    const { named } = packagesNamedByTheTypings();
    const packages = [...new Set([...named.keys()].filter((s) => !s.startsWith('node:')).map(packageOf))].sort();
    // ('node': the entry typings' `/// <reference types="node" />`, @types/node, which README asks of a consumer; not
    // onnxruntime-common, whose own typings need lib DOM: referenceImg2Img takes a structural session type)
    expect(packages).toEqual(['@sinclair/typebox', 'ajv', 'fastify', 'node']);
  });
});

// The compiled package beside a node_modules without the optional packages: what `--omit=optional` installs.
describe('without the optional packages (dist/, a slim node_modules)', () => {
  let dir = '';
  beforeAll(() => {
    distModule('optionalDependencies');
    distModule('cli/main');
    dir = mkdtempSync(join(tmpdir(), 'bl-slim-'));
    cpSync('dist', join(dir, 'dist'), { recursive: true });
    copyFileSync('package.json', join(dir, 'package.json'));
    symlinkSync(resolve('build'), join(dir, 'build'));
    const hidden = new Set(Object.keys(pkg.optionalDependencies));
    const from = realpathSync('node_modules');
    const to = join(dir, 'node_modules');
    mkdirSync(to);
    for (const e of readdirSync(from)) {
      if (!e.startsWith('@')) {
        if (!hidden.has(e)) symlinkSync(join(from, e), join(to, e));
        continue;
      }
      mkdirSync(join(to, e));
      for (const c of readdirSync(join(from, e))) if (!hidden.has(`${e}/${c}`)) symlinkSync(join(from, e, c), join(to, e, c));
    }
    mkdirSync(join(dir, 'root'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const cli = (...args: string[]) => runCommand(process.execPath, [join(dir, 'dist', 'cli', 'main.js'), ...args], { cwd: dir, hangLimitMs: 60_000 });
  const node = (code: string) => runCommand(process.execPath, ['--input-type=module', '-e', code], { cwd: dir, hangLimitMs: 60_000 });

  it('fits a ridge model through the library and prints the help', async () => {
    const fit = await node(`
      import { RidgeCV } from '${pathToFileURL(join(dir, 'dist', 'index.js')).href}';
      const n = 40, p = 3;
      let s = 7;
      const x = new Float32Array(n * p).map(() => ((s = (s * 48271) % 2147483647) / 2147483647) - 0.5);
      const y = new Float32Array(n).map((_, i) => 2 * x[i * p] - x[i * p + 2]);
      const m = await new RidgeCV({ alphas: [1e-3, 1] }).fit({ data: x, rows: n, cols: p }, { data: y, rows: n, cols: 1 });
      console.log(JSON.stringify(Array.from(m.coef.data, (v) => Math.round(v * 100) / 100)));`);
    expect(fit.stderr).toBe('');
    expect(JSON.parse(fit.stdout)).toEqual([2, 0, -1]);
    const help = await cli('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/serve/);
  });

  it('serve, batch --redis and worker exit 1 with one line: the feature and the pinned install command', async () => {
    const redis = `npm install ${pin('bullmq')} ${pin('ioredis')}`;
    const cases: [string[], string][] = [
      [['serve', '--port', '0', '--root', join(dir, 'root')], `npm install ${pin('@fastify/swagger')} ${pin('prom-client')}`],
      [['batch', 'status', '--redis', 'redis://127.0.0.1:1'], redis],
      [['worker', '--redis', 'redis://127.0.0.1:1'], redis],
    ];
    for (const [args, install] of cases) {
      const r = await cli(...args);
      expect(r.status, args.join(' ')).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines, args.join(' ')).toHaveLength(1);
      expect(lines[0]).toMatch(/^brainlatent: MissingDependencyError: .* needs .*, which are not installed \(optional dependencies of brainlatent\): npm install /);
      expect(lines[0].endsWith(`: ${install}`), lines[0]).toBe(true);
    }
  });

  // three runs (demo, encode, demo again), each with its hang limit: the test's timeout is their sum and a margin
  const RUN_HANG_MS = 240_000;
  // (the smallest demo: 16 px stimuli, 2 test images, 1 seed, 8 steps — fewer would add the compvis few-steps warning; then an encode of z on its world)
  it('demo and encode run to the end and write their reports, each chart or the viewer a note with the install line; one warning; installing the packages redoes the report alone', async () => {
    const run = (...args: string[]) => runCommand(process.execPath, [join(dir, 'dist', 'cli', 'main.js'), ...args], { cwd: dir, hangLimitMs: RUN_HANG_MS });
    const warnings = (stderr: string) => stderr.split('\n').filter((l) => /^warning: /.test(l));
    const charts = `npm install ${pin('vega')} ${pin('vega-lite')}`;
    const demoArgs = ['demo', '--out', join(dir, 'demo'), '--image-size', '16', '--test-images', '2', '--seeds', '1', '--steps', '8'];
    const demo = await run(...demoArgs);
    expect(demo.status, demo.stderr).toBe(0);
    expect(warnings(demo.stderr)).toEqual([
      `warning: report.html written without its charts: vega and vega-lite are not installed (optional dependencies of brainlatent); ${charts}, then run the same reconstruct (or demo) again: only its report stage runs, now with the charts`,
    ]);
    const runDir = join(dir, 'demo', 'run');
    let html = readFileSync(join(runDir, 'report.html'), 'utf8');
    // the tables and images are there; each of the 2 decoders' 3 charts is a note naming it, with the install line
    expect(html).toContain('<table id="metrics">');
    expect(html).toMatch(/<img src="images\/\d{5}_000\.png"/);
    expect(html).not.toContain('<svg');
    const notes = html.match(/<div class="missing-dependency"[^]*?<\/div>/g) ?? [];
    expect(notes).toHaveLength(6);
    expect(notes[0]).toContain('<b>Chart not included.</b> It would show “z decoder: chosen α” (share of its');
    for (const n of notes) expect(n).toContain(`To add it: <code>${charts}</code>, then run the same reconstruct (or demo) again`);
    const marker = JSON.parse(readFileSync(join(runDir, 'stages', 'report.json'), 'utf8'));
    expect(marker.summary.missingDependencies.packages).toEqual(['vega', 'vega-lite']);

    // encode on the demo's world: the viewer is a note, the figures and tables are there, no NiiVue copied
    const world = join(dir, 'demo', 'world');
    writeFileSync(join(dir, 'enc.json'), JSON.stringify({ out: join(dir, 'enc'), nsd: { root: join(world, 'nsd'), subject: 1 }, model: join(world, 'model'), imageSize: 16, featureSets: [{ name: 'z', kind: 'z' }] }));
    const enc = await run('encode', '--config', join(dir, 'enc.json'));
    expect(enc.status, enc.stderr).toBe(0);
    const viewer = `npm install ${pin('@niivue/niivue')}`;
    expect(warnings(enc.stderr)).toEqual([
      `warning: report.html written without its brain viewer: @niivue/niivue is not installed (optional dependencies of brainlatent); ${viewer}, then run the same encode again: only its report stage runs, now with the viewer`,
    ]);
    html = readFileSync(join(dir, 'enc', 'report.html'), 'utf8');
    expect(html).toContain('<b>Brain viewer not included.</b> It would show every map over the subject’s anatomy');
    expect(html).toContain(`To add it: <code>${viewer}</code>`);
    expect(html).toContain('<img class="mosaic" src="mosaics/z.png"');
    expect(html).toContain('<table id="region-summary"');
    expect(html).not.toContain('niivue.umd.js');
    expect(html).not.toContain('id="viewer"');
    expect(existsSync(join(dir, 'enc', 'report_files'))).toBe(false);

    // vega and vega-lite installed: the same demo redoes its report stage alone, with the charts
    for (const name of ['vega', 'vega-lite']) symlinkSync(join(realpathSync('node_modules'), name), join(dir, 'node_modules', name));
    try {
      const again = await run(...demoArgs);
      expect(again.status, again.stderr).toBe(0);
      expect(warnings(again.stderr)).toEqual([]);
      expect(again.stdout).toMatch(/^img2img +skipped/m);
      expect(again.stdout).toMatch(/^report +ran/m);
      html = readFileSync(join(runDir, 'report.html'), 'utf8');
      expect(html.match(/<svg/g)).toHaveLength(6);
      expect(html).not.toContain('missing-dependency');
      expect(JSON.parse(readFileSync(join(runDir, 'stages', 'report.json'), 'utf8')).summary).toBeUndefined();
    } finally {
      for (const name of ['vega', 'vega-lite']) rmSync(join(dir, 'node_modules', name));
    }
  }, 3 * RUN_HANG_MS + 60_000);

  it("the report charts and the encoding report's viewer throw MissingDependencyError; a report's charts become notes", async () => {
    const r = await node(`
      const charts = await import('${pathToFileURL(join(dir, 'dist', 'charts', 'vegaSvg.js')).href}');
      const deps = await import('${pathToFileURL(join(dir, 'dist', 'optionalDependencies.js')).href}');
      const out = [];
      await charts.renderVegaLiteSvg({ mark: 'point', data: { values: [] } }).catch((e) => out.push([e.code, e.install]));
      try { deps.optionalPackageFile('@niivue/niivue', 'dist/niivue.umd.js', 'viewer'); } catch (e) { out.push([e.code, e.install]); }
      // every report's rule (reconstruct, encode, bench samplers): a note in each chart's place, naming it
      const parts = await import('${pathToFileURL(join(dir, 'dist', 'report', 'optionalParts.js')).href}');
      const spec = { title: { text: 'cost', subtitle: ['img/s'] }, mark: 'point', data: { values: [] } };
      const notes = await parts.chartsOrNotes([spec, { ...spec, title: 'order' }], 'run it again');
      out.push([notes.missing.packages, notes.html.map((h) => h.replace(/<[^>]+>/g, ''))]);
      console.log(JSON.stringify(out));`);
    expect(r.stderr).toBe('');
    const charts = `npm install ${pin('vega')} ${pin('vega-lite')}`;
    const note = (what: string) =>
      `Chart not included. It would show ${what}. It needs vega and vega-lite, optional dependencies of brainlatent that are not installed here. To add it: ${charts}, then run it again.`;
    expect(JSON.parse(r.stdout)).toEqual([
      ['MissingDependency', charts],
      ['MissingDependency', `npm install ${pin('@niivue/niivue')}`],
      [['vega', 'vega-lite'], [note('“cost” (img/s)'), note('“order”')]],
    ]);
  });
});
