/**
 * diffusers' schedulers transcribed literally into TypeScript, in float64 — the independent reference
 * the engine's fused step programs are tested against (and the baseline of the benchmarks). Each class
 * follows its Python source method by method (set_timesteps, scale_model_input, step with its state,
 * add_noise, set_begin_index) with the class's own config defaults; values diffusers keeps in float32
 * tensors (sigmas, fractional timesteps) are rounded to float32 as there. Nothing here is shared with
 * the engine's scheduler code.
 */
import { SD1_SCHEDULE } from './schedulerConfig.js';
import type { SchedulerName } from './schedulerConfig.js';
import type { ScheduleConfig } from '../native/samplerTypes.js';

const f32 = Math.fround;
/** A latent as the reference schedulers compute it: float64, flattened. */
export type SchedulerVector = Float64Array;

/** The config keys a scheduler reads, with the class defaults filled in. */
export interface RefSchedulerConfig {
  T: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: string;
  setAlphaToOne: boolean;
  stepsOffset: number;
  spacing: 'leading' | 'trailing' | 'linspace';
  clipSample: boolean;
  clipRange: number;
  karras: boolean;
  sigmaMin?: number;
  sigmaMax?: number;
  varianceType: string;
}

function npLinspace(a: number, b: number, n: number): number[] {
  if (n === 1) return [a];
  const step = (b - a) / (n - 1);
  const v = Array.from({ length: n }, (_, i) => a + i * step);
  v[n - 1] = b;
  return v;
}
const roundEven = (x: number): number => {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};
/** The N points of numpy.arange(T, 0, -T/N) (numpy gives N + 1 at some N: see the engine's trailing_points). */
function trailingPoints(T: number, n: number): number[] {
  return Array.from({ length: n }, (_, k) => T + k * -(T / n));
}
function npInterp(x: number, table: number[]): number {
  if (x <= 0) return table[0];
  if (x >= table.length - 1) return table[table.length - 1];
  const i = Math.floor(x);
  const f = x - i;
  return f === 0 ? table[i] : table[i] + (table[i + 1] - table[i]) * f;
}

function alphasCumprod(c: RefSchedulerConfig): number[] {
  let betas: number[];
  if (c.betaSchedule === 'linear') betas = npLinspace(c.betaStart, c.betaEnd, c.T);
  else if (c.betaSchedule === 'scaled_linear') betas = npLinspace(Math.sqrt(c.betaStart), Math.sqrt(c.betaEnd), c.T).map((b) => b * b);
  else {
    const abar = (t: number): number => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
    betas = Array.from({ length: c.T }, (_, i) => Math.min(1 - abar((i + 1) / c.T) / abar(i / c.T), 0.999));
  }
  const out: number[] = [];
  let p = 1;
  for (const b of betas) out.push((p *= 1 - b));
  return out;
}

function sigmaToT(sigma: number, logSigmas: number[]): number {
  const ls = Math.log(Math.max(sigma, 1e-10));
  let low = 0;
  for (let i = 0; i < logSigmas.length; i++) if (ls - logSigmas[i] >= 0) low = i;
  low = Math.min(low, logSigmas.length - 2);
  const lo = logSigmas[low];
  const hi = logSigmas[low + 1];
  const w = Math.min(1, Math.max(0, (lo - ls) / (lo - hi)));
  return (1 - w) * low + w * (low + 1);
}

function convertToKarras(sigmaMin: number, sigmaMax: number, n: number): number[] {
  const rho = 7;
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  return npLinspace(0, 1, n).map((r) => (maxInv + r * (minInv - maxInv)) ** rho);
}

const axpy = (out: SchedulerVector, terms: [number, SchedulerVector][]): SchedulerVector => {
  out.fill(0);
  for (const [c, v] of terms) for (let j = 0; j < out.length; j++) out[j] += c * v[j];
  return out;
};
const lin = (terms: [number, SchedulerVector][]): SchedulerVector => axpy(new Float64Array(terms[0][1].length), terms);
const clampVec = (v: SchedulerVector, r: number): SchedulerVector => v.map((x) => Math.min(r, Math.max(-r, x)));

