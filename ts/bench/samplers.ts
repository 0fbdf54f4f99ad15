/**
 * `brainlatent bench samplers`: every scheduler on cost, on accuracy against the converged solution, and —
 * on the demo world, whose U-Net is the exact denoiser of a known Gaussian mixture — against the exact
 * ground truth: the probability-flow ODE integrated on the known score, and the true distribution.
 *
 * All runs share one start: z = 0 at strength 1 (pure generation), "trailing" spacing so every
 * scheduler starts at t = 999 and ends at σ = 0, set_alpha_to_one true (DDIM and PNDM end at x̂0 like the
 * others), the same Philox noise per image and one caption's conditioning, guidance 1 (the mixture's
 * conditional distribution is the target). Writes samplers.json, samplers.csv and samplers.html to
 * --out and appends the record to samplers.jsonl in the bench results folder (benchRecord.ts: `--results`).
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import { join, resolve } from 'node:path';


import { renderVegaLiteSvg } from '../charts/vegaSvg.js';
import { buildDemoWorld } from '../demo/world.js';
import { InvalidArgumentError } from '../errors.js';
import { writeFileAtomic } from '../io/atomicWrite.js';
import { Diffusion } from '../sd/Diffusion.js';
import { nativeSync } from '../native/call.js';
import { SCHEDULERS, type SchedulerName } from '../sd/schedulerConfig.js';
import type { ScheduleConfig } from '../native/samplerTypes.js';
import type { Tensor } from '../sd/tensor.js';
import { loadBenchmark, microBench, MISSING_BENCHMARK } from './microBench.js';
import { appendBenchRecord, gitCommit, machineInfo } from './benchRecord.js';
import { referenceScheduler } from '../sd/referenceSchedulers.js';
import { commonLevelOrders, commonNoiseLevel, FLOOR_MARGIN, measuredOrders, PRE_ASYMPTOTIC, type OrderFloors } from './samplerOrder.js';
import {
  exactSamples,
  logDensityPerDim,
  mixtureWeights,
  posteriorMean,
  probabilityFlow,
  readMixture,
  schedulerStateAt,
  slicedWasserstein,
} from './samplerWorld.js';

const STOCHASTIC: readonly SchedulerName[] = ['ddpm', 'euler-ancestral', 'dpmpp2m-sde'];
/** Relative tolerance of the exact probability-flow ODE (adaptive Dormand–Prince, float64). */
const EXACT_TOL = 1e-8;

export interface SamplersBenchOptions {
  /** A demo world's model folder (built into `cacheDir` when absent). */
  model?: string;
  schedulers?: SchedulerName[];
  steps?: number[];
  batch?: number[];
  /** Images in the accuracy set and samples in the distribution score. */
  accuracyImages?: number;
  samples?: number;
  /** Steps of the converged high-order solution. */
  convergedSteps?: number;
  out?: string;
  cacheDir?: string;
  threads?: number;
  /** Fused-step micro-benchmarks (benchmark.js). */
  micro?: boolean;
  /** Latent side for a model that is not a demo world (default 8). */
  latentSize?: number;
  /** Condition every run on this caption (default: no conditioning, c = 0). */
  prompt?: string;
  log?: (line: string) => void;
}

interface Row {
  scheduler: SchedulerName;
  steps: number;
  unetCallsPerImage: number;
  /** Cost per batch size: images/s, loop ÷ U-Net time. (No memory per run: see SamplersBenchResult.processPeakRssMiB.) */
  cost: { batch: number; imagesPerSecond: number; overhead: number }[];
  /** ‖x − x_conv‖ / ‖x_conv‖ over the accuracy set (deterministic schedulers). */
  relErrorConverged?: number;
  /**
   * ‖x − x_ode‖ / ‖x_ode‖ against the exact probability-flow ODE between the scheduler's own first and last
   * noise levels, then its final denoising step: the discretisation error alone (float32 adds ~1e-7). Its
   * last step is never refined (trailing spacing ends with σ ratio ≈ √2 at any step count, and σ_last moves
   * towards the components' SD), so it stops falling past ~20–50 steps: docs/sampler.md.
   */
  relErrorExact?: number;
  /** The same against the exact ODE down to σ(0) (the limit every scheduler converges to; includes the final step's truncation). */
  relErrorExactFinal?: number;
  /**
   * ‖x_k − x_ode‖ / ‖x_ode‖ of the scheduler's state at the common noise level (`commonLevel`: a timestep every
   * grid of the run reaches) against the exact ODE from σ(999) to that σ: the discretisation error at a fixed
   * noise level, with no unrefined last step in it. Demo world, deterministic schedulers; computed with the
   * float64 reference schedulers on the exact denoiser (the engine returns only final latents).
   */
  relErrorCommon?: number;
  /**
   * The same after the final denoising step from there, x̂0 = D(x_k, σ) vs D(x_ode, σ): the run as if it ended at
   * the common level, in the units of relErrorExact (D contracts the state's error by about s²/(s² + σ²)).
   */
  relErrorCommonDenoised?: number;
  /** ‖x_ref − x_engine‖ / ‖x_engine‖ of the final latents: how closely that reference run is the engine's. */
  referenceVsEngine?: number;
  /** Sliced W2 to exact samples of the mixture, and the mean log-density per dimension of the samples. */
  swd: number;
  logDensity: number;
}

