/**
 * Kill tests (issue #11): a child process writing one kind of output over a previous version, alternating two
 * versions, is SIGKILLed at a random moment; whatever it was doing, the output on disk is afterwards the complete
 * old or the complete new version — never a mix, a truncated file, or a folder of new betas beside an old
 * manifest. Two concurrent writers of one output leave one complete result. Kill points per kind scale with
 * BRAINLATENT_KILL_POINTS (default 4); results are appended to
 * build/kill-results.jsonl.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { isAtomicTemporary, recoverInterruptedDir, removeStaleTemporaries } from '../../ts/io/atomicWrite.js';
import { Hdf5Reader } from '../../ts/io/hdf5.js';
import { distModule } from '../helpers/dist.js';
import { concurrencyLimit } from '../helpers/slots.js';

const POINTS = Number(process.env.BRAINLATENT_KILL_POINTS ?? 4);
const root = mkdtempSync(join(tmpdir(), 'bl-kill-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const writer = join('test', 'io', 'killWriter.mjs');

/**
 * Content digest of a file, or of a folder (every visible file by relative path); null when absent. MAT headers
 * carry a creation date and HDF5 object headers times, so those compare by content: a .mat past its 116-byte text
 * header, an HDF5 file by every dataset's values (it must open and read cleanly to have a digest at all).
 */
async function digest(path: string): Promise<string | null> {
  if (!existsSync(path)) return null;
  const h = createHash('sha256');
  const file = async (p: string) => {
    h.update(relative(path, p)).update('\0');
    if (p.endsWith('.mat')) h.update(readFileSync(p).subarray(116));
    else if (p.endsWith('.h5') || p.endsWith('.hdf5')) {
      const r = await Hdf5Reader.open(p);
      try {
        for (const d of r.datasets()) h.update(`${d.path} ${d.shape.join('x')} ${d.dtype}`).update(new Uint8Array(r.readSlab(d.path).buffer));
      } finally {
        r.close();
      }
    } else h.update(readFileSync(p));
    h.update('\0');
  };
  const walk = async (p: string) => {
    if (statSync(p).isDirectory()) {
      for (const e of readdirSync(p).sort()) if (!isAtomicTemporary(e)) await walk(join(p, e));
    } else await file(p);
  };
  await walk(path);
  return h.digest('hex');
}

interface Child {
  wrote: number;
  times: number[];
  exited: Promise<void>;
  kill(): void;
}

/** Starts a writer and resolves once its modules are loaded. */
function start(kind: string, path: string, which: 'a' | 'b' | 'alt' | 'prep', count?: number): Promise<Child> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [writer, kind, path, which, ...(count ? [String(count)] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    const child: Child = {
      wrote: 0,
      times: [],
      exited: new Promise((r) => p.on('exit', () => r())),
      kill: () => p.kill('SIGKILL'),
    };
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.stdout.on('data', (d: Buffer) => {
      const s = d.toString();
      if (s.includes('ready')) resolve(child);
      for (const m of s.matchAll(/wrote \S+ (\d+)/g)) {
        child.wrote++;
        child.times.push(Number(m[1]));
      }
    });
    p.on('exit', (code, signal) => {
      if (code !== 0 && signal !== 'SIGKILL') reject(new Error(`${kind} writer failed (${code}): ${err}`));
    });
  });
}

/** Writes the two reference versions beside `path` and version a at `path`; returns their digests and the write time. */
async function prepare(kind: string, path: string): Promise<{ a: string; b: string; ms: number }> {
  const c = await start(kind, path, 'prep');
  await c.exited;
  const [a, b] = await Promise.all([digest(join(dirname(path), 'ref-a', basename(path))), digest(join(dirname(path), 'ref-b', basename(path)))]);
  if (!a || !b || a === b) throw new Error(`${kind}: the writer's two versions are missing or identical`);
  expect(await digest(path)).toBe(a);
  return { a, b, ms: Math.max(1, Math.min(...c.times)) };
}

// Two writers at a time: CI has two cores.
const slot = concurrencyLimit(2);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const KINDS = ['npy', 'safetensors', 'nifti', 'png', 'json', 'mat', 'hdf5', 'extraction', 'synth'] as const;
const isDirKind = (k: string) => k === 'extraction' || k === 'synth';
const EXT: Record<string, string> = { npy: '.npy', safetensors: '.safetensors', nifti: '.nii.gz', png: '.png', json: '.json', mat: '.mat', hdf5: '.h5' };

