import { spawnSync } from 'node:child_process';

export interface ChildResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Killed after the hang limit: the process did not exit by itself. */
  hung: boolean;
}

/**
 * Runs `script` (an ES module's text) in a child node process and waits for it to exit, killing it (SIGKILL) if it
 * is still running after `hangLimitMs`: a generous limit that only a hang reaches, never a timing assertion. `env`: the
 * child's environment (the test's by default).
 */
export function runModule(script: string, hangLimitMs = 60_000, env: NodeJS.ProcessEnv = process.env): ChildResult {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env,
    encoding: 'utf8',
    timeout: hangLimitMs,
    killSignal: 'SIGKILL',
  });
  const hung = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
  if (r.error && !hung) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '', hung };
}
