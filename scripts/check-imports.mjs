#!/usr/bin/env node
// Part of `npm run typecheck`: the module graph of ts/ has no import cycles (type-only imports
// included: a cycle of types is still two modules that cannot be read apart), and only the
// native-call layer (ts/native/call.ts) calls binding() — every other module reaches the engine
// through it, so errors, stacks and cancellation are handled in one place.
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

  if (problems.length) {
    console.error(`check-imports: ${problems.length} problem(s) in ts/\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  console.log(`check-imports: ${all.length} modules, no import cycles, binding() only in ts/native/call.ts, packages imported are dependencies`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