/** The common surface of the transcribed schedulers. */
export abstract class RefScheduler {
  timesteps: number[] = [];
  order = 1;
  protected ac: number[];
  protected sigAll: number[];
  protected logSig: number[];
  constructor(protected c: RefSchedulerConfig) {
    this.ac = alphasCumprod(c);
    this.sigAll = this.ac.map((a) => Math.sqrt((1 - a) / a));
    this.logSig = this.sigAll.map(Math.log);
  }
  abstract setTimesteps(n: number): void;
  /** Only the sigma-indexed classes have set_begin_index. */
  setBeginIndex?(i: number): void;
  scaleModelInput(x: SchedulerVector, _t: number): SchedulerVector {
    return x;
  }
  abstract step(eps: SchedulerVector, t: number, x: SchedulerVector, noise: () => SchedulerVector): SchedulerVector;
  abstract addNoise(x0: SchedulerVector, noise: SchedulerVector, t: number): SchedulerVector;
  protected spacedInts(n: number): number[] {
    const { T } = this.c;
    if (this.c.spacing === 'linspace') return npLinspace(0, T - 1, n).map(roundEven).reverse();
    if (this.c.spacing === 'leading') {
      const r = Math.floor(T / n);
      return Array.from({ length: n }, (_, i) => i * r).reverse().map((v) => v + this.c.stepsOffset);
    }
    return trailingPoints(T, n).map((v) => roundEven(v) - 1);
  }
}

/** DDIMScheduler, DDPMScheduler and PNDMScheduler share ᾱ-indexed add_noise. */
abstract class AlphaScheduler extends RefScheduler {
  addNoise(x0: SchedulerVector, noise: SchedulerVector, t: number): SchedulerVector {
    const a = this.ac[t];
    return lin([[Math.sqrt(a), x0], [Math.sqrt(1 - a), noise]]);
  }
}

class DDIM extends AlphaScheduler {
  n = 0;
  constructor(c: RefSchedulerConfig, private eta: number) {
    super(c);
  }
  setTimesteps(n: number): void {
    this.n = n;
    this.timesteps = this.spacedInts(n);
  }
  step(eps: SchedulerVector, t: number, x: SchedulerVector, noise: () => SchedulerVector): SchedulerVector {
    const prev = t - Math.floor(this.c.T / this.n);
    const at = this.ac[t];
    const ap = prev >= 0 ? this.ac[prev] : this.c.setAlphaToOne ? 1 : this.ac[0];
    let x0 = lin([[1 / Math.sqrt(at), x], [-Math.sqrt(1 - at) / Math.sqrt(at), eps]]);
    if (this.c.clipSample) x0 = clampVec(x0, this.c.clipRange);
    const variance = ((1 - ap) / (1 - at)) * (1 - at / ap);
    const sd = this.eta * Math.sqrt(variance);
    const out = lin([[Math.sqrt(ap), x0], [Math.sqrt(1 - ap - sd * sd), eps]]);
    if (this.eta > 0) {
      const zn = noise();
      for (let j = 0; j < out.length; j++) out[j] += sd * zn[j];
    }
    return out;
  }
}

