/**
 * Ridge benchmark, every figure a ratio measured in the same run on identical planted-map data at
 * the shapes of the issue: the fit's effective GEMM rate against the machine's SGEMM rate (the fit
 * runs three times per shape, each between two SGEMM probes; the median run is reported), the
 * whole `brainlatent ridge fit` command (start-up, reading the .npy, the fit, writing the model)
 * and its time outside the fit, against a plain numpy script of the same protocol
 * (bench/numpy_ridge.py: per-fold eigendecomposition, one GEMM per alpha) and scikit-learn's
 * RidgeCV(alpha_per_target=True). The load average goes with each shape's figures (other work on
 * the machine skews every timing). Appends a record to bench/results/ridge.jsonl.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { InvalidArgumentError } from '../errors.js';
import { checkInteger } from '../ridge/options.js';
import { packageRoot } from '../native/binding.js';
import { nativeSync } from '../native/call.js';
import { appendBenchRecord } from './benchRecord.js';
import { kernelsLine, sameKernelsEnv } from './blasKernels.js';
import { plantedData, writeBenchData, type RidgeBenchShape } from './ridgeData.js';

export const RIDGE_SHAPES: RidgeBenchShape[] = [
  { name: 'medium', nTrain: 2000, nTest: 500, p: 4000, t: 4096 },
  { name: 'large', nTrain: 3000, nTest: 500, p: 6000, t: 6144 },
  { name: 'encoding', nTrain: 3000, nTest: 500, p: 1000, t: 16384 },
];

const CV_METHODS = ['auto', 'per-fold', 'exact'] as const;

export interface RidgeBenchOptions {
  shapes?: string[];
  sklearn?: boolean;
  /** The plain numpy script of the same protocol (default true). */
  numpy?: boolean;
  /** The whole `brainlatent ridge fit` command, and its time outside the fit (default true). */
  cli?: boolean;
  alphas?: number;
  folds?: number;
  /** Fits per shape, each in a fresh process between SGEMM probes; the median is reported (default 3). */
  repeats?: number;
  cvMethod?: (typeof CV_METHODS)[number];
  python?: string;
  /**
   * Threads of every fit (the engine's fits in their own processes, the whole command, numpy and
   * scikit-learn through OPENBLAS_NUM_THREADS/OMP_NUM_THREADS) and of the SGEMM probes; default: all cores.
   */
  threads?: number;
  log?: (line: string) => void;
}

interface RunResult {
  seconds: number;
  test_r2: number;
  alphas: number[];
  peak_rss_mb: number;
  threads?: number;
  info?: { gemmFlops: number; route: string; cvMethod: string; eigPrecision: string; secondsDecompose: number };
}

