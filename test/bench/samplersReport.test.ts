/**
 * `bench samplers`' report and record, from their pure builders (no bench run):
 * - the first chart plots the state at the common noise level, but its axis said "the final latents"; the x̂0 series
 *   (relErrorCommonDenoised) that docs/sampler.md says has its chart was not drawn;
 * - each chart gave colours by position among the schedulers it held (lms green in the 7-series charts, pink in the
 *   10-series ones): now one scale over every scheduler;
 * - the sliced-W2 "floor" was one draw of two exact sets (0.678 at 16 samples, beaten by ddpm at 0.45–0.53): now
 *   further exact sets against the reference set, mean ± SD, drawn as a band, with the warnings in the HTML;
 * - `--no-micro` left "Fused step micro-benchmarks (4×64×64, guidance): ." in the HTML;
 * - the record lacked what defines the problem (mixture, latent size, tolerances, seeds, schedulers).
 */
import { describe, expect, it } from 'vitest';

import { sdAlphasCumprod } from '../../ts/demo/world.js';
import { distributionChartSpec, samplersChartSpecs, samplersHtml, SCHEDULER_COLORS } from '../../ts/bench/samplersHtml.js';
import { EXACT_TOL, samplersSetup, type SamplerRow, type SamplersBenchResult } from '../../ts/bench/samplersResult.js';
import { exactSamples, exactSwdFloor, FLOOR_SET_SEED, slicedWasserstein, type Mixture } from '../../ts/bench/samplerWorld.js';
import { SCHEDULERS } from '../../ts/sd/schedulerConfig.js';

const K = 3;
const d = 8;
const mix: Mixture = {
  means: Float64Array.from({ length: K * d }, (_, i) => Math.sin(i * 1.3) * 0.8),
  K,
  d,
  s: 0.2,
  text: new Float64Array(K),
  textDim: 1,
  beta: 0,
  alphasCumprod: sdAlphasCumprod(),
  fractionalTimesteps: 'interpolated',
};
const w = new Float64Array(K).fill(1 / K);

const STOCHASTIC = ['ddpm', 'euler-ancestral', 'dpmpp2m-sde'];
const rows: SamplerRow[] = SCHEDULERS.flatMap((scheduler) =>
  [10, 20, 40].map((steps) => {
    const det = !STOCHASTIC.includes(scheduler);
    const e = 1 / steps;
    return {
      scheduler,
      steps,
      unetCallsPerImage: steps,
      cost: [{ batch: 1, imagesPerSecond: 1000 / steps, overhead: 1.02 }],
      ...(det ? { relErrorConverged: e, relErrorExact: e / 10, relErrorExactFinal: e * 2, relErrorCommon: e / 2, relErrorCommonDenoised: e / 100, referenceVsEngine: 1e-7 } : {}),
      swd: det ? 0.85 : 0.5,
      logDensity: 2,
    };
  }),
);

function result(over: Partial<SamplersBenchResult> = {}): SamplersBenchResult {
  return {
    commit: 'abc1234',
    dirty: true,
    machine: { cpu: 'test cpu', cores: 2, memoryGiB: 8, platform: 'linux x64', node: 'v20', loadAverage: [1, 1, 1] },
    model: '/m',
    setup: samplersSetup({
      schedulers: SCHEDULERS,
      steps: [10, 20, 40],
      batches: [1],
      accuracyImages: 3,
      samples: 16,
      threads: 1,
      latentShape: [4, 8, 8],
      numTrainTimesteps: 1000,
      sigmaMax: 14.615,
      sigmaMin: 0.0292,
      mix: { ...mix, K: 912, d: 256, s: 0.05, beta: 120 },
      referenceSetSeed: 1234,
      floorSetSeeds: [4321, 4322],
    }),
    rows,
    processPeakRssMiB: 300,
    convergenceOrder: Object.fromEntries(SCHEDULERS.map((s) => [s, { vsConverged: null, vsExact: STOCHASTIC.includes(s) ? null : 1 }])),
    commonLevel: {
      timestep: 99,
      sigma: 0.3417,
      floor: 1e-7,
      order: Object.fromEntries(SCHEDULERS.map((s) => [s, 1])),
      orderDenoised: Object.fromEntries(SCHEDULERS.map((s) => [s, 1])),
      floorDenoised: 2e-9,
      skipped: [],
    },
    reference: {
      convergedScheduler: 'unipc',
      convergedSteps: 100,
      convergedVsExact: 0.0145,
      convergedHalfSteps: 50,
      orderFloors: { vsConverged: 4.5e-3, vsExact: 1.5e-8 },
      exactOdeEvaluations: 1000,
      exactSamplesSwd: { mean: 0.68, sd: 0.05, pairs: 8, draws: [0.62, 0.64, 0.66, 0.68, 0.68, 0.7, 0.72, 0.74] },
      exactSamplesLogDensity: 1.545,
    },
    distributionWarnings: ['--samples 16 is below 64: the sliced W2 of so few samples does not rank samplers'],
    micro: [],
    microSkipped: '--no-micro',
    files: { json: 'a', csv: 'b', html: 'c' },
    ...over,
  };
}