class DDPM extends AlphaScheduler {
  setTimesteps(n: number): void {
    this.timesteps = this.spacedInts(n);
  }
  step(eps: SchedulerVector, t: number, x: SchedulerVector, noise: () => SchedulerVector): SchedulerVector {
    const idx = this.timesteps.indexOf(t);
    const prevT = idx === this.timesteps.length - 1 ? -1 : this.timesteps[idx + 1];
    const at = this.ac[t];
    const ap = prevT >= 0 ? this.ac[prevT] : 1;
    const bt = 1 - at;
    const bp = 1 - ap;
    const curA = at / ap;
    const curB = 1 - curA;
    let x0 = lin([[1 / Math.sqrt(at), x], [-Math.sqrt(bt) / Math.sqrt(at), eps]]);
    if (this.c.clipSample) x0 = clampVec(x0, this.c.clipRange);
    const out = lin([[(Math.sqrt(ap) * curB) / bt, x0], [(Math.sqrt(curA) * bp) / bt, x]]);
    if (t > 0) {
      let v = Math.max(((1 - ap) / (1 - at)) * curB, 1e-20);
      if (this.c.varianceType === 'fixed_large') v = curB;
      const z = noise();
      for (let j = 0; j < out.length; j++) out[j] += Math.sqrt(v) * z[j];
    }
    return out;
  }
}

/** PNDMScheduler with skip_prk_steps (PLMS). */
class PNDM extends AlphaScheduler {
  n = 0;
  private ets: SchedulerVector[] = [];
  private counter = 0;
  private curSample: SchedulerVector | null = null;
  setTimesteps(n: number): void {
    this.n = n;
    const asc = this.spacedInts(n).slice().reverse();
    this.timesteps = [...asc.slice(0, -1), ...asc.slice(-2, -1), ...asc.slice(-1)].reverse();
    this.ets = [];
    this.counter = 0;
  }
  step(eps: SchedulerVector, timestep: number, x: SchedulerVector): SchedulerVector {
    let t = timestep;
    let prevT = t - Math.floor(this.c.T / this.n);
    if (this.counter !== 1) {
      this.ets = this.ets.slice(-3);
      this.ets.push(eps);
    } else {
      prevT = t;
      t = t + Math.floor(this.c.T / this.n);
    }
    let mo: SchedulerVector;
    let sample = x;
    const e = this.ets;
    if (e.length === 1 && this.counter === 0) {
      mo = eps;
      this.curSample = x;
    } else if (e.length === 1 && this.counter === 1) {
      mo = lin([[0.5, eps], [0.5, e[0]]]);
      sample = this.curSample as SchedulerVector;
      this.curSample = null;
    } else if (e.length === 2) mo = lin([[1.5, e[1]], [-0.5, e[0]]]);
    else if (e.length === 3) mo = lin([[23 / 12, e[2]], [-16 / 12, e[1]], [5 / 12, e[0]]]);
    else mo = lin([[55 / 24, e[3]], [-59 / 24, e[2]], [37 / 24, e[1]], [-9 / 24, e[0]]]);
    const at = this.ac[t];
    const ap = prevT >= 0 ? this.ac[prevT] : this.c.setAlphaToOne ? 1 : this.ac[0];
    const denom = at * Math.sqrt(1 - ap) + Math.sqrt(at * (1 - at) * ap);
    this.counter++;
    return lin([[Math.sqrt(ap / at), sample], [-(ap - at) / denom, mo]]);
  }
}

