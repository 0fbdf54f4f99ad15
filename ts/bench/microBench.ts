/**
 * Micro-benchmarks on benchmark.js (its sampling and relative margin of error). benchmark.js is a
 * development dependency — it brings lodash's 1,000 files into every install — so it is loaded here,
 * when a micro-benchmark runs, and its absence is a typed, explained condition.
 */
import type BenchmarkType from 'benchmark';

export interface MicroResult {
  name: string;
  opsPerSec: number;
  meanMicros: number;
  /** Relative margin of error, %. */
  rme: number;
}

export const MISSING_BENCHMARK =
  'benchmark.js (a development dependency) is not installed: run from a checkout, or `npm install --no-save benchmark@2.1.4`';

let loaded: typeof BenchmarkType | null | undefined;

/** benchmark.js's constructor, or null when it is not installed. */
export async function loadBenchmark(): Promise<typeof BenchmarkType | null> {
  if (loaded === undefined) {
    try {
      loaded = (await import('benchmark')).default;
    } catch {
      loaded = null;
    }
  }
  return loaded;
}

export async function microBench(name: string, fn: () => void, maxTime: number): Promise<MicroResult> {
  const Benchmark = await loadBenchmark();
  if (!Benchmark) throw new Error(MISSING_BENCHMARK);
  return new Promise((done) => {
    const b = new Benchmark(name, fn, { minSamples: 20, maxTime });
    b.on('complete', () => done({ name, opsPerSec: b.hz, meanMicros: b.stats.mean * 1e6, rme: b.stats.rme }));
    b.run();
  });
}
