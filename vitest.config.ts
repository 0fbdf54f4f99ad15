import { defineConfig } from 'vitest/config';

// Tests run in forked processes (native addon state stays per file), two at a time to fit
// the 2-core CI machine; long native fits get a generous timeout.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // Test files that make an onnxruntime-node session before the library does would start ONNX Runtime's
    // telemetry, which leaves $TMPDIR/.ses and $TMPDIR/mat-debug-<pid>.log (ts/native/ortTelemetry.ts).
    // test/sd/ortTelemetry.test.ts runs its children without it, to test the library's own default.
    env: { ORT_DISABLE_TELEMETRY: '1' },
    // One temporary folder per run, removed at its end (TMPDIR points the workers and their children at it), and a
    // file's children started outside a test killed when the file ends: test/setup/.
    globalSetup: ['test/setup/runTempFolder.ts'],
    setupFiles: ['test/setup/fileEnd.ts'],
  },
});
