/**
 * `sd fixture --arch sd1`'s U-Net graph, at a narrow width (the full one is 3.4 GB and is built only by
 * `bench samplers --arch sd1`): valid ONNX with external, 64 KiB-aligned weights; the SD 1.x layout's
 * parameter count formula; the weights recipe (unet/weights.recipe.json) that regenerates weights.pb off
 * Node, and native/core/bench/sd1_weights.cpp does so byte for byte; and the fused loop runs on it under
 * both memory modes with equal results. The float16 form (`--dtype float16`): half weights and constants,
 * float16 at every boundary, its recipe regenerating it too, and the same function as the float32 U-Net
 * within half precision (onnxruntime-node, CPU; and the engine's img2img through its float16 boundaries).
 * The fused-attention form (`--attention fused`): each attention block's core one com.microsoft
 * MultiHeadAttention node, the weights files the unfused fixture's byte for byte, and the unfused U-Net's function
 * in float32 and float16 (onnxruntime-node, CPU, and the engine's img2img), its attention outputs usable as layers.
 */
import { readFile, rm, stat } from 'node:fs/promises';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';

import { checkUnetLayers } from '../../ts/encoding/unetLayers.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { floatToHalfBits, halfBitsToFloat, toHalf } from '../../ts/sd/half.js';
import { onnx } from '../helpers/onnx.js';
import { SD1_WEIGHTS_RECIPE_FORMAT, type Sd1WeightsRecipe, writeSd1Fixture } from '../../ts/sd/sd1Fixture.js';
import { commandOutput } from '../helpers/nodeChild.js';

const root = mkdtempSync(join(tmpdir(), 'brainlatent-sd1-'));
const dir = join(root, 'sd1');
const dir16 = join(root, 'sd1-fp16');
const dirFused = join(root, 'sd1-fused');
const dir16Fused = join(root, 'sd1-fp16-fused');
const config = { blockOut: [32, 64, 64, 64], groups: 8, heads: 4, timeDim: 64, crossDim: 48 };
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

// Hang limits of the two children a test awaits (the compile, once per file, and the regeneration); each test's timeout
// is their sum plus its own work's 120 s, so a hung child is reported as hung instead of the test timing out first.
const COMPILE_HANG_MS = 240_000;
const REGENERATE_HANG_MS = 120_000;
const WITH_CHILDREN_TIMEOUT_MS = COMPILE_HANG_MS + REGENERATE_HANG_MS + 120_000;

/** sd1_weights (native/core/bench/sd1_weights.cpp) compiled once, with the flags of its CMake target. */
let tool: Promise<string> | undefined;
function sd1Weights(): Promise<string> {
  tool ??= (async () => {
    const file = join(root, 'sd1_weights');
    const core = join(import.meta.dirname, '..', '..', 'native', 'core');
    const source = join(core, 'bench', 'sd1_weights.cpp');
    await commandOutput(process.env.CXX || 'c++', ['-std=c++17', '-O2', '-ffp-contract=off', '-pthread', '-I', join(core, 'src'), '-o', file, source], { hangLimitMs: COMPILE_HANG_MS });
    return file;
  })();
  return tool;
}

