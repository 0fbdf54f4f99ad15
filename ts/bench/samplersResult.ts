/**
 * What `bench samplers` records (samplers.json, the samplers.jsonl line): its rows, references and the setup that
 * defines the problem — enough to rerun it or to tell two records apart without the console output.
 */
import type { machineInfo } from './benchRecord.js';
import type { MeasuredOrder, OrderFloors } from './samplerOrder.js';
import type { ExactSampling, PairedComparison } from './samplerDistribution.js';
import type { Mixture } from './samplerWorld.js';
import { TIMING_RULE, type CostEntry, type RepeatRule } from './samplerTiming.js';

export interface SamplerRow {
  scheduler: string;
  steps: number;
  unetCallsPerImage: number;
  /**
   * True for a DDIM or PNDM run whose step count does not divide num_train_timesteps (samplerOrder.ts `offGrid`): its
   * sample sits at another noise level than the next call is told, so its errors below are recorded but measure that,
   * not the discretisation; it is left out of every order fit, the error charts and the common noise level
   * (`SamplersBenchResult.offGrid`). Absent otherwise (and in records before this change).
   */
  offGrid?: true;
  /**
   * Cost per batch size: images/s at the median loop time with its interquartile range and the runs timed, the median
   * loop ÷ U-Net time (samplerTiming.ts: repeated to `setup.timing`, every configuration's runs interleaved). Records
   * before this change had the best of two single runs and no spread. (No memory per run: see processPeakRssMiB.)
   */
  cost: CostEntry[];
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
  /**
   * Demo world: the sliced W2 of the `setup.samples` generated latents to the EXACT mixture (no reference sample set)
   * and its bootstrap SE; the mean log-density per dimension of the samples under the mixture and its SE. Absent for
   * another model. (Records before this change had `swd`, against one set of exact samples, and `logDensity`.)
   */
  slicedW2?: number;
  slicedW2Se?: number;
  logDensityPerDim?: number;
  logDensityPerDimSe?: number;
}

export type CommonLevel =
  | {
      timestep: number;
      sigma: number;
      /** The exact ODE's own error at that σ (tolerance 1e-8 vs 1e-6): the order fit's floor. */
      floor: number;
      /** Fitted order of relErrorCommon vs U-Net calls of the whole run, per scheduler (per U-Net call; samplerOrder.ts). */
      order: Record<string, number | null>;
      /** Why each null `order` is null (null where there is an order). Absent in records before this change. */
      orderReason: Record<string, string | null>;
      /** The same of relErrorCommonDenoised (floor: the exact reference's own error after D, from two tolerances). */
      orderDenoised: Record<string, number | null>;
      orderDenoisedReason: Record<string, string | null>;
      floorDenoised: number;
      /** Runs left out: DDIM and PNDM step by ⌊1000/N⌋, off the grid unless N divides 1000. */
      skipped: string[];
    }
  | { timestep: null; reason: string };

/** Relative tolerances of the exact probability-flow ODE (adaptive Dormand–Prince 5(4), float64). */
export const EXACT_TOL = 1e-8;
/** The looser tolerance whose difference from EXACT_TOL is the exact reference's own error (the order fits' floors). */
export const EXACT_TOL_FLOOR = EXACT_TOL * 100;
/** Philox seeds: the accuracy set's noise (image i on stream i, as the engine's `seeds: 1`) and the generated samples'. */
export const ACCURACY_SEED = 1;
export const SAMPLES_SEED = 77;

/** The problem a run solves: everything that changes its numbers besides the code and the machine. */
export interface SamplersSetup {
  start: string;
  /** The caption every run is conditioned on, or null (c = 0). */
  prompt: string | null;
  schedulers: string[];
  steps: number[];
  batches: number[];
  accuracyImages: number;
  samples: number;
  threads: number;
  /** How often each cost configuration is timed (samplerTiming.ts). Absent in records before this change. */
  timing: RepeatRule;
  /** Latents [C, H, W] of every run; the images they stand for (the VAE's factor 8), or null when no world says so. */
  latentShape: [number, number, number];
  imageSize: number | null;
  /** The schedule: num_train_timesteps of the model's scheduler config, the spacing, and σ at its first and last timestep. */
  numTrainTimesteps: number;
  timestepSpacing: 'trailing';
  sigmaMax: number;
  sigmaMin: number;
  /** The demo world's mixture (null for another model): components, dimension, component SD s, text sharpness β. */
  mixture: { components: number; dimension: number; componentSd: number; beta: number; textDim: number; fractionalTimesteps: Mixture['fractionalTimesteps'] } | null;
  /** The exact ODE (demo world only). */
  exactOde: { solver: string; rtol: number; floorRtol: number } | null;
  /**
   * Philox seeds: the accuracy set's noise, the generated samples' noise (sample i of every sampler starts from the same
   * noise), the exact sets of the exact-sampling spread, the slicing directions; the bootstrap's draws (mulberry32).
   */
  seeds: { accuracyNoise: number; samples: number; exactSets: number[]; sliceDirections: number | null; bootstrap: number | null };
}

export interface SamplersSetupInput {
  prompt?: string;
  schedulers: readonly string[];
  steps: readonly number[];
  batches: readonly number[];
  accuracyImages: number;
  samples: number;
  threads: number;
  /** Default TIMING_RULE. */
  timing?: RepeatRule;
  latentShape: [number, number, number];
  numTrainTimesteps: number;
  sigmaMax: number;
  sigmaMin: number;
  mix: Mixture | null;
  exactSetSeeds: number[];
  sliceDirectionSeed: number;
  bootstrapSeed: number;
}