/** Euler, Euler ancestral, LMS and Heun: σ-indexed, float timesteps, x0 + σ·n. */
abstract class SigmaScheduler extends RefScheduler {
  sigmas: number[] = [];
  protected stepIndex: number | null = null;
  protected beginIndex: number | null = null;
  override setBeginIndex(i: number): void {
    this.beginIndex = i;
  }
  protected initStep(t: number): void {
    if (this.stepIndex !== null) return;
    if (this.beginIndex !== null) this.stepIndex = this.beginIndex;
    else {
      const idx = this.timesteps.flatMap((v, i) => (v === t ? [i] : []));
      this.stepIndex = idx.length > 1 ? idx[1] : idx[0];
    }
  }
  /** The spacing's float32 timesteps and their (float64) sigmas, Karras applied when configured. */
  protected baseSigmas(n: number, karrasRange: boolean): { ts: number[]; sig: number[] } {
    const { T } = this.c;
    let ts: number[];
    if (this.c.spacing === 'linspace') ts = npLinspace(0, T - 1, n).map(f32).reverse();
    else if (this.c.spacing === 'leading') {
      const r = Math.floor(T / n);
      ts = Array.from({ length: n }, (_, i) => i * r).reverse().map((v) => v + this.c.stepsOffset);
    } else ts = trailingPoints(T, n).map((v) => roundEven(v) - 1);
    let sig = ts.map((t) => npInterp(t, this.sigAll));
    if (this.c.karras) {
      const lo = karrasRange && this.c.sigmaMin !== undefined ? this.c.sigmaMin : sig[sig.length - 1];
      const hi = karrasRange && this.c.sigmaMax !== undefined ? this.c.sigmaMax : sig[0];
      sig = convertToKarras(lo, hi, n);
      ts = sig.map((s) => f32(sigmaToT(s, this.logSig)));
    }
    return { ts, sig };
  }
  override scaleModelInput(x: SchedulerVector, t: number): SchedulerVector {
    this.initStep(t);
    const s = this.sigmas[this.stepIndex as number];
    return x.map((v) => v / Math.sqrt(s * s + 1));
  }
  addNoise(x0: SchedulerVector, noise: SchedulerVector): SchedulerVector {
    const s = this.sigmas[this.beginIndex as number];
    return lin([[1, x0], [s, noise]]);
  }
}

class Euler extends SigmaScheduler {
  setTimesteps(n: number): void {
    const { ts, sig } = this.baseSigmas(n, true);
    this.timesteps = ts;
    this.sigmas = [...sig, 0].map(f32);
  }
  step(eps: SchedulerVector, t: number, x: SchedulerVector): SchedulerVector {
    this.initStep(t);
    const i = this.stepIndex as number;
    const s = this.sigmas[i];
    const x0 = lin([[1, x], [-s, eps]]);
    const d = lin([[1 / s, x], [-1 / s, x0]]);
    this.stepIndex = i + 1;
    return lin([[1, x], [this.sigmas[i + 1] - s, d]]);
  }
}

class EulerAncestral extends SigmaScheduler {
  setTimesteps(n: number): void {
    const { ts, sig } = this.baseSigmas(n, false);
    this.timesteps = ts;
    this.sigmas = [...sig, 0].map(f32);
  }
  step(eps: SchedulerVector, t: number, x: SchedulerVector, noise: () => SchedulerVector): SchedulerVector {
    this.initStep(t);
    const i = this.stepIndex as number;
    const s = this.sigmas[i];
    const x0 = lin([[1, x], [-s, eps]]);
    const sf = this.sigmas[i];
    const st = this.sigmas[i + 1];
    const up = Math.sqrt((st * st * (sf * sf - st * st)) / (sf * sf));
    const down = Math.sqrt(st * st - up * up);
    const d = lin([[1 / s, x], [-1 / s, x0]]);
    const out = lin([[1, x], [down - s, d], [up, noise()]]);
    this.stepIndex = i + 1;
    return out;
  }
}

