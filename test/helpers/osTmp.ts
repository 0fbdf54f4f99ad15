/**
 * Tests that check what a call leaves in the OS temp folder point TMPDIR at a fresh, empty folder of their own
 * (os.tmpdir() reads TMPDIR on every call); `restoreTmpdir` in an afterEach puts the process's value back: the run's
 * folder (test/setup/runTempFolder.ts), read when this module loads, never the OS temp folder itself.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const saved = process.env.TMPDIR;

/** `parent`/`name`, made and set as TMPDIR. */
export function osTmp(parent: string, name: string): string {
  const dir = join(parent, name);
  mkdirSync(dir, { recursive: true });
  process.env.TMPDIR = dir;
  return dir;
}

export function restoreTmpdir(): void {
  if (saved === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = saved;
}