export function samplersSetup(i: SamplersSetupInput): SamplersSetup {
  const m = i.mix;
  return {
    start:
      `z = 0, strength 1, trailing spacing (t = ${i.numTrainTimesteps - 1} → σ = 0), set_alpha_to_one true, guidance 1, ` +
      (i.prompt === undefined ? 'no conditioning (c = 0: the whole catalogue, equal weights)' : `caption "${i.prompt}"`),
    prompt: i.prompt ?? null,
    schedulers: [...i.schedulers],
    steps: [...i.steps],
    batches: [...i.batches],
    accuracyImages: i.accuracyImages,
    samples: i.samples,
    threads: i.threads,
    timing: i.timing ?? TIMING_RULE,
    latentShape: i.latentShape,
    // the demo world's latents are its images' through a VAE of factor 8 (ts/demo/world.ts)
    imageSize: m ? 8 * i.latentShape[1] : null,
    numTrainTimesteps: i.numTrainTimesteps,
    timestepSpacing: 'trailing',
    sigmaMax: i.sigmaMax,
    sigmaMin: i.sigmaMin,
    mixture: m ? { components: m.K, dimension: m.d, componentSd: m.s, beta: m.beta, textDim: m.textDim, fractionalTimesteps: m.fractionalTimesteps } : null,
    exactOde: m ? { solver: 'adaptive Dormand–Prince 5(4), float64', rtol: EXACT_TOL, floorRtol: EXACT_TOL_FLOOR } : null,
    seeds: {
      accuracyNoise: ACCURACY_SEED,
      samples: SAMPLES_SEED,
      exactSets: m ? [...i.exactSetSeeds] : [],
      sliceDirections: m ? i.sliceDirectionSeed : null,
      bootstrap: m ? i.bootstrapSeed : null,
    },
  };
}

/** The distribution scores' reference and error bars (samplerDistribution.ts). */
export interface DistributionBlock {
  /** What the score is. */
  score: string;
  samples: number;
  /** Slicing directions (Philox seed in setup.seeds), bootstrap resamples per SE. */
  directions: number;
  bootstrapResamples: number;
  /** Seconds to build the exact mixture's quantile bins (once per run). */
  exactBinsSeconds: number;
  /** What exact sampling scores at this sample size: the floor a perfect sampler shows, and its spread. */
  exactSampling: ExactSampling;
  /**
   * Every pair of runs (any schedulers, any step counts; n runs give n(n − 1)/2), the higher score minus the lower ±
   * paired SE. The console and the HTML print the pairs against the best at each step count (versusBest). Records
   * before this change held only those, without `versusSteps`.
   */
  paired: PairedComparison[];
  /** Why the scores do not rank samplers, when they do not (samplersOptions.ts distributionWarnings). */
  warnings: string[];
}

export interface SamplersBenchResult {
  commit: string;
  /** Whether the checkout had changes besides bench records (benchRecord.ts gitDirty); null for an installed package. */
  dirty: boolean | null;
  machine: ReturnType<typeof machineInfo>;
  model: string;
  setup: SamplersSetup;
  rows: SamplerRow[];
  /**
   * The bench process's peak RSS (ru_maxrss) at its end: a high-water mark of the whole run (the demo world's build,
   * the references, the exact ODE, every scheduler's runs), not of any one run. Every run shares the one process and
   * the one loaded model, so a per-run figure would be this same mark; per-run memory on SD 1.x's U-Net is what
   * `--arch sd1` measures, each (memory mode, batch) in its own process.
   */
  processPeakRssMiB: number;
  /** Wall time of the whole bench (model load, references, every run, the distribution scores), up to writing its files. */
  wallSeconds: number;
  /**
   * Fitted −slope of log error vs log U-Net calls per image per scheduler (per U-Net call, not per step: `orderUnit`): a
   * least-squares fit on the points above `reference.orderFloors` and below 0.1, up to the smallest error (runs off
   * their grid left out: `offGrid`; samplerOrder.ts), and `reason`, why each null is null. Records before this change
   * had no `reason` and averaged the local slopes of consecutive points, the ones past the smallest error included.
   */
  convergenceOrder: Record<string, MeasuredOrder>;
  /** What every order of the record is per (samplerOrder.ts ORDER_UNIT). Absent in records before this change. */
  orderUnit: string;
  /**
   * The common noise level of `relErrorCommon` (demo world): the smallest-σ timestep every deterministic
   * scheduler's grid reaches at every step count asked for, after the start; null with `reason` when none.
   */
  commonLevel: CommonLevel;
  /**
   * The runs off their timestep grid ("ddim 7", …; rows with `offGrid`), left out of every order fit, the error
   * charts and the common noise level, and why. Records before this change fitted them (DDIM at 3 and 7 steps gave
   * an order of −4.4).
   */
  offGrid: { reason: string; runs: string[] };
  reference: {
    convergedScheduler: string;
    convergedSteps: number;
    convergedVsExact: number;
    /** Steps of the second converged run whose difference from the first is the vs-converged floor. */
    convergedHalfSteps: number;
    /** The error floors of the order fit, estimated from the references alone (samplerOrder.ts). */
    orderFloors: OrderFloors;
    exactOdeEvaluations: number;
  };
  /**
   * The distribution scores' reference and error bars (demo world; null for another model): what exact sampling scores
   * at this sample size, paired differences between samplers, warnings. Records before this change had
   * `reference.exactSamplesSwd`, `reference.exactSamplesLogDensity` and `distributionWarnings` instead.
   */
  distribution: DistributionBlock | null;
  micro: { scheduler: string; meanMicros: number; rme: number }[];
  /** Why there are no micro-benchmarks (`--no-micro`, benchmark.js missing), or null when they ran. */
  microSkipped: string | null;
  files: { json: string; csv: string; html: string };
}