export async function runRidgeBench(opts: RidgeBenchOptions = {}): Promise<unknown> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const nAlphas = opts.alphas ?? 10, folds = opts.folds ?? 5, repeats = opts.repeats ?? 3;
  checkInteger(repeats, 'repeats', 'bench ridge');
  const python = opts.python ?? '/usr/bin/python3';
  // (checked before any work: an unknown name ran nothing and recorded an empty run, a bad method failed
  // in the first fit's child process, after the SGEMM probe and the data)
  for (const name of opts.shapes ?? [])
    if (!RIDGE_SHAPES.some((s) => s.name === name))
      throw new InvalidArgumentError(`bench ridge --shapes: unknown shape '${name}' (expected ${RIDGE_SHAPES.map((s) => s.name).join(', ')})`);
  if (opts.cvMethod !== undefined && !CV_METHODS.includes(opts.cvMethod))
    throw new InvalidArgumentError(`bench ridge --cv-method: expected ${CV_METHODS.map((m) => `'${m}'`).join(', ')}, got '${String(opts.cvMethod)}'`);
  const shapes = RIDGE_SHAPES.filter((s) => !opts.shapes || opts.shapes.includes(s.name));
  if (opts.threads !== undefined) checkInteger(opts.threads, 'threads', 'bench ridge');
  const native = nativeSync((b) => b);
  // (the fits run in child processes: the count goes to them by environment, and to this one's probes)
  if (opts.threads !== undefined) native.setThreads(opts.threads);
  const env = threadEnv(opts.threads);
  const peak = native.sgemmGflops(4096, 3);
  log(`machine SGEMM peak (4096³, best of 3): ${peak.toFixed(0)} GFLOP/s; BLAS: ${native.buildInfo().blas}; threads ${native.getThreads()}`);
  log(kernelsLine());
  const here = path.dirname(fileURLToPath(import.meta.url));
  const worker = path.join(here, 'ridgeWorker.js');
  const results: Record<string, unknown>[] = [];
  for (const s of shapes) {
    const dir = mkdtempSync(path.join(tmpdir(), `bl-ridge-${s.name}-`));
    try {
      log(`\n${s.name}: n_train ${s.nTrain}, n_test ${s.nTest}, ${s.p} features, ${s.t} targets, ${nAlphas} alphas 1e1..1e7, ${folds} folds`);
      await writeBenchData(dir, s, plantedData(s));
      // The fit runs `repeats` times, each in a fresh process, with the SGEMM rate measured between
      // them: each run's share is against the mean of the probes right before and right after it
      // (the machine's speed drifts over a run), and the figure reported is the median run's.
      const runs: { seconds: number; gflops: number; sgemmBefore: number; sgemmAfter: number; share: number }[] = [];
      let ours: RunResult | undefined;
      let before = native.sgemmGflops(4096, 3);
      for (let i = 0; i < repeats; i++) {
        const run = JSON.parse(
          execFileSync(process.execPath, [worker, dir, String(nAlphas), String(folds), opts.cvMethod ?? 'auto'], { maxBuffer: 1 << 28, env }).toString(),
        ) as RunResult;
        ours ??= run;
        const after = native.sgemmGflops(4096, 3);
        const gflops = (run.info?.gemmFlops ?? 0) / 1e9 / run.seconds;
        runs.push({ seconds: run.seconds, gflops, sgemmBefore: before, sgemmAfter: after, share: gflops / ((before + after) / 2) });
        before = after;
      }
      if (!ours) throw new Error('unreachable: repeats >= 1');
      const byShare = [...runs].sort((a, b) => a.share - b.share);
      const mid = byShare[Math.floor((byShare.length - 1) / 2)];
      const sgemm = (mid.sgemmBefore + mid.sgemmAfter) / 2, gflops = mid.gflops;
      log(
        `  brainlatent: ${mid.seconds.toFixed(2)} s, ${gflops.toFixed(0)} GFLOP/s effective GEMM rate (${(100 * mid.share).toFixed(0)}% of the SGEMM rate ` +
          `${sgemm.toFixed(0)} GFLOP/s measured around it; median of ${runs.length} runs, ${runs.map((r) => (100 * r.share).toFixed(0) + '%').join(', ')}), ` +
          `peak RSS ${ours.peak_rss_mb.toFixed(0)} MB, held-out R² ${ours.test_r2.toFixed(4)} [${ours.info?.route}, ${ours.info?.cvMethod}, ` +
          `decomposition ${ours.info?.eigPrecision} ${ours.info?.secondsDecompose.toFixed(2)} s]`,
      );
      const row: Record<string, unknown> = {
        shape: s,
        loadAverage: os.loadavg(),
        sgemmGflops: sgemm,
        brainlatent: {
          seconds: mid.seconds, gflops, sgemmShare: mid.share, peakShare: gflops / peak, peakRssMb: ours.peak_rss_mb, testR2: ours.test_r2,
          route: ours.info?.route, cvMethod: ours.info?.cvMethod, eigPrecision: ours.info?.eigPrecision, secondsDecompose: ours.info?.secondsDecompose,
          threads: ours.threads, runs,
        },
      };
      if (opts.cli !== false) {
        // The whole command as a user runs it, `repeats` times like the fit (each run writes the model to the same
        // place, as a user's reruns would); its own "fitted in" line gives the fit, the rest is outside it. The run
        // of the median time outside the fit is reported, with every run's: the model's write depends on the disk's
        // state (this bench's VM writes its first 64 MB after ~25 s idle 3–10× slower than the next).
        const cliRuns = ridgeFitCommandRuns(
          [
            '--x', path.join(dir, 'x_train.npy'), '--y', path.join(dir, 'y_train.npy'), '--alphas', `1e1:1e7:${nAlphas}`, '--folds', String(folds),
            '--cv-method', opts.cvMethod ?? 'auto', '--out', path.join(dir, 'model.safetensors'),
            ...(opts.threads !== undefined ? ['--threads', String(opts.threads)] : []),
          ],
          repeats,
          env,
        );
        const c = medianOutside(cliRuns);
        // Node's own start-up (no module of ours), measured the same way: on some machines most of the start-up
        // is Node parsing the CA bundle that NODE_EXTRA_CA_CERTS names, at every start, before any of our code runs.
        const node = nodeStartup();
        const nodePart =
          `Node's own start-up ${node.seconds.toFixed(2)} s` +
          (node.extraCaCertsSeconds !== undefined ? `, ${node.extraCaCertsSeconds.toFixed(2)} s of it loading NODE_EXTRA_CA_CERTS (set here)` : '');
        const each = cliRuns.length > 1 ? `; median of ${cliRuns.length} runs, outside the fit ${cliRuns.map((r) => r.outsideSeconds.toFixed(2)).join(', ')} s (writing ${cliRuns.map((r) => r.writeSeconds.toFixed(2)).join(', ')} s)` : '';
        log(
          `  brainlatent ridge fit (the whole command): ${c.seconds.toFixed(2)} s = the fit ${c.fitSeconds.toFixed(2)} s + outside the fit ${c.outsideSeconds.toFixed(2)} s ` +
            `(start-up and module loading ${c.startupSeconds.toFixed(2)} s — ${nodePart} —, reading X and Y ${c.readSeconds.toFixed(2)} s, writing the model ${c.writeSeconds.toFixed(2)} s${each})`,
        );
        row.cli = { ...c, nodeStartupSeconds: node.seconds, extraCaCertsSeconds: node.extraCaCertsSeconds, runs: cliRuns };
      }
      if (opts.numpy !== false) {
        const np = JSON.parse(
          execFileSync(python, [path.join(packageRoot, 'bench', 'numpy_ridge.py'), dir, String(nAlphas), String(folds)], { maxBuffer: 1 << 28, env }).toString(),
        ) as RunResult;
        let agree = 0;
        for (let j = 0; j < np.alphas.length; j++) agree += np.alphas[j] === ours.alphas[j] ? 1 : 0;
        const cliSeconds = (row.cli as { seconds: number } | undefined)?.seconds;
        log(
          `  numpy, same protocol (float32): ${np.seconds.toFixed(2)} s, held-out R² ${np.test_r2.toFixed(4)}, same alpha for ${((100 * agree) / np.alphas.length).toFixed(1)}% of targets; ` +
            `fit ${(np.seconds / mid.seconds).toFixed(2)}× faster` + (cliSeconds ? `, whole command ${(np.seconds / cliSeconds).toFixed(2)}× faster` : ''),
        );
        row.numpy = { seconds: np.seconds, testR2: np.test_r2, alphaAgreement: agree / np.alphas.length, fitSpeedup: np.seconds / mid.seconds, cliSpeedup: cliSeconds ? np.seconds / cliSeconds : undefined };
      }
      if (opts.sklearn !== false) {
        const sk = JSON.parse(
          execFileSync(python, [path.join(packageRoot, 'bench', 'sklearn_ridge.py'), dir, String(nAlphas)], { maxBuffer: 1 << 28, env }).toString(),
        ) as RunResult;
        let agree = 0;
        for (let j = 0; j < sk.alphas.length; j++) agree += sk.alphas[j] === ours.alphas[j] ? 1 : 0;
        const ratio = sk.seconds / mid.seconds;
        const cliSeconds = (row.cli as { seconds: number } | undefined)?.seconds;
        if (cliSeconds) row.sklearnCliSpeedup = sk.seconds / cliSeconds;
        log(
          `  scikit-learn RidgeCV (LOO/GCV, fp64): ${sk.seconds.toFixed(2)} s, peak RSS ${sk.peak_rss_mb.toFixed(0)} MB, held-out R² ${sk.test_r2.toFixed(4)}`,
        );
        log(
          `  speed-up ${ratio.toFixed(2)}× (fit)` + (cliSeconds ? `, ${(sk.seconds / cliSeconds).toFixed(2)}× (whole command)` : '') +
            `, ΔR² ${(ours.test_r2 - sk.test_r2).toFixed(4)}, same alpha for ${((100 * agree) / sk.alphas.length).toFixed(1)}% of targets`,
        );
        row.sklearn = { seconds: sk.seconds, peakRssMb: sk.peak_rss_mb, testR2: sk.test_r2 };
        row.speedup = ratio;
        row.deltaR2 = ours.test_r2 - sk.test_r2;
        row.alphaAgreement = agree / sk.alphas.length;
      }
      results.push(row);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const record = { sgemmPeakGflops: peak, blasCore: native.buildInfo().blasCore, nAlphas, folds, threads: opts.threads ?? native.getThreads(), results };
  const file = appendBenchRecord('ridge', record);
  log(`\nrecorded in ${path.relative(process.cwd(), file)}`);
  return record;
}

/** One run of the whole `ridge fit` command: its time, the fit's (its own "fitted in") and the parts outside it. */
export interface CliRun {
  seconds: number;
  fitSeconds: number;
  outsideSeconds: number;
  startupSeconds: number;
  readSeconds: number;
  writeSeconds: number;
}

/**
 * `brainlatent ridge fit <args>` run `repeats` times, each timed whole from a launcher as a user's shell would, with
 * the parts its own output gives: "fitted in", "inputs read in", "model written … in". (`cli`: the built CLI beside
 * this module, or another build's.)
 */
export function ridgeFitCommandRuns(
  args: string[],
  repeats: number,
  env: NodeJS.ProcessEnv = process.env,
  cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js'),
): CliRun[] {
  const runs: CliRun[] = [];
  for (let i = 0; i < repeats; i++) {
    const { seconds, stdout } = timedFromLauncher(process.execPath, [cli, 'ridge', 'fit', ...args], env);
    const secondsOf = (re: RegExp): number => {
      const m = re.exec(stdout);
      return m ? Number(m[1]) / (m[2] === 'ms' ? 1000 : 1) : NaN;
    };
    const fit = secondsOf(/fitted in ([\d.]+) (ms|s)/), read = secondsOf(/inputs read in ([\d.]+) (ms|s)/);
    const write = secondsOf(/model written to .* in ([\d.]+) (ms|s)/);
    runs.push({ seconds, fitSeconds: fit, outsideSeconds: seconds - fit, startupSeconds: seconds - fit - read - write, readSeconds: read, writeSeconds: write });
  }
  return runs;
}

/** The run of the median time outside the fit (the lower of the two middle ones for an even count). */
export function medianOutside(runs: readonly CliRun[]): CliRun {
  return [...runs].sort((a, b) => a.outsideSeconds - b.outsideSeconds)[(runs.length - 1) >> 1];
}

/**
 * Node's bare start-up (`node -e 0`, best of 3, timed as the command is) and, where NODE_EXTRA_CA_CERTS is set, how much
 * of it that variable costs (the same without it).
 */
export function nodeStartup(): { seconds: number; extraCaCertsSeconds?: number } {
  const best = (env?: NodeJS.ProcessEnv) => Math.min(...[0, 1, 2].map(() => timedFromLauncher(process.execPath, ['-e', '0'], env).seconds));
  const seconds = best();
  if (!process.env.NODE_EXTRA_CA_CERTS) return { seconds };
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return { seconds, extraCaCertsSeconds: Math.max(0, seconds - best(env)) };
}

/**
 * Runs a command as a user's shell would and times it: from a small launcher process, not from this one. This
 * process holds the bench's data, and forking it cost ~45 ms per GiB it had touched (a parent with 1 GiB: 105 ms
 * to run `node -e 0`, against 62 ms from a fresh one), time no user pays. The command's progress lines go to its
 * stderr, kept out of the bench's output; a failure's error carries them.
 */
export function timedFromLauncher(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): { seconds: number; stdout: string } {
  const launcher =
    "const { execFileSync } = require('node:child_process');" +
    'const [file, ...args] = JSON.parse(process.argv[1]);' +
    'const t0 = performance.now();' +
    "const stdout = execFileSync(file, args, { maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'pipe'] }).toString();" +
    'process.stdout.write(JSON.stringify({ seconds: (performance.now() - t0) / 1000, stdout }));';
  const out = execFileSync(process.execPath, ['-e', launcher, JSON.stringify([file, ...args])], {
    maxBuffer: 1 << 27,
    env: { ...env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  }).toString();
  return JSON.parse(out) as { seconds: number; stdout: string };
}

/**
 * The environment of a bench's child processes at a thread count: the engine's worker reads
 * BRAINLATENT_BENCH_THREADS, numpy and scikit-learn their BLAS's OPENBLAS_NUM_THREADS/OMP_NUM_THREADS.
 * All of them run the engine's OpenBLAS core (blasKernels.ts).
 */
export function threadEnv(threads: number | undefined): NodeJS.ProcessEnv {
  const env = sameKernelsEnv();
  if (threads === undefined) return env;
  const n = String(threads);
  return { ...env, BRAINLATENT_BENCH_THREADS: n, OPENBLAS_NUM_THREADS: n, OMP_NUM_THREADS: n };
}