function record(entry: Record<string, unknown>): void {
  mkdirSync('build', { recursive: true });
  appendFileSync(join('build', 'kill-results.jsonl'), `${JSON.stringify({ ...entry, date: new Date().toISOString() })}\n`);
}

describe.concurrent('outputs survive SIGKILL at random points', () => {
  distModule('io/atomicWrite');
  for (const kind of KINDS) {
    it(`${kind}: ${POINTS} kills while a new version is written over the old one`, () =>
      slot(async () => {
        const dir = join(root, kind);
        mkdirSync(dir);
        const path = join(dir, `out${EXT[kind] ?? ''}`);
        const { a, b, ms } = await prepare(kind, path);
        const seen = { old: 0, new: 0, restored: 0, beforeFirstWrite: 0 };
        let rng = 12345;
        for (let k = 0; k < POINTS; k++) {
          const c = await start(kind, path, 'alt');
          rng = (rng * 1103515245 + 12345) % 2 ** 31;
          // anywhere in the first three writes (half of them write version b over a, half a over b)
          await sleep((rng / 2 ** 31) * 3 * ms);
          c.kill();
          await c.exited;
          let d = await digest(path);
          if (d === null && isDirKind(kind)) {
            // killed between moving the old folder aside and renaming the new one in: the old one is put back
            expect(await recoverInterruptedDir(path)).toBe(true);
            seen.restored++;
            d = await digest(path);
          }
          expect([a, b], `after kill ${k} (${c.wrote} complete writes)`).toContain(d);
          if (d === a) seen.old++;
          else seen.new++;
          if (c.wrote === 0) seen.beforeFirstWrite++;
          await removeStaleTemporaries(dir);
        }
        expect(readdirSync(dir).filter(isAtomicTemporary)).toEqual([]);
        record({ kind, points: POINTS, writeMs: ms, ...seen });
        rmSync(dir, { recursive: true, force: true });
      }),
    600_000);
  }

  it(`run folder: ${POINTS} kills during reconstruct --force with a new config never leave old metrics beside the new run.json`, () => slot(async () => {
    const out = join(root, 'run');
    let newBesideOld = 0;
    const states = { oldRun: 0, clearing: 0, newRun: 0 };
    for (let k = 0; k < POINTS; k++) {
      // a finished "old" run (version 0), then a --force run of version 1 killed at a random point
      const setup = await start('runfolder', out, 'a', 1);
      await setup.exited;
      const c = await start('runfolder', out, 'b');
      await sleep(((k + 0.5) / POINTS) * 1.5 * Math.max(1, setup.times[0]));
      c.kill();
      await c.exited;
      const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as { clearing?: boolean; versions?: { brainlatent: string } };
      const metrics = existsSync(join(out, 'metrics.json')) ? (JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as { run: number }) : null;
      const report = existsSync(join(out, 'report.html')) ? readFileSync(join(out, 'report.html'), 'utf8') : null;
      if (run.clearing) states.clearing++;
      else if (run.versions?.brainlatent === 'v0') {
        states.oldRun++;
        expect(metrics?.run).toBe(0);
        expect(report).toBe('<p>run 0</p>');
      } else {
        states.newRun++;
        if (metrics?.run === 0 || report === '<p>run 0</p>') newBesideOld++;
      }
    }
    expect(newBesideOld).toBe(0);
    record({ kind: 'runfolder --force', points: POINTS, ...states });
  }), 600_000);
});

describe.concurrent('concurrent writers of one output', () => {
  for (const kind of ['npy', 'safetensors', 'extraction'] as const) {
    it(`${kind}: two processes writing different versions leave one complete result (finished, and killed mid-race)`, () =>
      slot(async () => {
        const dir = join(root, `race-${kind}`);
        mkdirSync(dir);
        const path = join(dir, `out${EXT[kind] ?? ''}`);
        const { a, b, ms } = await prepare(kind, path);
        for (const killed of [false, true]) {
          const [p, q] = await Promise.all([start(kind, path, 'a', 6), start(kind, path, 'b', 6)]);
          if (killed) {
            await sleep(2 * ms);
            p.kill();
            q.kill();
          }
          await Promise.all([p.exited, q.exited]);
          let d = await digest(path);
          if (d === null) {
            await recoverInterruptedDir(path);
            d = await digest(path);
          }
          expect([a, b], killed ? 'killed mid-race' : 'both finished').toContain(d);
        }
        record({ kind: `race ${kind}`, rounds: 2 });
      }),
    600_000);
  }
});
