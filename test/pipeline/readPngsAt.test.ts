/**
 * The evaluation's and img2img's reads of a run's images: each PNG resized into its place in the batch as it is read
 * (a few at a time, or on worker threads), the same pixels as reading them all and resizing the batch; the first bad
 * file in order named, with readPng's own error, whatever read failed first.
 */
import { availableParallelism } from 'node:os';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { CancelledError, FormatError, MissingFileError, ShapeError } from '../../ts/errors.js';
import { resizeImages } from '../../ts/eval/images.js';
import { MAX_PNG_THREADS, pngThreads, readPngsAt } from '../../ts/io/pngReads.js';
import { readPng, writePng } from '../../ts/sd/png.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-read-pngs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `count` PNGs of side `side` with distinct pixels, and their paths. */
async function pngs(name: string, count: number, side: number): Promise<string[]> {
  const files: string[] = [];
  for (let i = 0; i < count; i++) {
    const data = Uint8Array.from({ length: side * side * 3 }, (_, j) => (j * 7 + i * 31 + (j % side) * 3) % 256);
    const file = join(dir, `${name}_${i}.png`);
    await writePng(file, { data, count: 1, height: side, width: side });
    files.push(file);
  }
  return files;
}

for (const threads of [1, 3]) {
  describe(`readPngsAt on ${threads === 1 ? 'this thread' : `${threads} threads`}`, () => {
    it('gives the pixels of reading every file and resizing the batch, past a window of 8 files', async () => {
      const files = await pngs(`a${threads}`, 19, 24);
      const got = await readPngsAt(files, 17, { threads });
      expect([got.count, got.height, got.width]).toEqual([19, 17, 17]);
      for (const [i, f] of files.entries()) {
        const one = resizeImages(await readPng(f), 17).data;
        expect(Buffer.from(got.data.subarray(i * one.length, (i + 1) * one.length)).equals(Buffer.from(one)), f).toBe(true);
      }
      // at their own size: the files' pixels
      const same = await readPngsAt(files.slice(0, 2), 24, { threads });
      expect(Buffer.from(same.data.subarray(0, 24 * 24 * 3)).equals(Buffer.from((await readPng(files[0])).data))).toBe(true);
    });

    it('refuses a file of another size than the first, naming both', async () => {
      const files = [...(await pngs(`b${threads}`, 9, 16)), ...(await pngs(`c${threads}`, 1, 20)), ...(await pngs(`b2${threads}`, 5, 16))];
      await expect(readPngsAt(files, 8, { threads })).rejects.toThrow(new ShapeError(`${files[9]}: 20×20 pixels, where ${files[0]} and the run's other images of its kind are 16×16`));
    });

    it("names the first missing or corrupt file in order, with readPng's error", async () => {
      const files = await pngs(`d${threads}`, 10, 8);
      const missing = [files[0], join(dir, 'gone_1.png'), files[2], join(dir, 'gone_9.png')];
      const err = await readPngsAt(missing, 8, { threads }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MissingFileError);
      expect((err as Error).message).toMatch(/gone_1\.png/);
      const bad = join(dir, `bad${threads}.png`);
      writeFileSync(bad, 'not a png');
      // a corrupt file after a file of another size: the size is named first, the files in order
      const other = await pngs(`e${threads}`, 1, 12);
      await expect(readPngsAt([...files.slice(0, 3), other[0], bad], 8, { threads })).rejects.toThrow(ShapeError);
      const corrupt = await readPngsAt([...files.slice(0, 3), bad, ...files.slice(3)], 8, { threads }).catch((e: unknown) => e);
      expect(corrupt).toBeInstanceOf(FormatError);
      expect((corrupt as Error).message).toBe(`${bad}: not a PNG file (bad signature)`);
    });

    it('stops between files once its signal is aborted: a CancelledError with the reason', async () => {
      const files = await pngs(`f${threads}`, 40, 16);
      const ac = new AbortController();
      ac.abort(new Error('user stop'));
      const err = await readPngsAt(files, 8, { threads, signal: ac.signal }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CancelledError);
      expect((err as CancelledError).cause).toEqual(new Error('user stop'));
      // aborted while reading: the files being read finish, no other starts
      const later = new AbortController();
      const reads = readPngsAt(files, 8, { threads, signal: later.signal });
      setImmediate(() => later.abort());
      await expect(reads).rejects.toThrow(CancelledError);
    });
  });
}

describe('pngThreads', () => {
  it('reads here below 64 files, and starts a thread per 32 files up to the cores and MAX_PNG_THREADS', () => {
    expect([pngThreads(0), pngThreads(63)]).toEqual([1, 1]);
    expect(pngThreads(64)).toBe(Math.min(2, availableParallelism()));
    expect(pngThreads(1_000)).toBe(Math.max(1, Math.min(availableParallelism(), MAX_PNG_THREADS)));
  });
});
