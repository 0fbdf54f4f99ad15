/**
 * `sd fixture --arch sd1`'s U-Net graph, at a narrow width (the full one is 3.4 GB and is built only by
 * `bench samplers --arch sd1`): valid ONNX with external, 64 KiB-aligned weights; the SD 1.x layout's
 * parameter count formula; the weights recipe (unet/weights.recipe.json) that regenerates weights.pb off
 * Node; and the fused loop runs on it under both memory modes with equal results.
 */
import { readFile, rm, stat } from 'node:fs/promises';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { Diffusion } from '../../ts/sd/Diffusion.js';
import { onnx } from '../../ts/sd/onnxProto.js';
import { SD1_WEIGHTS_RECIPE_FORMAT, type Sd1WeightsRecipe, writeSd1Fixture } from '../../ts/sd/sd1Fixture.js';

const dir = join(mkdtempSync(join(tmpdir(), 'brainlatent-sd1-')), 'sd1');
afterAll(async () => {
  await rm(join(dir, '..'), { recursive: true, force: true });
});

/** Parameters of the SD 1.x U-Net layout for given widths (diffusers' UNet2DConditionModel). */
function parameters(bo: number[], td: number, cd: number): number {
  const conv = (ci: number, co: number, k: number) => co * ci * k * k + co;
  const lin = (ci: number, co: number, b = true) => ci * co + (b ? co : 0);
  const res = (ci: number, co: number) => 2 * ci + conv(ci, co, 3) + lin(td, co) + 2 * co + conv(co, co, 3) + (ci !== co ? conv(ci, co, 1) : 0);
  const attn = (c: number, cx: number) => lin(c, c, false) + 2 * lin(cx, c, false) + lin(c, c);
  const tr = (c: number) => 2 * c + conv(c, c, 1) + 2 * c + attn(c, c) + 2 * c + attn(c, cd) + 2 * c + lin(c, 8 * c) + lin(4 * c, c) + conv(c, c, 1);
  const ca = [true, true, true, false];
  let p = conv(4, bo[0], 3) + lin(bo[0], td) + lin(td, td);
  let c = bo[0];
  const skips = [c];
  bo.forEach((co, l) => {
    for (let j = 0; j < 2; j++) {
      p += res(c, co);
      c = co;
      if (ca[l]) p += tr(c);
      skips.push(c);
    }
    if (l < 3) {
      p += conv(c, c, 3);
      skips.push(c);
    }
  });
  p += 2 * res(c, c) + tr(c);
  [...bo].reverse().forEach((co, l) => {
    for (let j = 0; j < 3; j++) {
      p += res(c + (skips.pop() as number), co);
      c = co;
      if ([...ca].reverse()[l]) p += tr(c);
    }
    if (l < 3) p += conv(c, c, 3);
  });
  return p + 2 * c + conv(c, 4, 3);
}

describe('sd fixture --arch sd1', () => {
  it("has SD 1.x's 859,520,964 parameters at full width (by the layout's formula)", () => {
    expect(parameters([320, 640, 1280, 1280], 1280, 768)).toBe(859_520_964);
  });

  it('writes a narrow copy of the layout that loads and samples, the same under lean memory', async () => {
    const config = { blockOut: [32, 64, 64, 64], groups: 8, heads: 4, timeDim: 64, crossDim: 48 };
    const r = await writeSd1Fixture(dir, { config });
    expect(r.parameters).toBe(parameters([32, 64, 64, 64], 64, 48));
    const m = onnx.ModelProto.decode(await readFile(join(dir, 'unet', 'model.onnx')));
    const ext = (m.graph?.initializer ?? []).filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL);
    expect(ext.length).toBeGreaterThan(100);
    for (const t of ext) expect(Number(t.externalData?.find((e) => e.key === 'offset')?.value) % 65536).toBe(0);
    expect((await stat(join(dir, 'unet', 'weights.pb'))).size).toBeGreaterThanOrEqual(r.weightBytes);

    // The recipe lists every external tensor in order, where the model says it is, and describes its bytes.
    const recipe = JSON.parse(await readFile(join(dir, 'unet', 'weights.recipe.json'), 'utf8')) as Sd1WeightsRecipe;
    expect(recipe.format).toBe(SD1_WEIGHTS_RECIPE_FORMAT);
    expect(recipe.seed).toBe(1);
    expect(recipe.tensors.map((t) => t[0])).toEqual(ext.map((t) => t.name));
    const key = (t: (typeof ext)[number], k: string) => Number(t.externalData?.find((e) => e.key === k)?.value);
    let counter = 0;
    ext.forEach((t, i) => {
      const [, offset, count, , , start] = recipe.tensors[i];
      expect([offset, count * 4, start]).toEqual([key(t, 'offset'), key(t, 'length'), counter]);
      expect(count).toBe((t.dims ?? []).reduce((a: number, b) => a * Number(b), 1));
      counter += count;
    });
    expect(counter).toBe(r.parameters);
    const weights = await readFile(join(dir, 'unet', 'weights.pb'));
    expect(weights.length).toBe(recipe.size);
    // the recipe's formula, element by element, at the first, a middle and the last element of every tensor
    const hash = (k: number) => {
      let t = (recipe.seed + Math.imul(k + 1, 0x6d2b79f5)) >>> 0;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
    };
    const view = new DataView(weights.buffer, weights.byteOffset, weights.byteLength);
    for (const [, offset, count, scale, add, start] of recipe.tensors) {
      for (const i of [0, count >> 1, count - 1]) expect(view.getFloat32(offset + 4 * i, true)).toBe(Math.fround(add + scale * hash(start + i)));
    }
    const z = { data: Float32Array.from({ length: 4 * 8 * 8 }, (_, i) => Math.sin(i)), shape: [1, 4, 8, 8] };
    const c = { data: Float32Array.from({ length: 77 * 48 }, (_, i) => Math.cos(i * 0.1)), shape: [1, 77, 48] };
    const out: Float32Array[] = [];
    for (const memory of ['default', 'lean'] as const) {
      const sd = await Diffusion.load(dir, { components: ['unet'], memory, intraOpThreads: 1 });
      try {
        const res = await sd.img2img({ z, c, uncond: c, guidance: 3, scheduler: 'ddim', steps: 2, strength: 1 });
        expect(res.latents.data.every(Number.isFinite)).toBe(true);
        out.push(res.latents.data);
      } finally {
        sd.dispose();
      }
    }
    for (let i = 0; i < out[0].length; i++) expect(Math.abs(out[0][i] - out[1][i])).toBeLessThan(1e-4 * Math.max(1, Math.abs(out[0][i])));
  });
});
