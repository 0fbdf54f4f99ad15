import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { BrainlatentError } from '../errors.js';
import type { Binding } from './addonTypes.js';

/** The package root: dist/native/binding.js and ts/native/binding.ts both sit two levels below it. */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

let cached: Binding | undefined;

/** Loads the native addon once. The only place that touches the .node file. */
export function binding(): Binding {
  if (cached) return cached;
  const candidates = [
    process.env.BRAINLATENT_ADDON,
    path.join(packageRoot, 'build', 'Release', 'brainlatent.node'),
    path.join(packageRoot, 'build', 'Debug', 'brainlatent.node'),
  ].filter((p): p is string => typeof p === 'string' && p.length > 0);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new BrainlatentError(
      `the native engine is not built (looked for ${candidates.join(', ')}). ` +
        'Run `npm install` (or `npm run build`) in the package folder; it needs cmake, a C++17 compiler and ' +
        'libopenblas-dev (Debian/Ubuntu: sudo apt-get install cmake g++ libopenblas-dev).',
      'NativeNotBuilt',
    );
  }
  const require = createRequire(import.meta.url);
  cached = require(found) as Binding;
  return cached;
}
