/**
 * U-Net layers of a U-Net whose weights are inside model.onnx (a float16 export's 1.7 GB are: under protobuf's
 * 2 GB). The U-Net with layers exposed was made by decoding the whole file, adding the outputs and serializing it,
 * weights included, for ONNX Runtime to parse into its own copy: the weights were in memory two or three times
 * while loading. Now each initializer of 4 KiB or more in the edited graph refers to its bytes in model.onnx
 * (external data: location model.onnx, the offset of its raw_data in the file, its length), the bytes loaded are
 * the graph alone, and ONNX Runtime reads the weights from the file. The fixture: the narrow SD 1.x U-Net
 * (ts/sd/sd1Fixture.ts), float32 and float16, with its weights.pb moved inside model.onnx, as an export that keeps
 * its weights inline has them.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { exposeUnetLayers, listUnetLayers, withExposedUnet } from '../../ts/encoding/unetLayers.js';
import { OnnxModel, unetFeatures } from '../../ts/sd/OnnxModel.js';
import { onnx } from '../helpers/onnx.js';
import { MIN_REFERENCED_BYTES, readModelWithWeightRefs } from '../../ts/sd/onnxWeightRefs.js';
import { writeSd1Fixture, type Sd1Dtype } from '../../ts/sd/sd1Fixture.js';

const CROSS = 48;
let tmp = '';

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'bl-unet-inline-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/**
 * The fixture's U-Net with every external initializer's bytes (or every other one's, `some`) read from weights.pb
 * into its raw_data; weights.pb removed when none is left there.
 */
async function inlineWeights(unetDir: string, some = false): Promise<void> {
  const path = join(unetDir, 'model.onnx');
  const m = onnx.ModelProto.decode(await readFile(path));
  const weights = await readFile(join(unetDir, 'weights.pb'));
  let k = 0;
  for (const t of m.graph!.initializer!) {
    if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
    if (some && k++ % 2 === 1) continue;
    const entry = (k: string) => t.externalData!.find((e) => e.key === k)!.value!;
    const offset = Number(entry('offset'));
    t.rawData = weights.subarray(offset, offset + Number(entry('length')));
    t.externalData = [];
    t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
  }
  await writeFile(path, onnx.ModelProto.encode(m).finish());
  if (!some) await rm(join(unetDir, 'weights.pb'));
}

const filled = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) * 0.9);
const NARROW = { blockOut: [32, 64, 64, 64], groups: 8, heads: 4, timeDim: 64, crossDim: CROSS };
const INPUTS = { sample: { data: filled(2 * 4 * 8 * 8, 1), shape: [2, 4, 8, 8] }, timestep: 321, cond: { data: filled(2 * 77 * CROSS, 2), shape: [2, 77, CROSS] } };

/** out_sample of the U-Net at `path`, loaded from the file as it is, on one thread. */
async function plainOutput(path: string): Promise<Float32Array> {
  const plain = await OnnxModel.load(path, { intraOpThreads: 1 });
  try {
    return (await unetFeatures(plain, INPUTS, ['out_sample'])).out_sample.data;
  } finally {
    plain.dispose();
  }
}

describe.each<Sd1Dtype>(['float32', 'float16'])('a U-Net with %s weights inside model.onnx', (dtype) => {
  const dir = () => join(tmp, dtype);
  const model = () => join(dir(), 'unet', 'model.onnx');
  let inner = '';
  let convOut = '';
  beforeAll(async () => {
    await writeSd1Fixture(dir(), { dtype, config: NARROW });
    await inlineWeights(join(dir(), 'unet'));
    const convs = (await listUnetLayers(dir())).filter((l) => l.opType === 'Conv');
    convOut = convs[convs.length - 1].name;
    inner = convs[Math.floor(convs.length / 2)].name;
  }, 120_000);

  it('its weights are inline (the case under test)', async () => {
    expect(existsSync(join(dir(), 'unet', 'weights.pb'))).toBe(false);
    const m = onnx.ModelProto.decode(await readFile(model()));
    const bytes = m.graph!.initializer!.reduce((a, t) => a + (t.rawData?.length ?? 0), 0);
    expect(bytes).toBeGreaterThan(0.9 * statSync(model()).size);
    expect(m.graph!.initializer!.every((t) => t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL)).toBe(true);
  });

  it('the bytes loaded are the graph alone: each large initializer refers to its own raw_data in model.onnx', async () => {
    const file = await readFile(model());
    const original = onnx.ModelProto.decode(file).graph!.initializer!;
    const u = await exposeUnetLayers(dir(), [inner, convOut]);
    expect(u.bytes.length).toBeLessThan(file.length / 20);
    const edited = onnx.ModelProto.decode(u.bytes).graph!.initializer!;
    expect(edited.map((t) => t.name)).toEqual(original.map((t) => t.name));
    let referenced = 0;
    edited.forEach((t, k) => {
      const raw = original[k].rawData!;
      if (raw.length < MIN_REFERENCED_BYTES) {
        // small ones (biases, norms, shapes) stay inline, unchanged
        expect(t.dataLocation ?? 0).toBe(onnx.TensorProto.DataLocation.DEFAULT);
        expect(Buffer.from(t.rawData!).equals(Buffer.from(raw))).toBe(true);
        return;
      }
      referenced++;
      expect(t.rawData?.length ?? 0).toBe(0);
      expect(t.dataLocation).toBe(onnx.TensorProto.DataLocation.EXTERNAL);
      const e = Object.fromEntries(t.externalData!.map((x) => [x.key, x.value]));
      expect(e.location).toBe('model.onnx');
      expect(Number(e.length)).toBe(raw.length);
      // the offset is where those very bytes lie in the file
      expect(file.subarray(Number(e.offset), Number(e.offset) + raw.length).equals(Buffer.from(raw))).toBe(true);
      expect([t.dims!.map(Number), t.dataType]).toEqual([original[k].dims!.map(Number), original[k].dataType]);
    });
    expect(referenced).toBeGreaterThan(20);
    expect(u.weightsFolder).toBe(join(dir(), 'unet'));
  });

  it('loaded from those bytes, it gives the inline model’s outputs to the bit', async () => {
    const ref = await plainOutput(model());
    const out = await withExposedUnet(dir(), [inner, convOut], (m) => unetFeatures(m, INPUTS, [inner, convOut, 'out_sample']), { intraOpThreads: 1 });
    expect(Array.from(out.out_sample.data)).toEqual(Array.from(ref));
    expect(Math.max(...Array.from(ref, Math.abs))).toBeGreaterThan(1e-3);
    // out_sample is the Identity of the last Conv
    expect(Array.from(out[convOut].data)).toEqual(Array.from(out.out_sample.data));
    expect(out[inner].shape[0]).toBe(2);
  });
});

