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

import { buildDemoWorld } from '../demo/world.js';
import { writeFileAtomic } from '../io/atomicWrite.js';
import { Diffusion } from '../sd/Diffusion.js';
import { checkModelFolder } from '../sd/modelLayout.js';
import { nativeSync } from '../native/call.js';
import { readScheduleConfig, SCHEDULERS, SD1_SCHEDULE, type SchedulerName } from '../sd/schedulerConfig.js';
import type { ScheduleConfig } from '../native/samplerTypes.js';
import type { Tensor } from '../sd/tensor.js';
import { loadBenchmark, microBench, MISSING_BENCHMARK } from './microBench.js';
import { appendBenchRecord, gitCommit, gitDirty, machineInfo } from './benchRecord.js';
import { referenceScheduler } from '../sd/referenceSchedulers.js';
import { commonLevelFits, commonNoiseLevel, FLOOR_MARGIN, measuredOrders, missingOrderLines, offGrid, offGridReason, ORDER_UNIT, type OrderFloors } from './samplerOrder.js';
import { checkSamplersOptions, distributionWarnings } from './samplersOptions.js';
import { costEntry, costText, timeInterleaved, TIMING_RULE, type RepeatRule } from './samplerTiming.js';
import { renderSamplersHtml, SAMPLERS_RERUN, samplersCsv } from './samplersHtml.js';
import { missingPartsWarning } from '../report/optionalParts.js';
import {
  ACCURACY_SEED,
  EXACT_TOL,
  EXACT_TOL_FLOOR,
  SAMPLES_SEED,
  samplersSetup,
  type CommonLevel,
  type SamplerRow,
  type SamplersBenchResult,
} from './samplersResult.js';
import { mixtureWeights, posteriorMean, probabilityFlow, readMixture, schedulerStateAt } from './samplerWorld.js';
import { BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, DistributionScorer, pairedComparisons, pairNote, versusBest, type SetScore } from './samplerDistribution.js';
import { SLICE_DIRECTIONS, SLICE_SEED } from './mixtureSlicedW2.js';

export type { CommonLevel, SamplersBenchResult } from './samplersResult.js';

const STOCHASTIC: readonly SchedulerName[] = ['ddpm', 'euler-ancestral', 'dpmpp2m-sde'];

/**
 * Samples per distribution score by default: at 512 exact sampling's sliced W2 varies by about 0.02 (SD) around 0.12
 * on the demo world, so differences of a few hundredths between samplers are resolved (docs/sampler.md).
 */
export const DEFAULT_SAMPLES = 512;

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
  /** How often each cost configuration is timed (default TIMING_RULE: ≥ 5 runs and ≥ 0.2 s). */
  timing?: RepeatRule;
  log?: (line: string) => void;
}

const norm = (v: ArrayLike<number>): number => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));
function relError(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < ref.length; i++) d += (a[i] - ref[i]) ** 2;
  return Math.sqrt(d) / norm(ref);
}

