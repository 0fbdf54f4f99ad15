/**
 * `bench samplers`' report and record, from their pure builders (no bench run):
 * - the first chart plots the state at the common noise level, but its axis said "the final latents"; the x̂0 series
 *   (relErrorCommonDenoised) that docs/sampler.md says has its chart was not drawn;
 * - each chart gave colours by position among the schedulers it held (lms green in the 7-series charts, pink in the
 *   10-series ones): now one scale over every scheduler;
 * - the sliced-W2 "floor" was one draw of two exact sets (0.678 at 16 samples, beaten by ddpm at 0.45–0.53): now the
 *   score is against the exact mixture, with a bootstrap SE per point, exact sampling's spread (mean ± SD over exact
 *   sets) drawn as a band, paired differences and the warnings in the HTML;
 * - `--no-micro` left "Fused step micro-benchmarks (4×64×64, guidance): ." in the HTML;
 * - the record lacked what defines the problem (mixture, latent size, tolerances, seeds, schedulers).
 */
import { describe, expect, it } from 'vitest';

import { sdAlphasCumprod } from '../../ts/demo/world.js';
import { distributionChartSpec, errorChartSpec, samplersChartSpecs, samplersCsv, samplersHtml, SCHEDULER_COLORS } from '../../ts/bench/samplersHtml.js';
import { measuredOrders, offGridReason, ORDER_UNIT } from '../../ts/bench/samplerOrder.js';
import { costEntry } from '../../ts/bench/samplerTiming.js';
import { EXACT_TOL, samplersSetup, type SamplerRow, type SamplersBenchResult } from '../../ts/bench/samplersResult.js';
import { pairedSe } from '../../ts/bench/mixtureSlicedW2.js';
import { bestAtEachSteps, DistributionScorer, EXACT_SETS_SEED, pairedComparisons, versusBest, type SetScore } from '../../ts/bench/samplerDistribution.js';
import { exactSamples, type Mixture } from '../../ts/bench/samplerWorld.js';
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
      cost: [costEntry(1, Array.from({ length: 5 }, () => ({ seconds: steps / 1000, unetSeconds: steps / 1000 / 1.02 })))],
      ...(det ? { relErrorConverged: e, relErrorExact: e / 10, relErrorExactFinal: e * 2, relErrorCommon: e / 2, relErrorCommonDenoised: e / 100, referenceVsEngine: 1e-7 } : {}),
      slicedW2: det ? 0.85 : 0.5,
      slicedW2Se: 0.02,
      logDensityPerDim: 2,
      logDensityPerDimSe: 0.01,
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
      exactSetSeeds: [4321, 4322],
      sliceDirectionSeed: 99,
      bootstrapSeed: 2024,
    }),
    rows,
    processPeakRssMiB: 300,
    wallSeconds: 100,
    // the reviewer's record: vs converged, every error below 3× the floor 4.51e-3
    convergenceOrder: measuredOrders(
      rows.map((x) => (x.relErrorConverged === undefined ? x : { ...x, relErrorConverged: x.relErrorConverged / 10 })),
      SCHEDULERS,
      { vsConverged: 4.51e-3, vsExact: 1.5e-8 },
    ),
    orderUnit: ORDER_UNIT,
    commonLevel: {
      timestep: 99,
      sigma: 0.3417,
      floor: 1e-7,
      order: Object.fromEntries(SCHEDULERS.map((s) => [s, 1])),
      orderReason: Object.fromEntries(SCHEDULERS.map((s) => [s, null])),
      orderDenoised: Object.fromEntries(SCHEDULERS.map((s) => [s, 1])),
      orderDenoisedReason: Object.fromEntries(SCHEDULERS.map((s) => [s, null])),
      floorDenoised: 2e-9,
      skipped: [],
    },
    offGrid: { reason: offGridReason(1000), runs: [] },
    reference: {
      convergedScheduler: 'unipc',
      convergedSteps: 100,
      convergedVsExact: 0.0145,
      convergedHalfSteps: 50,
      orderFloors: { vsConverged: 4.51e-3, vsExact: 1.5e-8 },
      exactOdeEvaluations: 1000,
    },
    distribution: {
      score: 'sliced W2 to the exact mixture',
      samples: 16,
      directions: 256,
      bootstrapResamples: 200,
      exactBinsSeconds: 1,
      exactSampling: {
        sets: 8,
        seeds: [4321, 4322, 4323, 4324, 4325, 4326, 4327, 4328],
        slicedW2: { mean: 0.68, sd: 0.05, min: 0.62, max: 0.74, draws: [0.62, 0.64, 0.66, 0.68, 0.68, 0.7, 0.72, 0.74] },
        bootstrapSeFirstSet: 0.06,
        logDensityPerDim: { mean: 1.545, sd: 0.01 },
      },
      paired: [
        { steps: 10, scheduler: 'euler', versus: 'ddpm', versusSteps: 10, difference: 0.35, se: 0.03 },
        { steps: 10, scheduler: 'unipc', versus: 'ddpm', versusSteps: 10, difference: 0.01, se: 0.02 },
        // not against the best: in the matrix of 10 steps only; across step counts: in the record only
        { steps: 10, scheduler: 'euler', versus: 'unipc', versusSteps: 10, difference: 0.34, se: 0.01 },
        { steps: 20, scheduler: 'euler', versus: 'ddpm', versusSteps: 10, difference: 0.35, se: 0.04 },
        // two runs whose samples agree: identical, not resolved (0 ≥ 2·0 once made it bold, review s43)
        { steps: 10, scheduler: 'ddim', versus: 'ddpm', versusSteps: 10, difference: 0, se: 0 },
      ],
      warnings: ["--samples 16 is below 256: exact sampling's own spread at this size is not small against the gaps between samplers"],
    },
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

  it("draws each score ± its SE, and exact sampling's sliced W2 as its mean (dashed) and a ± SD band", () => {
    const sw = specs[4];
    expect(sw.title).toEqual(['Sliced W2 of 16 samples to the exact mixture (± bootstrap SE)', '(dashed, band: exact sampling, mean ± SD of 8 sets)']);
    const layers = sw.layer as unknown as { mark: { type: string }; data?: { values: Record<string, number>[] } }[];
    expect(layers.map((l) => l.mark.type)).toEqual(['rect', 'line', 'rule', 'rule']);
    expect(layers[0].data?.values[0].lo).toBeCloseTo(0.63, 12);
    expect(layers[0].data?.values[0].hi).toBeCloseTo(0.73, 12);
    expect(layers[3].data?.values[0].ref).toBe(0.68);
    // the error bars: value ± SE per point
    const pt = (sw.data.values as unknown as Record<string, number>[]).find((v) => v.value === 0.85) as Record<string, number>;
    expect([pt.lo, pt.hi]).toEqual([0.85 - 0.02, 0.85 + 0.02]);
    // the log-density chart has the exact sets' band too
    expect(((specs[5].layer ?? []) as unknown as { mark: { type: string } }[]).map((l) => l.mark.type)).toEqual(['rect', 'line', 'rule', 'rule']);
    // no band without a spread
    expect(((distributionChartSpec(rows, 'logDensityPerDim', 't', 'y', { mean: 1.5 }, false) as Spec).layer ?? []).length).toBe(3);
  });
});