class LMS extends SigmaScheduler {
  private derivatives: SchedulerVector[] = [];
  /** true: the textbook method (order from the derivatives stored), which diffusers' class is not. */
  constructor(c: RefSchedulerConfig, private readonly textbook = false) {
    super(c);
  }
  setTimesteps(n: number): void {
    const { ts, sig } = this.baseSigmas(n, false);
    this.timesteps = ts;
    this.sigmas = [...sig, 0].map(f32);
    this.derivatives = [];
  }
  /** scipy's quad of the Lagrange basis polynomial: Simpson on many panels is exact to rounding for a cubic. */
  private coefficient(order: number, t: number, cur: number): number {
    const s = this.sigmas;
    const f = (tau: number): number => {
      let p = 1;
      for (let k = 0; k < order; k++) if (k !== cur) p *= (tau - s[t - k]) / (s[t - cur] - s[t - k]);
      return p;
    };
    const a = s[t];
    const b = s[t + 1];
    const m = 8;
    const h = (b - a) / m;
    let sum = f(a) + f(b);
    for (let k = 1; k < m; k++) sum += (k % 2 ? 4 : 2) * f(a + k * h);
    return (sum * h) / 3;
  }
  step(eps: SchedulerVector, t: number, x: SchedulerVector): SchedulerVector {
    this.initStep(t);
    const i = this.stepIndex as number;
    const s = this.sigmas[i];
    const x0 = lin([[1, x], [-s, eps]]);
    this.derivatives.push(lin([[1 / s, x], [-1 / s, x0]]));
    if (this.derivatives.length > 4) this.derivatives.shift();
    // diffusers takes the order from the step index in the full schedule (img2img at a begin index
    // of 3 or more starts at order 4 with one derivative) and uses as many of that order's
    // coefficients as there are derivatives
    const order = this.textbook ? Math.min(this.derivatives.length, 4) : Math.min(i + 1, 4);
    const coeffs = Array.from({ length: order }, (_, k) => this.coefficient(order, i, k));
    const rev = this.derivatives.slice().reverse();
    const terms: [number, SchedulerVector][] = [[1, x]];
    for (let k = 0; k < Math.min(coeffs.length, rev.length); k++) terms.push([coeffs[k], rev[k]]);
    this.stepIndex = i + 1;
    return lin(terms);
  }
}

class Heun extends SigmaScheduler {
  private prevDerivative: SchedulerVector | null = null;
  private dt: number | null = null;
  private sample: SchedulerVector | null = null;
  constructor(c: RefSchedulerConfig) {
    super(c);
    this.order = 2;
  }
  setTimesteps(n: number): void {
    const { ts, sig } = this.baseSigmas(n, true);
    const s = [...sig, 0].map(f32);
    this.sigmas = [s[0], ...s.slice(1, -1).flatMap((v) => [v, v]), s[s.length - 1]];
    this.timesteps = [ts[0], ...ts.slice(1).flatMap((v) => [v, v])].map(f32);
    this.prevDerivative = null;
    this.dt = null;
  }
  step(eps: SchedulerVector, t: number, x: SchedulerVector): SchedulerVector {
    this.initStep(t);
    const i = this.stepIndex as number;
    const first = this.dt === null;
    const sigma = first ? this.sigmas[i] : this.sigmas[i - 1];
    const sigmaNext = first ? this.sigmas[i + 1] : this.sigmas[i];
    const sIn = first ? sigma : sigmaNext;
    let x0 = lin([[1, x], [-sIn, eps]]);
    if (this.c.clipSample) x0 = clampVec(x0, this.c.clipRange);
    let out: SchedulerVector;
    if (first) {
      const d = lin([[1 / sigma, x], [-1 / sigma, x0]]);
      this.prevDerivative = d;
      this.dt = sigmaNext - sigma;
      this.sample = x;
      out = lin([[1, x], [this.dt, d]]);
    } else {
      const d2 = lin([[1 / sigmaNext, x], [-1 / sigmaNext, x0]]);
      const d = lin([[0.5, this.prevDerivative as SchedulerVector], [0.5, d2]]);
      out = lin([[1, this.sample as SchedulerVector], [this.dt as number, d]]);
      this.prevDerivative = null;
      this.dt = null;
      this.sample = null;
    }
    this.stepIndex = i + 1;
    return out;
  }
}