export async function runSamplersBench(o: SamplersBenchOptions = {}): Promise<SamplersBenchResult> {
  const log = o.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const started = performance.now();
  const schedulers = o.schedulers ?? [...SCHEDULERS];
  const stepsList = o.steps ?? [5, 10, 20, 50];
  const batches = o.batch ?? [1, 4];
  const nAcc = o.accuracyImages ?? 8;
  const nSamples = o.samples ?? DEFAULT_SAMPLES;
  const convergedSteps = o.convergedSteps ?? 500;
  // the model (a demo world built into the cache when absent, with SD 1.5's scheduler config): its schedule's
  // num_train_timesteps bounds the step counts, checked before anything is built or loaded
  const cache = resolve(o.cacheDir ?? join(os.tmpdir(), 'brainlatent-bench-world'));
  const modelDir = o.model ?? join(cache, 'model');
  const fileSchedule = await readScheduleConfig(modelDir);
  const trainTimesteps = fileSchedule.numTrainTimesteps ?? (SD1_SCHEDULE.numTrainTimesteps as number);
  checkSamplersOptions(
    { schedulers, steps: stepsList, batches, samples: nSamples, convergedSteps },
    trainTimesteps,
    fileSchedule.source ?? join(modelDir, 'scheduler', 'scheduler_config.json'),
  );
  // (a --model folder that is not one: refused before --out is made or anything printed, review s43)
  if (o.model !== undefined) await checkModelFolder(o.model);
  const out = resolve(o.out ?? 'bench-samplers');
  await mkdir(out, { recursive: true });

  if (!o.model && !existsSync(join(modelDir, 'unet', 'model.onnx'))) {
    log(`building the demo world into ${cache} (once)…`);
    await buildDemoWorld({ out: cache, imageSize: 64, sessions: 4, trialsPerSession: 48, testImages: 8 });
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
    const base = { strength: 1, guidance: 1, seeds: ACCURACY_SEED };
    try {
      // the start every run shares: x at t = T − 1 (999) is σ(T − 1)·n in σ-space
      const ac = nativeSync((b) => b.sdAlphasCumprod(schedule, 'ddim'));
      const sigmaMax = Math.sqrt((1 - ac[ac.length - 1]) / ac[ac.length - 1]);
      const sigma0 = Math.sqrt((1 - ac[0]) / ac[0]);
      if (mix) log(`mixture: ${mix.K} components of dimension ${d}, s = ${mix.s.toPrecision(3)}, β = ${mix.beta}; σ from ${sigmaMax.toFixed(3)} to ${sigma0.toFixed(4)}`);

      // ---- references on the accuracy set
      const zA = zeros(nAcc);
      const cA = rows(nAcc);
      const conv = await sdT.img2img({ ...base, z: zA, c: cA, scheduler: 'unipc', steps: convergedSteps, batchSize: nAcc });
      const { philoxNormal } = await import('../sd/philox.js');
      let odeEvals = 0;
      const starts = Array.from({ length: mix ? nAcc : 0 }, (_, i) => Float64Array.from(philoxNormal(ACCURACY_SEED, i, 0, 0, d)).map((v) => v * sigmaMax));
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
          const r = probabilityFlow(mix, w, starts[i], sigmaMax, sigma0, EXACT_TOL_FLOOR);
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
          (floors.vsExact === null ? '' : `, vs exact ${floors.vsExact.toExponential(2)} (the exact ODE at tolerance ${EXACT_TOL.toExponential(0)} vs ${EXACT_TOL_FLOOR.toExponential(0)})`) +
          `; points within ×${FLOOR_MARGIN} of a floor are left out of the fit`,
      );

      // ---- runs off their timestep grid (DDIM/PNDM when N does not divide T): left out of every order fit and the common level
      const T = ac.length;
      const isOffGrid = (s: SchedulerName, n: number): boolean => offGrid(s, n, T);
      const offGridRuns = schedulers.flatMap((s) => stepsList.filter((n) => isOffGrid(s, n)).map((n) => `${s} ${n}`));
      const leftOut = offGridRuns.length ? `left out (${offGridReason(T)}): ${offGridRuns.join(', ')}` : '';
      // ---- the common noise level: the smallest σ every deterministic run's grid reaches (after its start)
      const deterministic = schedulers.filter((s) => !STOCHASTIC.includes(s));
      const grids = deterministic.flatMap((s) => stepsList.filter((n) => !isOffGrid(s, n)).map((n) => sdT.plan({ ...base, scheduler: s, steps: n }).timesteps));
      const tCommon = mix && grids.length ? commonNoiseLevel(grids) : null;
      let common: CommonLevel;
      const exactState = new Map<number, Float64Array>();
      if (!mix) common = { timestep: null, reason: 'not a demo world (no exact ODE)' };
      else if (!deterministic.length) common = { timestep: null, reason: 'no deterministic scheduler' };
      else if (tCommon === null) common = { timestep: null, reason: `the step counts ${stepsList.join(', ')} share no timestep after the start` };
      else {
        const sigmaC = sdT.plan({ ...base, scheduler: deterministic[0], steps: stepsList[0] }).runs.find((r) => r.timestep === tCommon)?.sigma ?? Math.sqrt((1 - ac[tCommon]) / ac[tCommon]);
        // the exact ODE's state at σ_common, at the bench's tolerance and 100× looser (the fit's floor)
        for (const tol of [EXACT_TOL, EXACT_TOL_FLOOR]) {
          const st = new Float64Array(nAcc * d);
          starts.forEach((n0, i) => {
            const r = probabilityFlow(mix, w, n0, sigmaMax, sigmaC, tol);
            odeEvals += r.evaluations;
            st.set(r.x, i * d);
          });
          exactState.set(tol, st);
        }
        const skipped = deterministic.flatMap((s) => stepsList.filter((n) => isOffGrid(s, n)).map((n) => `${s} ${n}`));
        const denoise = (x: Float64Array): Float64Array => {
          const o = new Float64Array(x.length);
          for (let i = 0; i < x.length / d; i++) o.set(posteriorMean(mix, w, x.subarray(i * d, (i + 1) * d), sigmaC), i * d);
          return o;
        };
        exactState.set(-1, denoise(exactState.get(EXACT_TOL) as Float64Array));
        common = {
          timestep: tCommon,
          sigma: sigmaC,
          floor: relError(exactState.get(EXACT_TOL_FLOOR) as Float64Array, exactState.get(EXACT_TOL) as Float64Array),
          order: {},
          orderReason: {},
          orderDenoised: {},
          orderDenoisedReason: {},
          floorDenoised: relError(denoise(exactState.get(EXACT_TOL_FLOOR) as Float64Array), exactState.get(-1) as Float64Array),
          skipped,
        };
        log(
          `common noise level: t = ${tCommon} (σ = ${sigmaC.toFixed(4)}), the smallest σ on every grid of ${stepsList.join(', ')} steps; ` +
            `each deterministic scheduler's state there vs the exact ODE to that σ (float64 reference schedulers on the exact denoiser), floor ${common.floor.toExponential(2)}` +
            (skipped.length ? `; ${leftOut}` : ''),
        );
      }
      if (common.timestep === null) log(`common-noise-level measure skipped: ${common.reason}`);

      // ---- the distribution scores' reference: the exact mixture itself (its quantile bins per slicing direction, built
      // once), and what exact sampling scores at this n (exact sets scored the same way): the floor of a perfect sampler
      const scorer = mix ? new DistributionScorer(mix, w, nSamples) : null;
      const exactSpread = scorer ? scorer.exactSampling() : null;
      if (scorer && exactSpread) {
        const e = exactSpread.slicedW2;
        log(
          `exact mixture: quantile bins of ${SLICE_DIRECTIONS} directions for ${nSamples} samples in ${scorer.buildSeconds.toFixed(1)} s; ` +
            `exact sampling at ${nSamples} samples (${exactSpread.sets} sets): sliced W2 ${e.mean.toExponential(3)} ± ${e.sd.toExponential(2)} (mean ± SD; range ${e.min.toExponential(2)}–${e.max.toExponential(2)}; ` +
            `bootstrap SE of one set ${exactSpread.bootstrapSeFirstSet.toExponential(2)}), log-density ${exactSpread.logDensityPerDim.mean.toFixed(3)} ± ${exactSpread.logDensityPerDim.sd.toFixed(3)}/dim`,
        );
      }
      const scores: { scheduler: string; steps: number; score: SetScore }[] = [];

      // ---- cost: every (scheduler, steps, batch) timed in interleaved rounds until each has enough runs and time
      const timing = o.timing ?? TIMING_RULE;
      const costKeys = schedulers.flatMap((scheduler) => stepsList.flatMap((steps) => batches.map((batch) => ({ scheduler, steps, batch }))));
      const inputs = new Map(batches.map((b) => [b, { z: zeros(b), c: rows(b) }]));
      log(
        `timing ${costKeys.length} configurations (scheduler × steps × batch), one run of each per round, each until ≥ ${timing.minRepeats} runs and ≥ ${timing.minSeconds} s ` +
          `(at most ${timing.maxRepeats}): images/s at the median loop time (interquartile range)`,
      );
      const timed = await timeInterleaved(
        costKeys,
        async (k) => {
          const r = await sdT.img2img({ ...base, ...(inputs.get(k.batch) as { z: Tensor; c: Tensor }), scheduler: k.scheduler, steps: k.steps, batchSize: k.batch });
          return { seconds: r.stats.loopSeconds, unetSeconds: r.stats.unetSeconds };
        },
        timing,
      );
      const costOf = (scheduler: SchedulerName, steps: number) =>
        costKeys.filter((k) => k.scheduler === scheduler && k.steps === steps).map((k) => costEntry(k.batch, timed.get(k) ?? []));

      const result: SamplerRow[] = [];
      for (const scheduler of schedulers) {
        for (const steps of stepsList) {
          const plan = sdT.plan({ ...base, scheduler, steps });
          const off = isOffGrid(scheduler, steps);
          const row: SamplerRow = { scheduler, steps, unetCallsPerImage: plan.runs.length, ...(off ? { offGrid: true as const } : {}), cost: costOf(scheduler, steps) };
          // accuracy (deterministic ones: the same path as the references)
          if (!STOCHASTIC.includes(scheduler)) {
            const r = await sdT.img2img({ ...base, z: zA, c: cA, scheduler, steps, batchSize: nAcc });
            row.relErrorConverged = relError(r.latents.data, conv.latents.data);
            if (mix) {
              row.relErrorExact = relError(r.latents.data, exactTo(plan.runs[plan.runs.length - 1].sigma));
              row.relErrorExactFinal = relError(r.latents.data, exact);
              if (common.timestep !== null && !off) {
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
          // distribution score: the same noise seeds for every sampler (sample i shares its noise), the exact mixture
          if (scorer) {
            const r = await sdT.img2img({ ...base, z: zeros(nSamples), c: rows(nSamples), scheduler, steps, batchSize: Math.min(64, nSamples), seeds: SAMPLES_SEED });
            const sc = scorer.score(Float64Array.from(r.latents.data));
            scores.push({ scheduler, steps, score: sc });
            row.slicedW2 = sc.slicedW2;
            row.slicedW2Se = sc.slicedW2Se;
            row.logDensityPerDim = sc.logDensityPerDim;
            row.logDensityPerDimSe = sc.logDensityPerDimSe;
          }
          result.push(row);
          log(
            `${scheduler.padEnd(16)} ${String(steps).padStart(4)} steps ${String(row.unetCallsPerImage).padStart(4)} calls  ` +
              `${row.cost.map((c) => `b${c.batch} ${costText(c)} ×${c.overhead.toFixed(3)}`).join('  ')}  ` +
              `err conv ${row.relErrorConverged?.toExponential(2) ?? '   n/a  '} exact ${row.relErrorExact?.toExponential(2) ?? '   n/a  '} ${common.timestep === null ? '' : `t=${common.timestep} ${row.relErrorCommon?.toExponential(2) ?? '   n/a  '} x̂0 ${row.relErrorCommonDenoised?.toExponential(2) ?? '   n/a  '} `}σ(0) ${row.relErrorExactFinal?.toExponential(2) ?? '   n/a  '}  ` +
              (row.slicedW2 === undefined ? '' : `sliced W2 ${row.slicedW2.toExponential(2)} ± ${row.slicedW2Se?.toExponential(1)} logp ${row.logDensityPerDim?.toFixed(3)}`) +
              (off ? '  [off the grid: left out of the order fits]' : ''),
          );
        }
      }
      const order = measuredOrders(result, schedulers, floors);
      const warnings = exactSpread ? distributionWarnings(nSamples, exactSpread.slicedW2, result) : [];
      for (const line of warnings) log(`warning: ${line}`);
      // every pair of runs goes to the record; the console prints the readable part: each step count against its best
      const paired = pairedComparisons(scores);
      const vsBest = versusBest(paired, result);
      if (vsBest.length) {
        log(
          `sliced W2, paired differences from the best at each step count (score − best ± SE; |difference| < 2 SE does not rank them; ` +
            `every pair of runs, ${paired.length}, is in samplers.json distribution.paired): ` +
            [...new Set(vsBest.map((p) => p.steps))]
              .map((n) => `${n} steps (best ${vsBest.find((p) => p.steps === n)?.versus}): ${vsBest.filter((p) => p.steps === n).map((p) => `${p.scheduler} ${p.difference >= 0 ? '+' : ''}${p.difference.toExponential(1)} ± ${p.se.toExponential(1)}${pairNote(p.difference, p.se)}`).join(', ')}`)
              .join('; '),
        );
      }
      const micro: SamplersBenchResult['micro'] = [];
      let microSkipped: string | null = o.micro === false ? '--no-micro' : null;
      log(
        `measured order ${ORDER_UNIT}; vs the exact ODE between the same noise levels / vs the converged solution: ${Object.entries(order).map(([k, v]) => `${k} ${v.vsExact?.toFixed(2) ?? '—'}/${v.vsConverged?.toFixed(2) ?? '—'}`).join(', ')}` +
          (leftOut ? `; ${leftOut}` : ''),
      );
      const reasons = (f: 'vsExact' | 'vsConverged') => Object.fromEntries(Object.entries(order).map(([k, v]) => [k, v.reason[f]]));
      for (const line of [...missingOrderLines('vs the exact ODE', reasons('vsExact')), ...missingOrderLines('vs converged', reasons('vsConverged'))]) log(`  ${line}`);
      if (common.timestep !== null) {
        const fits = commonLevelFits(result, schedulers, common.floor);
        // (x̂0's on the runs the state's fit used: one error in other units, one order)
        const fitsDenoised = commonLevelFits(
          result.map((x) => ({ ...x, relErrorCommon: x.relErrorCommonDenoised })),
          schedulers,
          common.floorDenoised,
          fits,
        );
        const orders = (f: typeof fits, key: 'order' | 'reason') => Object.fromEntries(Object.entries(f).map(([k, v]) => [k, v[key]]));
        common.order = orders(fits, 'order') as Record<string, number | null>;
        common.orderReason = orders(fits, 'reason') as Record<string, string | null>;
        common.orderDenoised = orders(fitsDenoised, 'order') as Record<string, number | null>;
        common.orderDenoisedReason = orders(fitsDenoised, 'reason') as Record<string, string | null>;
        const cl = common;
        log(
          `measured order per U-Net call at the common noise level t = ${cl.timestep} (σ = ${cl.sigma.toFixed(4)}; the state / its x̂0): ` +
            Object.keys(cl.order).map((k) => `${k} ${cl.order[k]?.toFixed(2) ?? '—'}/${cl.orderDenoised[k]?.toFixed(2) ?? '—'}`).join(', '),
        );
        for (const line of [...missingOrderLines(`at t = ${cl.timestep} (state)`, cl.orderReason), ...missingOrderLines(`at t = ${cl.timestep} (x̂0)`, cl.orderDenoisedReason)]) log(`  ${line}`);
        const worst = Math.max(...result.map((x) => x.referenceVsEngine ?? 0));
        log(`reference schedulers vs the engine, final latents: largest relative difference ${worst.toExponential(2)}`);
      }
      if (o.micro !== false && !(await loadBenchmark())) {
        microSkipped = MISSING_BENCHMARK;
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
        dirty: gitDirty(),
        machine: machineInfo(),
        model: modelDir,
        setup: samplersSetup({
          prompt: o.prompt,
          schedulers,
          steps: stepsList,
          batches,
          accuracyImages: nAcc,
          samples: nSamples,
          threads: o.threads ?? 1,
          timing,
          latentShape: [C, H, W],
          numTrainTimesteps: ac.length,
          sigmaMax,
          sigmaMin: sigma0,
          mix,
          exactSetSeeds: exactSpread?.seeds ?? [],
          sliceDirectionSeed: SLICE_SEED,
          bootstrapSeed: BOOTSTRAP_SEED,
        }),
        rows: result,
        processPeakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
        wallSeconds: (performance.now() - started) / 1000,
        convergenceOrder: order,
        orderUnit: ORDER_UNIT,
        commonLevel: common,
        offGrid: { reason: offGridReason(T), runs: offGridRuns },
        reference: {
          convergedScheduler: 'unipc',
          convergedSteps,
          convergedVsExact: convVsExact,
          convergedHalfSteps: halfSteps,
          orderFloors: floors,
          exactOdeEvaluations: odeEvals,
        },
        distribution:
          scorer && exactSpread
            ? {
                score: 'sliced Wasserstein-2 of the samples to the exact mixture (semi-discrete W2 per direction, √ of the mean W2² over directions)',
                samples: nSamples,
                directions: SLICE_DIRECTIONS,
                bootstrapResamples: BOOTSTRAP_RESAMPLES,
                exactBinsSeconds: scorer.buildSeconds,
                exactSampling: exactSpread,
                paired,
                warnings,
              }
            : null,
        micro,
        microSkipped,
        files,
      };
      await writeFileAtomic(files.json, `${JSON.stringify(res, null, 2)}\n`);
      await writeFileAtomic(files.csv, samplersCsv(result));
      const page = await renderSamplersHtml(res);
      await writeFileAtomic(files.html, page.html);
      if (page.missing) log(`warning: ${missingPartsWarning('samplers.html', 'its charts', page.missing, SAMPLERS_RERUN)}`);
      log(`peak RSS of the bench process: ${res.processPeakRssMiB} MiB (the whole run's high-water mark, not per run); wall time ${res.wallSeconds.toFixed(0)} s`);
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