describe('the samplers HTML', () => {
  it('says the micro-benchmarks were skipped, states the floor as mean ± SD with the warnings, and the setup', async () => {
    const html = await samplersHtml(result());
    expect(html).toContain('Fused step micro-benchmarks: skipped (--no-micro).');
    expect(html).not.toContain('guidance): .');
    expect(html).toContain('What exact sampling scores at 16 samples (8 exact sets): sliced W2 6.80e-1 ± 5.00e-2 (mean ± SD, range 6.20e-1–7.40e-1; the bootstrap SE of one exact set is 6.00e-2)');
    // against the best at each step count (ddpm at 10: the first of the lowest scores), the other pairs folded away
    expect(html).toContain(
      '<tr><td>10</td><td>ddpm</td><td>ddim +0.0e+0 ± 0.0e+0 (identical), euler +3.5e-1 ± 3.0e-2, unipc +1.0e-2 ± 2.0e-2 (not resolved)</td></tr>',
    );
    expect(html).toContain('Every pair of runs, across step counts too (5 in all), is in samplers.json, distribution.paired.');
    const m10 = html.slice(html.indexOf('<p>10 steps</p>'), html.indexOf('<p>20 steps</p>'));
    const row10 = (s: string) => m10.slice(m10.indexOf(`<tr><td>${s}</td>`)).split('</tr>')[0];
    // columns in the runs' order: ddim, pndm, ddpm, lms, euler, euler-ancestral, heun, dpmpp2m, dpmpp2m-sde, unipc
    expect(row10('euler')).toBe('<tr><td>euler</td><td></td><td></td><td><b>+3.5e-1 ± 3.0e-2</b></td><td></td><td>—</td><td></td><td></td><td></td><td></td><td><b>+3.4e-1 ± 1.0e-2</b></td>');
    expect(row10('unipc')).toContain('<td><b>-3.4e-1 ± 1.0e-2</b></td><td></td><td></td><td></td><td></td><td>—</td>');
    expect(row10('ddpm')).toContain('<td>-1.0e-2 ± 2.0e-2</td>');
    expect(row10('ddim')).toBe('<tr><td>ddim</td><td>—</td><td></td><td>+0.0e+0 ± 0.0e+0 (identical)</td><td></td><td></td><td></td><td></td><td></td><td></td><td></td>');
    expect(html).toContain('<td>8.50e-1 ± 2.0e-2</td>');
    expect(html).toContain('<p class="warn">Warning: --samples 16 is below 256');
    expect(html).toContain('latents 4×8×8 (64×64 images); mixture of 912 Gaussians of dimension 256, component SD s = 0.0500, text sharpness β = 120');
    expect(html).toContain('relative tolerance 1e-8 (floors: vs 1e-6)');
    expect(html).toContain('Commit abc1234 (with uncommitted changes)');
    expect(html.match(/<svg/g)).toHaveLength(7);
    // the micro-benchmarks when they ran
    const base = result();
    const ran = await samplersHtml(result({ micro: [{ scheduler: 'euler', meanMicros: 104.04, rme: 1.5 }], microSkipped: null, distribution: { ...(base.distribution as NonNullable<SamplersBenchResult['distribution']>), warnings: [] } }));
    expect(ran).toContain('Fused step micro-benchmarks (4×64×64, guidance): euler 104.0 µs ±1.5%.');
    expect(ran).not.toContain('class="warn"');
  }, 60_000);

  it('says why an order is missing (it printed a bare "—" for every scheduler) and what the orders are per', async () => {
    const html = await samplersHtml(result());
    const why = 'every error below 3× the converged floor 4.51e-3: raise --converged-steps (a lower floor) or add smaller --steps';
    // each deterministic scheduler's vs-converged cell; the stochastic ones are n/a
    expect(html).toContain(`<tr><td>euler</td><td>1.00</td><td>1.00</td><td>1.00</td><td>— (${why})</td></tr>`);
    expect(html).toContain('<tr><td>ddpm</td><td>1.00</td><td>1.00</td><td>n/a (stochastic)</td><td>n/a (stochastic)</td></tr>');
    expect(html).toContain('<th>scheduler (order per U-Net call)</th>');
    expect(html).toContain('Order per U-Net call: −slope of log error vs log U-Net calls per image (not per step: PNDM makes N + 1 calls, Heun 2N − 1)');
    // the record's reasons (JSON)
    const r = result();
    expect(r.convergenceOrder.euler.reason).toEqual({ vsConverged: why, vsExact: null });
    expect(r.convergenceOrder.ddpm.reason).toEqual({ vsConverged: 'stochastic (no accuracy runs)', vsExact: 'stochastic (no accuracy runs)' });
    expect(r.orderUnit).toBe(ORDER_UNIT);
  });

  it('names the runs off their grid, leaves them out of the error charts and marks them in the table and the CSV', async () => {
    // DDIM at 14 steps steps by 71 where the grid moves by 71.4: its errors are not the discretisation's
    const ddim14: SamplerRow = { scheduler: 'ddim', steps: 14, unetCallsPerImage: 14, offGrid: true, cost: [costEntry(1, [{ seconds: 1 / 70, unetSeconds: 1 / 70 / 1.02 }])], relErrorConverged: 3e-2, relErrorExact: 3.98e-2, relErrorExactFinal: 1e-2 };
    const withOff = [...rows, ddim14];
    const r = result({ rows: withOff, offGrid: { reason: offGridReason(1000), runs: ['ddim 14'] } });
    const html = await samplersHtml(r);
    expect(html).toContain(`<p class="warn">Left out of every order fit and of the error charts: ddim 14 (${offGridReason(1000)}).`);
    expect(html).toContain('<td>3.98e-2 (off the grid)</td>');
    expect(offGridReason(1000)).toBe('DDIM/PNDM off the grid: they step by ⌊1000/N⌋ while the trailing grid moves by 1000/N, unless N divides 1000');
    for (const field of ['relErrorExact', 'relErrorConverged'] as const) {
      const values = (errorChartSpec(withOff, field, 't', 'y') as Spec).data.values as unknown as { scheduler: string; calls: number }[];
      expect(values.filter((v) => v.scheduler === 'ddim').map((v) => v.calls)).toEqual([10, 20, 40]);
    }
    const csv = samplersCsv(withOff).trim().split('\n');
    expect(csv[0].split(',').at(-1)).toBe('off_grid');
    expect(csv.at(-1)?.split(',').at(-1)).toBe('true');
    expect(csv[1].split(',').at(-1)).toBe('false');
  }, 60_000);
});

