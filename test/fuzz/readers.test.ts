/**
 * Fuzz suite over every reader (issue #11): .npy (v1/v2), safetensors, ridge model files, NIfTI-1/2 plain and gzip,
 * PNG, MAT v5 plain and compressed, the HDF5 wrapper, ONNX model folders (Diffusion.load) and JSON configs. Each
 * target runs in its own process (test/fuzz/driver.mjs) from valid seed files mutated by fast-check with a fixed
 * seed: every case must be read, or refused with a BrainlatentError naming the file; no crash, no hang (a process
 * silent for 60 s is killed and the case kept), and the process's peak RSS stays under a bound, so no case
 * allocated what its header claimed. Counts scale with BRAINLATENT_FUZZ_SCALE (default 1: ~9,000 cases);
 * BRAINLATENT_FUZZ_SEED changes the seed. Summaries are appended to build/fuzz-results.jsonl. A target's inputs are
 * written to build/fuzz-inputs/<target>-XXXXXX/, removed when it passes and kept (the error names it) when it fails:
 * not in the OS temp folder, which the run removes at its end (test/setup/runTempFolder.ts).
 */
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';

import { describe, expect, it } from 'vitest';

import { distModule } from '../helpers/dist.js';
import { concurrencyLimit } from '../helpers/slots.js';

const SCALE = Number(process.env.BRAINLATENT_FUZZ_SCALE ?? 1);
const SEED = Number(process.env.BRAINLATENT_FUZZ_SEED ?? 20241130);
/** Cases per target at scale 1, sized so the suite takes about a minute on CI's two cores. */
const RUNS: Record<string, number> = {
  npy: 1500,
  safetensors: 1000,
  ridgemodel: 500,
  nifti: 1000,
  png: 1500,
  mat: 1000,
  hdf5: 300,
  json: 1000,
  onnx: 150,
};
/** Peak RSS a reader process may reach: the largest seed is a few kB, so anything near this was a header believed. */
const MAX_RSS_MB = 400;
const SILENCE_MS = 60_000;

interface Summary {
  target: string;
  cases: number;
  accepted: number;
  rejected: Record<string, number>;
  inner: number;
  maxRssMb: number;
  seconds: number;
  failure: null | { case: number; error: string; stack: string; ops: unknown };
}

// Two drivers at a time: CI has two cores.
const slot = concurrencyLimit(2);

function fuzz(target: string, runs: number): Promise<Summary> {
  mkdirSync(join('build', 'fuzz-inputs'), { recursive: true });
  const work = resolvePath(mkdtempSync(join('build', 'fuzz-inputs', `${target}-`)));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join('test', 'fuzz', 'driver.mjs'), target, String(runs), String(SEED), work], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${target}: no progress for ${SILENCE_MS / 1000} s after "${out.trim().split('\n').pop()}" (a hang); the input is in ${work}`));
      }, SILENCE_MS);
    };
    arm();
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      arm();
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !last.startsWith('{')) {
        reject(new Error(`${target}: the reader process ended with ${signal ?? `exit code ${code}`} (a crash) after "${last}"; stderr: ${err.slice(-2000)}; inputs in ${work}`));
        return;
      }
      const s = JSON.parse(last) as Summary;
      mkdirSync('build', { recursive: true });
      appendFileSync(join('build', 'fuzz-results.jsonl'), `${JSON.stringify({ ...s, seed: SEED, date: new Date().toISOString(), stderrBytes: err.length })}\n`);
      if (err) s.failure ??= { case: -1, error: `the readers printed to stderr: ${err.slice(0, 1000)}`, stack: '', ops: null };
      if (s.failure) s.failure.error += ` (inputs in ${work})`;
      else rmSync(work, { recursive: true, force: true });
      resolve(s);
    });
  });
}

describe.concurrent('fuzzed readers', () => {
  distModule('io/npy'); // the driver runs the compiled library: fail early and clearly if it is stale
  for (const [target, base] of Object.entries(RUNS)) {
    const runs = Math.max(1, Math.round(base * SCALE));
    it(`${target}: ${runs} mutated files, each read or refused with a typed error naming the file`, async () => {
      const s = await slot(() => fuzz(target, runs));
      expect(s.failure, JSON.stringify(s.failure, null, 2)).toBeNull();
      expect(s.cases).toBe(runs);
      expect(s.maxRssMb).toBeLessThan(MAX_RSS_MB);
      expect(s.accepted + Object.values(s.rejected).reduce((a, b) => a + b, 0)).toBe(runs);
    }, 600_000);
  }
});
