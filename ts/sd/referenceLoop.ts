/**
 * A plain TypeScript img2img loop over onnxruntime-node's JS API: diffusers' scheduler formulas
 * written out again here (float64 scalars, float32 state as in diffusers), one U-Net call per
 * step with the [uncond; cond] batch, noise from the TS Philox port. It is the independent
 * reference the fused native loop is tested against, and the baseline of bench:sampler.
 */
import * as ort from 'onnxruntime-node';

import type { ScheduleConfig } from '../native/samplerTypes.js';
import { philoxNormal } from './philox.js';
import { SD1_SCHEDULE } from './schedulerConfig.js';
import type { Tensor } from './tensor.js';

export interface ReferenceOptions {
  z: Tensor;
  c: Tensor;
  uncond?: Tensor;
  strength: number;
  steps: number;
  guidance: number;
  scheduler: 'ddim' | 'euler' | 'dpmpp2m';
  eta?: number;
  seeds?: number | number[];
  noise?: Tensor;
  schedule?: ScheduleConfig;
  batchSize?: number;
  /** Per-call U-Net times are added here when given. */
  timings?: { unetSeconds: number; loopSeconds: number };
}

const f32 = Math.fround;

function alphasCumprod(s: Required<ScheduleConfig>): number[] {
  const T = s.numTrainTimesteps;
  const a = Math.sqrt(s.betaStart);
  const b = Math.sqrt(s.betaEnd);
  const out: number[] = [];
  let prod = 1;
  for (let t = 0; t < T; t++) {
    const root = t === T - 1 ? b : a + ((b - a) * t) / (T - 1);
    const beta = s.betaSchedule === 'linear' ? s.betaStart + ((s.betaEnd - s.betaStart) * t) / (T - 1) : root * root;
    prod *= 1 - beta;
    out.push(prod);
  }
  return out;
}

/** "leading" timesteps of each diffusers scheduler. */
function leadingTimesteps(s: Required<ScheduleConfig>, scheduler: string, n: number): number[] {
  const T = s.numTrainTimesteps;
  const m = scheduler === 'dpmpp2m' ? n + 1 : n;
  const ratio = Math.floor(T / m);
  const ts: number[] = [];
  for (let i = m - 1; i >= 0; i--) ts.push(i * ratio + s.stepsOffset);
  return scheduler === 'dpmpp2m' ? ts.slice(0, n) : ts;
}