/** DPMSolverMultistepScheduler and UniPCMultistepScheduler: int timesteps on N+1 points, VP add_noise. */
abstract class MultistepScheduler extends SigmaScheduler {
  protected vp(s: number): { a: number; s: number; l: number } {
    const a = 1 / Math.sqrt(s * s + 1);
    return { a, s: s * a, l: Math.log(a) - Math.log(s * a) };
  }
  protected build(n: number, karrasRange: boolean, roundKarras: boolean): void {
    const { T } = this.c;
    let ts: number[];
    if (this.c.spacing === 'linspace') ts = npLinspace(0, T - 1, n + 1).map(roundEven).reverse().slice(0, -1);
    else if (this.c.spacing === 'leading') {
      const r = Math.floor(T / (n + 1));
      ts = Array.from({ length: n + 1 }, (_, i) => i * r).reverse().slice(0, -1).map((v) => v + this.c.stepsOffset);
    } else ts = trailingPoints(T, n).map((v) => roundEven(v) - 1);
    let sig: number[];
    if (this.c.karras) {
      const flipped = this.sigAll.slice().reverse();
      const lo = karrasRange && this.c.sigmaMin !== undefined ? this.c.sigmaMin : flipped[flipped.length - 1];
      const hi = karrasRange && this.c.sigmaMax !== undefined ? this.c.sigmaMax : flipped[0];
      sig = convertToKarras(lo, hi, n);
      ts = sig.map((s) => sigmaToT(s, this.logSig)).map((v) => (roundKarras ? roundEven(v) : Math.trunc(v)));
    } else sig = ts.map((t) => npInterp(t, this.sigAll));
    this.sigmas = [...sig, 0].map(f32);
    this.timesteps = ts;
  }
  override scaleModelInput(x: SchedulerVector): SchedulerVector {
    return x;
  }
  override addNoise(x0: SchedulerVector, noise: SchedulerVector): SchedulerVector {
    const v = this.vp(this.sigmas[this.beginIndex as number]);
    return lin([[v.a, x0], [v.s, noise]]);
  }
}

class DPMSolver extends MultistepScheduler {
  private modelOutputs: (SchedulerVector | null)[] = [null, null];
  private lowerOrderNums = 0;
  constructor(c: RefSchedulerConfig, private sde: boolean) {
    super(c);
  }
  setTimesteps(n: number): void {
    this.build(n, true, this.c.betaSchedule !== 'squaredcos_cap_v2');
    this.modelOutputs = [null, null];
    this.lowerOrderNums = 0;
  }
  step(eps: SchedulerVector, t: number, x: SchedulerVector, noise: () => SchedulerVector): SchedulerVector {
    this.initStep(t);
    const i = this.stepIndex as number;
    const lowerOrderFinal = i === this.timesteps.length - 1; // final_sigmas_type "zero"
    const vs = this.vp(this.sigmas[i]);
    const m = lin([[1 / vs.a, x], [-vs.s / vs.a, eps]]);
    this.modelOutputs[0] = this.modelOutputs[1];
    this.modelOutputs[1] = m;
    const z = this.sde ? noise() : null;
    const vt = this.vp(this.sigmas[i + 1]);
    const h = vt.l - vs.l;
    let out: SchedulerVector;
    if (this.lowerOrderNums < 1 || lowerOrderFinal) {
      if (!this.sde) out = lin([[vt.s / vs.s, x], [-(vt.a * (Math.exp(-h) - 1)), m]]);
      else out = lin([[(vt.s / vs.s) * Math.exp(-h), x], [vt.a * (1 - Math.exp(-2 * h)), m], [vt.s * Math.sqrt(1 - Math.exp(-2 * h)), z as SchedulerVector]]);
    } else {
      const v1 = this.vp(this.sigmas[i - 1]);
      const r0 = (vs.l - v1.l) / h;
      const m1 = this.modelOutputs[0] as SchedulerVector;
      const D1 = lin([[1 / r0, m], [-1 / r0, m1]]);
      if (!this.sde) out = lin([[vt.s / vs.s, x], [-(vt.a * (Math.exp(-h) - 1)), m], [-0.5 * (vt.a * (Math.exp(-h) - 1)), D1]]);
      else {
        out = lin([
          [(vt.s / vs.s) * Math.exp(-h), x],
          [vt.a * (1 - Math.exp(-2 * h)), m],
          [0.5 * (vt.a * (1 - Math.exp(-2 * h))), D1],
          [vt.s * Math.sqrt(1 - Math.exp(-2 * h)), z as SchedulerVector],
        ]);
      }
    }
    if (this.sigmas[i + 1] === 0) out = m.slice(); // h = ∞: exactly x̂0 (the expressions above give 0·∞ there)
    if (this.lowerOrderNums < 2) this.lowerOrderNums++;
    this.stepIndex = i + 1;
    return out;
  }
}

