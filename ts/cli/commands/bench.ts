import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Command } from 'commander';

import { InvalidArgumentError } from '../../errors.js';
import type { SchedulerName } from '../../sd/schedulerConfig.js';
import { checkOutputPath } from '../outputPath.js';
import { integerFlag } from '../flagValue.js';
import { MIN_SAMPLES, RECOMMENDED_SAMPLES, samplesError } from '../../bench/samplersOptions.js';
import { MAX_ENGINE_THREADS } from '../../ridge/RidgeCV.js';
import { benchResultsDir } from '../../bench/benchRecord.js';

/** `bench samplers` flags of the demo world's bench that `--arch sd1` does not use (option attribute names). */
const DEMO_ONLY = ['model', 'schedulers', 'steps', 'samples', 'accuracyImages', 'convergedSteps', 'out', 'micro'] as const;

export function registerBenchCommand(program: Command): void {
  const bench = program
    .command('bench')
    .description(
      'benchmarks; each prints its figures and appends a JSON line to <results>/<name>.jsonl ' +
        '(default: bench/results/ in a checkout of the repository, ./brainlatent-bench/ otherwise)',
    );
  const RESULTS = ['--results <dir>', 'folder for the JSON-lines records (also BRAINLATENT_BENCH_DIR)'] as const;
  // The runners (in this process or a child) read the folder from the environment.
  // (checked before the benchmark runs: a file there failed the record's write only after the whole run)
  const useResults = async (dir?: string) => {
    if (!dir) {
      // (the default too: in a read-only current folder the record's write failed only after the whole run)
      await checkOutputPath('the default results folder', benchResultsDir(), 'folder', 'the JSON-lines records (--results <dir> names another)');
      return;
    }
    await checkOutputPath('--results', dir, 'folder', 'the JSON-lines records');
    process.env.BRAINLATENT_BENCH_DIR = path.resolve(dir);
  };
  // The runners are loaded when their command runs: `--help` and the other commands need none of them.
  bench
    .command('ridge')
    .description('RidgeCV vs the SGEMM rate, a plain numpy script of the same protocol and scikit-learn RidgeCV(alpha_per_target=True), and the whole `ridge fit` command, on planted-map data at NSD-like shapes')
    .option('--shapes <list>', 'comma-separated subset of medium,large,encoding', 'medium,large,encoding')
    .option('--no-sklearn', 'skip the scikit-learn comparison')
    .option('--no-numpy', 'skip the plain numpy script of the same protocol (bench/numpy_ridge.py)')
    .option('--no-cli', 'skip timing the whole `brainlatent ridge fit` command')
    .option('--cv-method <m>', "'auto', or force 'per-fold' or 'exact'", 'auto')
    .option('--python <path>', 'python with scikit-learn', '/usr/bin/python3')
    .option('--repeats <n>', 'fits per shape, each in a fresh process between SGEMM probes, and as many runs of the whole `ridge fit` command; the median run of each is reported', (v: string) => integerFlag(v, '--repeats', 1), 3)
    .option('--threads <n>', 'threads of every fit (each in its own process: the engine, the whole command, numpy and scikit-learn by OPENBLAS_NUM_THREADS) and of the SGEMM probes (default: all cores)', (v: string) => integerFlag(v, '--threads', 1, MAX_ENGINE_THREADS))
    .option(...RESULTS)
    .action(async (f: { shapes: string; sklearn: boolean; numpy: boolean; cli: boolean; cvMethod: 'auto' | 'per-fold' | 'exact'; python: string; repeats: number; threads?: number; results?: string }) => {
      await useResults(f.results);
      const { runRidgeBench } = await import('../../bench/ridge.js');
      await runRidgeBench({ shapes: f.shapes.split(','), sklearn: f.sklearn, numpy: f.numpy, cli: f.cli, cvMethod: f.cvMethod, python: f.python, repeats: f.repeats, threads: f.threads });
    });
  bench
    .command('banded')
    .description(
      'BandedRidgeCV against a plain numpy banded ridge of the same protocol (bench/numpy_banded.py: himalaya\'s random search over the engine\'s own candidates γ and folds), ' +
        'in the same run on planted-map data split into bands: the fit\'s time, GEMM rate and peak memory, numpy\'s time and the ratio, and how often both chose the same alpha and γ',
    )
    .option('--shapes <list>', "comma-separated subset of demo (the demo world's banded z+c: 392 × (16,384 + 4,928) → 1,508) and medium (1,000 × (4,096 + 1,024) → 4,096)", 'demo')
    .option('--no-numpy', 'skip the plain numpy script of the same protocol (bench/numpy_banded.py)')
    .option('--candidates <n>', 'random-search candidates γ', (v: string) => integerFlag(v, '--candidates', 1), 100)
    .option('--alphas <n>', 'alphas, log-spaced over 1e1..1e7', (v: string) => integerFlag(v, '--alphas', 1), 7)
    .option('--folds <n>', 'contiguous CV folds', (v: string) => integerFlag(v, '--folds', 2), 5)
    .option('--repeats <n>', "fits of each, alternated, each in a fresh process; the medians are reported", (v: string) => integerFlag(v, '--repeats', 1), 1)
    .option('--threads <n>', "threads of both fits, each in its own process (the engine's, and numpy's BLAS by OPENBLAS_NUM_THREADS; default: all cores)", (v: string) => integerFlag(v, '--threads', 1, MAX_ENGINE_THREADS))
    .option('--python <path>', 'python with numpy', '/usr/bin/python3')
    .option(...RESULTS)
    .action(async (f: { shapes: string; numpy: boolean; candidates: number; alphas: number; folds: number; repeats: number; threads?: number; python: string; results?: string }) => {
      await useResults(f.results);
      const { runBandedBench } = await import('../../bench/banded.js');
      await runBandedBench({ shapes: f.shapes.split(','), numpy: f.numpy, candidates: f.candidates, alphas: f.alphas, folds: f.folds, repeats: f.repeats, threads: f.threads, python: f.python });
    });
  bench
    .command('samplers')
    .description(
      'every scheduler on cost, accuracy vs the converged solution (log-log, measured order) and, on the demo world, ' +
        'the exact probability-flow ODE and the true distribution (sliced W2 to the exact mixture and log-density, with error bars); fused-step micro-benchmarks',
    )
    .option('--model <dir>', "a demo world's model folder (default: one built once into --cache)")
    .option('--schedulers <list>', 'comma-separated schedulers (default: all)')
    .option('--steps <list>', "step counts, each at most half the model's num_train_timesteps (500)", '5,10,20,50')
    .option('--batch <list>', 'batch sizes for the cost figures', '1,4')
    .option('--samples <n>', `samples per distribution score (sliced W2 to the exact mixture, ± bootstrap SE): at least ${MIN_SAMPLES}; below ${RECOMMENDED_SAMPLES} the scores do not rank samplers (a warning says so)`, '512')
    .option('--accuracy-images <n>', 'images in the accuracy set', '8')
    .option('--converged-steps <n>', "steps of the converged high-order (unipc) solution, at least twice the largest --steps and at most the model's num_train_timesteps (1000)", '500')
    .option('--cache <dir>', "where the model is built once (default $TMPDIR/brainlatent-bench-world, a demo world; with --arch sd1 ~/.cache/brainlatent/sd1-fixture, SD 1.x's U-Net fixture: a 3.4 GB build)")
    .option('--out <dir>', 'folder for samplers.json, samplers.csv, samplers.html', 'bench-samplers')
    .option('--threads <n>', 'ONNX Runtime intra-op threads (default: 1 for the demo world, all cores for --arch sd1)')
    .option('--no-micro', 'skip the fused-step micro-benchmarks')
    .option('--arch <arch>', "'demo' (the demo world) or 'sd1': SD 1.x's U-Net graph at 64×64 (built once into --cache, 3.4 GB; never in CI): time per U-Net call, overhead, peak memory for ONNX Runtime's default and lean memory", 'demo')
    .option('--memory <list>', 'with --arch sd1: the memory modes to measure, comma-separated (lean, default)', 'lean,default')
    .option(...RESULTS)
    .action(async (f: Record<string, string | boolean | undefined>, cmd: Command) => {
      // Flags of one architecture given to the other would be dropped without a word: refuse them by name.
      const given = (names: readonly string[]): string[] => names.filter((n) => cmd.getOptionValueSource(n) === 'cli');
      const flag = (n: string): string => (n === 'micro' ? '--no-micro' : `--${n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
      if (f.arch === 'sd1') {
        const demoOnly = given(DEMO_ONLY);
        if (demoOnly.length) {
          throw new InvalidArgumentError(
            `${demoOnly.map(flag).join(', ')}: not used with --arch sd1 (it times SD 1.x's U-Net at 64×64 with --batch, --memory, --threads, --cache and --results only); ` +
              'drop them, or leave out --arch sd1 for the demo world',
          );
        }
      } else if (given(['memory']).length) {
        throw new InvalidArgumentError(`--memory: only with --arch sd1 (ONNX Runtime's memory modes on SD 1.x's U-Net); the demo world's bench has no memory modes`);
      }
      await useResults(f.results as string | undefined);
      const list = (v: unknown, name: string): number[] =>
        String(v)
          .split(',')
          .map((x) => integerFlag(x, `--${name}`, 1));
      // (a single-value flag given a list would quietly run with its first entry)
      const int = (v: unknown, name: string, min = 1): number => {
        if (String(v).includes(',')) throw new InvalidArgumentError(`--${name}: expected one integer >= ${min}, got the list '${String(v)}' (only --steps, --batch and --schedulers take lists)`);
        if (name !== 'samples') return integerFlag(String(v), `--${name}`, min);
        // (--samples: the bench's own wording, which says why at least MIN_SAMPLES)
        try {
          return integerFlag(String(v), '--samples', min);
        } catch {
          throw samplesError(String(v));
        }
      };
      if (f.arch === 'sd1') {
        const modes = String(f.memory).split(',');
        if (!modes.every((m) => m === 'lean' || m === 'default')) throw new InvalidArgumentError(`--memory: expected lean and/or default, got '${String(f.memory)}'`);
        const { runSd1Bench } = await import('../../bench/samplersSd1.js');
        await runSd1Bench({
          cacheDir: f.cache as string | undefined,
          batches: list(f.batch, 'batch'),
          modes: modes as ('lean' | 'default')[],
          threads: f.threads ? int(f.threads, 'threads') : 0,
        });
        return;
      }
      if (f.arch !== 'demo') throw new InvalidArgumentError(`--arch must be demo or sd1, got '${String(f.arch)}'`);
      await checkOutputPath('--out', f.out as string, 'folder', 'samplers.json, samplers.csv and samplers.html');
      const { runSamplersBench } = await import('../../bench/samplers.js');
      await runSamplersBench({
        model: f.model as string | undefined,
        // ('' is an empty list, refused like 'ddim,': not 'every scheduler')
        schedulers: f.schedulers !== undefined ? (String(f.schedulers).split(',') as SchedulerName[]) : undefined,
        steps: list(f.steps, 'steps'),
        batch: list(f.batch, 'batch'),
        samples: int(f.samples, 'samples', MIN_SAMPLES),
        accuracyImages: int(f.accuracyImages, 'accuracy-images'),
        convergedSteps: int(f.convergedSteps, 'converged-steps'),
        cacheDir: f.cache as string | undefined,
        out: f.out as string,
        threads: f.threads ? int(f.threads, 'threads') : 1,
        micro: f.micro !== false,
      });
    });
  // The other benches are scripts that run in their own process (their peak RSS is their own).
  const scripts: [string, string][] = [
    ['data', 'masked NIfTI extraction of a full-size synthetic NSD session, the adapter and its cache'],
    ['sampler', 'fused native sampler vs the TypeScript loop on onnxruntime-node, alternated round by round (≥ 5 runs and ≥ 0.2 s each): denoising steps/s with IQR (and U-Net calls/s where a scheduler, BENCH_SCHEDULER, makes more), the loop\'s and the call\'s overhead over the U-Net, the speed-up; fused-step micro-benchmarks'],
    ['pipeline', 'the demo world end to end: wall time and peak memory per stage, metrics'],
    ['encoding', 'an NSD-shaped encoding fit (8,859 × 16,384 → 15,724 voxels) and a reduced size against scikit-learn'],
    ['serve', '`brainlatent serve` under autocannon: predict on a 4,096-target model at concurrency 1/8/32, RSS after 1,000 vs 10,000 requests, event-loop lag during img2img and a demo job'],
    ['job-start', "the service's event-loop stall when a job's process starts (a service-sized heap; an idle process's lag beside it)"],
    ['batch', 'the job queue: overhead per job (BullMQ and the local pool) against the stage times, throughput with 1 and 2 single-threaded workers on the demo world'],
  ];
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const [name, what] of scripts) {
    bench
      .command(name)
      .description(what)
      .option(...RESULTS)
      .action(async (f: { results?: string }) => {
        await useResults(f.results);
        const r = spawnSync(process.execPath, [path.join(here, '..', '..', 'bench', `${name}.js`)], { stdio: 'inherit' });
        if (r.status !== 0) throw new Error(`bench ${name} failed (exit ${r.status ?? r.signal})`);
      });
  }
}
