// A module-loader hook for tests of what a command line loads: every module URL the process loads (packages and
// our own, not Node's built-ins) is appended to the file named by BRAINLATENT_TEST_LOADED, synchronously (the
// hook runs on the loader thread, which may stop at exit before asynchronous writes land).
// Use: node --import <registerLoadedModules data: URL> dist/cli/main.js … (see test/cli/main.test.ts).
import { appendFileSync } from 'node:fs';

export async function load(url, context, next) {
  const out = process.env.BRAINLATENT_TEST_LOADED;
  if (out && !url.startsWith('node:')) appendFileSync(out, `${url}\n`);
  return next(url, context);
}
