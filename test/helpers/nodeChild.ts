// Child processes for tests, run asynchronously. A synchronous child (spawnSync, execFileSync, execSync) blocks the
// test worker's event loop for as long as it runs; vitest's worker↔main RPC has a fixed 60-s timeout, so a demo run,
// npm, a compiler or a python reference that takes that long on a loaded machine fails the run with
// 'Timeout calling "onTaskUpdate"' though every test passed. scripts/check-imports.mjs rejects synchronous children in
// test/ outside a short allow-list of quick calls.
//
// A child outlives nothing: one started in a test is killed (SIGKILL) when that test times out (its context's signal
// fires, before afterEach hooks remove the directory it writes in) and, if still running, when the test ends (awaited,
// so the file's afterAll finds it gone). Without that, a timed-out test's child ran on until its hang limit, up to
// 10 minutes, writing into a directory being removed. One started outside a test (a beforeAll, module level) is
// killed when its file ends (killFileChildren, an afterAll of test/setup/fileEnd.ts): before, only its hang limit
// ended it, and the limit's timer died with the worker when the file ended first.
import { type ChildProcess, spawn } from 'node:child_process';

import { onTestFinished } from 'vitest';
import { getCurrentTest } from 'vitest/suite';

const live = new Set<ChildProcess>();

/** The children started by runCommand, still running and not sent a kill (for tests of this helper). */
export function liveChildren(): number {
  return [...live].filter((c) => !c.killed).length;
}

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

/** The children started outside a test, killed when their file ends. */
const fileScoped = new Set<ChildProcess>();

/**
 * Kills (SIGKILL) the children started outside a test that are still running, and waits for them to exit (not to
 * close: a grandchild may hold their output pipes open).
 */
export async function killFileChildren(): Promise<void> {
  const left = [...fileScoped].filter(running);
  fileScoped.clear();
  await Promise.all(
    left.map((c) => {
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      return exited;
    }),
  );
}

/** Ties `child` to the running test, or to its file when started outside a test. */
function killWhenTestEnds(child: ChildProcess): void {
  const test = getCurrentTest();
  if (!test) {
    fileScoped.add(child);
    child.once('close', () => fileScoped.delete(child));
    return;
  }
  const kill = () => {
    if (running(child)) child.kill('SIGKILL');
  };
  test.context.signal.addEventListener('abort', kill, { once: true });
  onTestFinished(async () => {
    test.context.signal.removeEventListener('abort', kill);
    if (!live.has(child)) return;
    kill();
    await new Promise((r) => child.once('close', r));
  });
}

export interface ChildResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Killed after the hang limit: the process did not exit by itself. */
  hung: boolean;
}

export interface CommandOptions {
  cwd?: string;
  /** The child's environment (the test's by default). */
  env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, which is then closed (at once without it, as spawnSync does). */
  input?: string;
  /** How stdout and stderr are decoded (utf8 by default). */
  encoding?: BufferEncoding;
  /**
   * Killed (SIGKILL) if still running after this long: a generous limit that only a hang reaches, never a timing
   * assertion. 10 minutes by default.
   */
  hangLimitMs?: number;
  /** Runs the child as this user and group (a test run as root that needs permissions enforced: root ignores them). */
  uid?: number;
  gid?: number;
}

/** Runs `file` with `args` and waits for it to exit; never rejects for a failing exit (see `commandOutput`). */
export function runCommand(file: string, args: readonly string[], options: CommandOptions = {}): Promise<ChildResult> {
  const { cwd, env = process.env, input, encoding = 'utf8', hangLimitMs = 600_000, uid, gid } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd, env, stdio: 'pipe', ...(uid === undefined ? {} : { uid }), ...(gid === undefined ? {} : { gid }) });
    live.add(child);
    killWhenTestEnds(child);
    let stdout = '';
    let stderr = '';
    let hung = false;
    child.stdout.setEncoding(encoding).on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding(encoding).on('data', (d: string) => (stderr += d));
    // (a child that exits without reading all of its input closes the pipe: that is its exit to report, not an error)
    child.stdin.on('error', () => {});
    child.stdin.end(input);
    const timer = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, hangLimitMs);
    child.on('error', (e) => {
      live.delete(child);
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (status, signal) => {
      live.delete(child);
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, hung });
    });
  });
}

/**
 * Runs `file` with `args` and resolves to its stdout, like execFileSync: rejects, naming the command, its exit and
 * its stderr, unless it exits with status 0.
 */
export async function commandOutput(file: string, args: readonly string[], options: CommandOptions = {}): Promise<string> {
  const r = await runCommand(file, args, options);
  if (r.status === 0) return r.stdout;
  const how = r.hung ? `hung and was killed after ${options.hangLimitMs ?? 600_000} ms` : r.signal ? `was killed by ${r.signal}` : `exited with status ${r.status}`;
  throw new Error(`${file} ${args.map((a) => (a.length > 80 ? `${a.slice(0, 77)}...` : a)).join(' ')} ${how}\n${r.stderr}`);
}

/**
 * Runs `script` (an ES module's text) in a child node process and waits for it to exit, killing it if it is still
 * running after `hangLimitMs`. `env`: the child's environment (the test's by default).
 */
export function runModule(script: string, hangLimitMs = 60_000, env: NodeJS.ProcessEnv = process.env): Promise<ChildResult> {
  return runCommand(process.execPath, ['--input-type=module', '-e', script], { env, hangLimitMs });
}
