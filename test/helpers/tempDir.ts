/**
 * A fresh folder in the OS temp folder for one test: removed when the test that made it ends, or, when made outside
 * a test (module level, beforeAll), when its file ends (removeFileTempDirs, an afterAll of test/setup/fileEnd.ts).
 * The run's folder (test/setup/runTempFolder.ts) removes whatever is left when the run ends; this keeps a run's
 * peak use down and a file's folders from outliving it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { onTestFinished } from 'vitest';
import { getCurrentTest } from 'vitest/suite';

const fileScoped: string[] = [];

/** mkdtemp of `<os tmp>/<prefix>XXXXXX`, removed when the current test (else the file) ends. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (getCurrentTest()) onTestFinished(() => removeQuietly(dir));
  else fileScoped.push(dir);
  return dir;
}

/** Removes the folders tempDir made outside a test. */
export function removeFileTempDirs(): void {
  for (const dir of fileScoped.splice(0)) removeQuietly(dir);
}

/** rm -rf with retries (a killed test process's grandchild may still write there); the run folder is the net. */
function removeQuietly(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  } catch (e) {
    console.warn(`tempDir: could not remove ${dir}: ${(e as Error).message}`);
  }
}