describe('a model.onnx that links to a file in another folder (a Hugging Face cache snapshot)', () => {
  /**
   * An sd1 fixture (inline weights, or half of them with weights.pb kept), its out_sample, then model.onnx moved to
   * blobs/<hash> and linked from unet/ as the hub's cache does.
   */
  async function linkedFixture(name: string, dtype: Sd1Dtype, some: boolean): Promise<{ dir: string; blobs: string; ref: Float32Array; last: string }> {
    const dir = join(tmp, name, 'snapshot');
    const blobs = join(tmp, name, 'blobs');
    await writeSd1Fixture(dir, { dtype, config: NARROW });
    await inlineWeights(join(dir, 'unet'), some);
    const ref = await plainOutput(join(dir, 'unet', 'model.onnx'));
    const convs = (await listUnetLayers(dir)).filter((l) => l.opType === 'Conv');
    await mkdir(blobs);
    await rename(join(dir, 'unet', 'model.onnx'), join(blobs, '5e1f0c'));
    await symlink(join('..', '..', 'blobs', '5e1f0c'), join(dir, 'unet', 'model.onnx'));
    return { dir, blobs, ref, last: convs[convs.length - 1].name };
  }

  it('its inline weights are referred to in the linked file, in its folder (ONNX Runtime refuses a path that leaves the folder)', async () => {
    const { dir, blobs, ref, last } = await linkedFixture('linked', 'float16', false);
    const u = await exposeUnetLayers(dir, [last]);
    expect(u.weightsFolder).toBe(blobs);
    expect(u.bytes.length).toBeLessThan(statSync(join(blobs, '5e1f0c')).size / 20);
    const locations = new Set(onnx.ModelProto.decode(u.bytes).graph!.initializer!.flatMap((t) => (t.externalData ?? []).filter((e) => e.key === 'location').map((e) => e.value)));
    expect([...locations]).toEqual(['5e1f0c']);
    const out = await withExposedUnet(dir, [last], (m) => unetFeatures(m, INPUTS, ['out_sample']), { intraOpThreads: 1 });
    expect(Array.from(out.out_sample.data)).toEqual(Array.from(ref));
  });

  it('with weights.pb beside it too, its inline weights stay inline (weights.pb is read from the U-Net folder)', async () => {
    const { dir, ref, last } = await linkedFixture('linked-mixed', 'float32', true);
    const u = await exposeUnetLayers(dir, [last]);
    expect(u.weightsFolder).toBe(join(dir, 'unet'));
    const inits = onnx.ModelProto.decode(u.bytes).graph!.initializer!;
    const locations = new Set(inits.flatMap((t) => (t.externalData ?? []).filter((e) => e.key === 'location').map((e) => e.value)));
    expect([...locations]).toEqual(['weights.pb']);
    expect(inits.some((t) => (t.rawData?.length ?? 0) >= MIN_REFERENCED_BYTES)).toBe(true);
    const out = await withExposedUnet(dir, [last], (m) => unetFeatures(m, INPUTS, ['out_sample']), { intraOpThreads: 1 });
    expect(Array.from(out.out_sample.data)).toEqual(Array.from(ref));
  });
});

describe('readModelWithWeightRefs', () => {
  it('keeps every other field as it is: the model decodes as the file does, raw_data aside', async () => {
    const dir = join(tmp, 'float32');
    const path = join(dir, 'unet', 'model.onnx');
    const whole = onnx.ModelProto.decode(await readFile(path));
    const { model, referenced, referencedBytes } = await readModelWithWeightRefs(path);
    const strip = (m: typeof whole) => {
      const o = onnx.ModelProto.toObject(onnx.ModelProto.decode(onnx.ModelProto.encode(m).finish()), { bytes: String, longs: String });
      for (const t of o.graph.initializer) if (t.externalData?.length || t.rawData?.length >= MIN_REFERENCED_BYTES) delete t.rawData, delete t.externalData, delete t.dataLocation;
      return o;
    };
    expect(strip(onnx.ModelProto.create(model))).toEqual(strip(whole));
    expect(referenced).toBeGreaterThan(20);
    expect(referencedBytes).toBeGreaterThan(0.9 * statSync(path).size);
  });

  it('a file that is not a model is a FormatError naming it', async () => {
    const path = join(tmp, 'junk.onnx');
    await writeFile(path, Buffer.from([0x3a, 0xff, 0xff, 0x7f, 1, 2, 3]));
    await expect(readModelWithWeightRefs(path)).rejects.toThrow(/junk\.onnx: not a readable ONNX model \(field 7 at byte 0 runs past its message/);
  });
});
