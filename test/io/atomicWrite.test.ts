import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGzip, gunzipSync } from 'node:zlib';

import { afterAll, describe, expect, it } from 'vitest';

import {
  isAtomicTemporary,
  recoverInterruptedDir,
  removeStaleTemporaries,
  withAtomicDir,
  withAtomicFile,
  writeFileAtomic,
  writeJsonAtomic,
  writeChunks,
  writeStreamAtomic,
} from '../../ts/io/atomicWrite.js';
import { distModule } from '../helpers/dist.js';

const root = mkdtempSync(join(tmpdir(), 'bl-atomic-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => {
  const d = join(root, `case${n++}`);
  mkdirSync(d);
  return d;
};

/** A pid that certainly belongs to no running process: a child that has exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!;
}

/** The host tag this module puts in temporary names, read back from a temporary it creates. */
async function hostTagOf(dir: string): Promise<string> {
  let tag = '';
  await withAtomicFile(join(dir, 'probe'), async (_fh, tmp) => {
    tag = /\.tmp-([0-9a-f]{6})-/.exec(tmp)![1];
  });
  return tag;
}

describe('atomic writes', () => {
  it('writes a new file and replaces an old one, leaving no temporary', async () => {
    const d = fresh();
    const p = join(d, 'out.json');
    await writeFileAtomic(p, 'old');
    expect(readFileSync(p, 'utf8')).toBe('old');
    await writeJsonAtomic(p, { a: 1 });
    expect(JSON.parse(readFileSync(p, 'utf8'))).toEqual({ a: 1 });
    expect(readdirSync(d)).toEqual(['out.json']);
  });

  it('writeChunks writes many chunks (more than one writev takes), empty ones and views, in order', async () => {
    const d = fresh();
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < 2500; i++) chunks.push(i % 7 === 0 ? new Uint8Array(0) : Uint8Array.from({ length: 1 + (i % 13) }, (_, k) => (i + k) & 255));
    const big = Uint8Array.from({ length: 3 << 20 }, (_, k) => (k * 31) & 255);
    chunks.push(big.subarray(5, big.length - 5), new Uint8Array(new Float32Array([1.5, -2]).buffer, 4, 4));
    const bytes = (c: Uint8Array) => Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    await withAtomicFile(join(d, 'chunks.bin'), (fh) => writeChunks(fh, chunks));
    expect(readFileSync(join(d, 'chunks.bin')).equals(Buffer.concat(chunks.map(bytes)))).toBe(true);
  });

  it('creates missing parent folders', async () => {
    const d = fresh();
    await writeFileAtomic(join(d, 'a', 'b', 'c.bin'), new Uint8Array([1, 2, 3]));
    expect([...readFileSync(join(d, 'a', 'b', 'c.bin'))]).toEqual([1, 2, 3]);
  });

  it('a writer that fails leaves the old file and no temporary', async () => {
    const d = fresh();
    const p = join(d, 'model.bin');
    writeFileSync(p, 'complete old');
    await expect(
      withAtomicFile(p, async (fh) => {
        await fh.write(Buffer.from('half of the new'));
        throw new Error('disk on fire');
      }),
    ).rejects.toThrow('disk on fire');
    expect(readFileSync(p, 'utf8')).toBe('complete old');
    expect(readdirSync(d)).toEqual(['model.bin']);
  });

  it('streams through transforms (gzip), and a failing source leaves the old file', async () => {
    const d = fresh();
    const p = join(d, 'v.nii.gz');
    await writeStreamAtomic(p, Readable.from([Buffer.from('abc'), Buffer.from('def')]), [createGzip()]);
    expect(gunzipSync(readFileSync(p)).toString()).toBe('abcdef');
    async function* failing() {
      yield Buffer.from('x');
      throw new Error('source broke');
    }
    await expect(writeStreamAtomic(p, failing(), [createGzip()])).rejects.toThrow('source broke');
    expect(gunzipSync(readFileSync(p)).toString()).toBe('abcdef');
    expect(readdirSync(d)).toEqual(['v.nii.gz']);
  });

  it('two concurrent writers of one file: one complete result', async () => {
    const d = fresh();
    const p = join(d, 'race.bin');
    const a = new Uint8Array(1 << 20).fill(0xaa);
    const b = new Uint8Array(1 << 20).fill(0xbb);
    await Promise.all([writeFileAtomic(p, a), writeFileAtomic(p, b), writeFileAtomic(p, a), writeFileAtomic(p, b)]);
    const got = readFileSync(p);
    expect(got.length).toBe(1 << 20);
    expect(got.every((x) => x === got[0])).toBe(true);
    expect(readdirSync(d)).toEqual(['race.bin']);
  });

  it('builds a folder under a temporary name and swaps it in whole', async () => {
    const d = fresh();
    const out = join(d, 'extraction');
    await withAtomicDir(out, async (tmp) => {
      writeFileSync(join(tmp, 'a.npy'), 'old a');
      writeFileSync(join(tmp, 'manifest.json'), 'old manifest');
    });
    await expect(
      withAtomicDir(out, async (tmp) => {
        writeFileSync(join(tmp, 'a.npy'), 'new a');
        throw new Error('killed halfway');
      }),
    ).rejects.toThrow('killed halfway');
    expect(readFileSync(join(out, 'a.npy'), 'utf8')).toBe('old a');
    expect(readFileSync(join(out, 'manifest.json'), 'utf8')).toBe('old manifest');
    await withAtomicDir(out, async (tmp) => {
      writeFileSync(join(tmp, 'b.npy'), 'new b');
    });
    expect(readdirSync(out)).toEqual(['b.npy']);
    expect(readdirSync(d)).toEqual(['extraction']);
  });

  it('concurrent folder writers: one complete folder', async () => {
    const d = fresh();
    const out = join(d, 'x');
    await Promise.all(
      ['p', 'q', 'r', 's'].map((tag) =>
        withAtomicDir(out, async (tmp) => {
          for (let i = 0; i < 5; i++) writeFileSync(join(tmp, `f${i}`), tag);
        }),
      ),
    );
    const files = readdirSync(out).sort();
    expect(files).toEqual(['f0', 'f1', 'f2', 'f3', 'f4']);
    expect(new Set(files.map((f) => readFileSync(join(out, f), 'utf8'))).size).toBe(1);
    expect(readdirSync(d)).toEqual(['x']);
  });

  it('a folder left moved aside by a killed writer is restored', async () => {
    const d = fresh();
    const tag = await hostTagOf(d);
    const aside = join(d, `.cache.old-${tag}-${deadPid()}-0123abcd`);
    mkdirSync(aside);
    writeFileSync(join(aside, 'manifest.json'), 'old');
    expect(await recoverInterruptedDir(join(d, 'cache'))).toBe(true);
    expect(readFileSync(join(d, 'cache', 'manifest.json'), 'utf8')).toBe('old');
  });

  it("a write removes the temporaries its own target's killed writers left beside it: this host's, dead pids only", async () => {
    const tag = await hostTagOf(fresh());
    const d = fresh();
    const dead = `.z.lat.npy.tmp-${tag}-${deadPid()}-00000000`;
    const deadDir = `.cache.tmp-${tag}-${deadPid()}-22222222`;
    const keep = [
      `.z.lat.npy.tmp-${tag}-${process.pid}-00000000`, // a live writer's
      `.z.lat.npy.tmp-ffffff-${deadPid()}-00000000`, // another host's (its pid means nothing here)
      `.other.npy.tmp-${tag}-${deadPid()}-11111111`, // another target's: left to its own next write
    ];
    for (const n of [dead, ...keep]) writeFileSync(join(d, n), 'partial');
    mkdirSync(join(d, deadDir));
    writeFileSync(join(d, deadDir, 'manifest.json'), 'partial');
    await writeFileAtomic(join(d, 'z.lat.npy'), 'new');
    expect(readdirSync(d).sort()).toEqual([...keep, deadDir, 'z.lat.npy'].sort());
    // a folder target's leftover folder goes with the next build of that folder
    await withAtomicDir(join(d, 'cache'), async (tmp) => writeFileSync(join(tmp, 'manifest.json'), 'new'));
    expect(readdirSync(d).sort()).toEqual([...keep, 'cache', 'z.lat.npy'].sort());
  });

  it('after a writer is SIGKILLed mid-write, the next write of its target leaves no temporary', async () => {
    const d = fresh();
    const path = join(d, 'out.lat.npy');
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', `const { withAtomicFile } = await import(${JSON.stringify(distModule('io/atomicWrite'))});
await withAtomicFile(${JSON.stringify(path)}, async (fh) => { await fh.write('partial'); console.log('writing'); await new Promise(() => {}); });`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((ready) => child.stdout.on('data', (b: Buffer) => b.toString().includes('writing') && ready()));
    child.kill('SIGKILL');
    await new Promise((exited) => child.on('exit', exited));
    expect(readdirSync(d).filter(isAtomicTemporary)).toHaveLength(1);
    await writeFileAtomic(path, 'complete');
    expect(readdirSync(d)).toEqual(['out.lat.npy']);
    expect(readFileSync(path, 'utf8')).toBe('complete');
  });

  it('removes temporaries of dead processes only', async () => {
    const d = fresh();
    const tag = await hostTagOf(d);
    const dead = join(d, `.model.safetensors.tmp-${tag}-${deadPid()}-00000000`);
    const live = join(d, `.model.safetensors.tmp-${tag}-${process.pid}-00000000`);
    const otherHost = join(d, `.model.safetensors.tmp-ffffff-${deadPid()}-00000000`);
    mkdirSync(join(d, 'sub'));
    const deep = join(d, 'sub', `.x.png.tmp-${tag}-${deadPid()}-11111111`);
    for (const p of [dead, live, otherHost, deep]) writeFileSync(p, 'partial');
    expect(isAtomicTemporary('.model.safetensors.tmp-abcdef-12-00000000')).toBe(true);
    const removed = await removeStaleTemporaries(d, { recursive: true });
    expect(removed.sort()).toEqual([dead, deep].sort());
    expect(readdirSync(d).sort()).toEqual([live, otherHost].map((p) => p.slice(d.length + 1)).concat(['probe', 'sub']).sort());
  });
});
