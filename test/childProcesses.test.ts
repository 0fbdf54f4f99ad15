/**
 * Tests run their child processes asynchronously (test/helpers/nodeChild.ts): a synchronous one blocked the vitest
 * worker's event loop, and one that ran past vitest's fixed 60-s worker RPC timeout on a loaded machine failed the CI
 * run ('Timeout calling "onTaskUpdate"') though every test passed. scripts/check-imports.mjs refuses a synchronous
 * child in test/ outside its short list of quick calls.
 */
import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

import { afterEach, describe, expect, it } from 'vitest';

import { type ChildResult, commandOutput, liveChildren, runCommand, runModule } from './helpers/nodeChild.js';

interface Checker {
  syncChildProblems: (rel: string, text: string) => string[];
  QUICK_SYNC_CHILDREN: { file: string; call: string; why: string }[];
}
const checker = () => import(pathToFileURL(resolve('scripts/check-imports.mjs')).href) as Promise<Checker>;
/** `name` and `rest` joined: the lines below are test text, and this file must pass the check itself. */
const sync = (name: string, rest: string) => `${name}${rest}`;

describe('runCommand', () => {
  it('gives the exit status and both outputs; passes input, env and cwd', async () => {
    const r = await runCommand(
      process.execPath,
      ['-e', "let s = ''; process.stdin.on('data', (d) => (s += d)).on('end', () => { console.log(s.toUpperCase(), process.env.BL_X, process.cwd()); console.error('e'); process.exit(3); })"],
      { input: 'abc', env: { ...process.env, BL_X: 'x1' }, cwd: tmpdir() },
    );
    expect(r).toEqual({ status: 3, signal: null, stdout: `ABC x1 ${realpathSync(tmpdir())}\n`, stderr: 'e\n', hung: false });
  });

  it('closes stdin at once without input (as spawnSync does), so a child reading it ends', async () => {
    const r = await runCommand(process.execPath, ['-e', "process.stdin.resume().on('end', () => console.log('eof'))"]);
    expect([r.status, r.stdout]).toEqual([0, 'eof\n']);
  });

  it('kills a child still running after the hang limit and says so', async () => {
    const r = await runModule('setInterval(() => {}, 1000);', 300);
    expect([r.hung, r.signal, r.status]).toEqual([true, 'SIGKILL', null]);
  });

  it("leaves the worker's event loop free while the child runs", async () => {
    let turns = 0;
    const tick = setInterval(() => turns++, 5);
    try {
      await runModule('await new Promise((r) => setTimeout(r, 400));');
    } finally {
      clearInterval(tick);
    }
    // (a synchronous child: 0)
    expect(turns).toBeGreaterThan(0);
  });

  it('rejects for a program that does not exist', async () => {
    await expect(runCommand(join(tmpdir(), 'no-such-program-bl'), [])).rejects.toThrow(/ENOENT/);
  });
});

describe("a test's children end with it", () => {
  // children that would run for 10 minutes (the default hang limit) unless killed
  const forever = 'setInterval(() => {}, 1000);';
  let timedOut: Promise<ChildResult> | undefined;
  let runningInAfterEach: number | undefined;
  afterEach(() => {
    // (what a file's afterEach that removes the child's directory would find)
    if (timedOut && runningInAfterEach === undefined) runningInAfterEach = liveChildren();
  });

  it.fails(
    'a test that times out (expected to fail: it waits on a child that never exits)',
    async () => {
      timedOut = runCommand(process.execPath, ['-e', forever]);
      await timedOut;
    },
    1000,
  );

  it('killed the timed-out test’s child when it timed out, before the afterEach hooks ran', async () => {
    const r = await timedOut!;
    expect([r.signal, r.hung, runningInAfterEach]).toEqual(['SIGKILL', false, 0]);
  });

  let leftRunning: Promise<ChildResult> | undefined;
  it('a test that ends without waiting for its child', () => {
    leftRunning = runCommand(process.execPath, ['-e', forever]);
    expect(liveChildren()).toBe(1);
  });

  it('killed that child when its test ended', async () => {
    expect(liveChildren()).toBe(0);
    const r = await leftRunning!;
    expect([r.signal, r.hung]).toEqual(['SIGKILL', false]);
  });
});

describe('commandOutput', () => {
  it("resolves to stdout; rejects naming the command, its exit and its stderr, as execFileSync's error does", async () => {
    expect(await commandOutput(process.execPath, ['-e', "process.stdout.write('out')"])).toBe('out');
    await expect(commandOutput(process.execPath, ['-e', "console.error('bad input'); process.exit(2)"])).rejects.toThrow(
      `${process.execPath} -e console.error('bad input'); process.exit(2) exited with status 2\nbad input\n`,
    );
    await expect(commandOutput(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { hangLimitMs: 300 })).rejects.toThrow(/hung and was killed after 300 ms/);
  });
});

describe("scripts/check-imports.mjs's synchronous children in test/", () => {
  it('refuses spawnSync, execFileSync, execSync or a renamed one, naming the line, the 60-s RPC and runCommand', async () => {
    const { syncChildProblems } = await checker();
    const text = [
      "import { execFileSync, spawnSync } from 'node:child_process';",
      sync('// a comment may name spawnSync', '(…)'),
      sync('const r = spawnSync', "(process.execPath, [cli, 'demo']);"),
      sync('const out = execFileSync', "('npm', ['pack']);"),
      sync("require('node:child_process').execSync", "('make');"),
      sync('import { spawnSync', " as run } from 'node:child_process';"),
    ].join('\n');
    const found = syncChildProblems('demo/x.test.ts', text);
    expect(found.map((p) => p.slice(0, p.indexOf(' blocks')))).toEqual([
      sync('test/demo/x.test.ts:3: spawnSync', '()'),
      sync('test/demo/x.test.ts:4: execFileSync', '()'),
      sync('test/demo/x.test.ts:5: execSync', '()'),
      'test/demo/x.test.ts:6: spawnSync renamed',
    ]);
    expect(found[0]).toContain("vitest's 60-s worker RPC timeout");
    expect(found[0]).toContain('Timeout calling "onTaskUpdate"');
    expect(found[0]).toContain('await runCommand or commandOutput from test/helpers/nodeChild.ts');
  });

  it('lets the listed quick calls through, in their own file only', async () => {
    const { syncChildProblems, QUICK_SYNC_CHILDREN } = await checker();
    const line = sync('  return spawnSync', "(process.execPath, ['-e', '0']).pid!;");
    expect(syncChildProblems('io/atomicWrite.test.ts', line)).toEqual([]);
    expect(syncChildProblems('io/other.test.ts', line)).toHaveLength(1);
    for (const q of QUICK_SYNC_CHILDREN) expect(q.why.length, q.file).toBeGreaterThan(0);
  });

  it('finds none in test/ today', async () => {
    const { syncChildProblems } = await checker();
    const files = (dir: string): string[] =>
      readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? files(join(dir, n)) : /\.(ts|mts|js|mjs)$/.test(n) ? [join(dir, n)] : []));
    const problems = files(resolve('test')).flatMap((f) => syncChildProblems(relative(resolve('test'), f), readFileSync(f, 'utf8')));
    expect(problems).toEqual([]);
  });
});