type Spec = { title: string | string[]; data: { values: { scheduler?: string; error?: number }[] }; encoding?: Record<string, { title?: string; scale?: unknown; legend?: { values: string[] } }>; layer?: Spec[] };
const colorOf = (s: Spec) => (s.encoding ?? s.layer?.find((l) => l.encoding?.color)?.encoding)?.color;

describe('the samplers report charts', () => {
  const specs = samplersChartSpecs(result()) as Spec[];

  it('labels the common-level chart as the state at t, and draws its x̂0 series in a chart of its own', () => {
    expect(specs[0].title).toBe('State at the common noise level t = 99 (σ = 0.342) vs the exact ODE to it');
    expect(specs[0].encoding?.y.title).toBe('relative error of the state at t = 99');
    expect(specs[1].title).toContain('x̂0 = D(x, σ) at t = 99');
    expect(specs[1].encoding?.y.title).toBe('relative error of x̂0 at t = 99');
    expect(specs[1].data.values.find((v) => v.scheduler === 'euler')?.error).toBe(1 / 10 / 100); // relErrorCommonDenoised at 10 steps
    // the final-latent charts keep their label
    expect(specs[2].encoding?.y.title).toBe('relative error of the final latents');
    expect(specs[3].encoding?.y.title).toBe('relative error of the final latents');
  });

  it('gives each scheduler one colour in every chart, whichever schedulers a chart holds', () => {
    const scales = specs.map((s) => colorOf(s)?.scale);
    expect(scales).toHaveLength(7);
    for (const scale of scales) expect(scale).toEqual({ domain: [...SCHEDULERS], range: SCHEDULERS.map((s) => SCHEDULER_COLORS[s]) });
    expect(new Set(Object.values(SCHEDULER_COLORS)).size).toBe(SCHEDULERS.length);
    // the legend lists what a chart draws: 7 deterministic schedulers in the error charts, all 10 in the others
    expect(colorOf(specs[0])?.legend?.values).toEqual(SCHEDULERS.filter((s) => !STOCHASTIC.includes(s)));
    expect(colorOf(specs[4])?.legend?.values).toEqual([...SCHEDULERS]);
  });

  it("draws the exact sets' sliced W2 as its mean (dashed) and a ± SD band", () => {
    const swd = specs[4];
    expect(swd.title).toEqual(['Sliced W2 to exact samples of the mixture', '(dashed, band: exact sets, mean ± SD of 8)']);
    const layers = swd.layer as unknown as { mark: { type: string }; data?: { values: Record<string, number>[] } }[];
    expect(layers.map((l) => l.mark.type)).toEqual(['rect', 'line', 'rule']);
    expect(layers[0].data?.values[0].lo).toBeCloseTo(0.63, 12);
    expect(layers[0].data?.values[0].hi).toBeCloseTo(0.73, 12);
    expect(layers[2].data?.values[0].ref).toBe(0.68);
    // no band without a spread (the log-density's exact value)
    expect(((distributionChartSpec(rows, 'logDensity', 't', 'y', { mean: 1.5 }, false) as Spec).layer ?? []).length).toBe(2);
  });
});

