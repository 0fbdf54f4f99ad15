import { spawn } from 'node:child_process';

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
 * child's environment (the test's by default). Asynchronous: a spawnSync of up to a minute blocked the test worker's
 * event loop, and on a loaded machine vitest's 60-s RPC to it timed out ('Timeout calling "onTaskUpdate"'), which
 * fails the run though every test passed.
 */
export function runModule(script: string, hangLimitMs = 60_000, env: NodeJS.ProcessEnv = process.env): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let hung = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, hangLimitMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, hung });
    });
  });
}
