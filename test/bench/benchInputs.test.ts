/**
 * `brainlatent bench data` generates about 1 GB of inputs. It wrote them under the package root
 * (node_modules/brainlatent/bench/out/), so in an admin's read-only install it died on a raw EACCES stack, and a
 * writable install grew by that much. An installed package now writes them under the results folder
 * (./brainlatent-bench/data/ or --results' data/), and a place it cannot write in is refused, named, before any work.
 *
 * End to end in a stand-in installed package (dist/ copied into a folder without .git or ts/), run from a folder the
 * user cannot write in. As root the child runs as nobody (uid 65534), as test/cli/permissionDenied.test.ts does.
 */
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, beforeAll, describe, expect, it } from 'vitest';

import { benchInputsDir } from '../../ts/bench/benchRecord.js';
import { packageRoot } from '../../ts/native/binding.js';
import { distModule } from '../helpers/dist.js';
import { runCommand } from '../helpers/nodeChild.js';
import { tempDir } from '../helpers/tempDir.js';

const asRoot = process.getuid?.() === 0;
const NOBODY = 65534;
let dir = '';
let pkg = '';
let readOnly = '';

beforeAll(() => {
  distModule('bench/data'); // (a stale dist/ says so)
  dir = tempDir('bl-bench-inputs-');
  const run = process.env.TMPDIR ?? tmpdir();
  for (let p = dir; !path.relative(run, p).startsWith('..') && path.dirname(p) !== p; p = path.dirname(p)) chmodSync(p, statSync(p).mode | 0o001);
  chmodSync(dir, 0o755);
  pkg = path.join(dir, 'pkg');
  cpSync(path.join(packageRoot, 'dist'), path.join(pkg, 'dist'), { recursive: true, filter: (f) => !/\.(map|d\.ts)$/.test(f) });
  writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'brainlatent', version: '0.0.0-test', type: 'module' }));
  symlinkSync(path.join(packageRoot, 'node_modules'), path.join(pkg, 'node_modules'));
  readOnly = path.join(dir, 'ro');
  mkdirSync(readOnly, { mode: 0o555 });
  chmodSync(readOnly, 0o555);
});

const saved = process.env.BRAINLATENT_BENCH_DIR;
afterEach(() => {
  if (saved === undefined) delete process.env.BRAINLATENT_BENCH_DIR;
  else process.env.BRAINLATENT_BENCH_DIR = saved;
});

function asUser(file: string, args: string[], cwd: string) {
  return runCommand(process.execPath, [file, ...args], { cwd, env: { PATH: process.env.PATH, HOME: dir, NO_COLOR: '1' }, hangLimitMs: 60_000, ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}) });
}

describe("bench data's generated inputs", () => {
  it('go to bench/out/data/ in a checkout, else below the results folder, never the package', () => {
    expect(benchInputsDir('data', true)).toBe(path.join(packageRoot, 'bench', 'out', 'data'));
    process.env.BRAINLATENT_BENCH_DIR = path.join(dir, 'mine');
    expect(benchInputsDir('data', false)).toBe(path.join(dir, 'mine', 'data'));
  });

  it('are refused, naming the folder, where the installed bench cannot write them, before any work', async () => {
    const r = await asUser(path.join(pkg, 'dist', 'bench', 'data.js'), [], readOnly);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(
      `bench data: ${path.join(readOnly, 'brainlatent-bench', 'data')}, the folder for its generated inputs (about 1 GB to write): ` +
        `${readOnly} is not writable (permission denied); run the bench from a folder you can write in, or give --results <dir> (BRAINLATENT_BENCH_DIR)`,
    );
    expect(readdirSync(readOnly)).toEqual([]);
    expect(existsSync(path.join(pkg, 'bench'))).toBe(false);
  });

  it("the CLI refuses the default results folder it cannot write in, before the bench's process starts", async () => {
    const r = await asUser(path.join(pkg, 'dist', 'cli', 'main.js'), ['bench', 'data'], readOnly);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`the default results folder ${path.join(readOnly, 'brainlatent-bench')}: ${readOnly} is not writable (permission denied)`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(readdirSync(readOnly)).toEqual([]);
  });
});