export interface SamplersBenchResult {
  commit: string;
  machine: ReturnType<typeof machineInfo>;
  model: string;
  setup: Record<string, unknown>;
  rows: Row[];
  /**
   * The bench process's peak RSS (ru_maxrss) at its end: a high-water mark of the whole run (the demo world's build,
   * the references, the exact ODE, every scheduler's runs), not of any one run. Every run shares the one process and
   * the one loaded model, so a per-run figure would be this same mark; per-run memory on SD 1.x's U-Net is what
   * `--arch sd1` measures, each (memory mode, batch) in its own process.
   */
  processPeakRssMiB: number;
  /** Fitted −slope of log error vs log U-Net calls per scheduler (points above `reference.orderFloors`; samplerOrder.ts). */
  convergenceOrder: Record<string, { vsConverged: number | null; vsExact: number | null }>;
  /**
   * The common noise level of `relErrorCommon` (demo world): the smallest-σ timestep every deterministic
   * scheduler's grid reaches at every step count asked for, after the start; null with `reason` when none.
   */
  commonLevel: CommonLevel;
  reference: {
    convergedScheduler: string;
    convergedSteps: number;
    convergedVsExact: number;
    /** Steps of the second converged run whose difference from the first is the vs-converged floor. */
    convergedHalfSteps: number;
    /** The error floors of the order fit, estimated from the references alone (samplerOrder.ts). */
    orderFloors: OrderFloors;
    exactOdeEvaluations: number;
    exactSamplesSwdFloor: number;
    exactSamplesLogDensity: number;
  };
  micro: { scheduler: string; meanMicros: number; rme: number }[];
  files: { json: string; csv: string; html: string };
}

export type CommonLevel =
  | {
      timestep: number;
      sigma: number;
      /** The exact ODE's own error at that σ (tolerance 1e-8 vs 1e-6): the order fit's floor. */
      floor: number;
      /** Fitted order of relErrorCommon vs U-Net calls of the whole run, per scheduler (samplerOrder.ts). */
      order: Record<string, number | null>;
      /** The same of relErrorCommonDenoised (floor: the exact reference's own error after D, from two tolerances). */
      orderDenoised: Record<string, number | null>;
      floorDenoised: number;
      /** Runs left out: DDIM and PNDM step by ⌊1000/N⌋, off the grid unless N divides 1000. */
      skipped: string[];
    }
  | { timestep: null; reason: string };

const norm = (v: ArrayLike<number>): number => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));
function relError(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < ref.length; i++) d += (a[i] - ref[i]) ** 2;
  return Math.sqrt(d) / norm(ref);
}

/** A list flag names each value once: a repeated one would be a duplicate row (or column) of the results and of the order fit. */
function checkOnce(flag: string, values: readonly (string | number)[]): void {
  if (values.length === 0) throw new InvalidArgumentError(`${flag}: expected at least one value, got none`);
  const twice = values.find((v, i) => values.indexOf(v) !== i);
  if (twice !== undefined) throw new InvalidArgumentError(`${flag}: ${twice} is given twice (${values.join(',')}); give each value once`);
}

/**
 * The converged solution is the reference of the "vs converged" errors, and the floor of their order fit is its own
 * difference from a run at ⌈N/2⌉ steps: both must be finer than every run measured, so N ≥ 2 × the largest step count.
 */
function checkConvergedSteps(converged: number, steps: readonly number[]): void {
  const finest = Math.max(...steps);
  if (converged < 2 * finest) {
    throw new InvalidArgumentError(
      `--converged-steps ${converged}: the converged reference must be at least twice as fine as the largest --steps (${finest}): expected >= ${2 * finest} ` +
        `(its error floor is its difference from a run at half its steps, which must still be finer than every run measured)`,
    );
  }
}

