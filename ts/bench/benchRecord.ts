/**
 * Appends a benchmark record (commit, whether the tree was dirty, machine, date, figures) as one JSON line to <name>.jsonl in the
 * results folder: BRAINLATENT_BENCH_DIR (the CLI's `bench … --results <dir>`), else bench/results/ in a
 * checkout of the repository, else ./brainlatent-bench/ under the current directory — never inside an
 * installed package.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { InvalidArgumentError } from '../errors.js';
import { outputPathProblem } from '../io/outputProblem.js';
import { packageRoot } from '../native/binding.js';

export interface MachineInfo { cpu: string; cores: number; memoryGiB: number; platform: string; node: string; loadAverage: number[] }

export function machineInfo(): MachineInfo {
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism?.() ?? os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.platform()} ${os.arch()}`,
    node: process.version,
    // Other work on the machine skews timings; the 1/5/15-minute load says how much there was.
    loadAverage: os.loadavg().map((v) => Math.round(v * 100) / 100),
  };
}

/** Whether the package runs from a git checkout of the repository (not from an installed package). */
function isCheckout(): boolean {
  return existsSync(path.join(packageRoot, '.git')) && existsSync(path.join(packageRoot, 'ts'));
}

/** The checkout's commit, or `brainlatent@<version>` for an installed package. */
export function gitCommit(): string {
  if (isCheckout()) {
    try {
      return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: packageRoot, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    } catch {
      // not a usable git checkout: fall through to the version
    }
  }
  try {
    return `brainlatent@${JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')).version}`;
  } catch {
    return 'unknown';
  }
}

/**
 * Whether the checkout has changes besides bench records (tracked or untracked files outside bench/results/, which
 * every bench appends to): a record of a dirty tree measured code its commit does not hold. Null for an installed
 * package, or when git cannot say.
 */
export function gitDirty(): boolean | null {
  if (!isCheckout()) return null;
  try {
    const status = execFileSync('git', ['status', '--porcelain', '--', '.', ':(exclude)bench/results'], { cwd: packageRoot, stdio: ['ignore', 'pipe', 'ignore'] });
    return status.toString().trim().length > 0;
  } catch {
    return null;
  }
}

/** Where bench records go (see the file's comment). */
export function benchResultsDir(): string {
  const chosen = process.env.BRAINLATENT_BENCH_DIR;
  if (chosen) return path.resolve(chosen);
  if (isCheckout()) return path.join(packageRoot, 'bench', 'results');
  return path.resolve('brainlatent-bench');
}

/**
 * Where a bench's generated inputs go (`bench data`'s NSD session, about 1 GB to write): bench/out/<name>/ in a checkout,
 * else <results folder>/<name>/ — never inside an installed package, which may be read-only (an admin's global install).
 */
export function benchInputsDir(name: string, checkout = isCheckout()): string {
  return checkout ? path.join(packageRoot, 'bench', 'out', name) : path.join(benchResultsDir(), name);
}

/**
 * Refuses, before any work, a folder a bench would write in and cannot (InvalidArgumentError naming it and why); `what`
 * says what goes there. Missing folders are fine: they are created.
 */
export async function assertBenchFolder(dir: string, what: string): Promise<void> {
  const problem = await outputPathProblem(dir, 'folder');
  if (problem) {
    throw new InvalidArgumentError(
      `${dir}, the folder for ${what}: ${problem}; run the bench from a folder you can write in, or give --results <dir> (BRAINLATENT_BENCH_DIR)`,
    );
  }
}

export function appendBenchRecord(name: string, figures: unknown): string {
  const dir = benchResultsDir();
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.jsonl`);
  appendFileSync(file, `${JSON.stringify({ bench: name, commit: gitCommit(), dirty: gitDirty(), date: new Date().toISOString(), machine: machineInfo(), figures })}\n`);
  return file;
}
