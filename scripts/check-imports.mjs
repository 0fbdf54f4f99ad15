#!/usr/bin/env node
// Part of `npm run typecheck`: the module graph of ts/ has no import cycles (type-only imports
// included: a cycle of types is still two modules that cannot be read apart), and only the
// native-call layer (ts/native/call.ts) calls binding() — every other module reaches the engine
// through it, so errors, stacks and cancellation are handled in one place. In test/: no synchronous child process
// (spawnSync, execFileSync, execSync) outside QUICK_SYNC_CHILDREN.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', 'ts');

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const all = files(root);
const graph = new Map();
const problems = [];
// Static imports and re-exports with a relative specifier (`import … from './x.js'`, `export … from`).
const spec = /(?:^|\n)\s*(?:import|export)\s[^;]*?\sfrom\s+['"](\.{1,2}\/[^'"]+)['"]/g;
// Static value imports of a package: it must be one the installed package has (a dependency or a
// peer), or an installed CLI fails on a module it cannot find. Dev-only tools (autocannon) are
// loaded with `await import()` behind an error that says how to install them.
const bare = /(?:^|\n)\s*(?:import|export)\s(?!type\s)[^;]*?\sfrom\s+['"]([^.'"][^'"]*)['"]/g;
const pkg = JSON.parse(readFileSync(path.join(root, '..', 'package.json'), 'utf8'));
const shipped = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})]);
const optional = new Set(Object.keys(pkg.optionalDependencies ?? {}));
const packageName = (s) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]);
// A dynamic import() or require() of an optional dependency (`npm install --omit=optional` leaves them out) is
// allowed only in the one loader that turns a missing package into a MissingDependencyError with its install
// command: anywhere else it would fail with Node's bare "Cannot find package".
const loaderModule = 'optionalDependencies.ts';
const dynamic = /\b(?:import|require)\(\s*['"]([^.'"][^'"]*)['"]\s*\)/g;

/** The problems of one module's package imports (exported for test/package/optionalDependencies.test.ts). */
export function packageImportProblems(rel, text) {
  const found = [];
  for (const m of text.matchAll(bare)) {
    const name = packageName(m[1]);
    if (optional.has(name)) {
      found.push(`${rel} imports '${m[1]}' statically, an optional dependency (absent after --omit=optional): load it through ts/optionalDependencies.ts (\`import type\` is fine)`);
    } else if (!name.startsWith('node:') && !shipped.has(name)) {
      found.push(`${rel} imports '${m[1]}', which is not a dependency: an installed package would not find it`);
    }
  }
  if (rel !== loaderModule) {
    for (const m of text.matchAll(dynamic)) {
      if (optional.has(packageName(m[1]))) found.push(`${rel} loads '${m[1]}' itself, an optional dependency: load it through ts/optionalDependencies.ts`);
    }
  }
  return found;
}

// A synchronous child blocks its vitest worker's event loop for as long as it runs. vitest's worker↔main RPC has a
// fixed 60-s timeout: a demo run, npm, a compiler or a python reference that runs that long on a loaded machine fails
// the run with 'Unhandled Error: [vitest-worker]: Timeout calling "onTaskUpdate"' though every test passed. Tests run
// children with runCommand / commandOutput (test/helpers/nodeChild.ts); only these calls, which take milliseconds
// whatever the load, stay synchronous. `call`: text the line of the call holds.
export const QUICK_SYNC_CHILDREN = [
  { file: 'helpers/pidTaggedCopies.ts', call: "spawnSync(process.execPath, ['-e', ''])", why: 'the pid of a process that has exited' },
  { file: 'demo/demoOptions.test.ts', call: "spawnSync(process.execPath, ['-e', '0']).pid", why: 'the pid of a process that has exited' },
  { file: 'io/folderLock.test.ts', call: "spawnSync(process.execPath, ['-e', '0']).pid", why: 'the pid of a process that has exited' },
  { file: 'io/atomicWrite.test.ts', call: "spawnSync(process.execPath, ['-e', '0']).pid", why: 'the pid of a process that has exited' },
  { file: 'batch/redis.ts', call: "spawnSync('redis-server', ['--version'])", why: 'is redis-server installed (describe.skipIf needs it while collecting)' },
  { file: 'io/python.ts', call: "spawnSync(SYSTEM_PYTHON, ['-c', modules.map((m) => `import ${m}`)", why: 'hasPython: imports only (describe.skipIf needs it while collecting)' },
  { file: 'io/npy.test.ts', call: "execFileSync(PY, ['-c', 'import numpy']", why: 'is numpy installed (it.skipIf)' },
  { file: 'ridge/ridgeCV.test.ts', call: "execFileSync('/usr/bin/python3', ['-c', 'import numpy']", why: 'is numpy installed (it.skipIf)' },
  { file: 'cli/shellWord.test.ts', call: "execFileSync('sh', ['-c', `printf", why: "how sh splits a word: one printf" },
  // not run in a vitest worker: scripts/consumer-check.mjs runs it in its own process
  { file: 'package/slimConsumer.mjs', call: 'spawnSync(', why: 'a standalone script (scripts/consumer-check.mjs)' },
];
const syncChild = /\b(spawnSync|execFileSync|execSync)\b\s*(\(|\bas\b)/g;

/** The synchronous children in one test/ file (`rel`: its path under test/) that QUICK_SYNC_CHILDREN does not list. */
export function syncChildProblems(rel, text) {
  const found = [];
  text.split('\n').forEach((line, i) => {
    if (/^\s*(\/\/|\*|\/\*)/.test(line)) return; // a comment that names one
    for (const m of line.matchAll(syncChild)) {
      if (m[2] === '(' && QUICK_SYNC_CHILDREN.some((q) => q.file === rel && line.includes(q.call))) continue;
      found.push(
        `test/${rel}:${i + 1}: ${m[1]}${m[2] === '(' ? '()' : ' renamed'} blocks the vitest worker's event loop while the child runs; one that ` +
          `runs past vitest's 60-s worker RPC timeout (a demo, npm, a compiler, python; 2-3x slower on a loaded machine) fails the run ` +
          `('Timeout calling "onTaskUpdate"') though every test passed: await runCommand or commandOutput from test/helpers/nodeChild.ts ` +
          `(a call that takes milliseconds whatever the load may be listed in QUICK_SYNC_CHILDREN, scripts/check-imports.mjs)`,
      );
    }
  });
  return found;
}

const testRoot = path.join(root, '..', 'test');
function testFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? testFiles(p) : /\.(ts|mts|js|mjs)$/.test(name) ? [p] : [];
  });
}