export async function runSamplersBench(o: SamplersBenchOptions = {}): Promise<SamplersBenchResult> {
  const log = o.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const schedulers = o.schedulers ?? [...SCHEDULERS];
  for (const s of schedulers) if (!SCHEDULERS.includes(s)) throw new InvalidArgumentError(`--schedulers: unknown '${s}' (known: ${SCHEDULERS.join(', ')})`);
  const stepsList = o.steps ?? [5, 10, 20, 50];
  const batches = o.batch ?? [1, 4];
  const nAcc = o.accuracyImages ?? 8;
  const nSamples = o.samples ?? 128;
  const convergedSteps = o.convergedSteps ?? 500;
  checkOnce('--schedulers', schedulers);
  checkOnce('--steps', stepsList);
  checkOnce('--batch', batches);
  checkConvergedSteps(convergedSteps, stepsList);
  const out = resolve(o.out ?? 'bench-samplers');
  await mkdir(out, { recursive: true });

  let modelDir = o.model;
  if (!modelDir) {
    const cache = resolve(o.cacheDir ?? join(os.tmpdir(), 'brainlatent-bench-world'));
    modelDir = join(cache, 'model');
    if (!existsSync(join(modelDir, 'unet', 'model.onnx'))) {
      log(`building the demo world into ${cache} (once)…`);
      await buildDemoWorld({ out: cache, imageSize: 64, sessions: 4, trialsPerSession: 48, testImages: 8 });
    }
  }
  // the demo world's mixture, when the model is one: the exact ground truth
  const mix = await readMixture(modelDir).catch(() => null);
  if (!mix) log(`${modelDir} is not a demo world: cost and accuracy against the converged solution only (no exact ground truth)`);
  const sd = await Diffusion.load(modelDir, { intraOpThreads: o.threads ?? 1 });
  try {
    const side = mix ? Math.round(Math.sqrt(mix.d / 4)) : (o.latentSize ?? 8);
    const [C, H, W] = [4, side, side];
    const d = C * H * W;
    const textDim = sd.info.condDim > 0 ? sd.info.condDim : 768;
    // Conditioning: by default none (c = 0), so the demo world's target is its whole catalogue (912-way
    // mixture, equal weights) and the trajectories must choose a component — the hard part of the ODE.
    const c1: Tensor =
      o.prompt !== undefined && sd.tokenizer
        ? await sd.encodeText([o.prompt])
        : { data: new Float32Array(77 * textDim), shape: [1, 77, textDim] };
    const w = mix ? mixtureWeights(mix, c1.data, 77) : new Float64Array(0);
    const rows = (k: number): Tensor => {
      const data = new Float32Array(k * c1.data.length);
      for (let i = 0; i < k; i++) data.set(c1.data, i * c1.data.length);
      return { data, shape: [k, 77, textDim] };
    };
    const zeros = (k: number): Tensor => ({ data: new Float32Array(k * d), shape: [k, C, H, W] });
    const schedule: ScheduleConfig = { ...sd.schedule, timestepSpacing: 'trailing', setAlphaToOne: true };
    const sdT = (await Diffusion.load(modelDir, { intraOpThreads: o.threads ?? 1, schedule }));
    const base = { strength: 1, guidance: 1, seeds: 1 };
    try {
      // the start every run shares: x at t = 999 is σ(999)·n in σ-space
      const ac = nativeSync((b) => b.sdAlphasCumprod(schedule, 'ddim'));
      const sigmaMax = Math.sqrt((1 - ac[999]) / ac[999]);
      const sigma0 = Math.sqrt((1 - ac[0]) / ac[0]);
      if (mix) log(`mixture: ${mix.K} components of dimension ${d}, s = ${mix.s}, β = ${mix.beta}; σ from ${sigmaMax.toFixed(3)} to ${sigma0.toFixed(4)}`);

      // ---- references on the accuracy set
      const zA = zeros(nAcc);
      const cA = rows(nAcc);
      const conv = await sdT.img2img({ ...base, z: zA, c: cA, scheduler: 'unipc', steps: convergedSteps, batchSize: nAcc });
      const { philoxNormal } = await import('../sd/philox.js');
      let odeEvals = 0;
      const starts = Array.from({ length: mix ? nAcc : 0 }, (_, i) => Float64Array.from(philoxNormal(1, i, 0, 0, d)).map((v) => v * sigmaMax));
      // The exact probability-flow ODE from σ(999) down to σ_end, then the final denoising step every
      // scheduler ends with (x̂0 = D(x, σ_end)): cached per σ_end.
      const exactCache = new Map<number, Float64Array>();
      const exactTo = (sigmaEnd: number): Float64Array => {
        const hit = exactCache.get(sigmaEnd);
        if (hit) return hit;
        const outA = new Float64Array(nAcc * d);
        starts.forEach((n0, i) => {
          const r = probabilityFlow(mix as NonNullable<typeof mix>, w, n0, sigmaMax, sigmaEnd, EXACT_TOL);
          odeEvals += r.evaluations;
          outA.set(posteriorMean(mix as NonNullable<typeof mix>, w, r.x, sigmaEnd), i * d);
        });
        exactCache.set(sigmaEnd, outA);
        return outA;
      };
      const exact = mix ? exactTo(sigma0) : new Float64Array(0);
      const convVsExact = mix ? relError(conv.latents.data, exact) : Number.NaN;
      if (mix) log(`converged (unipc, ${convergedSteps} steps) vs exact probability-flow ODE: relative error ${convVsExact.toExponential(2)}`);
      // ---- the floors of the order fit, from the references alone (samplerOrder.ts)
      const halfSteps = Math.max(1, Math.ceil(convergedSteps / 2));
      const convHalf = await sdT.img2img({ ...base, z: zA, c: cA, scheduler: 'unipc', steps: halfSteps, batchSize: nAcc });
      // the exact reference's own error: the same ODE (to σ(0), then the final denoising step) at a 100× looser tolerance
      let exactLoose: Float64Array | null = null;
      if (mix) {
        exactLoose = new Float64Array(nAcc * d);
        for (let i = 0; i < nAcc; i++) {
          const r = probabilityFlow(mix, w, starts[i], sigmaMax, sigma0, EXACT_TOL * 100);
          odeEvals += r.evaluations;
          exactLoose.set(posteriorMean(mix, w, r.x, sigma0), i * d);
        }
      }
      const floors: OrderFloors = {
        vsConverged: relError(convHalf.latents.data, conv.latents.data),
        vsExact: exactLoose ? relError(exactLoose, exact) : null,
      };
      log(
        `order-fit floors: vs converged ${floors.vsConverged.toExponential(2)} (unipc ${convergedSteps} vs ${halfSteps} steps)` +
          (floors.vsExact === null ? '' : `, vs exact ${floors.vsExact.toExponential(2)} (the exact ODE at tolerance ${EXACT_TOL.toExponential(0)} vs ${(EXACT_TOL * 100).toExponential(0)})`) +
          `; points within ×${FLOOR_MARGIN} of a floor are left out of the fit`,
      );

      // ---- the common noise level: the smallest σ every deterministic run's grid reaches (after its start)
      const T = ac.length;
      const deterministic = schedulers.filter((s) => !STOCHASTIC.includes(s));
      const offGrid = (s: SchedulerName, n: number): boolean => (s === 'ddim' || s === 'pndm') && T % n !== 0;
      const grids = deterministic.flatMap((s) => stepsList.filter((n) => !offGrid(s, n)).map((n) => sdT.plan({ ...base, scheduler: s, steps: n }).timesteps));
      const tCommon = mix && grids.length ? commonNoiseLevel(grids) : null;
      let common: CommonLevel;
      const exactState = new Map<number, Float64Array>();
      if (!mix) common = { timestep: null, reason: 'not a demo world (no exact ODE)' };
      else if (!deterministic.length) common = { timestep: null, reason: 'no deterministic scheduler' };
      else if (tCommon === null) common = { timestep: null, reason: `the step counts ${stepsList.join(', ')} share no timestep after the start` };
      else {
        const sigmaC = sdT.plan({ ...base, scheduler: deterministic[0], steps: stepsList[0] }).runs.find((r) => r.timestep === tCommon)?.sigma ?? Math.sqrt((1 - ac[tCommon]) / ac[tCommon]);
        // the exact ODE's state at σ_common, at the bench's tolerance and 100× looser (the fit's floor)
        for (const tol of [EXACT_TOL, EXACT_TOL * 100]) {
          const st = new Float64Array(nAcc * d);
          starts.forEach((n0, i) => {
            const r = probabilityFlow(mix, w, n0, sigmaMax, sigmaC, tol);
            odeEvals += r.evaluations;
            st.set(r.x, i * d);
          });
          exactState.set(tol, st);
        }
        const skipped = deterministic.flatMap((s) => stepsList.filter((n) => offGrid(s, n)).map((n) => `${s} ${n}`));
        const denoise = (x: Float64Array): Float64Array => {
          const o = new Float64Array(x.length);
          for (let i = 0; i < x.length / d; i++) o.set(posteriorMean(mix, w, x.subarray(i * d, (i + 1) * d), sigmaC), i * d);
          return o;
        };
        exactState.set(-1, denoise(exactState.get(EXACT_TOL) as Float64Array));
        common = {
          timestep: tCommon,
          sigma: sigmaC,
          floor: relError(exactState.get(EXACT_TOL * 100) as Float64Array, exactState.get(EXACT_TOL) as Float64Array),
          order: {},
          orderDenoised: {},
          floorDenoised: relError(denoise(exactState.get(EXACT_TOL * 100) as Float64Array), exactState.get(-1) as Float64Array),
          skipped,
        };
        log(
          `common noise level: t = ${tCommon} (σ = ${sigmaC.toFixed(4)}), the smallest σ on every grid of ${stepsList.join(', ')} steps; ` +
            `each deterministic scheduler's state there vs the exact ODE to that σ (float64 reference schedulers on the exact denoiser), floor ${common.floor.toExponential(2)}` +
            (skipped.length ? `; left out (DDIM/PNDM off the grid when N does not divide ${T}): ${skipped.join(', ')}` : ''),
        );
      }
      if (common.timestep === null) log(`common-noise-level measure skipped: ${common.reason}`);

      // ---- exact samples: the distribution score's reference and floor
      const trueA = mix ? exactSamples(mix, w, nSamples, 1234) : new Float64Array(0);
      const trueB = mix ? exactSamples(mix, w, nSamples, 4321) : new Float64Array(0);
      const swdFloor = mix ? slicedWasserstein(trueA, trueB, d) : Number.NaN;
      let llTrue = 0;
      for (let i = 0; mix && i < nSamples; i++) llTrue += logDensityPerDim(mix, w, trueA.subarray(i * d, (i + 1) * d)) / nSamples;
      if (mix) log(`exact samples: sliced W2 between two sets ${swdFloor.toExponential(3)} (the floor at ${nSamples} samples), log-density ${llTrue.toFixed(3)}/dim`);

      const result: Row[] = [];
      for (const scheduler of schedulers) {
        for (const steps of stepsList) {
          const plan = sdT.plan({ ...base, scheduler, steps });
          const row: Row = { scheduler, steps, unetCallsPerImage: plan.runs.length, cost: [], swd: 0, logDensity: 0 };
          // cost
          for (const b of batches) {
            const r = await sdT.img2img({ ...base, z: zeros(b), c: rows(b), scheduler, steps, batchSize: b });
            const r2 = await sdT.img2img({ ...base, z: zeros(b), c: rows(b), scheduler, steps, batchSize: b });
            const best = r2.stats.loopSeconds < r.stats.loopSeconds ? r2.stats : r.stats;
            row.cost.push({ batch: b, imagesPerSecond: b / best.loopSeconds, overhead: best.loopSeconds / best.unetSeconds });
          }
          // accuracy (deterministic ones: the same path as the references)
          if (!STOCHASTIC.includes(scheduler)) {
            const r = await sdT.img2img({ ...base, z: zA, c: cA, scheduler, steps, batchSize: nAcc });
            row.relErrorConverged = relError(r.latents.data, conv.latents.data);
            if (mix) {
              row.relErrorExact = relError(r.latents.data, exactTo(plan.runs[plan.runs.length - 1].sigma));
              row.relErrorExactFinal = relError(r.latents.data, exact);
              if (common.timestep !== null && !offGrid(scheduler, steps)) {
                const state = new Float64Array(nAcc * d);
                const den = new Float64Array(nAcc * d);
                const fin = new Float64Array(nAcc * d);
                for (let i = 0; i < nAcc; i++) {
                  const ref = schedulerStateAt(mix, w, referenceScheduler(scheduler, schedule), steps, starts[i].map((v) => v / sigmaMax), common.timestep, common.sigma);
                  state.set(ref.state, i * d);
                  den.set(posteriorMean(mix, w, ref.state, common.sigma), i * d);
                  fin.set(ref.final, i * d);
                }
                row.relErrorCommon = relError(state, exactState.get(EXACT_TOL) as Float64Array);
                row.relErrorCommonDenoised = relError(den, exactState.get(-1) as Float64Array);
                row.referenceVsEngine = relError(fin, r.latents.data);
              }
            }
          }
          // distribution score
          if (mix) {
            const r = await sdT.img2img({ ...base, z: zeros(nSamples), c: rows(nSamples), scheduler, steps, batchSize: Math.min(64, nSamples), seeds: 77 });
            const gen = Float64Array.from(r.latents.data);
            row.swd = slicedWasserstein(gen, trueA, d);
            let ll = 0;
            for (let i = 0; i < nSamples; i++) ll += logDensityPerDim(mix, w, gen.subarray(i * d, (i + 1) * d)) / nSamples;
            row.logDensity = ll;
          } else {
            row.swd = Number.NaN;
            row.logDensity = Number.NaN;
          }
          result.push(row);
          log(
            `${scheduler.padEnd(16)} ${String(steps).padStart(4)} steps ${String(row.unetCallsPerImage).padStart(4)} calls  ` +
              `${row.cost.map((c) => `b${c.batch} ${c.imagesPerSecond.toFixed(1)} img/s ×${c.overhead.toFixed(3)}`).join('  ')}  ` +
              `err conv ${row.relErrorConverged?.toExponential(2) ?? '   n/a  '} exact ${row.relErrorExact?.toExponential(2) ?? '   n/a  '} ${common.timestep === null ? '' : `t=${common.timestep} ${row.relErrorCommon?.toExponential(2) ?? '   n/a  '} x̂0 ${row.relErrorCommonDenoised?.toExponential(2) ?? '   n/a  '} `}σ(0) ${row.relErrorExactFinal?.toExponential(2) ?? '   n/a  '}  ` +
              `SWD ${row.swd.toExponential(2)} logp ${row.logDensity.toFixed(3)}`,
          );
        }
      }
      const order = measuredOrders(result, schedulers, floors);
      const micro: SamplersBenchResult['micro'] = [];
      log(`measured order (vs the exact ODE between the same noise levels; vs the converged solution): ${Object.entries(order).map(([k, v]) => `${k} ${v.vsExact?.toFixed(2) ?? '—'}/${v.vsConverged?.toFixed(2) ?? '—'}`).join(', ')}`);
      if (common.timestep !== null) {
        common.order = commonLevelOrders(result, schedulers, common.floor);
        common.orderDenoised = commonLevelOrders(
          result.map((x) => ({ ...x, relErrorCommon: x.relErrorCommonDenoised })),
          schedulers,
          common.floorDenoised,
        );
        log(
          `measured order at the common noise level t = ${common.timestep} (σ = ${common.sigma.toFixed(4)}; the state / its x̂0): ` +
            Object.keys(common.order).map((k) => `${k} ${common.order[k]?.toFixed(2) ?? '—'}/${common.orderDenoised[k]?.toFixed(2) ?? '—'}`).join(', '),
        );
        const worst = Math.max(...result.map((x) => x.referenceVsEngine ?? 0));
        log(`reference schedulers vs the engine, final latents: largest relative difference ${worst.toExponential(2)}`);
      }
      if (o.micro !== false && !(await loadBenchmark())) {
        log(`fused-step micro-benchmarks skipped: ${MISSING_BENCHMARK}`);
      } else if (o.micro !== false) {
        for (const s of schedulers) {
          const probe = nativeSync((b) => b.sdFusedStepProbe(4 * 64 * 64, 1, 2, s));
          const m = await microBench(s, () => probe.step(), 1);
          micro.push({ scheduler: s, meanMicros: m.meanMicros, rme: m.rme });
        }
        log(`fused step, 4×64×64 with guidance: ${micro.map((m) => `${m.scheduler} ${m.meanMicros.toFixed(1)} µs`).join(', ')}`);
      }
      const files = { json: join(out, 'samplers.json'), csv: join(out, 'samplers.csv'), html: join(out, 'samplers.html') };
      const res: SamplersBenchResult = {
        commit: gitCommit(),
        machine: machineInfo(),
        model: modelDir,
        setup: {
          start: `z = 0, strength 1, trailing spacing (t = 999 → σ = 0), set_alpha_to_one true, guidance 1, ${o.prompt === undefined ? 'no conditioning (c = 0: the whole catalogue, equal weights)' : `caption "${o.prompt}"`}`,
          accuracyImages: nAcc,
          samples: nSamples,
          steps: stepsList,
          batches,
          threads: o.threads ?? 1,
        },
        rows: result,
        processPeakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
        convergenceOrder: order,
        commonLevel: common,
        reference: {
          convergedScheduler: 'unipc',
          convergedSteps,
          convergedVsExact: convVsExact,
          convergedHalfSteps: halfSteps,
          orderFloors: floors,
          exactOdeEvaluations: odeEvals,
          exactSamplesSwdFloor: swdFloor,
          exactSamplesLogDensity: llTrue,
        },
        micro,
        files,
      };
      await writeFileAtomic(files.json, `${JSON.stringify(res, null, 2)}\n`);
      await writeFileAtomic(files.csv, toCsv(result));
      await writeFileAtomic(files.html, await toHtml(res));
      log(`peak RSS of the bench process: ${res.processPeakRssMiB} MiB (the whole run's high-water mark, not per run)`);
      const record = appendBenchRecord('samplers', { ...res, files: undefined });
      log(`wrote ${files.json}, ${files.csv}, ${files.html}; record appended to ${record}`);
      return res;
    } finally {
      sdT.dispose();
    }
  } finally {
    sd.dispose();
  }
}

