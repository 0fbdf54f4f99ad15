/**
 * A second, independent check of every scheduler: diffusers' loop transcribed again in numpy
 * (test/sd/diffusers_numpy.py, float64) against the engine, both running the same analytic toy U-Net
 * (eps = tanh(0.5·x + 0.001·t) + 0.1·mean(c), written here as an ONNX model). Skips, saying so, where
 * /usr/bin/python3 has no numpy.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Diffusion } from '../../ts/sd/Diffusion.js';
import { GraphBuilder, intAttr, intsAttr, model, rng, SD15_SCHEDULER_CONFIG, valueInfo } from '../../ts/sd/fixture.js';
import { onnx } from '../helpers/onnx.js';
import { KARRAS_SCHEDULERS, SCHEDULERS, type SchedulerName } from '../../ts/sd/schedulerConfig.js';
import type { Tensor } from '../../ts/sd/tensor.js';
import { commandOutput } from '../helpers/nodeChild.js';
import { hasPython, SYSTEM_PYTHON } from '../io/python.js';

const HAVE_NUMPY = hasPython('numpy');
if (!HAVE_NUMPY) console.warn('knownAnswer.test.ts: /usr/bin/python3 has no numpy; the numpy known-answer checks are skipped');
const SCRIPT = join(import.meta.dirname, 'diffusers_numpy.py');
const T = onnx.TensorProto.DataType;
const D = 8;

let dir = '';
let sd: Diffusion;

function toyUnet(): Uint8Array {
  const g = new GraphBuilder(rng(1));
  const pre = g.op('Add', [g.op('Mul', ['sample', g.floats([0.5])]), g.op('Mul', ['timestep', g.floats([0.001])])]);
  const cm = g.op('ReduceMean', ['encoder_hidden_states'], [intsAttr('axes', [1, 2]), intAttr('keepdims', 1)]);
  const c4 = g.op('Unsqueeze', [cm, g.ints([3])]);
  g.op('Add', [g.op('Tanh', [pre]), g.op('Mul', [c4, g.floats([0.1])])], [], 'out_sample');
  return model(
    g,
    'unet',
    [
      valueInfo('sample', T.FLOAT, ['batch_size', 4, 'height', 'width']),
      valueInfo('timestep', T.FLOAT, []),
      valueInfo('encoder_hidden_states', T.FLOAT, ['batch_size', 77, D]),
    ],
    [valueInfo('out_sample', T.FLOAT, ['batch_size', 4, 'height', 'width'])],
  );
}

const fill = (n: number, f: (i: number) => number): Float32Array => Float32Array.from({ length: n }, (_, i) => f(i));
const B = 2;
const n = 4 * 3 * 5;
const z: Tensor = { data: fill(B * n, (i) => Math.sin(i * 0.37) * 1.5), shape: [B, 4, 3, 5] };
const c: Tensor = { data: fill(B * 77 * D, (i) => Math.cos(i * 0.011) * (i < 77 * D ? 1 : -0.5)), shape: [B, 77, D] };
const uncond: Tensor = { data: fill(77 * D, (i) => 0.002 * i - 0.3), shape: [1, 77, D] };
const noise: Tensor = { data: fill(B * n, (i) => Math.sin(i * 2.1 + 0.3) * 1.2), shape: z.shape };
const rowMean = (t: Tensor, row: number): number => {
  const per = 77 * D;
  let s = 0;
  for (let k = 0; k < per; k++) s += t.data[row * per + k];
  return s / per;
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'brainlatent-toy-unet-'));
  await mkdir(join(dir, 'unet'), { recursive: true });
  await mkdir(join(dir, 'scheduler'), { recursive: true });
  await writeFile(join(dir, 'unet', 'model.onnx'), toyUnet());
  await writeFile(join(dir, 'scheduler', 'scheduler_config.json'), JSON.stringify(SD15_SCHEDULER_CONFIG));
  sd = await Diffusion.load(dir, { components: ['unet'], intraOpThreads: 1 });
});
afterAll(async () => {
  sd?.dispose();
  await rm(dir, { recursive: true, force: true });
});

interface Case {
  scheduler: SchedulerName;
  steps: number;
  strength: number;
  guidance: number;
  karras?: boolean;
  eta?: number;
}
const cases: Case[] = [];
for (const scheduler of SCHEDULERS) {
  cases.push({ scheduler, steps: 10, strength: 0.8, guidance: 5 });
  cases.push({ scheduler, steps: 6, strength: 1, guidance: 1 });
  if (KARRAS_SCHEDULERS.includes(scheduler)) cases.push({ scheduler, steps: 9, strength: 0.7, guidance: 3, karras: true });
}
cases.push({ scheduler: 'ddim', steps: 8, strength: 0.9, guidance: 5, eta: 0.7 });

describe.skipIf(!HAVE_NUMPY)('engine vs diffusers transcribed in numpy (toy U-Net)', () => {
  // every case runs in the engine first, then all of them in one python process
  const results: { native: Float32Array; timesteps: number[]; job: Record<string, unknown> }[] = [];
  let answers: { timesteps: number[]; latents: number[] }[] = [];
  beforeAll(async () => {
    for (const cs of cases) {
      const o = { scheduler: cs.scheduler, steps: cs.steps, strength: cs.strength, karras: cs.karras, eta: cs.eta };
      const plan = sd.plan(o);
      const stepNoise: Tensor = { data: fill(plan.runs.length * B * n, (i) => Math.cos(i * 0.77) * 1.1), shape: [plan.runs.length, ...z.shape] };
      // (only a run whose steps draw noise takes step noise: a deterministic one refuses it as ignored)
      const native = await sd.img2img({ z, c, uncond, noise, ...(plan.stochastic ? { stepNoise } : {}), guidance: cs.guidance, ...o });
      const job = {
        ...o,
        guidance: cs.guidance,
        config: { ...SD15_SCHEDULER_CONFIG, ...(cs.karras ? { use_karras_sigmas: true } : {}) },
        shape: z.shape,
        z: Array.from(z.data),
        noise: Array.from(noise.data),
        stepNoise: Array.from(stepNoise.data),
        condMean: [rowMean(c, 0), rowMean(c, 1)],
        uncondMean: [rowMean(uncond, 0), rowMean(uncond, 0)],
      };
      results.push({ native: native.latents.data, timesteps: plan.runs.map((r) => r.timestep), job });
    }
    answers = JSON.parse(await commandOutput(SYSTEM_PYTHON, [SCRIPT], { input: JSON.stringify(results.map((r) => r.job)) })) as typeof answers;
  });
  cases.forEach((cs, k) => {
    it(`${cs.scheduler}${cs.karras ? ' karras' : ''}${cs.eta ? ` eta ${cs.eta}` : ''}: ${cs.steps} steps, strength ${cs.strength}, guidance ${cs.guidance}`, () => {
      const out = answers[k];
      expect(out.timesteps).toEqual(results[k].timesteps);
      let worst = 0;
      for (let i = 0; i < out.latents.length; i++) {
        worst = Math.max(worst, Math.abs(results[k].native[i] - out.latents[i]) / Math.max(1, Math.abs(out.latents[i])));
      }
      expect(worst).toBeLessThan(1e-5);
    });
  });
});
