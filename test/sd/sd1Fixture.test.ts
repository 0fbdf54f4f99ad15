/**
 * `sd fixture --arch sd1`'s U-Net graph, at a narrow width (the full one is 3.4 GB and is built only by
 * `bench samplers --arch sd1`): valid ONNX with external, 64 KiB-aligned weights; the SD 1.x layout's
 * parameter count formula; and the fused loop runs on it under both memory modes with equal results.
 */
import { readFile, rm, stat } from 'node:fs/promises';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { Diffusion } from '../../ts/sd/Diffusion.js';
import { onnx } from '../../ts/sd/onnxProto.js';
import { writeSd1Fixture } from '../../ts/sd/sd1Fixture.js';

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
