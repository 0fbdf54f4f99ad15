/**
 * NaN/Inf over real HTTP: in a request it is the client's error (400 naming the field); made by a loaded model
 * from finite inputs (a U-Net or VAE decoder that emits NaN/Inf, ridge predictions that overflow float32) it is
 * the service's fault: 500 with a ModelOutputError naming the model and the output, counted in /metrics, and no
 * path or file contents in the body.
 */
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { encodeNpy } from '../../ts/io/npy.js';
import { GraphBuilder, intsAttr, model, rng, strAttr, valueInfo, writeSdFixture } from '../../ts/sd/fixture.js';
import { startTestServer, type TestServer } from './helpers.js';
import { saveOverflowingRidgeModel } from '../helpers/overflowModel.js';

const FLOAT = 1; // onnx.TensorProto.DataType.FLOAT

/** A U-Net with the fixture's signature whose prediction is NaN everywhere (sample × NaN). */
function nanUnet(): Uint8Array {
  const g = new GraphBuilder(rng(1));
  g.op('Mul', ['sample', g.floats([Number.NaN])], [], 'out_sample');
  return model(
    g,
    'unet',
    [valueInfo('sample', FLOAT, ['batch_size', 4, 'height', 'width']), valueInfo('timestep', FLOAT, []), valueInfo('encoder_hidden_states', FLOAT, ['batch_size', 'sequence_length', 32])],
    [valueInfo('out_sample', FLOAT, ['batch_size', 4, 'height', 'width'])],
  );
}

/** A VAE decoder with the fixture's signature that divides by zero (±Inf, NaN where the numerator is 0). */
function infDecoder(): Uint8Array {
  const g = new GraphBuilder(rng(2));
  const y = g.op('Conv', ['latent_sample', g.weight([3, 4, 1, 1], 0.5), g.weight([3], 0.1)], [intsAttr('kernel_shape', [1, 1])]);
  const up = g.op('Resize', [y, '', g.floats([1, 1, 8, 8])], [strAttr('mode', 'nearest')]);
  g.op('Div', [up, g.floats([0])], [], 'sample');
  return model(g, 'vae_decoder', [valueInfo('latent_sample', FLOAT, ['batch_size', 4, 'latent_height', 'latent_width'])], [valueInfo('sample', FLOAT, ['batch_size', 3, 'height', 'width'])]);
}

let s: TestServer;
const b64 = (data: Float32Array, shape: number[]) => encodeNpy(data, shape).toString('base64');
const z = { data: new Float32Array(4 * 8 * 8).map((_, i) => Math.sin(i)), shape: [1, 4, 8, 8] };
const c = { data: new Float32Array(77 * 32).map((_, i) => Math.cos(i)), shape: [1, 77, 32] };
const img2img = (model: string, extra: Record<string, unknown> = {}) => s.call('POST', `/v1/sd/${model}/img2img`, { z: b64(z.data, z.shape), c: b64(c.data, c.shape), strength: 0.5, steps: 4, guidance: 1, ...extra });

beforeAll(async () => {
  s = await startTestServer({ img2img: { concurrency: 1, maxQueued: 4 } });
  const models = join(s.root, 'models');
  mkdirSync(models);
  await writeSdFixture(join(models, 'sd'));
  cpSync(join(models, 'sd'), join(models, 'nan-unet'), { recursive: true });
  writeFileSync(join(models, 'nan-unet', 'unet', 'model.onnx'), nanUnet());
  cpSync(join(models, 'sd'), join(models, 'inf-vae'), { recursive: true });
  writeFileSync(join(models, 'inf-vae', 'vae_decoder', 'model.onnx'), infDecoder());
  await saveOverflowingRidgeModel(join(models, 'huge.safetensors'));
  for (const [kind, name, path] of [['sd', 'sd', 'models/sd'], ['sd', 'nan-unet', 'models/nan-unet'], ['sd', 'inf-vae', 'models/inf-vae'], ['ridge', 'huge', 'models/huge.safetensors']]) {
    const r = await s.call('POST', '/v1/models', { kind, name, path });
    expect(r.status, r.text).toBe(201);
  }
}, 120_000);
afterAll(async () => {
  await s?.stop();
});

