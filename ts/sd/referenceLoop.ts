/**
 * A plain TypeScript img2img loop in float64 over onnxruntime-node's JS API — diffusers'
 * StableDiffusionImg2ImgPipeline written out again: get_timesteps (timesteps[t_start·order:],
 * set_begin_index), add_noise at the first timestep, then per timestep scale_model_input, one U-Net
 * call on the [uncond; cond] batch, guidance and the scheduler's step (ts/sd/referenceSchedulers.ts,
 * diffusers' classes transcribed). Noise comes from the TS Philox port with the engine's streams
 * (0 for the initial noise, 1 + step index for a step's), or from the caller. It is the independent
 * reference the fused native loop is tested against, and the baseline of the sampler benchmarks.
 */
import { InvalidArgumentError } from '../errors.js';
import { onnxruntimeNode } from '../native/onnxruntimeNode.js';
import type { ScheduleConfig } from '../native/samplerTypes.js';
import { describeNumber } from '../ridge/alphas.js';
import { checkInteger, checkOptionsObject } from '../ridge/options.js';
import { noiseKeys } from './Diffusion.js';
import { INT32_MAX } from './native.js';
import { GUIDANCE_EXPECTED, MAX_GUIDANCE } from './optionBounds.js';
import { philoxNormal } from './philox.js';
import { referenceScheduler, type RefScheduler } from './referenceSchedulers.js';
import { callLabels, resolvePlanOptions } from './samplingOptions.js';
import { SD1_SCHEDULE, type SchedulerName } from './schedulerConfig.js';
import type { Tensor } from './tensor.js';

/** referenceImg2Img's arguments: latents, conditioning and the sampling settings. */
export interface ReferenceOptions {
  z: Tensor;
  c: Tensor;
  uncond?: Tensor;
  strength: number;
  steps: number;
  guidance: number;
  scheduler: SchedulerName;
  eta?: number;
  karras?: boolean;
  seeds?: number | number[];
  noise?: Tensor;
  /** [calls that run, B, 4, h, w]: each call's step noise (else Philox stream 1 + step index). */
  stepNoise?: Tensor;
  schedule?: ScheduleConfig;
  /** Another scheduler than diffusers' `scheduler` (e.g. textbookLms), given the schedule. */
  makeScheduler?: (schedule: ScheduleConfig) => RefScheduler;
  batchSize?: number;
  /** Per-call U-Net times are added here when given. */
  timings?: { unetSeconds: number; loopSeconds: number; unetCalls?: number };
}

/** ReferenceOptions' keys (a record, so the type lists every key): any other key is refused, naming these. */
const REFERENCE_KEYS: Record<keyof ReferenceOptions, true> = {
  z: true, c: true, uncond: true, strength: true, steps: true, guidance: true, scheduler: true, eta: true, karras: true,
  seeds: true, noise: true, stepNoise: true, schedule: true, makeScheduler: true, batchSize: true, timings: true,
};

/** A U-Net as a function: input [rows, C, h, w] (float32), timestep, conditioning rows → ε. */
export type UNetFn = (sample: Float32Array, shape: number[], timestep: number, cond: Float32Array, condShape: number[]) => Promise<Float32Array>;

/**
 * What the loop uses of an onnxruntime-node InferenceSession (one is accepted as it is), written out: the typings then
 * name no onnxruntime-common type, whose own declarations need lib DOM (ImageData, WebGLTexture) that a Node project's
 * `lib` may leave out.
 */
export interface ReferenceUNetSession {
  readonly inputMetadata: ReadonlyArray<
    { readonly name: string; readonly isTensor: true; readonly type: string; readonly shape: ReadonlyArray<number | string> } | { readonly name: string; readonly isTensor: false }
  >;
  run(feeds: Record<string, unknown>): Promise<Record<string, { readonly data: unknown }>>;
}

/** onnxruntime-node's session as a UNetFn, with the timestep in the model's declared type and rank. */
export function ortUNet(unet: ReferenceUNetSession): UNetFn {
  const meta = unet.inputMetadata.find((m) => m.name === 'timestep');
  const tType = meta && meta.isTensor ? meta.type : 'float32';
  const tRank = meta && meta.isTensor ? meta.shape.length : 1;
  return async (sample, shape, t, cond, condShape) => {
    const rt = await onnxruntimeNode('the reference img2img loop');
    const rows = shape[0];
    const tCount = tRank === 0 ? 1 : rows;
    // diffusers' ONNX pipeline: np.array([t], dtype=timestep_dtype) truncates a float t to an integer
    const tData =
      tType === 'int64'
        ? new BigInt64Array(tCount).fill(BigInt(Math.trunc(t)))
        : tType === 'int32'
          ? new Int32Array(tCount).fill(Math.trunc(t))
          : new Float32Array(tCount).fill(t);
    const ts = new rt.Tensor(tType === 'int64' ? 'int64' : tType === 'int32' ? 'int32' : 'float32', tData, tRank === 0 ? [] : [tCount]);
    const r = await unet.run({ sample: new rt.Tensor('float32', sample, shape), timestep: ts, encoder_hidden_states: new rt.Tensor('float32', cond, condShape) });
    return r.out_sample.data as Float32Array;
  };
}

