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
}
