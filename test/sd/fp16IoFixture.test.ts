/**
 * The optimum-fp16-io fixture (build/sd-fixtures/optimum-fp16-io, ts/sd/fixture.ts `io: 'float16'`): the
 * four components take and return float16 at every float input/output (input_ids stays int64) and, on
 * ONNX Runtime's CPU provider, compute optimum-1.24's float32 function: each output is the float32
 * model's output on the same (half-representable) inputs, rounded to half.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';

import { floatToHalfBits, halfBitsToFloat, toHalf } from '../../ts/sd/half.js';
import { onnx } from '../helpers/onnx.js';
import { ensureFixtures } from './fixtures.js';

let root = '';
beforeAll(async () => {
  root = await ensureFixtures();
});

/** Values exactly representable in half, as float32. */
const halfValues = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => halfBitsToFloat(floatToHalfBits(f(i))));

const inputs: Record<string, Record<string, { data: Float32Array | BigInt64Array; dims: number[] }>> = {
  text_encoder: { input_ids: { data: BigInt64Array.from({ length: 2 * 77 }, (_, i) => BigInt((i * 7) % 300)), dims: [2, 77] } },
  unet: {
    sample: { data: halfValues(2 * 4 * 8 * 6, (i) => 1.3 * Math.sin(i)), dims: [2, 4, 8, 6] },
    timestep: { data: Float32Array.of(981), dims: [] },
    encoder_hidden_states: { data: halfValues(2 * 77 * 32, (i) => Math.cos(i * 0.1)), dims: [2, 77, 32] },
  },
  vae_encoder: { sample: { data: halfValues(3 * 32 * 48, (i) => Math.sin(i * 0.01)), dims: [1, 3, 32, 48] } },
  vae_decoder: { latent_sample: { data: halfValues(4 * 4 * 6, (i) => 2 * Math.sin(i)), dims: [1, 4, 4, 6] } },
};

describe('sd fixture --variant optimum-fp16-io', () => {
  for (const [component, feed] of Object.entries(inputs)) {
    it(`${component}: float16 at its float boundaries, optimum-1.24's float32 function inside`, async () => {
      const file = join(root, 'optimum-fp16-io', component, 'model.onnx');
      const g = onnx.ModelProto.decode(await readFile(file)).graph as import('onnx-proto').onnx.GraphProto;
      const T = onnx.TensorProto.DataType;
      for (const v of [...g.input, ...g.output]) expect([v.name, v.type?.tensorType?.elemType]).toEqual([v.name, v.name === 'input_ids' ? T.INT64 : T.FLOAT16]);

      const s16 = await ort.InferenceSession.create(file, { intraOpNumThreads: 1 });
      const s32 = await ort.InferenceSession.create(join(root, 'optimum-1.24', component, 'model.onnx'), { intraOpNumThreads: 1 });
      try {
        const tensors = (half: boolean) =>
          Object.fromEntries(
            Object.entries(feed).map(([k, v]) => [
              k,
              v.data instanceof BigInt64Array ? new ort.Tensor('int64', v.data, v.dims) : half ? new ort.Tensor('float16', toHalf(v.data), v.dims) : new ort.Tensor('float32', v.data, v.dims),
            ]),
          );
        const [o16, o32] = await Promise.all([s16.run(tensors(true)), s32.run(tensors(false))]);
        expect(Object.keys(o16).sort()).toEqual(Object.keys(o32).sort());
        for (const name of Object.keys(o32)) {
          expect([name, o16[name].type, o16[name].dims]).toEqual([name, 'float16', o32[name].dims]);
          const want = o32[name].data as Float32Array;
          const got = o16[name].data as Uint16Array;
          // each output is the float32 result rounded to half (one half ulp where ORT's rounding differs)
          let off = 0;
          for (let i = 0; i < want.length; i++) if (Math.abs(got[i] - floatToHalfBits(want[i])) > 1) off++;
          expect([name, off]).toEqual([name, 0]);
        }
      } finally {
        await Promise.all([s16.release(), s32.release()]);
      }
    });
  }
});
