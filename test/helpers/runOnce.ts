/**
 * Folders that many test files start from (a synthetic world: ~2.5 s of CPU to build, 8 MB to copy in 0.02 s), built
 * once per test run in its temporary folder (test/setup/runTempFolder.ts) and copied into each file's own.
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The run's folder `name`, made by `build` (into the empty folder it is given) the first time it is asked for. It is
 * built under a name of this process's and renamed into place, so that files running at once never see half of one;
 * a file that finishes second removes its own and uses the first's. Callers copy it (cpSync) and never change it.
 */
export async function builtOncePerRun(name: string, build: (dir: string) => Promise<unknown>): Promise<string> {
  const parent = join(tmpdir(), 'bl-run-once');
  const done = join(parent, name);
  if (existsSync(done)) return done;
  mkdirSync(parent, { recursive: true });
  const mine = `${done}.${process.pid}.building`;
  rmSync(mine, { recursive: true, force: true });
  mkdirSync(mine);
  await build(mine);
  try {
    renameSync(mine, done);
  } catch (e) {
    if (!existsSync(done)) throw e;
    rmSync(mine, { recursive: true, force: true });
  }
  return done;
}
