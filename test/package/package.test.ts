/**
 * What a user of the installed package sees: every public name exported once, docs that link only to
 * files the package ships, bench records outside the package, and the install/loader rules. The full
 * install-as-a-dependency check (pack, fresh project, no compiler) is scripts/consumer-check.mjs in CI.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';

import ts from 'typescript';
import { afterEach, describe, expect, it } from 'vitest';

import { benchResultsDir } from '../../ts/bench/benchRecord.js';
import { buildInfo } from '../../ts/native/buildInfo.js';
import { packageRoot, shippedOrtLibrary } from '../../ts/native/binding.js';
import { commandOutput } from '../helpers/nodeChild.js';

const root = packageRoot;
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

describe('public API', () => {
  it('exports every name once (no star export hides another module\'s name)', () => {
    const program = ts.createProgram([path.join(root, 'ts', 'index.ts')], { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, noEmit: true });
    const checker = program.getTypeChecker();
    const index = program.getSourceFile(path.join(root, 'ts', 'index.ts'))!;
    // name → the distinct declarations that index.ts re-exports under it
    const seen = new Map<string, Set<ts.Symbol>>();
    const add = (name: string, sym: ts.Symbol) => {
      const target = sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym;
      if (!seen.has(name)) seen.set(name, new Set());
      seen.get(name)!.add(target);
    };
    for (const st of index.statements) {
      if (!ts.isExportDeclaration(st) || !st.moduleSpecifier) continue;
      const mod = checker.getSymbolAtLocation(st.moduleSpecifier);
      if (!mod) continue;
      if (!st.exportClause) for (const s of checker.getExportsOfModule(mod)) add(s.name, s);
      else if (ts.isNamedExports(st.exportClause)) {
        for (const el of st.exportClause.elements) add(el.name.text, checker.getSymbolAtLocation(el.name)!);
      }
    }
    const twice = [...seen].filter(([, decls]) => decls.size > 1).map(([name]) => name);
    expect(twice).toEqual([]);
    expect(seen.has('DEFAULT_ALPHAS') && seen.has('DEFAULT_DECODER_ALPHAS')).toBe(true);
    // what sizes a model file or SD folder takes, read without loading it
    expect(['readOnnxSignature', 'unetDeclaredSizes', 'OnnxSignature', 'OnnxTensorDecl', 'UnetDeclaredSizes'].filter((name) => !seen.has(name))).toEqual([]);
  });

  it('exports every function that docs/*.md calls by its bare name (`checkBatch(…)`)', async () => {
    // (docs/batch.md offered checkBatch(resolved) "from code", which the package did not export)
    const lib = { ...(await import('../../ts/index.js')), ...(await import('../../ts/server/index.js')) };
    // methods called by their bare name, and LAPACK routines
    const notLibrary = new Set(['defaultScheduler', 'encodeText', 'dsyevd']);
    const missing: string[] = [];
    for (const doc of readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md'))) {
      for (const m of readFileSync(path.join(root, 'docs', doc), 'utf8').matchAll(/`([a-z][A-Za-z0-9]+)\(/g)) {
        if (!notLibrary.has(m[1]) && !(m[1] in lib)) missing.push(`${doc}: ${m[1]}`);
      }
    }
    expect(missing).toEqual([]);
  });
});

describe('public types', () => {
  // Types that public signatures name but the entry points do not export yet: a consumer cannot name them in a
  // wrapper of its own. Empty: a type that a public signature starts to name fails here until it is exported.
  const NOT_YET_EXPORTED: string[] = [];

  it('exports every type that a public class, function or type names (brainlatent, brainlatent/ridge and brainlatent/server)', () => {
    const index = path.join(root, 'ts', 'index.ts');
    const ridge = path.join(root, 'ts', 'ridge', 'index.ts');
    const server = path.join(root, 'ts', 'server', 'index.ts');
    expect(Object.keys(pkg.exports)).toEqual(['.', './ridge', './server', './package.json']);
    const program = ts.createProgram([index, ridge, server], { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, noEmit: true });
    const checker = program.getTypeChecker();
    const resolve = (s: ts.Symbol) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
    const exportsOf = (e: string) => checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(e)!)!);
    const own = path.join(root, 'ts') + path.sep;
    /** type → a public name that uses it, for the types that `entries`' exports name and none of them exports */
    const missingFrom = (entries: string[]): Map<string, string> => {
      const exported = new Set<ts.Symbol>();
      for (const e of entries) for (const s of exportsOf(e)) exported.add(resolve(s));
      const missing = new Map<string, string>();
      const visit = (node: ts.Node, owner: string): void => {
        if (ts.isBlock(node)) return; // bodies are not part of the typings
        const ref = ts.isTypeReferenceNode(node) ? node.typeName : ts.isExpressionWithTypeArguments(node) ? node.expression : undefined;
        const sym = ref && checker.getSymbolAtLocation(ref);
        if (sym) {
          const target = resolve(sym);
          const decl = target.declarations?.[0];
          if (decl && decl.getSourceFile().fileName.startsWith(own) && !(target.flags & ts.SymbolFlags.TypeParameter) && !exported.has(target) && !missing.has(target.name)) {
            missing.set(target.name, owner);
          }
        }
        ts.forEachChild(node, (c) => visit(c, owner));
      };
      for (const s of exported) {
        for (const d of s.declarations ?? []) {
          if (ts.isClassDeclaration(d)) {
            d.heritageClauses?.forEach((h) => visit(h, s.name));
            for (const m of d.members) {
              if (ts.getCombinedModifierFlags(m as ts.Declaration) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected) || (m.name && ts.isPrivateIdentifier(m.name))) continue;
              visit(m, s.name);
            }
          } else if (ts.isFunctionDeclaration(d)) {
            d.parameters.forEach((p) => visit(p, s.name));
            if (d.type) visit(d.type, s.name);
          } else if (ts.isInterfaceDeclaration(d) || ts.isTypeAliasDeclaration(d)) visit(d, s.name);
          else if (ts.isVariableDeclaration(d) && d.type) visit(d.type, s.name);
        }
      }
      return missing;
    };
    // one name, one meaning: a service importing from several entry points must not get two types called the same
    const byName = new Map<string, Set<ts.Symbol>>();
    for (const e of [index, ridge, server]) {
      for (const s of exportsOf(e)) {
        if (!byName.has(s.name)) byName.set(s.name, new Set());
        byName.get(s.name)!.add(resolve(s));
      }
    }
    expect([...byName].filter(([, targets]) => targets.size > 1).map(([name]) => name)).toEqual([]);
    const missing = missingFrom([index, server]);
    const unexpected = [...missing].filter(([name]) => !NOT_YET_EXPORTED.includes(name)).map(([name, owner]) => `${name} (named by ${owner})`);
    expect(unexpected).toEqual([]);
    // the list shrinks: a name exported since must leave it
    expect(NOT_YET_EXPORTED.filter((name) => !missing.has(name))).toEqual([]);
    // brainlatent/ridge stands alone: a service that imports only it can name every type its classes name
    expect([...missingFrom([ridge])].map(([name, owner]) => `${name} (named by ${owner})`)).toEqual([]);
    // and the main entry exports everything it does, as the same declarations
    const main = new Set(exportsOf(index).map(resolve));
    expect(exportsOf(ridge).filter((s) => !main.has(resolve(s))).map((s) => s.name)).toEqual([]);
  });
});

