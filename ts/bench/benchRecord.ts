/** Appends a benchmark record (commit, machine, date, figures) as one JSON line under bench/results/. */
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

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

export function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: packageRoot, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return 'unknown';
  }
}

export function appendBenchRecord(name: string, figures: unknown): string {
  const dir = path.join(packageRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.jsonl`);
  appendFileSync(file, `${JSON.stringify({ bench: name, commit: gitCommit(), date: new Date().toISOString(), machine: machineInfo(), figures })}\n`);
  return file;
}
