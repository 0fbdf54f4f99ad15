/**
 * One shared features entry is computed by one process at a time: two jobs of a batch that need an entry not there
 * yet (a shared job and an analysis's features-link job) both computed it (the same z entry twice, the VAE over every
 * image twice). The second now waits for the first's lock, says so, and reads the first's entry. A lock left by a dead
 * process is taken over. (The two processes run dist/: compile before running this.)
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ensureEntry, entryKey, type FeatureRecipe } from '../../ts/batch/sharedFeatures.js';
import type { DemoWorld } from '../../ts/demo/world.js';
import { CancelledError } from '../../ts/errors.js';
import { processStartTime } from '../../ts/io/processAlive.js';
import { extractNsd } from '../../ts/nsd/extract.js';
import { resolveConfig } from '../../ts/pipeline/config.js';
import { extractOptions } from '../../ts/pipeline/stages.js';
import { batchWorld } from './world.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-entry-lock-'));
let world: DemoWorld;
let recipe: FeatureRecipe;
let ids: Int32Array;

beforeAll(async () => {
  world = await batchWorld(dir, [1]);
  recipe = { part: 'z', model: world.modelDir, root: world.nsdRoot, size: 64, mode: 'mean', seed: null, noise: null, batch: 4, runtime: { provider: 'cpu', ortLibrary: null, threads: 1, memory: 'default' } };
  const probe = resolveConfig({ out: join(dir, 'probe'), nsd: { root: world.nsdRoot, subject: 1 }, model: { dir: world.modelDir } });
  const test = (await extractNsd({ ...extractOptions(probe, 'z'), cacheDir: undefined })).testImageIds;
  ids = Int32Array.from(test).sort();
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A child process that calls ensureEntry on dist/ and prints each progress message as a line. With `hold`, its first
 * progress of the computation (the entry's lock held) writes `<hold>.computing` and blocks until `<hold>.go` exists.
 */
function child(cache: string, hold?: string) {
  const script = `
    const { ensureEntry } = await import(${JSON.stringify(resolve('dist/batch/sharedFeatures.js'))});
    const { existsSync, writeFileSync } = await import('node:fs');
    const [cache, recipe, ids, hold] = JSON.parse(process.argv[1]);
    let held = false;
    const progress = (f, m) => {
      console.log('progress ' + m);
      if (hold && !held && m && m.startsWith('z:')) {
        held = true;
        writeFileSync(hold + '.computing', '');
        const cell = new Int32Array(new SharedArrayBuffer(4));
        while (!existsSync(hold + '.go')) Atomics.wait(cell, 0, 0, 20);
      }
    };
    const e = await ensureEntry(cache, recipe, Int32Array.from(ids), progress);
    console.log('entry ' + JSON.stringify({ key: e.key, computed: e.computed }));
  `;
  const p = spawn(process.execPath, ['--input-type=module', '-e', script, JSON.stringify([cache, recipe, Array.from(ids), hold ?? null])], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number>((r) => p.on('exit', (code) => r(code ?? -1)));
  return { pid: p.pid!, lines: () => out.split('\n'), stderr: () => err, exited };
}

/** Waits (polling, no time limit of its own: the test's limit applies) until `cond` holds. */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 20));
}

describe('a shared features entry', () => {
  it('is computed once by two processes that need it at the same time: the second waits for the first, then reads its entry', async () => {
    const cache = join(dir, 'two');
    const hold = join(dir, 'hold');
    const first = child(cache, hold);
    // the first is computing (its lock held) when the second asks for the entry
    await until(() => existsSync(`${hold}.computing`) || first.lines().some((l) => l.startsWith('entry ')));
    expect(existsSync(`${hold}.computing`), first.stderr()).toBe(true);
    const second = child(cache);
    let secondExit: number | null = null;
    void second.exited.then((c) => (secondExit = c));
    await until(() => second.lines().some((l) => l.startsWith('progress waiting for')) || secondExit !== null);
    writeFileSync(`${hold}.go`, '');
    expect(await first.exited, first.stderr()).toBe(0);
    expect(await second.exited, second.stderr()).toBe(0);

    const key = await entryKey(recipe, ids);
    const result = (c: ReturnType<typeof child>) => JSON.parse(c.lines().find((l) => l.startsWith('entry '))!.slice(6)) as { key: string; computed: boolean };
    expect(result(first)).toEqual({ key, computed: true });
    expect(result(second)).toEqual({ key, computed: false });
    expect(second.lines().filter((l) => l.startsWith('progress waiting for'))).toEqual([`progress waiting for ${key} computed by pid ${first.pid} on ${hostname()}`]);
    // the second never ran the VAE
    expect(second.lines().filter((l) => l.startsWith('progress z:'))).toEqual([]);
    expect(readFileSync(join(cache, 'computed.log'), 'utf8')).toBe(`${key} ${first.pid} ${ids.length}\n`);
    // the lock went with the computation
    expect(readdirSync(cache).sort()).toEqual(['computed.log', key]);
  }, 300_000);

  it("is computed by a process that finds a dead process's lock on it (the lock is taken over)", async () => {
    const cache = join(dir, 'dead');
    const key = await entryKey(recipe, ids);
    const gone = spawn(process.execPath, ['-e', '']);
    const pid = gone.pid!;
    await new Promise((r) => gone.on('exit', r));
    mkdirSync(cache, { recursive: true });
    writeFileSync(join(cache, `${key}.lock`), JSON.stringify({ pid, host: hostname(), command: 'node', startedAt: new Date().toISOString(), processStart: null, token: 'dead0000' }));
    const said: string[] = [];
    const e = await ensureEntry(cache, recipe, ids, (_, m) => m && said.push(m));
    expect(e.computed).toBe(true);
    expect(said.filter((m) => m.startsWith('waiting'))).toEqual([]);
    expect(readdirSync(cache).sort()).toEqual(['computed.log', key]);
  }, 300_000);

  it('waits for a live holder until cancelled, naming the holder', async () => {
    const cache = join(dir, 'live');
    const key = await entryKey(recipe, ids);
    mkdirSync(cache, { recursive: true });
    // this test's parent process holds it (alive for the whole test)
    const holder = { pid: process.ppid, host: hostname(), command: 'node', startedAt: new Date().toISOString(), processStart: processStartTime(process.ppid), token: 'live0000' };
    writeFileSync(join(cache, `${key}.lock`), JSON.stringify(holder));
    const ac = new AbortController();
    const said: string[] = [];
    const waiting = ensureEntry(cache, recipe, ids, (_, m) => {
      if (m) said.push(m);
      if (m?.startsWith('waiting')) ac.abort();
    }, ac.signal);
    await expect(waiting).rejects.toBeInstanceOf(CancelledError);
    expect(said).toEqual([`waiting for ${key} computed by pid ${process.ppid} on ${hostname()}`]);
    // nothing computed, and the holder's lock is left as it was
    expect(existsSync(join(cache, 'computed.log'))).toBe(false);
    expect(JSON.parse(readFileSync(join(cache, `${key}.lock`), 'utf8')).token).toBe('live0000');
  }, 300_000);
});