describe('the samplers record', () => {
  it('holds what defines the problem: mixture, latent and image size, schedule, tolerances, seeds, schedulers', () => {
    const s = result().setup;
    expect(s.schedulers).toEqual([...SCHEDULERS]);
    expect(s.mixture).toEqual({ components: 912, dimension: 256, componentSd: 0.05, beta: 120, textDim: 1, fractionalTimesteps: 'interpolated' });
    expect([s.latentShape, s.imageSize, s.numTrainTimesteps, s.sigmaMax, s.sigmaMin]).toEqual([[4, 8, 8], 64, 1000, 14.615, 0.0292]);
    expect(s.exactOde).toEqual({ solver: 'adaptive Dormand–Prince 5(4), float64', rtol: EXACT_TOL, floorRtol: 1e-6 });
    expect(s.seeds).toEqual({ accuracyNoise: 1, samples: 77, exactSets: [4321, 4322], sliceDirections: 99, bootstrap: 2024 });
    expect(s.start).toContain('t = 999 → σ = 0');
    // not a demo world: no mixture, ODE, image size or floor sets
    const other = samplersSetup({ ...s, prompt: 'a cat', mix: null, exactSetSeeds: [4321], sliceDirectionSeed: 99, bootstrapSeed: 2024 });
    expect([other.mixture, other.exactOde, other.imageSize, other.seeds, other.prompt]).toEqual([null, null, null, { accuracyNoise: 1, samples: 77, exactSets: [], sliceDirections: null, bootstrap: null }, 'a cat']);
    expect(other.start).toContain('caption "a cat"');
  });

  it('measures exact sampling as mean ± SD over exact sets, each scored as a sampler is', () => {
    const sc = new DistributionScorer(mix, w, 16, { directions: 32 });
    const e = sc.exactSampling(6);
    expect(e.seeds).toEqual([4321, 4322, 4323, 4324, 4325, 4326]);
    expect(e.slicedW2.draws[0]).toBe(sc.score(exactSamples(mix, w, 16, EXACT_SETS_SEED)).slicedW2);
    expect(new Set(e.slicedW2.draws).size).toBe(6);
    const mean = e.slicedW2.draws.reduce((a, v) => a + v, 0) / 6;
    expect(e.slicedW2.mean).toBeCloseTo(mean, 14);
    expect(e.slicedW2.sd).toBeCloseTo(Math.sqrt(e.slicedW2.draws.reduce((a, v) => a + (v - mean) ** 2, 0) / 5), 14);
    expect([e.slicedW2.min, e.slicedW2.max]).toEqual([Math.min(...e.slicedW2.draws), Math.max(...e.slicedW2.draws)]);
    expect(e.bootstrapSeFirstSet).toBe(sc.score(exactSamples(mix, w, 16, EXACT_SETS_SEED)).slicedW2Se);
    expect(() => sc.exactSampling(1)).toThrow('sets must be an integer >= 2');
    // paired comparisons: against the best at each step count, the SE from the replicates' differences
    const a = sc.score(exactSamples(mix, w, 16, 1));
    const b = sc.score(exactSamples(mix, w, 16, 1).map((v) => v + 0.3));
    const p = pairedComparisons([
      { scheduler: 'x', steps: 5, score: b },
      { scheduler: 'y', steps: 5, score: a },
    ]);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatchObject({ steps: 5, scheduler: 'x', versus: 'y', versusSteps: 5, difference: b.slicedW2 - a.slicedW2 });
    const diffs = Array.from(b.replicates, (v, i) => v - a.replicates[i]);
    const dm = diffs.reduce((s, v) => s + v, 0) / diffs.length;
    expect(p[0].se).toBeCloseTo(Math.sqrt(diffs.reduce((s, v) => s + (v - dm) ** 2, 0) / (diffs.length - 1)), 14);
  });

  it('pairs every two runs, across step counts too, higher minus lower; the printed view is each step count against its best', () => {
    const sc = new DistributionScorer(mix, w, 16, { directions: 32 });
    const base = exactSamples(mix, w, 16, 1);
    const shifted = (by: number) => sc.score(base.map((v) => v + by));
    const runs = [
      { scheduler: 'x', steps: 5, score: shifted(0.3) },
      { scheduler: 'y', steps: 5, score: shifted(0) },
      { scheduler: 'z', steps: 5, score: shifted(0) }, // ties y: y, the earlier, is the best and the `versus`
      { scheduler: 'x', steps: 10, score: shifted(0.1) },
      { scheduler: 'y', steps: 10, score: shifted(0.2) },
    ];
    const p = pairedComparisons(runs);
    expect(p).toHaveLength(10); // 5 runs: 5 · 4 / 2
    const key = (q: (typeof p)[number]) => `${q.scheduler}@${q.steps}−${q.versus}@${q.versusSteps}`;
    expect(p.map(key)).toEqual(['x@5−y@5', 'x@5−z@5', 'x@5−x@10', 'x@5−y@10', 'z@5−y@5', 'x@10−y@5', 'y@10−y@5', 'x@10−z@5', 'y@10−z@5', 'y@10−x@10']);
    for (const q of p) {
      const hi = runs.find((r) => r.scheduler === q.scheduler && r.steps === q.steps)?.score as SetScore;
      const lo = runs.find((r) => r.scheduler === q.versus && r.steps === q.versusSteps)?.score as SetScore;
      expect(q.difference).toBe(hi.slicedW2 - lo.slicedW2);
      expect(q.difference).toBeGreaterThanOrEqual(0);
      expect(q.se).toBe(pairedSe(hi.replicates, lo.replicates));
    }
    // across step counts: x at 10 against y at 5, paired as any two runs are
    expect(p.find((q) => key(q) === 'x@10−y@5')?.se).toBeGreaterThan(0);
    const rows = runs.map((r) => ({ scheduler: r.scheduler, steps: r.steps, slicedW2: r.score.slicedW2 }));
    expect([...bestAtEachSteps(rows)]).toEqual([[5, 'y'], [10, 'x']]);
    expect(versusBest(p, rows).map(key)).toEqual(['x@5−y@5', 'z@5−y@5', 'y@10−x@10']);
  });
});
