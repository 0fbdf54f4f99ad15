import { execFileSync, spawnSync } from 'node:child_process';

/** Debian's python with nibabel/h5py/scipy (the pyenv python on PATH lacks them). */
export const SYSTEM_PYTHON = process.env.BL_TEST_PYTHON ?? '/usr/bin/python3';

/** True when /usr/bin/python3 can import every module named; tests needing them skip otherwise. */
export function hasPython(...modules: string[]): boolean {
  const r = spawnSync(SYSTEM_PYTHON, ['-c', modules.map((m) => `import ${m}`).join('; ')], { stdio: 'ignore' });
  return r.status === 0;
}

/** Runs a python script with argv; returns stdout. Throws with stderr on failure. */
export function runPython(script: string, ...args: string[]): string {
  return execFileSync(SYSTEM_PYTHON, ['-c', script, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