class UniPC extends MultistepScheduler {
  private modelOutputs: (SchedulerVector | null)[] = [null, null];
  private lowerOrderNums = 0;
  private lastSample: SchedulerVector | null = null;
  private thisOrder = 1;
  setTimesteps(n: number): void {
    this.build(n, true, true);
    this.modelOutputs = [null, null];
    this.lowerOrderNums = 0;
    this.lastSample = null;
  }
  /** h, h·φ₁ and B(h) of bh2 between two sigma indices. */
  private coeffs(it: number, is0: number): { vt: ReturnType<UniPC['vp']>; vs0: ReturnType<UniPC['vp']>; h: number; hh: number; h1: number; B: number } {
    const vt = this.vp(this.sigmas[it]);
    const vs0 = this.vp(this.sigmas[is0]);
    const h = vt.l - vs0.l;
    const hh = -h;
    const h1 = Math.expm1(hh);
    return { vt, vs0, h, hh, h1, B: Math.expm1(hh) };
  }
  private bVector(hh: number, h1: number, B: number, order: number): number[] {
    let hpk = h1 / hh - 1;
    let fact = 1;
    const b: number[] = [];
    for (let k = 1; k <= order; k++) {
      b.push((hpk * fact) / B);
      fact *= k + 1;
      hpk = hpk / hh - 1 / fact;
    }
    return b;
  }
  step(eps: SchedulerVector, t: number, x: SchedulerVector): SchedulerVector {
    this.initStep(t);
    const i = this.stepIndex as number;
    const useCorrector = i > 0 && this.lastSample !== null;
    const vsi = this.vp(this.sigmas[i]);
    const mt = lin([[1 / vsi.a, x], [-vsi.s / vsi.a, eps]]);
    let sample = x;
    if (useCorrector) {
      const order = this.thisOrder;
      const m0 = this.modelOutputs[1] as SchedulerVector;
      const { vt, vs0, h, hh, h1, B } = this.coeffs(i, i - 1);
      const xt_ = lin([[vt.s / vs0.s, this.lastSample as SchedulerVector], [-vt.a * h1, m0]]);
      let rhos: number[];
      let corr: SchedulerVector | null = null;
      if (order === 1) rhos = [0.5];
      else {
        const v1 = this.vp(this.sigmas[i - 2]);
        const r1 = (v1.l - vs0.l) / h;
        const b = this.bVector(hh, h1, B, 2);
        // solve [[1, 1], [r1, 1]] ρ = b
        const det = 1 - r1;
        rhos = [(b[0] - b[1]) / det, (b[1] - r1 * b[0]) / det];
        corr = lin([[rhos[0] / r1, this.modelOutputs[0] as SchedulerVector], [-rhos[0] / r1, m0]]);
      }
      const D1t = lin([[1, mt], [-1, m0]]);
      const inner = corr ? lin([[1, corr], [rhos[rhos.length - 1], D1t]]) : lin([[rhos[0], D1t]]);
      sample = lin([[1, xt_], [-vt.a * B, inner]]);
    }
    this.modelOutputs[0] = this.modelOutputs[1];
    this.modelOutputs[1] = mt;
    const thisOrder = Math.min(2, this.timesteps.length - i);
    this.thisOrder = Math.min(thisOrder, this.lowerOrderNums + 1);
    this.lastSample = sample;
    // predictor
    let out: SchedulerVector;
    if (this.sigmas[i + 1] === 0) out = mt.slice(); // σ_t = 0: order 1, exactly m_t
    else {
      const { vt, vs0, h, h1, B } = this.coeffs(i + 1, i);
      const xt_ = lin([[vt.s / vs0.s, sample], [-vt.a * h1, mt]]);
      if (this.thisOrder === 1) out = xt_;
      else {
        const v1 = this.vp(this.sigmas[i - 1]);
        const r1 = (v1.l - vs0.l) / h;
        const D1 = lin([[1 / r1, this.modelOutputs[0] as SchedulerVector], [-1 / r1, mt]]);
        out = lin([[1, xt_], [-vt.a * B * 0.5, D1]]);
      }
    }
    if (this.lowerOrderNums < 2) this.lowerOrderNums++;
    this.stepIndex = i + 1;
    return out;
  }
}