export async function referenceImg2Img(unet: ort.InferenceSession, o: ReferenceOptions): Promise<Float32Array> {
  const s = { ...SD1_SCHEDULE, ...(o.schedule ?? {}) };
  if (s.timestepSpacing !== 'leading') throw new Error('the reference loop implements leading spacing only');
  const ac = alphasCumprod(s);
  const N = o.steps;
  const ts = leadingTimesteps(s, o.scheduler, N);
  const init = Math.min(Math.floor(N * o.strength), N);
  const tStart = Math.max(N - init, 0);
  const [count, C, H, W] = o.z.shape;
  const n = C * H * W;
  const [, seq, dim] = o.c.shape;
  const cfg = o.guidance > 1;
  const G = cfg ? 2 : 1;
  const eta = o.eta ?? 0;
  const meta = unet.inputMetadata.find((m) => m.name === 'timestep');
  const tType = meta && meta.isTensor ? meta.type : 'float32';
  const tRank = meta && meta.isTensor ? meta.shape.length : 1;
  const sig = ts.map((t) => f32(Math.sqrt((1 - ac[t]) / ac[t])));
  sig.push(0);
  const out = new Float32Array(count * n);
  const B = o.batchSize ?? 1;
  const t0 = performance.now();
  for (let first = 0; first < count; first += B) {
    const nb = Math.min(B, count - first);
    const x = new Float32Array(nb * n);
    const prevX0 = new Float32Array(nb * n);
    const cond = new Float32Array(G * nb * seq * dim);
    for (let i = 0; i < nb; i++) {
      if (cfg) {
        const u = o.uncond as Tensor;
        const row = u.shape[0] === 1 ? 0 : first + i;
        cond.set(u.data.subarray(row * seq * dim, (row + 1) * seq * dim), i * seq * dim);
      }
      cond.set(o.c.data.subarray((first + i) * seq * dim, (first + i + 1) * seq * dim), ((G - 1) * nb + i) * seq * dim);
    }
    const condT = new ort.Tensor('float32', cond, [G * nb, seq, dim]);
    // initial latents: add_noise at ts[tStart]
    for (let i = 0; i < nb; i++) {
      const img = first + i;
      const seed = Array.isArray(o.seeds) ? o.seeds[img] : (o.seeds ?? 0);
      const noise = o.noise ? o.noise.data.subarray(img * n, (img + 1) * n) : philoxNormal(seed, img, 0, 0, n);
      const t = ts[tStart];
      let a: number;
      let b: number;
      if (o.scheduler === 'ddim') {
        a = Math.sqrt(ac[t]);
        b = Math.sqrt(1 - ac[t]);
      } else if (o.scheduler === 'euler') {
        a = 1;
        b = sig[tStart];
      } else {
        a = 1 / Math.sqrt(sig[tStart] ** 2 + 1);
        b = sig[tStart] * a;
      }
      for (let j = 0; j < n; j++) x[i * n + j] = f32(a) * o.z.data[img * n + j] + f32(b) * noise[j];
    }
    for (let i = tStart; i < N; i++) {
      const t = ts[i];
      const scale = o.scheduler === 'euler' ? 1 / Math.sqrt(sig[i] ** 2 + 1) : 1;
      const input = new Float32Array(G * nb * n);
      for (let g = 0; g < G; g++) for (let j = 0; j < nb * n; j++) input[g * nb * n + j] = x[j] * scale;
      const tCount = tRank === 0 ? 1 : G * nb;
      const tData = tType === 'int64' ? new BigInt64Array(tCount).fill(BigInt(t)) : tType === 'int32' ? new Int32Array(tCount).fill(t) : new Float32Array(tCount).fill(t);
      const tTensor = new ort.Tensor(tType === 'int64' ? 'int64' : tType === 'int32' ? 'int32' : 'float32', tData, tRank === 0 ? [] : [tCount]);
      const u0 = performance.now();
      const r = await unet.run({ sample: new ort.Tensor('float32', input, [G * nb, C, H, W]), timestep: tTensor, encoder_hidden_states: condT });
      if (o.timings) o.timings.unetSeconds += (performance.now() - u0) / 1000;
      const e = r.out_sample.data as Float32Array;
      for (let img = 0; img < nb; img++) {
        const seed = Array.isArray(o.seeds) ? o.seeds[first + img] : (o.seeds ?? 0);
        const stepNoise = o.scheduler === 'ddim' && eta > 0 ? philoxNormal(seed, first + img, 1 + i, 0, n) : null;
        for (let j = 0; j < n; j++) {
          const k = img * n + j;
          const ec = e[((G - 1) * nb + img) * n + j];
          const eps = cfg ? f32(e[k] + f32(o.guidance) * (ec - e[k])) : ec;
          const xv = x[k];
          let xn: number;
          if (o.scheduler === 'ddim') {
            const prev = t - Math.floor(s.numTrainTimesteps / N);
            const at = ac[t];
            const ap = prev >= 0 ? ac[prev] : s.setAlphaToOne ? 1 : ac[0];
            const x0 = (xv - Math.sqrt(1 - at) * eps) / Math.sqrt(at);
            const sd = eta * Math.sqrt(((1 - ap) / (1 - at)) * (1 - at / ap));
            xn = Math.sqrt(ap) * x0 + Math.sqrt(1 - ap - sd * sd) * eps;
            if (stepNoise) xn += sd * stepNoise[j];
          } else if (o.scheduler === 'euler') {
            const x0 = xv - sig[i] * eps;
            xn = xv + ((xv - x0) / sig[i]) * (sig[i + 1] - sig[i]);
          } else {
            const as = (sg: number): [number, number] => {
              const a = 1 / Math.sqrt(sg * sg + 1);
              return [a, sg * a];
            };
            const [aS, sS] = as(sig[i]);
            const [aT, sT] = as(sig[i + 1]);
            const m0 = (xv - sS * eps) / aS;
            if (sT === 0) {
              xn = m0;
            } else {
              const lam = (a: number, sg: number): number => Math.log(a) - Math.log(sg);
              const h = lam(aT, sT) - lam(aS, sS);
              if (i === tStart || i === N - 1) {
                xn = (sT / sS) * xv - aT * (Math.exp(-h) - 1) * m0;
              } else {
                const [a1, s1] = as(sig[i - 1]);
                const r0 = (lam(aS, sS) - lam(a1, s1)) / h;
                const d1 = (1 / r0) * (m0 - prevX0[k]);
                xn = (sT / sS) * xv - aT * (Math.exp(-h) - 1) * m0 - 0.5 * aT * (Math.exp(-h) - 1) * d1;
              }
            }
            prevX0[k] = m0;
          }
          x[k] = xn;
        }
      }
    }
    out.set(x, first * n);
  }
  if (o.timings) o.timings.loopSeconds += (performance.now() - t0) / 1000;
  return out;
}