export async function referenceImg2Img(unet: ReferenceUNetSession | UNetFn, o: ReferenceOptions): Promise<Float32Array> {
  // checked as Diffusion.img2img checks them: batchSize 0 looped forever, -1 was a bare RangeError, and steps 0 or
  // null returned NaN latents with no error
  const what = 'referenceImg2Img';
  checkOptionsObject(o, Object.keys(REFERENCE_KEYS), what);
  const run = typeof unet === 'function' ? unet : ortUNet(unet);
  const schedule: ScheduleConfig = { ...(o.schedule ?? SD1_SCHEDULE) };
  // (required here, where Diffusion.img2img has defaults; resolvePlanOptions would take a missing one as its default)
  for (const k of ['steps', 'strength'] as const) {
    if (o[k] === undefined || o[k] === null) throw new InvalidArgumentError(`${what} ${k}: required, got ${describeNumber(o[k])}`);
  }
  // (steps, strength, eta, karras and the scheduler by the engine's rules; the loop keeps its own schedule)
  resolvePlanOptions({ schedule, scheduler: o.scheduler }, { scheduler: o.scheduler, steps: o.steps, strength: o.strength, eta: o.eta, karras: o.karras }, callLabels(what));
  if (typeof o.guidance !== 'number' || !(o.guidance >= 0 && o.guidance <= MAX_GUIDANCE)) {
    throw new InvalidArgumentError(`${what} guidance: expected ${GUIDANCE_EXPECTED}, got ${describeNumber(o.guidance)}`);
  }
  const B = o.batchSize === undefined ? 1 : checkInteger(o.batchSize, 'batchSize', what, 1, INT32_MAX);
  if (o.karras !== undefined) schedule.useKarrasSigmas = o.karras;
  const N = o.steps;
  const [count, C, H, W] = o.z.shape;
  const { seeds } = noiseKeys(o.seeds, count, 0, what);
  const n = C * H * W;
  const [, seq, dim] = o.c.shape;
  const cfg = o.guidance > 1;
  const G = cfg ? 2 : 1;
  const out = new Float32Array(count * n);
  const seedOf = (img: number): number => seeds[img];
  const t0 = performance.now();
  for (let first = 0; first < count; first += B) {
    const nb = Math.min(B, count - first);
    const sched = o.makeScheduler ? o.makeScheduler(schedule) : referenceScheduler(o.scheduler, schedule, o.eta ?? 0);
    sched.setTimesteps(N);
    // get_timesteps
    const init = Math.min(Math.floor(N * o.strength), N);
    const tStart = Math.max(N - init, 0);
    const begin = tStart * sched.order;
    const timesteps = sched.timesteps.slice(begin);
    sched.setBeginIndex?.(begin);
    const cond = new Float32Array(G * nb * seq * dim);
    for (let i = 0; i < nb; i++) {
      if (cfg) {
        const u = o.uncond as Tensor;
        const row = u.shape[0] === 1 ? 0 : first + i;
        cond.set(u.data.subarray(row * seq * dim, (row + 1) * seq * dim), i * seq * dim);
      }
      cond.set(o.c.data.subarray((first + i) * seq * dim, (first + i + 1) * seq * dim), ((G - 1) * nb + i) * seq * dim);
    }
    const z = Float64Array.from(o.z.data.subarray(first * n, (first + nb) * n));
    const noise = new Float64Array(nb * n);
    for (let i = 0; i < nb; i++) {
      const img = first + i;
      noise.set(o.noise ? o.noise.data.subarray(img * n, (img + 1) * n) : philoxNormal(seedOf(img), img, 0, 0, n), i * n);
    }
    let x = sched.addNoise(z, noise, timesteps[0]);
    for (let k = 0; k < timesteps.length; k++) {
      const t = timesteps[k];
      const xin = sched.scaleModelInput(x, t);
      const input = new Float32Array(G * nb * n);
      for (let g = 0; g < G; g++) for (let j = 0; j < nb * n; j++) input[g * nb * n + j] = xin[j];
      const u0 = performance.now();
      const e = await run(input, [G * nb, C, H, W], t, cond, [G * nb, seq, dim]);
      if (o.timings) {
        o.timings.unetSeconds += (performance.now() - u0) / 1000;
        o.timings.unetCalls = (o.timings.unetCalls ?? 0) + 1;
      }
      const eps = new Float64Array(nb * n);
      for (let j = 0; j < nb * n; j++) {
        const ec = e[(G - 1) * nb * n + j];
        eps[j] = cfg ? e[j] + o.guidance * (ec - e[j]) : ec;
      }
      const stepNoise = (): Float64Array => {
        const v = new Float64Array(nb * n);
        for (let i = 0; i < nb; i++) {
          const img = first + i;
          const src = o.stepNoise
            ? o.stepNoise.data.subarray((k * count + img) * n, (k * count + img + 1) * n)
            : philoxNormal(seedOf(img), img, 1 + begin + k, 0, n);
          v.set(src, i * n);
        }
        return v;
      };
      // diffusers keeps the latents in float32 between steps
      x = Float64Array.from(Float32Array.from(sched.step(eps, t, x, stepNoise)));
    }
    out.set(Float32Array.from(x), first * n);
  }
  if (o.timings) o.timings.loopSeconds += (performance.now() - t0) / 1000;
  return out;
}