describe('the samplers HTML', () => {
  it('says the micro-benchmarks were skipped, states the floor as mean ± SD with the warnings, and the setup', async () => {
    const html = await samplersHtml(result());
    expect(html).toContain('Fused step micro-benchmarks: skipped (--no-micro).');
    expect(html).not.toContain('guidance): .');
    expect(html).toContain('8 further exact sets against the same reference set, sliced W2 6.80e-1 ± 5.00e-2');
    expect(html).toContain('<p class="warn">Warning: --samples 16 is below 64');
    expect(html).toContain('latents 4×8×8 (64×64 images); mixture of 912 Gaussians of dimension 256, component SD s = 0.0500, text sharpness β = 120');
    expect(html).toContain('relative tolerance 1e-8 (floors: vs 1e-6)');
    expect(html).toContain('Commit abc1234 (with uncommitted changes)');
    expect(html.match(/<svg/g)).toHaveLength(7);
    // the micro-benchmarks when they ran
    const ran = await samplersHtml(result({ micro: [{ scheduler: 'euler', meanMicros: 104.04, rme: 1.5 }], microSkipped: null, distributionWarnings: [] }));
    expect(ran).toContain('Fused step micro-benchmarks (4×64×64, guidance): euler 104.0 µs ±1.5%.');
    expect(ran).not.toContain('class="warn"');
  }, 60_000);
});

describe('the samplers record', () => {
  it('holds what defines the problem: mixture, latent and image size, schedule, tolerances, seeds, schedulers', () => {
    const s = result().setup;
    expect(s.schedulers).toEqual([...SCHEDULERS]);
    expect(s.mixture).toEqual({ components: 912, dimension: 256, componentSd: 0.05, beta: 120, textDim: 1, fractionalTimesteps: 'interpolated' });
    expect([s.latentShape, s.imageSize, s.numTrainTimesteps, s.sigmaMax, s.sigmaMin]).toEqual([[4, 8, 8], 64, 1000, 14.615, 0.0292]);
    expect(s.exactOde).toEqual({ solver: 'adaptive Dormand–Prince 5(4), float64', rtol: EXACT_TOL, floorRtol: 1e-6 });
    expect(s.seeds).toEqual({ accuracyNoise: 1, samples: 77, exactReferenceSet: 1234, exactFloorSets: [4321, 4322] });
    expect(s.start).toContain('t = 999 → σ = 0');
    // not a demo world: no mixture, ODE, image size or floor sets
    const other = samplersSetup({ ...s, prompt: 'a cat', mix: null, referenceSetSeed: 1234, floorSetSeeds: [4321] });
    expect([other.mixture, other.exactOde, other.imageSize, other.seeds.exactFloorSets, other.prompt]).toEqual([null, null, null, [], 'a cat']);
    expect(other.start).toContain('caption "a cat"');
  });

  it("measures the exact sets' distance as mean ± SD over independent sets against the reference set", () => {
    const ref = exactSamples(mix, w, 16, 1234);
    const f = exactSwdFloor(mix, w, ref, 6);
    expect(f.seeds).toEqual([4321, 4322, 4323, 4324, 4325, 4326]);
    expect(f.draws[0]).toBe(slicedWasserstein(exactSamples(mix, w, 16, FLOOR_SET_SEED), ref, d));
    expect(new Set(f.draws).size).toBe(6);
    const mean = f.draws.reduce((a, v) => a + v, 0) / 6;
    expect(f.mean).toBeCloseTo(mean, 14);
    expect(f.sd).toBeCloseTo(Math.sqrt(f.draws.reduce((a, v) => a + (v - mean) ** 2, 0) / 5), 14);
    expect(f.sd).toBeGreaterThan(0);
    expect(() => exactSwdFloor(mix, w, ref, 1)).toThrow('pairs must be an integer >= 2');
  });
});
