/**
 * OnnxModel: any ONNX model on the engine's ONNX Runtime. U-Net layer outputs (a fixture U-Net with
 * inner tensors exposed) against onnxruntime-node on the same file, timestep conversion to the
 * declared type, errors naming the model and the tensor, and cancellation.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { exposeUnetLayers, listUnetLayers, loadExposedUnet } from '../../ts/encoding/unetLayers.js';
import { CancelledError, InvalidArgumentError, ShapeError } from '../../ts/errors.js';
import { OnnxModel, unetFeatures } from '../../ts/sd/OnnxModel.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import { ensureFixtures } from './fixtures.js';

let root = '';
let tmp = '';

beforeAll(async () => {
  root = await ensureFixtures();
  tmp = await mkdtemp(join(tmpdir(), 'brainlatent-onnxmodel-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function filled(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin(seed * 12.9898 + i * 78.233) * 0.9;
  return a;
}

describe('OnnxModel', () => {
  for (const variant of ['optimum-1.24', 'optimum-1.23']) {
    it(`${variant}: U-Net layer outputs equal onnxruntime-node's on the same model`, async () => {
      const dir = join(root, variant);
      const layers = (await listUnetLayers(dir)).filter((l) => l.opType === 'Tanh').map((l) => l.name).slice(0, 2);
      expect(layers.length).toBe(2);
      const exposed = await exposeUnetLayers(dir, layers);
      const model = await loadExposedUnet(exposed, { intraOpThreads: 1 });
      const session = await ort.InferenceSession.create(exposed.bytes, { intraOpNumThreads: 1 });
      try {
        expect(model.inputs.map((i) => i.name)).toEqual(['sample', 'timestep', 'encoder_hidden_states']);
        const sample = { data: filled(2 * 4 * 8 * 6, 1), shape: [2, 4, 8, 6] };
        const cond = { data: filled(2 * 77 * 32, 2), shape: [2, 77, 32] };
        const t = 501.7;
        const out = await unetFeatures(model, { sample, timestep: t, cond }, [...layers, 'out_sample']);
        const rank = exposed.timestep.rank;
        const tdata = exposed.timestep.dtype === 'int64' ? new BigInt64Array(rank ? 2 : 1).fill(501n) : new Float32Array(rank ? 2 : 1).fill(t);
        const ref = await session.run(
          {
            sample: new ort.Tensor('float32', sample.data, sample.shape),
            timestep: new ort.Tensor(exposed.timestep.dtype === 'int64' ? 'int64' : 'float32', tdata, rank ? [2] : []),
            encoder_hidden_states: new ort.Tensor('float32', cond.data, cond.shape),
          },
          [...layers, 'out_sample'],
        );
        for (const name of [...layers, 'out_sample']) {
          expect(out[name].shape).toEqual(Array.from(ref[name].dims));
          expect(Array.from(out[name].data)).toEqual(Array.from(ref[name].data as Float32Array));
        }
      } finally {
        model.dispose();
        await session.release();
      }
    });
  }

  it('names the model and the tensor in its errors', async () => {
    const path = join(root, 'optimum-1.24', 'unet', 'model.onnx');
    const model = await OnnxModel.load(path, { intraOpThreads: 1 });
    try {
      const sample = { data: filled(4 * 4 * 4, 3), shape: [1, 4, 4, 4] };
      const timestep = { data: Float32Array.of(10), shape: [] };
      const cond = { data: filled(77 * 32, 4), shape: [1, 77, 32] };
      await expect(model.run({ sample, timestep, encoder_hidden_states: cond, extra: timestep }, ['out_sample'])).rejects.toThrow(
        /model\.onnx: has no input 'extra' \(inputs: sample, timestep, encoder_hidden_states\)/,
      );
      await expect(model.run({ sample, timestep }, ['out_sample'])).rejects.toThrow(/input 'encoder_hidden_states' is missing/);
      await expect(model.run({ sample, timestep, encoder_hidden_states: cond }, ['nope'])).rejects.toThrow(/has no output 'nope' \(outputs: out_sample\)/);
      const wide = { data: filled(77 * 16, 4), shape: [1, 77, 16] };
      await expect(model.run({ sample, timestep, encoder_hidden_states: wide }, ['out_sample'])).rejects.toBeInstanceOf(ShapeError);
      await expect(model.run({ sample, timestep, encoder_hidden_states: cond }, ['out_sample'])).resolves.toHaveProperty('out_sample');
    } finally {
      model.dispose();
    }
    await expect(model.run({}, ['out_sample'])).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('runs on inputs that are views of a SharedArrayBuffer (at an offset), as on plain ones; refuses a non-AbortSignal signal', async () => {
    const model = await OnnxModel.load(join(root, 'optimum-1.24', 'unet', 'model.onnx'), { intraOpThreads: 1 });
    try {
      const sample = { data: filled(4 * 4 * 4, 3), shape: [1, 4, 4, 4] };
      const timestep = { data: Float32Array.of(10), shape: [] };
      const cond = { data: filled(77 * 32, 4), shape: [1, 77, 32] };
      const shared = (a: Float32Array): Float32Array => {
        const v = new Float32Array(new SharedArrayBuffer((a.length + 3) * 4), 12, a.length);
        v.set(a);
        return v;
      };
      const plain = await model.run({ sample, timestep, encoder_hidden_states: cond }, ['out_sample']);
      const viaShared = await model.run(
        { sample: { ...sample, data: shared(sample.data) }, timestep, encoder_hidden_states: { ...cond, data: shared(cond.data) } },
        ['out_sample'],
      );
      expect(viaShared.out_sample.data).toEqual(plain.out_sample.data);
      await expect(model.run({ sample, timestep, encoder_hidden_states: cond }, ['out_sample'], { signal: 5 as unknown as AbortSignal })).rejects.toThrow(
        /^OnnxModel\.run\(.*model\.onnx\) signal: expected an AbortSignal, got 5$/,
      );
    } finally {
      model.dispose();
    }
  });

  it('stops a run in flight when its signal aborts', async () => {
    const dir = join(tmp, 'heavy');
    await writeSdFixture(dir, { unetChannels: 96, unetLayers: 6 });
    const model = await OnnxModel.load(join(dir, 'unet', 'model.onnx'), { intraOpThreads: 1 });
    try {
      const b = 4;
      const inputs = {
        sample: { data: filled(b * 4 * 96 * 96, 5), shape: [b, 4, 96, 96] },
        timestep: { data: Float32Array.of(500), shape: [] },
        encoder_hidden_states: { data: filled(b * 77 * 32, 6), shape: [b, 77, 32] },
      };
      const ac = new AbortController();
      const p = model.run(inputs, ['out_sample'], { signal: ac.signal });
      ac.abort();
      await expect(p).rejects.toBeInstanceOf(CancelledError);
      // the model still works afterwards
      const again = await model.run(inputs, ['out_sample']);
      expect(again.out_sample.shape).toEqual([b, 4, 96, 96]);
    } finally {
      model.dispose();
    }
  });
});
