import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * The compiled form of a module under ts/ (e.g. 'io/folderLock' → dist/io/folderLock.js), for tests that run it in
 * a child process. `npm test` compiles first; a stale or missing dist/ file is an error saying so.
 */
export function distModule(rel: string): string {
  const js = resolve('dist', `${rel}.js`);
  const src = resolve('ts', `${rel}.ts`);
  if (!existsSync(js) || statSync(js).mtimeMs < statSync(src).mtimeMs) {
    throw new Error(`${js} is missing or older than ${src}: run \`npm run build:ts\` (npm test does) first`);
  }
  return js;
}
