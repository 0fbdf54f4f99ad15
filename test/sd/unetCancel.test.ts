/**
 * Cancelling img2img interrupts the U-Net call in flight (ONNX Runtime's terminate flag, through the job's cancel
 * token) instead of waiting for it to end: nothing called the runner's request_cancel(), so an abort, a worker's end
 * or the process's exit waited for a whole U-Net call (seconds with a real model). The interrupted call ends the job
 * as Cancelled, not as an ONNX Runtime failure, and no latents come back.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { CancelledError } from '../../ts/errors.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { GraphBuilder, model, rng, valueInfo, writeSdFixture } from '../../ts/sd/fixture.js';
import { onnx } from '../helpers/onnx.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-unet-cancel-'));
let sd: Diffusion;
const TEXT_DIM = 32;

/**
 * A U-Net whose call at a timestep below 970 never ends by itself: an ONNX Loop of 10^15 trips (ONNX Runtime checks
 * its terminate flag before every node of every trip), while at 981 (the first of SD 1.5's 50 leading steps from
 * strength 1: 981, 961, …) it makes one. So
 * the abort taken at step 1's event lands inside step 2's call by construction, however slowly that event reaches
 * JS (a 0.3 s call was the margin before); an abort that did not interrupt the call would hang the test.
 */
function holdingUnet(): Uint8Array {
  const T = onnx.TensorProto.DataType, A = onnx.AttributeProto.AttributeType;
  const g = new GraphBuilder(rng(3));
  const t = g.op('Reshape', [g.op('Cast', ['timestep'], [{ name: 'to', type: A.INT, i: T.FLOAT }]), g.ints([-1])]);
  const held = g.op('Less', [g.op('ReduceMin', [t], [{ name: 'keepdims', type: A.INT, i: 0 }]), g.floats([970], [])]);
  const trips = g.op('Where', [held, g.ints([1e15]), g.ints([1])]);
  const tripsScalar = g.op('Squeeze', [trips]);
  const body: import('onnx-proto').onnx.IGraphProto = {
    name: 'trip',
    node: [
      { opType: 'Identity', input: ['cond_in'], output: ['cond_out'], name: 'keep' },
      { opType: 'Add', input: ['v_in', 'one'], output: ['v_out'], name: 'count' },
    ],
    initializer: [{ name: 'one', dims: [1], dataType: T.FLOAT, rawData: new Uint8Array(new Float32Array([1]).buffer) }],
    input: [valueInfo('iter', T.INT64, []), valueInfo('cond_in', T.BOOL, []), valueInfo('v_in', T.FLOAT, [1])],
    output: [valueInfo('cond_out', T.BOOL, []), valueInfo('v_out', T.FLOAT, [1])],
  };
  const yes = 'yes';
  g.inits.push({ name: yes, dims: [], dataType: T.BOOL, rawData: new Uint8Array([1]) });
  const v = g.op('Loop', [tripsScalar, yes, g.floats([0])], [{ name: 'body', type: A.GRAPH, g: body }]);
  // (the loop's count, scaled to nothing, joins the output so that no optimizer drops the loop)
  g.op('Add', [g.op('Mul', ['sample', g.floats([0.5], [])]), g.op('Mul', [v, g.floats([1e-30], [])])], [], 'out_sample');
  return model(
    g,
    'unet',
    [
      valueInfo('sample', T.FLOAT, ['batch_size', 4, 'height', 'width']),
      valueInfo('timestep', T.FLOAT, []),
      valueInfo('encoder_hidden_states', T.FLOAT, ['batch_size', 'sequence_length', TEXT_DIM]),
    ],
    [valueInfo('out_sample', T.FLOAT, ['batch_size', 4, 'height', 'width'])],
  );
}

beforeAll(async () => {
  await writeSdFixture(join(tmp, 'model'), { textDim: TEXT_DIM });
  writeFileSync(join(tmp, 'model', 'unet', 'model.onnx'), holdingUnet());
  sd = await Diffusion.load(join(tmp, 'model'));
}, 60_000);
afterAll(() => {
  sd?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

it('an abort during a U-Net call stops that call: the step never completes, and the job rejects as cancelled', async () => {
  const n = 2, side = 64;
  const z = await sd.encodeImages({ data: Uint8Array.from({ length: n * side * side * 3 }, (_, i) => (i * 37) % 256), count: n, height: side, width: side });
  const c = await sd.encodeText(['a', 'b']);
  const ac = new AbortController();
  const steps: number[] = [];
  // (step 1's event reaches JS while the engine runs step 2's U-Net call: the abort lands inside that call, which
  // before ran to its end and reported step 2)
  const outcome = await sd
    .img2img({ z, c, steps: 50, strength: 1, signal: ac.signal, onStep: (p) => {
      steps.push(p.step);
      if (p.step === 1) ac.abort();
    } })
    .then(
      (r) => ({ resolved: r }),
      (e: unknown) => ({ rejected: e }),
    );
  expect(outcome).not.toHaveProperty('resolved');
  const e = (outcome as { rejected: unknown }).rejected;
  expect(e).toBeInstanceOf(CancelledError);
  expect((e as Error).message).toMatch(/^img2img cancelled (during|before) step 2 of \d+/);
  expect(steps).toEqual([1]);
  // (an abort that did not interrupt the held call fails here, past this limit)
}, 30_000);