/** weights.pb regenerated from the recipe by sd1_weights equals the one Node wrote, byte for byte. */
async function expectRegenerated(folder: string): Promise<void> {
  const out = join(folder, 'unet', 'weights.regenerated.pb');
  await commandOutput(await sd1Weights(), ['--recipe', join(folder, 'unet', 'weights.recipe.json'), '--out', out, '--threads', '2'], { hangLimitMs: REGENERATE_HANG_MS });
  const [a, b] = await Promise.all([readFile(join(folder, 'unet', 'weights.pb')), readFile(out)]);
  expect(b.length).toBe(a.length);
  expect(Buffer.compare(a, b)).toBe(0);
  await rm(out);
}

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
    expect(recipe.dtype).toBe('float32');
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
    await expectRegenerated(dir);
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
  }, WITH_CHILDREN_TIMEOUT_MS);

  it('--dtype float16: half weights, constants and boundaries; the recipe regenerates it; the float32 function within half precision', async () => {
    await stat(join(dir, 'unet', 'weights.pb')).catch(() => writeSd1Fixture(dir, { config })); // the float32 one, as the test above writes it
    const r = await writeSd1Fixture(dir16, { config, dtype: 'float16' });
    expect(r.parameters).toBe(parameters([32, 64, 64, 64], 64, 48));
    expect(r.weightBytes).toBe(2 * r.parameters);
    const m = onnx.ModelProto.decode(await readFile(join(dir16, 'unet', 'model.onnx')));
    const g = m.graph as import('onnx-proto').onnx.GraphProto;
    const T = onnx.TensorProto.DataType;
    const elem = (v: (typeof g.input)[number]) => v.type?.tensorType?.elemType;
    expect([...g.input, ...g.output].map((v) => [v.name, elem(v)])).toEqual([
      ['sample', T.FLOAT16],
      ['timestep', T.FLOAT16],
      ['encoder_hidden_states', T.FLOAT16],
      ['out_sample', T.FLOAT16],
    ]);
    // every float initializer is half, but Resize's scales (float32 by the ONNX spec); Casts go to half
    const resizeScales = new Set(g.node.filter((n) => n.opType === 'Resize').map((n) => n.input?.[2]));
    const floats = g.initializer.filter((t) => t.dataType !== T.INT64);
    expect(floats.filter((t) => t.dataType !== T.FLOAT16).map((t) => [t.dataType, resizeScales.has(t.name ?? undefined)])).toEqual([...resizeScales].map(() => [T.FLOAT, true]));
    const casts = g.node.filter((n) => n.opType === 'Cast');
    expect(casts.map((n) => Number(n.attribute?.find((a) => a.name === 'to')?.i))).toEqual([T.FLOAT16]);
    // the other components take and return half at their float boundaries
    for (const c of ['text_encoder', 'vae_encoder', 'vae_decoder']) {
      const cg = onnx.ModelProto.decode(await readFile(join(dir16, c, 'model.onnx'))).graph as typeof g;
      for (const v of [...cg.input, ...cg.output]) expect([c, v.name, elem(v)]).toEqual([c, v.name, v.name === 'input_ids' ? T.INT64 : T.FLOAT16]);
    }

    const recipe = JSON.parse(await readFile(join(dir16, 'unet', 'weights.recipe.json'), 'utf8')) as Sd1WeightsRecipe;
    expect([recipe.format, recipe.dtype]).toEqual([SD1_WEIGHTS_RECIPE_FORMAT, 'float16']);
    const ext = g.initializer.filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL);
    expect(recipe.tensors.map((t) => [t[0], t[1], 2 * t[2]])).toEqual(
      ext.map((t) => [t.name, ...['offset', 'length'].map((k) => Number(t.externalData?.find((e) => e.key === k)?.value))]),
    );
    // the same draws as the float32 fixture, each rounded to half
    const recipe32 = JSON.parse(await readFile(join(dir, 'unet', 'weights.recipe.json'), 'utf8')) as Sd1WeightsRecipe;
    const [w16, w32] = await Promise.all([readFile(join(dir16, 'unet', 'weights.pb')), readFile(join(dir, 'unet', 'weights.pb'))]);
    expect(w16.length).toBe(recipe.size);
    const v16 = new DataView(w16.buffer, w16.byteOffset, w16.byteLength);
    const v32 = new DataView(w32.buffer, w32.byteOffset, w32.byteLength);
    recipe.tensors.forEach(([, offset, count], k) => {
      const o32 = recipe32.tensors[k][1];
      for (let i = 0; i < count; i += Math.max(1, count >> 6)) expect(v16.getUint16(offset + 2 * i, true)).toBe(floatToHalfBits(v32.getFloat32(o32 + 4 * i, true)));
    });
    await expectRegenerated(dir16);

    // the float16 U-Net computes the float32 one's function (on the same half-representable inputs)
    const half = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => halfBitsToFloat(floatToHalfBits(f(i))));
    const z = half(4 * 16 * 16, Math.sin);
    const c = half(77 * 48, (i) => Math.cos(i * 0.1));
    const run = async (folder: string, t: (type: 'float32' | 'float16', data: Float32Array, dims: number[]) => ort.Tensor) => {
      const s = await ort.InferenceSession.create(join(folder, 'unet', 'model.onnx'), { intraOpNumThreads: 1 });
      try {
        const out = (await s.run({ sample: t('float32', z, [1, 4, 16, 16]), timestep: t('float32', Float32Array.of(999), []), encoder_hidden_states: t('float32', c, [1, 77, 48]) })).out_sample;
        return out.type === 'float16' ? Float32Array.from(out.data as Uint16Array, halfBitsToFloat) : (out.data as Float32Array);
      } finally {
        await s.release();
      }
    };
    const a = await run(dir, (type, data, dims) => new ort.Tensor(type, data, dims));
    const b = await run(dir16, (_, data, dims) => new ort.Tensor('float16', toHalf(data), dims));
    let err = 0;
    let norm = 0;
    for (let i = 0; i < a.length; i++) {
      err += (a[i] - b[i]) ** 2;
      norm += a[i] ** 2;
    }
    expect(Math.sqrt(err / norm)).toBeLessThan(0.03); // 0.009 seen; a wrong weight or constant gives O(1)

    // and the engine samples with it (float16 converted at the U-Net's boundaries) as with the float32 one
    const latents: Float32Array[] = [];
    for (const folder of [dir, dir16]) {
      const sd = await Diffusion.load(folder, { components: ['unet'], intraOpThreads: 1 });
      try {
        const zz = { data: Float32Array.from({ length: 4 * 8 * 8 }, (_, i) => Math.sin(i)), shape: [1, 4, 8, 8] };
        const cc = { data: Float32Array.from({ length: 77 * 48 }, (_, i) => Math.cos(i * 0.1)), shape: [1, 77, 48] };
        latents.push((await sd.img2img({ z: zz, c: cc, uncond: cc, guidance: 3, scheduler: 'ddim', steps: 2, strength: 1 })).latents.data);
      } finally {
        sd.dispose();
      }
    }
    const scale = Math.max(...latents[0].map(Math.abs));
    const diff = Math.max(...latents[0].map((x, i) => Math.abs(x - latents[1][i])));
    expect(diff / scale).toBeLessThan(5e-3); // 8.7e-4 seen
  }, WITH_CHILDREN_TIMEOUT_MS);

  it('--attention fused: one com.microsoft MultiHeadAttention per attention block, the same weights files, the unfused function', async () => {
    // the unfused fixtures, as the tests above write them
    await stat(join(dir, 'unet', 'weights.pb')).catch(() => writeSd1Fixture(dir, { config }));
    await stat(join(dir16, 'unet', 'weights.pb')).catch(() => writeSd1Fixture(dir16, { config, dtype: 'float16' }));
    await writeSd1Fixture(dirFused, { config, attention: 'fused' });
    await writeSd1Fixture(dir16Fused, { config, dtype: 'float16', attention: 'fused' });
    const T = onnx.TensorProto.DataType;
    const model = async (folder: string) => onnx.ModelProto.decode(await readFile(join(folder, 'unet', 'model.onnx')));
    // 16 transformers (2 + 2 + 2 down, 1 middle, 3 + 3 + 3 up), each a self- and a cross-attention
    const blocks = 32;
    for (const [plain, fused, elemType] of [[dir, dirFused, T.FLOAT], [dir16, dir16Fused, T.FLOAT16]] as const) {
      for (const f of ['weights.pb', 'weights.recipe.json']) expect([fused, f, Buffer.compare(await readFile(join(plain, 'unet', f)), await readFile(join(fused, 'unet', f)))]).toEqual([fused, f, 0]);
      const [mp, mf] = [await model(plain), await model(fused)];
      expect(mp.opsetImport?.map((o) => [o.domain, Number(o.version)])).toEqual([['', 17]]);
      expect(mf.opsetImport?.map((o) => [o.domain, Number(o.version)])).toEqual([['', 17], ['com.microsoft', 1]]);
      const gp = mp.graph as import('onnx-proto').onnx.GraphProto;
      const gf = mf.graph as import('onnx-proto').onnx.GraphProto;
      const count = (g: typeof gp, op: string) => g.node.filter((n) => n.opType === op).length;
      expect([count(gp, 'Softmax'), count(gp, 'MultiHeadAttention')]).toEqual([blocks, 0]);
      expect([count(gf, 'Softmax'), count(gf, 'MultiHeadAttention')]).toEqual([0, blocks]);
      // each: num_heads only, three inputs, each the output of a MatMul by a weight of the unfused graph
      const producer = new Map(gf.node.map((n) => [n.output?.[0], n]));
      const ext = (g: typeof gp) => g.initializer.filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL).map((t) => t.name);
      expect(ext(gf)).toEqual(ext(gp));
      for (const n of gf.node.filter((x) => x.opType === 'MultiHeadAttention')) {
        expect([n.domain, n.attribute?.map((a) => [a.name, Number(a.i)]), n.input?.length, n.output?.length]).toEqual(['com.microsoft', [['num_heads', config.heads]], 3, 1]);
        for (const i of n.input ?? []) expect(producer.get(i)?.opType).toBe('MatMul');
      }
      expect(gf.node.filter((n) => n.domain && n.domain !== 'com.microsoft')).toEqual([]);
      // its constants are the unfused graph's but each core's: three head splits' and a merge's shapes, and the scale
      const kept = new Set(gf.initializer.map((t) => t.name));
      expect(gf.initializer.length).toBe(gp.initializer.filter((t) => kept.has(t.name)).length);
      const dropped = gp.initializer.filter((t) => !kept.has(t.name)).map((t) => t.dataType);
      expect([dropped.filter((d) => d === T.INT64).length, dropped.filter((d) => d === elemType).length, dropped.length]).toEqual([4 * blocks, blocks, 5 * blocks]);
    }

    // ONNX Runtime's CPU provider: the fused U-Net's output is the unfused one's
    const half = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => halfBitsToFloat(floatToHalfBits(f(i))));
    const z = half(4 * 16 * 16, Math.sin);
    const c = half(77 * 48, (i) => Math.cos(i * 0.1));
    const run = async (folder: string, type: 'float32' | 'float16') => {
      const t = (data: Float32Array, dims: number[]) => (type === 'float16' ? new ort.Tensor('float16', toHalf(data), dims) : new ort.Tensor('float32', data, dims));
      const s = await ort.InferenceSession.create(join(folder, 'unet', 'model.onnx'), { intraOpNumThreads: 1 });
      try {
        const out = (await s.run({ sample: t(z, [1, 4, 16, 16]), timestep: t(Float32Array.of(999), []), encoder_hidden_states: t(c, [1, 77, 48]) })).out_sample;
        return out.type === 'float16' ? Float32Array.from(out.data as Uint16Array, halfBitsToFloat) : (out.data as Float32Array);
      } finally {
        await s.release();
      }
    };
    const relative = (a: Float32Array, b: Float32Array) => {
      let err = 0;
      let norm = 0;
      for (let i = 0; i < a.length; i++) {
        err += (a[i] - b[i]) ** 2;
        norm += a[i] ** 2;
      }
      return Math.sqrt(err / norm);
    };
    const ref32 = await run(dir, 'float32');
    expect(relative(ref32, await run(dirFused, 'float32'))).toBeLessThan(1e-5); // 1.0e-6 seen
    // ORT's CPU provider has no float16 MultiHeadAttention kernel: it runs the node in float32 between Casts
    const fused16 = await run(dir16Fused, 'float16');
    expect(relative(await run(dir16, 'float16'), fused16)).toBeLessThan(5e-3); // 1.0e-3 seen
    expect(relative(ref32, fused16)).toBeLessThan(0.03); // 0.009 seen, as the unfused float16 one

    // the engine samples with it as with the unfused one
    const img2img = async (folder: string) => {
      const sd = await Diffusion.load(folder, { components: ['unet'], intraOpThreads: 1 });
      try {
        const zz = { data: Float32Array.from({ length: 4 * 8 * 8 }, (_, i) => Math.sin(i)), shape: [1, 4, 8, 8] };
        const cc = { data: Float32Array.from({ length: 77 * 48 }, (_, i) => Math.cos(i * 0.1)), shape: [1, 77, 48] };
        return (await sd.img2img({ z: zz, c: cc, uncond: cc, guidance: 3, scheduler: 'ddim', steps: 2, strength: 1 })).latents.data;
      } finally {
        sd.dispose();
      }
    };
    const maxRelative = (a: Float32Array, b: Float32Array) => Math.max(...a.map((x, i) => Math.abs(x - b[i]))) / Math.max(...a.map(Math.abs));
    const latents32 = await img2img(dir);
    expect(maxRelative(latents32, await img2img(dirFused))).toBeLessThan(1e-5); // 2.8e-7 seen
    expect(maxRelative(await img2img(dir16), await img2img(dir16Fused))).toBeLessThan(5e-3); // 2.3e-4 seen

    // an attention node's output is a U-Net layer like any other: exposed, it is [batch, tokens, channels]
    const mha = onnx.ModelProto.decode(await readFile(join(dirFused, 'unet', 'model.onnx'))).graph?.node?.find((n) => n.opType === 'MultiHeadAttention');
    const layer = mha?.output?.[0] ?? '';
    const check = await checkUnetLayers(dirFused, [layer], { imageSize: 64, timestep: 500 });
    expect(check.problem).toBeNull();
    expect(check.layers.map((l) => [l.name, l.opType, l.dtype, l.problem])).toEqual([[layer, 'MultiHeadAttention', 'float32', null]]);
  }, WITH_CHILDREN_TIMEOUT_MS);
});
