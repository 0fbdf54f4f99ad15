import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Command } from 'commander';

import { runRidgeBench } from '../../bench/ridge.js';
import { setThreads } from '../../ridge/RidgeCV.js';

export function registerBenchCommand(program: Command): void {
  const bench = program.command('bench').description('benchmarks; each prints its figures and appends JSON under bench/results/');
  bench
    .command('ridge')
    .description('RidgeCV vs scikit-learn RidgeCV(alpha_per_target=True) on planted-map data at NSD-like shapes')
    .option('--shapes <list>', 'comma-separated subset of medium,large,encoding', 'medium,large,encoding')
    .option('--no-sklearn', 'skip the scikit-learn comparison')
    .option('--cv-method <m>', "force 'per-fold' or 'exact' (default: auto)", 'auto')
    .option('--python <path>', 'python with scikit-learn', '/usr/bin/python3')
    .option('--threads <n>', 'engine threads (default: all cores)')
    .action(async (f: { shapes: string; sklearn: boolean; cvMethod: 'auto' | 'per-fold' | 'exact'; python: string; threads?: string }) => {
      if (f.threads) setThreads(Number(f.threads));
      await runRidgeBench({ shapes: f.shapes.split(','), sklearn: f.sklearn, cvMethod: f.cvMethod, python: f.python });
    });
  // The other benches are scripts that run in their own process (their peak RSS is their own).
  const scripts: [string, string][] = [
    ['data', 'masked NIfTI extraction of a full-size synthetic NSD session, the adapter and its cache'],
    ['sampler', 'fused native sampler vs the TypeScript loop on onnxruntime-node: steps/s, overhead ratio, micro-benchmarks'],
    ['pipeline', 'the demo world end to end: wall time and peak memory per stage, metrics'],
    ['encoding', 'an NSD-shaped encoding fit (8,859 × 16,384 → 15,724 voxels) and a reduced size against scikit-learn'],
  ];
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const [name, what] of scripts) {
    bench
      .command(name)
      .description(what)
      .action(() => {
        const r = spawnSync(process.execPath, [path.join(here, '..', '..', 'bench', `${name}.js`)], { stdio: 'inherit' });
        if (r.status !== 0) throw new Error(`bench ${name} failed (exit ${r.status ?? r.signal})`);
      });
  }
}
