import { defineConfig } from 'vitest/config';

// Tests run in forked processes (native addon state stays per file), three at a time on the 2-core CI machine: with
// two, the cores stood idle ~16% of the run (files waiting on their children, Redis, a browser, a stall's timeout);
// long native fits get a generous timeout.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    poolOptions: { forks: { maxForks: 3, minForks: 1 } },
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // Test files that make an onnxruntime-node session before the library does would start ONNX Runtime's
    // telemetry, which leaves $TMPDIR/.ses and $TMPDIR/mat-debug-<pid>.log (ts/native/ortTelemetry.ts).
    // test/sd/ortTelemetry.test.ts runs its children without it, to test the library's own default.
    // OpenBLAS one-threaded in the test processes: several files run at once on two cores, and OpenBLAS's idle threads
    // spin (sched_yield) after every call, taking the core another file computes on (with two files: system time
    // halved, the heavy in-process files ~10% faster). The engine's own loops keep every core; ctest, the benchmarks and the
    // consumer checks run OpenBLAS with all its threads. A child given its own OPENBLAS_NUM_THREADS keeps it.
    env: { ORT_DISABLE_TELEMETRY: '1', OPENBLAS_NUM_THREADS: '1' },
    // One temporary folder per run, removed at its end (TMPDIR points the workers and their children at it), and a
    // file's children started outside a test killed when the file ends: test/setup/.
    globalSetup: ['test/setup/runTempFolder.ts'],
    setupFiles: ['test/setup/fileEnd.ts'],
  },
});