function main() {
  for (const file of all) {
    const text = readFileSync(file, 'utf8');
    const deps = new Set();
    for (const m of text.matchAll(spec)) {
      const target = path.resolve(path.dirname(file), m[1].replace(/\.js$/, '.ts'));
      if (all.includes(target)) deps.add(target);
    }
    graph.set(file, deps);
    const rel = path.relative(root, file);
    problems.push(...packageImportProblems(rel, text));
    if (rel !== path.join('native', 'call.ts') && rel !== path.join('native', 'binding.ts') && /\bbinding\(\)/.test(text)) {
      problems.push(`${rel} calls binding(): reach the engine through ts/native/call.ts (nativeSync, nativeJob)`);
    }
  }

  // Tarjan's strongly connected components: every component of more than one module is a cycle.
  let index = 0;
  const stack = [], on = new Set(), idx = new Map(), low = new Map();
  function visit(v) {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v)) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) {
        low.set(v, Math.min(low.get(v), idx.get(w)));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        comp.push(path.relative(root, w));
      } while (w !== v);
      if (comp.length > 1 || graph.get(v).has(v)) problems.push(`import cycle: ${comp.sort().join(' ↔ ')}`);
    }
  }
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);

  const tests = testFiles(testRoot);
  for (const file of tests) problems.push(...syncChildProblems(path.relative(testRoot, file), readFileSync(file, 'utf8')));

  if (problems.length) {
    console.error(`check-imports: ${problems.length} problem(s) in ts/ and test/\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  console.log(
    `check-imports: ${all.length} modules, no import cycles, binding() only in ts/native/call.ts, packages imported are dependencies; ` +
      `${tests.length} test files, no slow synchronous child process`,
  );
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
