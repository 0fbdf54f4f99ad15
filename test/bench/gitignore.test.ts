/**
 * The checkout's .gitignore must hide the build outputs and installs whether they are folders or symlinks: a
 * worktree whose node_modules (or build/, dist/) is a symlink to a shared install is clean, and bench records
 * (benchRecord.ts gitDirty) must not call it dirty. `node_modules/` with a slash matches only a directory.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';

import { commandOutput } from '../helpers/nodeChild.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'brainlatent-gitignore-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const git = (cwd: string, ...args: string[]): Promise<string> =>
  // no user or system config: a developer's global excludes must not hide what the project's .gitignore misses
  commandOutput('git', args, { cwd, env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', HOME: tmp } });

describe('.gitignore', () => {
  it('ignores node_modules, build and dist as symlinks as well as folders (a shared install leaves the tree clean)', async () => {
    for (const kind of ['symlink', 'folder'] as const) {
      const repo = path.join(tmp, kind);
      mkdirSync(repo);
      await git(repo, 'init', '-q');
      copyFileSync(path.join(root, '.gitignore'), path.join(repo, '.gitignore'));
      await git(repo, 'add', '.gitignore');
      const target = path.join(tmp, `target-${kind}`);
      mkdirSync(target, { recursive: true });
      writeFileSync(path.join(target, 'f.js'), '');
      for (const name of ['node_modules', 'build', 'dist']) {
        if (kind === 'symlink') symlinkSync(target, path.join(repo, name));
        else {
          mkdirSync(path.join(repo, name));
          writeFileSync(path.join(repo, name, 'f.js'), '');
        }
      }
      // staged .gitignore only: anything else in the status is a path the .gitignore does not hide
      expect((await git(repo, 'status', '--porcelain', '--untracked-files=all')).trim().split('\n'), kind).toEqual(['A  .gitignore']);
    }
  });
});
