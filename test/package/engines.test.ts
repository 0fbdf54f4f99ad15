/**
 * package.json's `engines` against the production dependencies' own: a dependency whose range leaves out a Node that
 * ours admits makes `npm install --engine-strict` refuse brainlatent there. cmake-js 8 (the source build's tool)
 * declares ^20.17.0 || >=22.9.0, which ours now is; cookie 2 (fastify 5 → light-my-request 6.8 → cookie) declares
 * node >= 22, a refusal on Node 20 that README documents with its workaround (an override to light-my-request 6.6.0).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { packageRoot } from '../../ts/native/binding.js';
import { commandOutput } from '../helpers/nodeChild.js';

// (npm's own semver, installed with fastify: not a dependency of ours, and untyped here)
const semver = createRequire(import.meta.url)('semver') as { subset(a: string, b: string): boolean; validRange(r: string): string | null };

/** The exceptions README explains, by package name. */
const DOCUMENTED = new Set(['cookie']);

describe('engines', () => {
  it("admits no Node that a production dependency's engines leave out, but the one README documents", async () => {
    const ours = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')).engines.node as string;
    expect(ours).toBe('^20.17.0 || >=22.9.0');
    // (--all: nested copies too; npm exits 1 on a tree problem elsewhere, which is not this test's)
    const listed = await commandOutput('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: packageRoot }).catch((e: Error) => e.message);
    const dirs = listed.split('\n').filter((l) => l.startsWith(path.join(packageRoot, 'node_modules')));
    expect(dirs.length).toBeGreaterThan(50);
    const narrower: string[] = [];
    for (const dir of dirs) {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name: string; version: string; engines?: { node?: string } };
      const range = pkg.engines?.node;
      if (range && semver.validRange(range) && !semver.subset(ours, range)) narrower.push(`${pkg.name}@${pkg.version} (${range})`);
    }
    expect(narrower.filter((n) => !DOCUMENTED.has(n.slice(0, n.lastIndexOf('@'))))).toEqual([]);
    const readme = readFileSync(path.join(packageRoot, 'README.md'), 'utf8');
    for (const n of narrower) expect(readme).toContain(n.slice(0, n.lastIndexOf('@')) + '@'); // named in README
  });
});