describe('documentation', () => {
  const docs = ['README.md', ...readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  // What `npm pack` ships: package.json's files entries (a folder ships whole unless negated).
  const shipped = (rel: string) =>
    pkg.files.some((f: string) => !f.startsWith('!') && (rel === f || rel.startsWith(`${f}/`))) &&
    !pkg.files.some((f: string) => f.startsWith('!') && (rel === f.slice(1) || rel.startsWith(`${f.slice(1)}/`)));

  it('links only to files that ship with the package', () => {
    const bad: string[] = [];
    for (const doc of docs) {
      const text = readFileSync(path.join(root, doc), 'utf8');
      for (const m of text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        const target = m[1];
        if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
        const rel = path.relative(root, path.resolve(path.dirname(path.join(root, doc)), target)).split(path.sep).join('/');
        if (rel.startsWith('..') || !existsSync(path.join(root, rel)) || !shipped(rel)) bad.push(`${doc}: ${target}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it("cites no team reference notes and holds no notes to the team", () => {
    for (const doc of docs) {
      const text = readFileSync(path.join(root, doc), 'utf8');
      expect(text, doc).not.toMatch(/shared\/reference|\b(ridge|method|sd-onnx|nsd-data|services|style)\.md\b|for the lead|README text/);
    }
  });
});

/** What npm pack would put in the tarball (--ignore-scripts: no prepack build, so no prebuilds/; the rest is the same). */
let packed: Promise<string[]> | undefined;
function packedFiles(): Promise<string[]> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  packed ??= commandOutput('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, env, hangLimitMs: 100_000 }).then(
    (out) => (JSON.parse(out) as { files: { path: string }[] }[])[0].files.map((f) => f.path),
  );
  return packed;
}

describe('installed-package behaviour', () => {
  const saved = process.env.BRAINLATENT_BENCH_DIR;
  afterEach(() => {
    if (saved === undefined) delete process.env.BRAINLATENT_BENCH_DIR;
    else process.env.BRAINLATENT_BENCH_DIR = saved;
  });

  it('bench records go to the folder the user names, else bench/results/ in this checkout', () => {
    delete process.env.BRAINLATENT_BENCH_DIR;
    expect(benchResultsDir()).toBe(path.join(root, 'bench', 'results'));
    process.env.BRAINLATENT_BENCH_DIR = 'my-bench';
    expect(benchResultsDir()).toBe(path.resolve('my-bench'));
  });

  it('the checkout loads its own source build (node-gyp-build prefers build/Release over prebuilds/)', () => {
    const info = buildInfo();
    if (process.env.BRAINLATENT_ADDON) expect(info.origin).toBe('override');
    else {
      expect(info.origin).toBe('source');
      expect(info.addon).toBe(path.join(root, 'build', 'Release', 'brainlatent.node'));
    }
    expect(info.blas).toMatch(/BLAS|MKL|BLIS/);
  });

  it("ships the MIT licence package.json names, as LICENSE in the tarball's root", async () => {
    expect(pkg.license).toBe('MIT');
    const text = readFileSync(path.join(root, 'LICENSE'), 'utf8');
    expect(text).toMatch(/^MIT License\n\nCopyright \(c\) 2026 brainlatent contributors\n/);
    expect(text).toContain('THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND');
    expect(pkg.files).toContain('LICENSE');
    expect(await packedFiles()).toContain('LICENSE');
    // (the test's timeout above npm's hang limit: a hung npm is reported as hung, and killed, not left running)
  }, 120_000);

  it('ships THIRD-PARTY-NOTICES.md, which names every licence file of others that the package carries', async () => {
    // (ONNX Runtime's headers and library, static OpenBLAS and LAPACK, ISA-L's header and DejaVu's glyphs shipped with
    // licence files scattered over native/ and prebuilds/, and no list of them)
    const notices = readFileSync(path.join(root, 'THIRD-PARTY-NOTICES.md'), 'utf8');
    expect(pkg.files).toContain('THIRD-PARTY-NOTICES.md');
    const files = await packedFiles();
    expect(files).toContain('THIRD-PARTY-NOTICES.md');
    // each vendored folder ships with its licence, and the notices name both
    const vendored = readdirSync(path.join(root, 'native', 'third_party'));
    expect(vendored).toEqual(['isa-l', 'onnxruntime']);
    for (const dir of vendored) {
      expect(files).toContain(`native/third_party/${dir}/LICENSE`);
      expect(notices).toContain(`\`native/third_party/${dir}/LICENSE\``);
      expect(notices).toContain(`\`native/third_party/${dir}/`);
    }
    // the licence files prepack writes beside the binaries it puts in prebuilds/ (absent from a checkout's dry run)
    const { PREBUILT_NOTICES } = await import(path.join(root, 'scripts', 'prepack.mjs'));
    expect(Object.keys(PREBUILT_NOTICES)).toEqual(['openblas', 'onnxruntime']);
    for (const name of Object.values(PREBUILT_NOTICES)) expect(notices).toContain(`\`prebuilds/linux-x64/${name}\``);
    // the LAPACK routines inside static OpenBLAS, whose copyright file leaves them out: their notice in full
    expect(notices).toMatch(/## LAPACK[^]*1992-2022 The University of Tennessee[^]*Redistributions in binary form must reproduce[^]*POSSIBILITY OF SUCH DAMAGE/);
    // the font data's notice, in the module that ships it
    expect(files).toContain('ts/encoding/fontData.ts');
    expect(notices).toContain('`ts/encoding/fontData.ts`');
    expect(readFileSync(path.join(root, 'ts', 'encoding', 'fontData.ts'), 'utf8')).toContain('Bitstream Vera');
  }, 120_000);

  it('ships the prebuilt engine and ONNX Runtime, and builds from source only when asked or needed', () => {
    expect(pkg.files).toContain('prebuilds');
    expect(pkg.binary).toEqual({ napi_versions: [8] }); // cmake-js then needs no Node headers download
    expect(pkg.dependencies['com.github.asus4.onnxruntime']).toBeUndefined();
    expect(pkg.dependencies['onnxruntime-node']).toBeUndefined();
    expect(pkg.peerDependenciesMeta['onnxruntime-node'].optional).toBe(true);
    expect(pkg.scripts.prepare).toBeUndefined(); // npm pack compiles dist/ once, in prepack, and says so
    // the ONNX Runtime C API headers a source build needs are in the package, not a 385 MB dependency
    expect(statSync(path.join(root, 'native', 'third_party', 'onnxruntime', 'include', 'onnxruntime_c_api.h')).size).toBeGreaterThan(0);
    // in a checkout nothing ships an ONNX Runtime copy: onnxruntime-node (a dev dependency) provides it
    if (!existsSync(path.join(root, 'prebuilds'))) expect(shippedOrtLibrary()).toBeUndefined();
    expect(() => createRequire(import.meta.url).resolve('node-gyp-build')).not.toThrow();
  });

  it("lets a consumer read its package.json (require('brainlatent/package.json'): exports named only the entry points)", () => {
    // (the package's own name resolves through its exports map from inside it, as a consumer's import would)
    const req = createRequire(path.join(root, 'ts', 'index.ts'));
    expect(req.resolve('brainlatent/package.json')).toBe(path.join(root, 'package.json'));
    expect((req('brainlatent/package.json') as { name: string }).name).toBe('brainlatent');
  });

  it("has the engine's test hooks only in the checkout's build, never in a build that ships", async () => {
    // (environment variables read around a model's load that flip a link or truncate a file: ort_runtime.cpp)
    const { testHooksFor } = await import(path.join(root, 'scripts', 'build-native.mjs'));
    expect(testHooksFor({ checkout: true, target: undefined })).toBe(true); // ctest and vitest
    expect(testHooksFor({ checkout: true, target: 'brainlatent_prebuilt' })).toBe(false); // npm pack's prebuilt
    expect(testHooksFor({ checkout: false, target: 'brainlatent_addon' })).toBe(false); // an installed package's source build
    // options set in a configured build folder's cache too (cmake-js passes --CD to a fresh one only): the CUDA switch
    // named in the environment was dropped by a folder configured before it (a CPU-only engine, silently)
    const { cmakeOptionsFor } = await import(path.join(root, 'scripts', 'build-native.mjs'));
    expect(cmakeOptionsFor({ env: { BRAINLATENT_CUDA: 'ON' }, testHooks: false })).toEqual([['BRAINLATENT_CUDA', 'ON'], ['BRAINLATENT_TEST_HOOKS', 'OFF']]);
    expect(cmakeOptionsFor({ env: {}, testHooks: true })).toEqual([['BRAINLATENT_TEST_HOOKS', 'ON']]);
    const prepack = readFileSync(path.join(root, 'scripts', 'prepack.mjs'), 'utf8');
    expect(prepack).toMatch(/buildNative\(\{ target: 'brainlatent_prebuilt', testHooks: false, out: PREBUILT_OUT \}\)[\s\S]*checkNoTestHooks\(out\)/);
    // in its own build folder: packing leaves build/'s options (test hooks ON) as they were, for ctest and vitest
    // (before: prepack turned build/'s hooks OFF, and the next build relinked the checkout's addon without them)
    const { PREBUILT_OUT } = await import(path.join(root, 'scripts', 'prepack.mjs'));
    expect(PREBUILT_OUT).toBe('build-prebuilt');
    expect(readFileSync(path.join(root, 'scripts', 'build-native.mjs'), 'utf8')).toMatch(/'--out', out,[\s\S]*cmakeOptionsFor\(\{ env: process.env[\s\S]*setCachedOption\(out, name, value\)/);
    expect((await commandOutput('git', ['check-ignore', 'build-prebuilt/CMakeCache.txt'], { cwd: root })).trim()).toBe('build-prebuilt/CMakeCache.txt');
    expect(readFileSync(path.join(root, 'binding.gyp'), 'utf8')).not.toContain('BRAINLATENT_TEST_HOOKS'); // node-gyp's CPU build
    // this checkout's cmake build (node-gyp's, which replaces it, has none)
    if (!process.env.BRAINLATENT_ADDON && existsSync(path.join(root, 'build', 'CMakeCache.txt'))) expect(buildInfo().testHooks).toBe(true);
  });
});

describe("the checkout's bin", () => {
  it('is executable after the build, and the build script makes every bin of a package.json so', async () => {
    if (process.platform === 'win32') return;
    // (npm test compiles through scripts/compile-ts.mjs; npm pack's prepack empties dist/ and does the same)
    expect(statSync(path.join(root, pkg.bin.brainlatent)).mode & 0o111).toBe(0o111);
    const dir = mkdtempSync(path.join(tmpdir(), 'bl-bin-'));
    try {
      mkdirSync(path.join(dir, 'dist', 'cli'), { recursive: true });
      writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'x', bin: { x: 'dist/cli/main.js', gone: 'dist/none.js' } }));
      writeFileSync(path.join(dir, 'dist', 'cli', 'main.js'), '#!/usr/bin/env node\n', { mode: 0o644 });
      const script = `import(${JSON.stringify(path.join(root, 'scripts', 'compile-ts.mjs'))}).then((m) => console.log(JSON.stringify(m.markBinsExecutable(${JSON.stringify(dir)}))))`;
      const out = await commandOutput(process.execPath, ['-e', script]);
      expect(JSON.parse(out)).toEqual([path.join(dir, 'dist', 'cli', 'main.js')]);
      expect(statSync(path.join(dir, 'dist', 'cli', 'main.js')).mode & 0o777).toBe(0o755);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
