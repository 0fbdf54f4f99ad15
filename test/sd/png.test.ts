/**
 * Every PNG brainlatent writes is 8-bit RGB (colour type 2, no alpha channel), as the docs say: writePng (nsd image,
 * sd img2img, a run's images), the encoding mosaics. They used to be RGBA with every alpha 255; the pixels read back
 * the same either way.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';

import { mosaicPng } from '../../ts/encoding/mosaic.js';
import { readPng, rgbPngBytes, writePng } from '../../ts/sd/png.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-png-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** IHDR's bit depth and colour type (bytes 24 and 25 of a PNG). */
const depthAndType = (bytes: Buffer) => [bytes[24], bytes[25]];

describe('PNG output', () => {
  it('writePng writes 8-bit RGB; readPng and pngjs read the same pixels back, for any image of a batch', async () => {
    const [width, height, count] = [7, 5, 3];
    const data = Uint8Array.from({ length: count * width * height * 3 }, (_, i) => (i * 37 + 11) % 256);
    for (let k = 0; k < count; k++) {
      const path = join(tmp, `img${k}.png`);
      await writePng(path, { data, count, height, width }, k);
      const bytes = readFileSync(path);
      expect(depthAndType(bytes)).toEqual([8, 2]);
      const back = await readPng(path);
      expect([back.width, back.height, back.count]).toEqual([width, height, 1]);
      expect(Buffer.from(back.data)).toEqual(Buffer.from(data.subarray(k * width * height * 3, (k + 1) * width * height * 3)));
      // other readers see an opaque image: pngjs expands it to RGBA with alpha 255
      const rgba = PNG.sync.read(bytes).data;
      for (let p = 0; p < width * height; p++) expect(rgba[p * 4 + 3]).toBe(255);
    }
    expect(rgbPngBytes(data.subarray(0, width * height * 3), width, height)).toEqual(readFileSync(join(tmp, 'img0.png')));
  });

  it('the encoding mosaics are 8-bit RGB too', () => {
    const grid: [number, number, number] = [4, 4, 2];
    const volume = new Float32Array(32).map((_, i) => (i % 5) / 5);
    const { bytes } = mosaicPng({ grid, affine: [[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0]], volume, underlay: null, title: 't', quantity: 'r', colormap: 'warm', vmax: 1, scale: 4 });
    expect(depthAndType(bytes)).toEqual([8, 2]);
  });
});
