import { spawnSync } from 'node:child_process';

import { commandOutput } from '../helpers/nodeChild.js';

/** Debian's python with nibabel/h5py/scipy (the pyenv python on PATH lacks them). */
export const SYSTEM_PYTHON = process.env.BL_TEST_PYTHON ?? '/usr/bin/python3';

/**
 * True when /usr/bin/python3 can import every module named; tests needing them skip otherwise. Synchronous (describe.skipIf
 * needs the answer while tests are collected), and quick: imports only.
 */
export function hasPython(...modules: string[]): boolean {
  const r = spawnSync(SYSTEM_PYTHON, ['-c', modules.map((m) => `import ${m}`).join('; ')], { stdio: 'ignore' });
  return r.status === 0;
}

/** Runs a python script with argv; resolves to its stdout. Rejects with its stderr on failure. */
export function runPython(script: string, ...args: string[]): Promise<string> {
  return commandOutput(SYSTEM_PYTHON, ['-c', script, ...args]);
}
