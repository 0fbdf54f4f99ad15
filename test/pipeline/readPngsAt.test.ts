/**
 * The evaluation's and img2img's reads of a run's images: each PNG resized into its place in the batch as it is read
 * (a few at a time), the same pixels as reading them all and resizing the batch; the first bad file in order named.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { resizeImages } from '../../ts/eval/images.js';
import { readPngsAt } from '../../ts/pipeline/stages.js';
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

describe('readPngsAt', () => {
  it('gives the pixels of reading every file and resizing the batch, past its window of 8 files', async () => {
    const files = await pngs('a', 19, 24);
    const got = await readPngsAt(files, 17);
    expect([got.count, got.height, got.width]).toEqual([19, 17, 17]);
    for (const [i, f] of files.entries()) {
      const one = resizeImages(await readPng(f), 17).data;
      expect(Buffer.from(got.data.subarray(i * one.length, (i + 1) * one.length)).equals(Buffer.from(one)), f).toBe(true);
    }
    // at their own size: the files' pixels
    const same = await readPngsAt(files.slice(0, 2), 24);
    expect(Buffer.from(same.data.subarray(0, 24 * 24 * 3)).equals(Buffer.from((await readPng(files[0])).data))).toBe(true);
  });

  it('refuses a file of another size than the first, naming both', async () => {
    const files = [...(await pngs('b', 9, 16)), ...(await pngs('c', 1, 20))];
    await expect(readPngsAt(files, 8)).rejects.toThrow(`${files[9]}: 20×20 pixels, where ${files[0]} and the run's other images of its kind are 16×16`);
  });

  it('names the first missing file in order, whichever read failed first', async () => {
    const files = await pngs('d', 10, 8);
    const missing = [files[0], join(dir, 'gone_1.png'), files[2], join(dir, 'gone_9.png')];
    await expect(readPngsAt(missing, 8)).rejects.toThrow(/gone_1\.png/);
  });
});