function toCsv(rows: Row[]): string {
  const batches = rows[0]?.cost.map((c) => c.batch) ?? [];
  const head = ['scheduler', 'steps', 'unet_calls_per_image', ...batches.flatMap((b) => [`images_per_s_b${b}`, `overhead_b${b}`]), 'rel_error_converged', 'rel_error_exact_same_ends', 'rel_error_exact_to_sigma0', 'rel_error_exact_common_level', 'rel_error_exact_common_level_denoised', 'reference_vs_engine', 'sliced_w2', 'log_density_per_dim'];
  const lines = rows.map((r) =>
    [
      r.scheduler,
      r.steps,
      r.unetCallsPerImage,
      ...r.cost.flatMap((c) => [c.imagesPerSecond.toFixed(3), c.overhead.toFixed(4)]),
      r.relErrorConverged ?? '',
      r.relErrorExact ?? '',
      r.relErrorExactFinal ?? '',
      r.relErrorCommon ?? '',
      r.relErrorCommonDenoised ?? '',
      r.referenceVsEngine ?? '',
      r.swd,
      r.logDensity,
    ].join(','),
  );
  return `${head.join(',')}\n${lines.join('\n')}\n`;
}

const esc = (s: string): string => s.replace(/[&<>"]/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[ch] as string);

async function toHtml(r: SamplersBenchResult): Promise<string> {
  const acc = r.rows.filter((x) => x.relErrorExact !== undefined);
  const errChart = (field: 'relErrorExact' | 'relErrorConverged' | 'relErrorCommon', title: string) =>
    renderVegaLiteSvg({
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title,
      width: 420,
      height: 300,
      data: { values: acc.filter((x) => x[field] !== undefined).map((x) => ({ scheduler: x.scheduler, calls: x.unetCallsPerImage, error: x[field] })) },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'calls', type: 'quantitative', scale: { type: 'log' }, title: 'U-Net calls per image' },
        y: { field: 'error', type: 'quantitative', scale: { type: 'log' }, title: 'relative error of the final latents' },
        color: { field: 'scheduler', type: 'nominal' },
      },
    });
  const distChart = (field: 'swd' | 'logDensity', title: string, yTitle: string, log: boolean) =>
    renderVegaLiteSvg({
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title,
      width: 420,
      height: 300,
      data: { values: r.rows.map((x) => ({ scheduler: x.scheduler, calls: x.unetCallsPerImage, value: x[field] })) },
      layer: [
        {
          mark: { type: 'line', point: true },
          encoding: {
            x: { field: 'calls', type: 'quantitative', scale: { type: 'log' }, title: 'U-Net calls per image' },
            y: { field: 'value', type: 'quantitative', scale: log ? { type: 'log' } : { zero: false }, title: yTitle },
            color: { field: 'scheduler', type: 'nominal' },
          },
        },
        {
          data: { values: [{ ref: field === 'swd' ? r.reference.exactSamplesSwdFloor : r.reference.exactSamplesLogDensity }] },
          mark: { type: 'rule', strokeDash: [4, 4], color: '#444' },
          encoding: { y: { field: 'ref', type: 'quantitative' } },
        },
      ],
    });
  const costChart = renderVegaLiteSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'Cost: images per second (log) vs steps, by batch size',
    width: 420,
    height: 300,
    data: { values: r.rows.flatMap((x) => x.cost.map((c) => ({ scheduler: x.scheduler, steps: x.steps, batch: `batch ${c.batch}`, ips: c.imagesPerSecond }))) },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'steps', type: 'quantitative', scale: { type: 'log' } },
      y: { field: 'ips', type: 'quantitative', scale: { type: 'log' }, title: 'images / s' },
      color: { field: 'scheduler', type: 'nominal' },
      strokeDash: { field: 'batch', type: 'nominal' },
    },
  });
  const cl = r.commonLevel;
  const [e1, e2, d1, d2, c1, e3] = await Promise.all([
    errChart('relErrorExact', 'Error vs the exact probability-flow ODE between the same noise levels (demo world)'),
    errChart('relErrorConverged', `Error vs the converged solution (${r.reference.convergedScheduler}, ${r.reference.convergedSteps} steps)`),
    distChart('swd', 'Sliced W2 to exact samples of the mixture (dashed: two exact sets)', 'sliced Wasserstein-2', true),
    distChart('logDensity', 'Mean log-density of the samples (dashed: exact samples)', 'log p(x0 | c) per dimension', false),
    costChart,
    cl.timestep === null ? Promise.resolve('') : errChart('relErrorCommon', `State at the common noise level t = ${cl.timestep} (σ = ${cl.sigma.toFixed(3)}) vs the exact ODE to it`),
  ]);
  const none = (s: string): string => (STOCHASTIC.includes(s as SchedulerName) ? 'n/a (stochastic)' : '— (no pair of points between the floor and 0.1)');
  const orderRows = Object.entries(r.convergenceOrder)
    .map(
      ([s, v]) =>
        `<tr><td>${esc(s)}</td>${cl.timestep === null ? '' : `<td>${cl.order[s]?.toFixed(2) ?? none(s)}</td><td>${cl.orderDenoised[s]?.toFixed(2) ?? none(s)}</td>`}<td>${v.vsExact?.toFixed(2) ?? none(s)}</td><td>${v.vsConverged?.toFixed(2) ?? none(s)}</td></tr>`,
    )
    .join('');
  const table = r.rows
    .map(
      (x) =>
        `<tr><td>${esc(x.scheduler)}</td><td>${x.steps}</td><td>${x.unetCallsPerImage}</td>${x.cost.map((c) => `<td>${c.imagesPerSecond.toFixed(1)}</td><td>${c.overhead.toFixed(3)}</td>`).join('')}<td>${x.relErrorExact?.toExponential(2) ?? '—'}</td>${cl.timestep === null ? '' : `<td>${x.relErrorCommon?.toExponential(2) ?? '—'}</td><td>${x.relErrorCommonDenoised?.toExponential(2) ?? '—'}</td>`}<td>${x.swd.toExponential(2)}</td><td>${x.logDensity.toFixed(3)}</td></tr>`,
    )
    .join('');
  const bh = r.rows[0]?.cost.map((c) => `<th>img/s b${c.batch}</th><th>overhead b${c.batch}</th>`).join('') ?? '';
  return `<!doctype html><html><head><meta charset="utf-8"><title>brainlatent bench samplers</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td:first-child{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:16px}</style></head><body>
<h1>Samplers on a known ground truth</h1>
<p>The demo world's U-Net is the exact denoiser of a Gaussian mixture, so the true distribution and the exact probability-flow ODE are known. ${esc(String(r.setup.start))}. Commit ${esc(r.commit)}, ${esc(r.machine.cpu)}, load average ${r.machine.loadAverage.join(' / ')}.</p>
<p>Converged solution (${r.reference.convergedScheduler}, ${r.reference.convergedSteps} steps) vs the exact ODE: relative error ${r.reference.convergedVsExact.toExponential(2)} (${r.reference.exactOdeEvaluations} denoiser evaluations in the adaptive solver).</p>
<div class="charts">${e3}${e1}${e2}${d1}${d2}${c1}</div>
<h2>Measured convergence order</h2>
<p>Fitted on consecutive step counts whose errors lie between ${FLOOR_MARGIN}× the floor and ${PRE_ASYMPTOTIC}. Floors, from the references alone: vs converged ${r.reference.orderFloors.vsConverged.toExponential(2)} (unipc ${r.reference.convergedSteps} vs ${r.reference.convergedHalfSteps} steps)${r.reference.orderFloors.vsExact === null ? '' : `, vs exact ${r.reference.orderFloors.vsExact.toExponential(2)} (the exact ODE at two tolerances, 100× apart)`}.</p>
<p>${
    cl.timestep === null
      ? `Common noise level: none (${esc(cl.reason)}).`
      : `At the common noise level t = ${cl.timestep} (σ = ${cl.sigma.toFixed(4)}, the smallest σ every grid of ${esc(String((r.setup.steps as number[]).join(', ')))} steps reaches): each deterministic scheduler's state there against the exact ODE to that σ, with no unrefined last step in it — the clean convergence measure. Computed with the float64 reference schedulers on the exact denoiser (largest final-latent difference from the engine ${Math.max(0, ...r.rows.map((x) => x.referenceVsEngine ?? 0)).toExponential(2)}); floor ${cl.floor.toExponential(2)} (the exact ODE at two tolerances).${cl.skipped.length ? ` Left out (DDIM/PNDM off the grid): ${esc(cl.skipped.join(', '))}.` : ''}`
  }</p>
<table><tr><th>scheduler</th>${cl.timestep === null ? '' : `<th>at t = ${cl.timestep} (state)</th><th>at t = ${cl.timestep} (x̂0)</th>`}<th>vs exact ODE</th><th>vs converged</th></tr>${orderRows}</table>
<h2>All runs</h2><table><tr><th>scheduler</th><th>steps</th><th>U-Net calls</th>${bh}<th>rel. error (exact)</th>${cl.timestep === null ? '' : `<th>rel. error at t = ${cl.timestep} (state)</th><th>(x̂0)</th>`}<th>sliced W2</th><th>log p / dim</th></tr>${table}</table>
<p>Peak RSS of the bench process: ${r.processPeakRssMiB} MiB, the high-water mark of the whole run (demo world, references, every run), not of any one run.</p>
<p>Fused step micro-benchmarks (4×64×64, guidance): ${r.micro.map((m) => `${esc(m.scheduler)} ${m.meanMicros.toFixed(1)} µs ±${m.rme.toFixed(1)}%`).join(', ')}.</p>
</body></html>
`;
}
