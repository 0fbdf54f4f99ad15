/**
 * The engine's write-through writer behind writeChunks (outputs of 16 MiB and more, once `useEngineFileWriter` has
 * installed it): the file must hold exactly the bytes the plain writer writes, after what the handle wrote before it
 * and before what it writes after; a failing write rejects like an fs write (code, errno) and the atomic output
 * keeps the old file.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';

import { setLargeFileWriter, withAtomicFile, writeChunks } from '../../ts/io/atomicWrite.js';
import { readSafetensors, writeSafetensors } from '../../ts/io/safetensors.js';
import { useEngineFileWriter } from '../../ts/native/call.js';
import { distModule } from '../helpers/dist.js';
import { runModule } from '../helpers/nodeChild.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-writer-'));
afterAll(() => {
  setLargeFileWriter(undefined);
  rmSync(dir, { recursive: true, force: true });
});

const bytes = (c: Uint8Array) => Buffer.from(c.buffer, c.byteOffset, c.byteLength);
function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

describe('the engine writer of large outputs', () => {
  it('is installed, and writes exactly what the plain writer writes, at the handle position', async () => {
    expect(useEngineFileWriter()).toBe(true);
    // A header, then pieces crossing 8 MiB flush boundaries (a view into a larger buffer among them), then a tail.
    const big = pattern(9 << 20, 3);
    const chunks = [pattern(13, 1), pattern((8 << 20) - 5, 2), big.subarray(7, big.length - 3), new Uint8Array(0), pattern(1, 4)];
    const want = Buffer.concat([Buffer.from('head'), ...chunks.map(bytes), Buffer.from('tail')]);
    const p = join(dir, 'chunks.bin');
    await withAtomicFile(p, async (fh) => {
      await fh.write(Buffer.from('head'));
      await writeChunks(fh, chunks);
      await fh.write(Buffer.from('tail'));
    });
    expect(readFileSync(p).equals(want)).toBe(true);
  });

  it('writes a safetensors model that reads back whole', async () => {
    useEngineFileWriter();
    const coef = new Float32Array(5_000_000).map((_, i) => Math.sin(i));
    const p = join(dir, 'model.safetensors');
    await writeSafetensors(p, { coef: { data: coef, shape: [2500, 2000] }, b: { data: new Float32Array([1, 2, 3]), shape: [3] } });
    const back = await readSafetensors(p);
    expect(Buffer.from(back.tensors.coef.data.buffer, back.tensors.coef.data.byteOffset, coef.byteLength).equals(bytes(new Uint8Array(coef.buffer)))).toBe(true);
    expect(Array.from(back.tensors.b.data)).toEqual([1, 2, 3]);
  });

  it('rejects like an fs write when the disk is full, and the atomic output keeps the old file', async () => {
    useEngineFileWriter();
    const full = await open('/dev/full', 'w').catch(() => undefined);
    if (full) {
      const err = await writeChunks(full, [pattern(20 << 20, 5)]).then(
        () => undefined,
        (e: NodeJS.ErrnoException) => e,
      );
      await full.close();
      expect(err?.code).toBe('ENOSPC');
      expect(err?.syscall).toBe('write');
    }
    const p = join(dir, 'kept.bin');
    writeFileSync(p, 'old');
    await expect(
      withAtomicFile(p, async (fh) => {
        await fh.close(); // the writer meets a closed descriptor
        await writeChunks(fh, [pattern(17 << 20, 6)]);
      }),
    ).rejects.toThrow();
    expect(readFileSync(p, 'utf8')).toBe('old');
    expect(readdirSync(dir).filter((f) => f.startsWith('.kept'))).toEqual([]);
  });

  it('stops between its 8 MiB pieces when the process exits, instead of writing the whole temporary first', async () => {
    // (the job's cancel flag was not passed to the writer: process.exit() waited until all of a 1 GiB output was on the
    // disk, in a temporary that is never renamed; the next run removes it as stale, as any exit's temporary)
    const out = join(dir, 'exit', 'out.bin');
    const url = (m: string) => JSON.stringify(pathToFileURL(distModule(m)).href);
    const r = await runModule(`
      import { existsSync, readdirSync, statSync } from 'node:fs';
      import { dirname, join } from 'node:path';
      const { useEngineFileWriter } = await import(${url('native/call')});
      const { withAtomicFile, writeChunks } = await import(${url('io/atomicWrite')});
      if (!useEngineFileWriter()) throw new Error('no engine writer');
      const out = ${JSON.stringify(out)};
      const piece = new Uint8Array(8 << 20).fill(7);
      withAtomicFile(out, (fh) => writeChunks(fh, Array.from({ length: 128 }, () => piece)));
      // (once the engine's write is under way: its temporary has bytes; its folder may not be made yet on a busy
      // machine, which ended this probe with ENOENT)
      setInterval(() => {
        if (!existsSync(dirname(out))) return;
        const tmp = readdirSync(dirname(out)).find((n) => n.startsWith('.out.bin.tmp-'));
        if (tmp && statSync(join(dirname(out), tmp)).size > 0) process.exit(3);
      }, 5);
    `);
    expect({ status: r.status, signal: r.signal, hung: r.hung }, r.stderr).toEqual({ status: 3, signal: null, hung: false });
    const left = readdirSync(join(dir, 'exit'));
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/^\.out\.bin\.tmp-/);
    expect(statSync(join(dir, 'exit', left[0])).size).toBeLessThan(1 << 30);
  });
});
