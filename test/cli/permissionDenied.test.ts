/**
 * An output below a folder the user cannot enter (another user's home) is refused naming the flag and that folder:
 * as a non-root user, `ridge fit --out /root/x/m` printed "brainlatent: error: EACCES: permission denied, stat
 * '/root/x/m'", and so did `nsd extract --out/--cache`, `cache list` and the default cache under another user's HOME.
 *
 * End to end, with permissions enforced: root ignores them, so as root the CLI runs as uid/gid 65534 (nobody), which
 * must be able to read dist/ and reach this test's folder (the run's temporary folder is given search permission for
 * others, o+x, for that); where it cannot, the tests are skipped (reported as skipped). As any other user it runs as
 * that user.
 */
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { planted } from '../helpers/random.js';
import { distModule } from '../helpers/dist.js';
import { runCommand } from '../helpers/nodeChild.js';
import { tempDir } from '../helpers/tempDir.js';
import { writeNpy } from '../../ts/io/npy.js';
import { synthNsd } from '../../ts/synth/nsd.js';

const cli = distModule('cli/main');
const asRoot = process.getuid?.() === 0;
const NOBODY = 65534;

let dir = '';
/** Why the CLI cannot be run here as a user the permissions apply to (then each test is skipped), or null. */
let cannotRun: string | null = null;

/** `brainlatent …args` as a user the permissions apply to, with `env` added to a bare environment. */
function brainlatent(args: string[], env: NodeJS.ProcessEnv = {}) {
  const base = { PATH: process.env.PATH, NO_COLOR: '1', HOME: dir, ...env };
  return runCommand(process.execPath, [cli, ...args], { env: base, ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}) });
}

beforeAll(async () => {
  dir = tempDir('bl-eacces-');
  // (root: nobody must reach the folder; only the run's own temporary folders are opened, o+x: not listed)
  const run = process.env.TMPDIR ?? tmpdir();
  for (let p = dir; ; p = dirname(p)) {
    const mode = statSync(p).mode;
    if (asRoot && !(mode & 0o001)) {
      if (relative(run, p).startsWith('..')) break;
      chmodSync(p, mode | 0o001);
    }
    if (dirname(p) === p) break;
  }
  chmodSync(dir, 0o755);
  const { x, y } = planted(20, 3, 2, 1);
  await writeNpy(join(dir, 'X.npy'), x.data, [20, 3]);
  await writeNpy(join(dir, 'Y.npy'), y.data, [20, 2]);
  await synthNsd({ out: join(dir, 'nsd') });
  // a folder the CLI may write in, and one nobody but its owner may enter (as its owner, not root: not even that)
  mkdirSync(join(dir, 'w'));
  chmodSync(join(dir, 'w'), 0o777);
  mkdirSync(join(dir, 'locked'), { mode: asRoot ? 0o700 : 0o000 });
  const probe = await brainlatent(['--version']);
  if (probe.status !== 0) cannotRun = `the CLI does not run as uid ${asRoot ? NOBODY : process.getuid?.()}: ${probe.stderr.trim().split('\n')[0]}`;
}, 120_000);

const locked = () => join(dir, 'locked');

describe('an output below a folder the user cannot enter', () => {
  it('ridge fit --out: the flag and the folder are named, nothing else is said', async ({ skip }) => {
    if (cannotRun) skip(cannotRun);
    const out = join(locked(), 'x', 'm');
    const r = await brainlatent(['ridge', 'fit', '--x', join(dir, 'X.npy'), '--y', join(dir, 'Y.npy'), '--out', out]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`brainlatent: InvalidArgumentError: --out ${out}: ${locked()} cannot be entered (permission denied); expected a file path for the model (.safetensors)\n`);
  });

  it('nsd extract --out and --cache: both refused, each naming its flag', async ({ skip }) => {
    if (cannotRun) skip(cannotRun);
    const r = await brainlatent(['nsd', 'extract', '--root', join(dir, 'nsd'), '--subject', '1', '--roi', 'streams:early', '--out', join(locked(), 'ex'), '--cache', join(locked(), 'c')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`  - --out ${join(locked(), 'ex')}: ${locked()} cannot be entered (permission denied); expected a folder for the extracted betas\n`);
    expect(r.stderr).toContain(`  - --cache ${join(locked(), 'c')}: ${locked()} cannot be entered (permission denied); expected a folder for completed extractions (the cache)\n`);
    expect(r.stderr).not.toContain('EACCES');
  });

  it('the default cache under a HOME the user cannot enter: nsd extract, cache list and cache prune say how to choose another', async ({ skip }) => {
    if (cannotRun) skip(cannotRun);
    const home = locked();
    const cache = join(home, '.cache', 'brainlatent', 'nsd');
    const label = '--cache (default, under HOME; set --cache, XDG_CACHE_HOME or BRAINLATENT_CACHE to choose another folder)';
    const ex = await brainlatent(['nsd', 'extract', '--root', join(dir, 'nsd'), '--subject', '1', '--roi', 'streams:early', '--out', join(dir, 'w', 'ex')], { HOME: home });
    expect(ex.status).toBe(1);
    expect(ex.stderr).toBe(`brainlatent: InvalidArgumentError: ${label} ${cache}: ${home} cannot be entered (permission denied); expected a folder for completed extractions (the cache)\n`);
    for (const cmd of [['list'], ['prune', '--stale']]) {
      const r = await brainlatent(['cache', ...cmd], { HOME: home });
      // (before: "no extraction cache at … (nothing extracted there yet)", rc 0, as if the folder were missing)
      expect(r.status).toBe(1);
      expect(r.stderr).toBe(`brainlatent: InvalidArgumentError: ${label} ${cache}: ${home} cannot be entered (permission denied); expected an NSD extraction cache folder\n`);
    }
    const named = await brainlatent(['cache', 'list', '--cache', join(home, 'c')]);
    expect(named.stderr).toBe(`brainlatent: InvalidArgumentError: --cache ${join(home, 'c')}: ${home} cannot be entered (permission denied); expected an NSD extraction cache folder\n`);
  });

  it('extractNsd (the library) names its cacheDir option and the folder', async ({ skip }) => {
    if (cannotRun) skip(cannotRun);
    const extract = distModule('nsd/extract');
    const cacheDir = join(locked(), 'c');
    const script = `import { extractNsd } from ${JSON.stringify(extract)};
      extractNsd({ root: ${JSON.stringify(join(dir, 'nsd'))}, subject: 1, roi: 'streams:early', cacheDir: ${JSON.stringify(cacheDir)} })
        .then(() => console.log('extracted'), (e) => console.log(e.name + ': ' + e.message));`;
    const r = await runCommand(process.execPath, ['--input-type=module', '-e', script], { env: { PATH: process.env.PATH, HOME: dir }, ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}) });
    expect(r.stdout).toBe(`InvalidArgumentError: extractNsd cacheDir: expected a folder for completed extractions, got ${cacheDir}, where ${locked()} cannot be entered (permission denied)\n`);
  });
});
