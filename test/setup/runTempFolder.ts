/**
 * vitest globalSetup: the run's one temporary folder. Test files make their folders in os.tmpdir() and many never
 * removed them (or did only when every test passed): about 300 MB in the OS temp folder per run. Here the run makes
 * `<os tmp>/bl-test-<host>-<pid>-XXXXXX` (ts/io/processTemp.ts's naming) and points TMPDIR at it before the workers
 * are forked: they, and the processes they start, inherit it, and os.tmpdir() reads TMPDIR on every call. Teardown
 * removes it whole. A run killed before its teardown (SIGKILL) leaves its folder; the next run's setup removes the
 * folders of dead processes, never a running run's. The name stays short: chromium and playwright make profile
 * folders and sockets under it (a Unix socket's path is limited to about 107 bytes).
 */
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';

import { makeProcessTemp, removeDeadProcessTemps } from '../../ts/io/processTemp.js';

/** The prefix of the run folders (test/testRunTemp.test.ts checks the name). */
export const RUN_TEMP_PREFIX = 'bl-test';

export default async function setup(): Promise<() => Promise<void>> {
  const parent = tmpdir();
  await removeDeadProcessTemps(parent, RUN_TEMP_PREFIX);
  const dir = await makeProcessTemp(parent, RUN_TEMP_PREFIX);
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  return async () => {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
    // (a grandchild of a killed test process may still be writing there: retry, then say so rather than fail a
    // run whose tests passed; the next run's setup removes the folder once this process is gone)
    await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 }).catch((e: unknown) => {
      console.warn(`vitest teardown: could not remove the run's temporary folder ${dir}: ${(e as Error).message}`);
    });
  };
}