/** The class defaults of diffusers' __init__, then the keys the config names. */
function resolve(name: SchedulerName, s: ScheduleConfig): RefSchedulerConfig {
  const alphaIndexed = name === 'ddim' || name === 'pndm' || name === 'ddpm';
  const c: RefSchedulerConfig = {
    T: 1000,
    betaStart: name === 'heun' ? 0.00085 : 0.0001,
    betaEnd: name === 'heun' ? 0.012 : 0.02,
    betaSchedule: 'linear',
    setAlphaToOne: name === 'ddim',
    stepsOffset: 0,
    spacing: alphaIndexed ? 'leading' : 'linspace',
    clipSample: name === 'ddim' || name === 'ddpm',
    clipRange: 1,
    karras: false,
    varianceType: 'fixed_small',
  };
  if (s.numTrainTimesteps !== undefined) c.T = s.numTrainTimesteps;
  if (s.betaStart !== undefined) c.betaStart = s.betaStart;
  if (s.betaEnd !== undefined) c.betaEnd = s.betaEnd;
  if (s.betaSchedule !== undefined) c.betaSchedule = s.betaSchedule;
  if (s.setAlphaToOne !== undefined) c.setAlphaToOne = s.setAlphaToOne;
  if (s.stepsOffset !== undefined) c.stepsOffset = s.stepsOffset;
  if (s.timestepSpacing !== undefined) c.spacing = s.timestepSpacing;
  if (s.clipSample !== undefined) c.clipSample = s.clipSample;
  if (s.clipSampleRange !== undefined) c.clipRange = s.clipSampleRange;
  // EulerAncestral (like the ᾱ-indexed classes) has no use_karras_sigmas: from_config ignores the key
  if (s.useKarrasSigmas !== undefined && !alphaIndexed && name !== 'euler-ancestral') c.karras = s.useKarrasSigmas;
  if (s.sigmaMin !== undefined) c.sigmaMin = s.sigmaMin;
  if (s.sigmaMax !== undefined) c.sigmaMax = s.sigmaMax;
  if (s.varianceType !== undefined) c.varianceType = s.varianceType;
  return c;
}

/**
 * The textbook linear multistep method on LMS's sigmas — the order grows with the derivatives stored and
 * the coefficients are that order's — to show what diffusers' LMSDiscreteScheduler is not.
 */
export function textbookLms(schedule: ScheduleConfig = SD1_SCHEDULE): RefScheduler {
  return new LMS(resolve('lms', schedule), true);
}

/** A transcribed diffusers scheduler for a config (SD 1.5's when none is given). */
export function referenceScheduler(name: SchedulerName, schedule: ScheduleConfig = SD1_SCHEDULE, eta = 0): RefScheduler {
  const c = resolve(name, schedule);
  switch (name) {
    case 'ddim': return new DDIM(c, eta);
    case 'pndm': return new PNDM(c);
    case 'ddpm': return new DDPM(c);
    case 'lms': return new LMS(c);
    case 'euler': return new Euler(c);
    case 'euler-ancestral': return new EulerAncestral(c);
    case 'heun': return new Heun(c);
    case 'dpmpp2m': return new DPMSolver(c, false);
    case 'dpmpp2m-sde': return new DPMSolver(c, true);
    case 'unipc': return new UniPC(c);
  }
}