/** The body of a model fault: 500, typed, naming the model and output, and nothing of the server's files. */
function expectModelFault(r: { status: number; json: any; text: string }, model: string, output: string): void {
  expect(r.status, r.text).toBe(500);
  expect(r.json).toMatchObject({ error: 'Internal Server Error', code: 'ModelOutput', name: 'ModelOutputError', model, output });
  expect(r.json.message).toMatch(new RegExp(`^model '${model}' produced non-finite values \\(NaN or Inf\\) in `));
  expect(r.json.message).toMatch(/not of the request/);
  expect(r.text).not.toContain(s.root);
  expect(r.text).not.toMatch(/model\.onnx|safetensors/);
}

describe('non-finite numbers: the client sent them (400) or a model made them (500)', () => {
  it('a NaN or an out-of-range number in a request is a 400 naming the field and the element', async () => {
    const json = await s.call('POST', '/v1/ridge/huge/predict', { x: [[0, 0, 0, 0], [0, 0, 1e39, 0]] });
    expect(json.status, json.text).toBe(400);
    expect(json.json).toMatchObject({ code: 'NonFinite', name: 'NonFiniteError' });
    expect(json.json.message).toMatch(/^body\.x: element \[sample 1, feature 2\] .* is 1e\+39, beyond float32's range \(±3\.4e38\)/);
    const x = new Float64Array([0, 0, 0, Number.NaN]);
    const npy = await s.call('POST', '/v1/ridge/huge/predict', encodeNpy(x, [1, 4]), { 'content-type': 'application/x-npy' });
    expect(npy.status, npy.text).toBe(400);
    expect(npy.json.message).toMatch(/^body \(X as \.npy\): element \[sample 0, feature 3\] .* is NaN/);
    const bad = Float32Array.from(z.data);
    bad[70] = Number.POSITIVE_INFINITY;
    const sd = await s.call('POST', '/v1/sd/sd/img2img', { z: b64(bad, z.shape), c: b64(c.data, c.shape), steps: 4 });
    expect(sd.status, sd.text).toBe(400);
    expect(sd.json).toMatchObject({ code: 'NonFinite', name: 'NonFiniteError' });
    expect(sd.json.message).toMatch(/^body\.z: element \[0, 1, 0, 6\] \(flat index 70\) is Infinity/);
  });

  it('a U-Net that returns NaN, a VAE decoder that returns Inf and overflowing predictions are 500s naming the model', async () => {
    expect((await img2img('sd', { output: 'latents' })).status).toBe(200);
    expectModelFault(await img2img('nan-unet', { output: 'latents' }), 'nan-unet', 'unet');
    expectModelFault(await img2img('nan-unet'), 'nan-unet', 'unet');
    const vae = await img2img('inf-vae');
    expectModelFault(vae, 'inf-vae', 'vae_decoder');
    expect(vae.json.message).toMatch(/at image 0, element \d+ /);
    // the same model's latents are fine: only its decoder is at fault
    expect((await img2img('inf-vae', { output: 'latents' })).status).toBe(200);
    const ridge = await s.call('POST', '/v1/ridge/huge/predict', { x: [[1, 2, 3, 4]] });
    expectModelFault(ridge, 'huge', 'predictions');
    expect(ridge.json.message).toMatch(/at sample 0, target 0 /);
    expect((await s.call('POST', '/v1/ridge/huge/predict', { x: [[0, 0, 0, 0]] })).json.y).toEqual([[0, 0]]);

    const m = (await s.call('GET', '/metrics')).text;
    expect(m).toMatch(/^brainlatent_model_output_errors_total\{model="nan-unet",output="unet"\} 2$/m);
    expect(m).toMatch(/^brainlatent_model_output_errors_total\{model="inf-vae",output="vae_decoder"\} 1$/m);
    expect(m).toMatch(/^brainlatent_model_output_errors_total\{model="huge",output="predictions"\} 1$/m);
    expect(m).toMatch(/^brainlatent_http_request_duration_seconds_count\{[^}]*route="\/v1\/sd\/:model\/img2img"[^}]*code="500"[^}]*\} 3$/m);
    // the service is still healthy and serving
    expect((await s.call('GET', '/healthz')).status).toBe(200);
    expect((await img2img('sd', { output: 'latents' })).status).toBe(200);
  });
});
