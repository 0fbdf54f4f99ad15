/**
 * `bench samplers`' report files: samplers.csv and samplers.html (vega-lite charts rendered to inline SVG; without
 * vega and vega-lite, a note in place of each: ts/report/optionalParts). The
 * chart specs are built by the functions below, so what a chart draws and how it is labelled can be checked
 * without rendering it.
 */
import type { MissingDependencyError } from '../errors.js';
import { chartsOrNotes } from '../report/optionalParts.js';
import { SCHEDULERS } from '../sd/schedulerConfig.js';
import { pairNote, versusBest, type PairedComparison } from './samplerDistribution.js';
import { FLOOR_MARGIN, ORDER_UNIT, PRE_ASYMPTOTIC, STOCHASTIC_REASON } from './samplerOrder.js';
import type { SamplerRow, SamplersBenchResult } from './samplersResult.js';
import type { CostEntry } from './samplerTiming.js';

const STOCHASTIC = ['ddpm', 'euler-ancestral', 'dpmpp2m-sde'];
const SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';

/** One colour per scheduler in every chart (and every report): Tableau 10 in the order of SCHEDULERS. */
export const SCHEDULER_COLORS: Readonly<Record<string, string>> = Object.fromEntries(
  SCHEDULERS.map((s, i) => [s, ['#4c78a8', '#f58518', '#e45756', '#72b7b2', '#54a24b', '#eeca3b', '#b279a2', '#ff9da6', '#9d755d', '#bab0ac'][i]]),
);

/**
 * The colour encoding of the scheduler field: a scale whose domain is every scheduler (so a colour never depends on
 * which schedulers a chart happens to hold), with a legend that lists only the ones drawn.
 */
export function schedulerColor(drawn: readonly string[]): object {
  return {
    field: 'scheduler',
    type: 'nominal',
    scale: { domain: [...SCHEDULERS], range: SCHEDULERS.map((s) => SCHEDULER_COLORS[s]) },
    legend: { values: SCHEDULERS.filter((s) => drawn.includes(s)) },
  };
}

const callsAxis = { field: 'calls', type: 'quantitative', scale: { type: 'log' }, title: 'U-Net calls per image' };

type ErrorField = 'relErrorExact' | 'relErrorConverged' | 'relErrorCommon' | 'relErrorCommonDenoised';

/**
 * A log-log error chart of one row field against U-Net calls; `yTitle` says what the error is of. Runs off their grid
 * (`offGrid`) are not drawn: their errors are not the discretisation's (the order section names them).
 */
export function errorChartSpec(rows: readonly SamplerRow[], field: ErrorField, title: string | string[], yTitle: string): object {
  const values = rows.filter((x) => x[field] !== undefined && x.offGrid !== true).map((x) => ({ scheduler: x.scheduler, calls: x.unetCallsPerImage, error: x[field] }));
  return {
    $schema: SCHEMA,
    title,
    width: 420,
    height: 300,
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: callsAxis,
      y: { field: 'error', type: 'quantitative', scale: { type: 'log' }, title: yTitle },
      color: schedulerColor(values.map((v) => v.scheduler)),
    },
  };
}

/**
 * A distribution score against U-Net calls, each point with a ± SE bar, and what exact sampling scores as a dashed rule
 * (with its ± SD band, under the lines).
 */
export function distributionChartSpec(
  rows: readonly SamplerRow[],
  field: 'slicedW2' | 'logDensityPerDim',
  title: string | string[],
  yTitle: string,
  ref: { mean: number; sd?: number },
  log: boolean,
): object {
  const seField = field === 'slicedW2' ? 'slicedW2Se' : 'logDensityPerDimSe';
  const drawn = rows.filter((x) => x[field] !== undefined);
  const band =
    ref.sd !== undefined && ref.sd > 0
      ? [
          {
            data: { values: [{ lo: Math.max(ref.mean - ref.sd, log ? ref.mean / 100 : -Infinity), hi: ref.mean + ref.sd }] },
            mark: { type: 'rect', color: '#444', opacity: 0.12 },
            encoding: { y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } },
          },
        ]
      : [];
  const y = { field: 'value', type: 'quantitative', scale: log ? { type: 'log' } : { zero: false }, title: yTitle };
  return {
    $schema: SCHEMA,
    title,
    width: 420,
    height: 300,
    data: {
      values: drawn.map((x) => {
        const v = x[field] as number;
        const se = x[seField] ?? 0;
        return { scheduler: x.scheduler, calls: x.unetCallsPerImage, value: v, lo: log ? Math.max(v - se, v / 100) : v - se, hi: v + se };
      }),
    },
    layer: [
      ...band,
      {
        mark: { type: 'line', point: true },
        encoding: { x: callsAxis, y, color: schedulerColor(drawn.map((x) => x.scheduler)) },
      },
      {
        mark: { type: 'rule' },
        encoding: { x: callsAxis, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' }, color: schedulerColor(drawn.map((x) => x.scheduler)) },
      },
      {
        data: { values: [{ ref: ref.mean }] },
        mark: { type: 'rule', strokeDash: [4, 4], color: '#444' },
        encoding: { y: { field: 'ref', type: 'quantitative' } },
      },
    ],
  };
}

export function costChartSpec(rows: readonly SamplerRow[]): object {
  return {
    $schema: SCHEMA,
    title: 'Cost: images per second (log) vs steps, by batch size',
    width: 420,
    height: 300,
    data: { values: rows.flatMap((x) => x.cost.map((c) => ({ scheduler: x.scheduler, steps: x.steps, batch: `batch ${c.batch}`, ips: c.imagesPerSecond }))) },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'steps', type: 'quantitative', scale: { type: 'log' } },
      y: { field: 'ips', type: 'quantitative', scale: { type: 'log' }, title: 'images / s' },
      color: schedulerColor(rows.map((x) => x.scheduler)),
      strokeDash: { field: 'batch', type: 'nominal' },
    },
  };
}

/** Every chart of the report, in page order. */
export function samplersChartSpecs(r: SamplersBenchResult): object[] {
  const cl = r.commonLevel;
  const has = (field: ErrorField): boolean => r.rows.some((x) => x[field] !== undefined);
  const finalLatents = 'relative error of the final latents';
  const dist = r.distribution;
  const common =
    cl.timestep === null
      ? []
      : [
          errorChartSpec(r.rows, 'relErrorCommon', `State at the common noise level t = ${cl.timestep} (σ = ${cl.sigma.toFixed(3)}) vs the exact ODE to it`, `relative error of the state at t = ${cl.timestep}`),
          errorChartSpec(
            r.rows,
            'relErrorCommonDenoised',
            `Its x̂0 = D(x, σ) at t = ${cl.timestep} vs the exact ODE's (the run as if it ended there)`,
            `relative error of x̂0 at t = ${cl.timestep}`,
          ),
        ];
  return [
    ...common,
    ...(has('relErrorExact') ? [errorChartSpec(r.rows, 'relErrorExact', 'Error vs the exact probability-flow ODE between the same noise levels (demo world)', finalLatents)] : []),
    ...(has('relErrorConverged')
      ? [errorChartSpec(r.rows, 'relErrorConverged', `Error vs the converged solution (${r.reference.convergedScheduler}, ${r.reference.convergedSteps} steps)`, finalLatents)]
      : []),
    ...(dist
      ? [
          distributionChartSpec(
            r.rows,
            'slicedW2',
            [`Sliced W2 of ${dist.samples} samples to the exact mixture (± bootstrap SE)`, `(dashed, band: exact sampling, mean ± SD of ${dist.exactSampling.sets} sets)`],
            'sliced Wasserstein-2',
            dist.exactSampling.slicedW2,
            true,
          ),
          distributionChartSpec(
            r.rows,
            'logDensityPerDim',
            'Mean log-density of the samples (± SE; dashed, band: exact sampling)',
            'log p(x0 | c) per dimension',
            dist.exactSampling.logDensityPerDim,
            false,
          ),
        ]
      : []),
    costChartSpec(r.rows),
  ];
}

export function samplersCsv(rows: readonly SamplerRow[]): string {
  const batches = rows[0]?.cost.map((c) => c.batch) ?? [];
  const head = ['scheduler', 'steps', 'unet_calls_per_image', ...batches.flatMap((b) => [`images_per_s_b${b}`, `images_per_s_iqr_low_b${b}`, `images_per_s_iqr_high_b${b}`, `runs_b${b}`, `overhead_b${b}`]), 'rel_error_converged', 'rel_error_exact_same_ends', 'rel_error_exact_to_sigma0', 'rel_error_exact_common_level', 'rel_error_exact_common_level_denoised', 'reference_vs_engine', 'sliced_w2_to_exact_mixture', 'sliced_w2_bootstrap_se', 'log_density_per_dim', 'log_density_per_dim_se', 'off_grid'];
  const lines = rows.map((r) =>
    [
      r.scheduler,
      r.steps,
      r.unetCallsPerImage,
      ...r.cost.flatMap((c) => [c.imagesPerSecond.toFixed(3), c.imagesPerSecondIqr?.[0].toFixed(3) ?? '', c.imagesPerSecondIqr?.[1].toFixed(3) ?? '', c.repeats ?? '', c.overhead.toFixed(4)]),
      r.relErrorConverged ?? '',
      r.relErrorExact ?? '',
      r.relErrorExactFinal ?? '',
      r.relErrorCommon ?? '',
      r.relErrorCommonDenoised ?? '',
      r.referenceVsEngine ?? '',
      r.slicedW2 ?? '',
      r.slicedW2Se ?? '',
      r.logDensityPerDim ?? '',
      r.logDensityPerDimSe ?? '',
      r.offGrid === true,
    ].join(','),
  );
  return `${head.join(',')}\n${lines.join('\n')}\n`;
}

/** A cost cell: the median images/s, then its interquartile range and the runs timed (records before them: the figure alone). */
function costCell(c: Pick<CostEntry, 'imagesPerSecond'> & Partial<CostEntry>): string {
  if (!c.imagesPerSecondIqr || c.repeats === undefined) return c.imagesPerSecond.toFixed(1);
  return `${c.imagesPerSecond.toFixed(1)} (${c.imagesPerSecondIqr[0].toFixed(1)}–${c.imagesPerSecondIqr[1].toFixed(1)}, ${c.repeats})`;
}

const esc = (s: string): string => s.replace(/[&<>"]/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[ch] as string);

/** The setup that defines the problem, as one paragraph. */
function setupParagraph(r: SamplersBenchResult): string {
  const s = r.setup;
  const m = s.mixture;
  const ode = s.exactOde;
  return (
    `<p>Problem: latents ${s.latentShape.join('×')}${s.imageSize === null ? '' : ` (${s.imageSize}×${s.imageSize} images)`}` +
    (m ? `; mixture of ${m.components} Gaussians of dimension ${m.dimension}, component SD s = ${m.componentSd.toPrecision(3)}, text sharpness β = ${m.beta}` : '') +
    `; ${s.numTrainTimesteps} training timesteps, σ from ${s.sigmaMax.toFixed(3)} to ${s.sigmaMin.toFixed(4)}` +
    (ode ? `; exact ODE: ${esc(ode.solver)}, relative tolerance ${ode.rtol.toExponential(0)} (floors: vs ${ode.floorRtol.toExponential(0)})` : '') +
    `; schedulers ${esc(s.schedulers.join(', '))}; steps ${s.steps.join(', ')}; ${s.accuracyImages} accuracy images (Philox seed ${s.seeds.accuracyNoise}), ` +
    `${s.samples} samples per distribution score (seed ${s.seeds.samples}); ${s.threads} thread${s.threads === 1 ? '' : 's'}.</p>`
  );
}

function distributionParagraph(r: SamplersBenchResult): string {
  const dist = r.distribution;
  if (!dist) return '';
  const e = dist.exactSampling;
  const warn = dist.warnings.map((w) => `<p class="warn">Warning: ${esc(w)}.</p>`).join('');
  const vsBest = versusBest(dist.paired, r.rows);
  const steps = [...new Set(vsBest.map((p) => p.steps))];
  const paired = steps
    .map((n) => {
      const at = vsBest.filter((p) => p.steps === n);
      return `<tr><td>${n}</td><td>${esc(at[0].versus)}</td><td>${at
        .map((p) => `${esc(p.scheduler)} ${p.difference >= 0 ? '+' : ''}${p.difference.toExponential(1)} ± ${p.se.toExponential(1)}${pairNote(p.difference, p.se)}`)
        .join(', ')}</td></tr>`;
    })
    .join('');
  return (
    `<p>Distribution scores: each sampler's ${dist.samples} samples against the exact mixture — ${esc(dist.score)}, ${dist.directions} directions — ` +
    `± a bootstrap SE (${dist.bootstrapResamples} resamples of the samples, the same resamples for every sampler). ` +
    `What exact sampling scores at ${dist.samples} samples (${e.sets} exact sets): sliced W2 ${e.slicedW2.mean.toExponential(2)} ± ${e.slicedW2.sd.toExponential(2)} ` +
    `(mean ± SD, range ${e.slicedW2.min.toExponential(2)}–${e.slicedW2.max.toExponential(2)}; the bootstrap SE of one exact set is ${e.bootstrapSeFirstSet.toExponential(2)}), ` +
    `log-density ${e.logDensityPerDim.mean.toFixed(3)} ± ${e.logDensityPerDim.sd.toFixed(3)} per dimension. A sampler within about 2 SD of exact sampling's mean is as close as ` +
    `exact sampling at this sample size.</p>${warn}` +
    (paired
      ? `<p>Paired differences of the sliced W2 from the best scheduler at each step count (score − best ± SE; sample i of every sampler starts from the same noise): ` +
        `a difference within 2 SE does not rank the two.</p><table><tr><th>steps</th><th>best</th><th>others</th></tr>${paired}</table>` +
        pairMatrices(dist.paired, r.rows)
      : '')
  );
}

/**
 * Every pair at each step count as a matrix (row − column ± paired SE, bold where |difference| ≥ 2 SE), folded away;
 * the pairs across step counts are in the record only (distribution.paired).
 */
function pairMatrices(all: readonly PairedComparison[], rows: readonly SamplerRow[]): string {
  const pair = new Map<string, PairedComparison>();
  for (const p of all) pair.set(`${p.scheduler}@${p.steps}|${p.versus}@${p.versusSteps}`, p);
  const cell = (a: SamplerRow, b: SamplerRow): string => {
    if (a === b) return '<td>—</td>';
    const hi = pair.get(`${a.scheduler}@${a.steps}|${b.scheduler}@${b.steps}`);
    const lo = hi ? undefined : pair.get(`${b.scheduler}@${b.steps}|${a.scheduler}@${a.steps}`);
    const p = hi ?? lo;
    if (!p) return '<td></td>';
    const d = hi ? p.difference : -p.difference;
    const text = `${d >= 0 ? '+' : ''}${d.toExponential(1)} ± ${p.se.toExponential(1)}`;
    const note = pairNote(d, p.se);
    return `<td>${note === '' ? `<b>${text}</b>` : note === ' (identical)' ? `${text}${note}` : text}</td>`;
  };
  const scored = rows.filter((x) => x.slicedW2 !== undefined);
  const tables = [...new Set(scored.map((x) => x.steps))].map((n) => {
    const at = scored.filter((x) => x.steps === n);
    return (
      `<p>${n} steps</p><table><tr><th>row − column</th>${at.map((x) => `<th>${esc(x.scheduler)}</th>`).join('')}</tr>` +
      at.map((a) => `<tr><td>${esc(a.scheduler)}</td>${at.map((b) => cell(a, b)).join('')}</tr>`).join('') +
      '</table>'
    );
  });
  return (
    `<details><summary>Every pair of schedulers at each step count (row − column ± paired SE; bold: resolved, |difference| ≥ 2 SE; identical: difference and SE 0). ` +
    `Every pair of runs, across step counts too (${all.length} in all), is in samplers.json, distribution.paired.</summary>${tables.join('')}</details>`
  );
}

/** The runs left out of the order fits and the error charts, and why; nothing when every run is on its grid. */
function offGridParagraph(r: SamplersBenchResult): string {
  const { runs, reason } = r.offGrid;
  if (!runs.length) return '';
  return (
    `<p class="warn">Left out of every order fit and of the error charts: ${esc(runs.join(', '))} (${esc(reason)}). ` +
    `Their samples sit at another noise level than the next U-Net call is told, so their errors measure that, not the discretisation; ` +
    `they are in the table of all runs, marked "off the grid". Use step counts that divide ${r.setup.numTrainTimesteps} for DDIM and PNDM.</p>`
  );
}

function microParagraph(r: SamplersBenchResult): string {
  if (r.microSkipped !== null) return `<p>Fused step micro-benchmarks: skipped (${esc(r.microSkipped)}).</p>`;
  return `<p>Fused step micro-benchmarks (4×64×64, guidance): ${r.micro.map((m) => `${esc(m.scheduler)} ${m.meanMicros.toFixed(1)} µs ±${m.rme.toFixed(1)}%`).join(', ')}.</p>`;
}

/** What to do once vega and vega-lite are installed (the charts' notes and the run's warning say it). */
export const SAMPLERS_RERUN = 'run the same brainlatent bench samplers again';

/** samplers.html; without vega and vega-lite (a slim install) a note in place of each chart. */
export async function samplersHtml(r: SamplersBenchResult): Promise<string> {
  return (await renderSamplersHtml(r)).html;
}

/** samplers.html, and why its charts are notes (null when they were drawn). */
export async function renderSamplersHtml(r: SamplersBenchResult): Promise<{ html: string; missing: MissingDependencyError | null }> {
  const { html: charts, missing } = await chartsOrNotes(samplersChartSpecs(r), SAMPLERS_RERUN);
  const cl = r.commonLevel;
  // a missing order says why (records before the reasons: the old generic line)
  const cellOf = (s: string, v: number | null | undefined, why: string | null | undefined): string => {
    if (v !== null && v !== undefined) return v.toFixed(2);
    if (STOCHASTIC.includes(s) && (why === undefined || why === null || why === STOCHASTIC_REASON)) return 'n/a (stochastic)';
    return `— (${esc(why ?? 'no pair of points between the floor and 0.1')})`;
  };
  const orderRows = Object.entries(r.convergenceOrder)
    .map(
      ([s, v]) =>
        `<tr><td>${esc(s)}</td>${cl.timestep === null ? '' : `<td>${cellOf(s, cl.order[s], cl.orderReason?.[s])}</td><td>${cellOf(s, cl.orderDenoised[s], cl.orderDenoisedReason?.[s])}</td>`}<td>${cellOf(s, v.vsExact, v.reason?.vsExact)}</td><td>${cellOf(s, v.vsConverged, v.reason?.vsConverged)}</td></tr>`,
    )
    .join('');
  const table = r.rows
    .map(
      (x) =>
        `<tr><td>${esc(x.scheduler)}</td><td>${x.steps}</td><td>${x.unetCallsPerImage}</td>${x.cost.map((c) => `<td>${costCell(c)}</td><td>${c.overhead.toFixed(3)}</td>`).join('')}<td>${x.relErrorExact?.toExponential(2) ?? '—'}${x.offGrid ? ' (off the grid)' : ''}</td>${cl.timestep === null ? '' : `<td>${x.relErrorCommon?.toExponential(2) ?? '—'}</td><td>${x.relErrorCommonDenoised?.toExponential(2) ?? '—'}</td>`}<td>${x.slicedW2 === undefined ? '—' : `${x.slicedW2.toExponential(2)} ± ${x.slicedW2Se?.toExponential(1)}`}</td><td>${x.logDensityPerDim?.toFixed(3) ?? '—'}</td></tr>`,
    )
    .join('');
  const bh = r.rows[0]?.cost.map((c) => `<th>img/s b${c.batch} (median; IQR, runs)</th><th>overhead b${c.batch}</th>`).join('') ?? '';
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>brainlatent bench samplers</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td:first-child{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:16px}.warn{color:#a40000}</style></head><body>
<h1>Samplers on a known ground truth</h1>
<p>${r.setup.mixture ? "The demo world's U-Net is the exact denoiser of a Gaussian mixture, so the true distribution and the exact probability-flow ODE are known." : `${esc(r.model)} is not a demo world: cost and accuracy against the converged solution only.`} ${esc(r.setup.start)}. Commit ${esc(r.commit)}${r.dirty ? ' (with uncommitted changes)' : ''}, ${esc(r.machine.cpu)}, load average ${r.machine.loadAverage.join(' / ')}.</p>
${setupParagraph(r)}
<p>Converged solution (${r.reference.convergedScheduler}, ${r.reference.convergedSteps} steps) vs the exact ODE: relative error ${r.reference.convergedVsExact.toExponential(2)} (${r.reference.exactOdeEvaluations} denoiser evaluations in the adaptive solver).</p>
${distributionParagraph(r)}
<div class="charts">${charts.join('')}</div>
<h2>Measured convergence order</h2>
<p>Order ${esc(r.orderUnit ?? ORDER_UNIT)}: a least-squares fit over the runs whose errors lie between ${FLOOR_MARGIN}× the floor and ${PRE_ASYMPTOTIC}, up to the smallest of them (past it the error grows: the last step is never refined); at least two runs, else no order, and the table says why. Floors, from the references alone: vs converged ${r.reference.orderFloors.vsConverged.toExponential(2)} (unipc ${r.reference.convergedSteps} vs ${r.reference.convergedHalfSteps} steps)${r.reference.orderFloors.vsExact === null ? '' : `, vs exact ${r.reference.orderFloors.vsExact.toExponential(2)} (the exact ODE at two tolerances, 100× apart)`}.</p>
${offGridParagraph(r)}
<p>${
    cl.timestep === null
      ? `Common noise level: none (${esc(cl.reason)}).`
      : `At the common noise level t = ${cl.timestep} (σ = ${cl.sigma.toFixed(4)}, the smallest σ every grid of ${esc(r.setup.steps.join(', '))} steps reaches): each deterministic scheduler's state there against the exact ODE to that σ, with no unrefined last step in it — the clean convergence measure — and its x̂0 = D(x, σ) against the exact one's (the run as if it ended there). Computed with the float64 reference schedulers on the exact denoiser (largest final-latent difference from the engine ${Math.max(0, ...r.rows.map((x) => x.referenceVsEngine ?? 0)).toExponential(2)}); floors ${cl.floor.toExponential(2)} (state) and ${cl.floorDenoised.toExponential(2)} (x̂0), the exact ODE at two tolerances.${cl.skipped.length ? ` Left out (DDIM/PNDM off the grid): ${esc(cl.skipped.join(', '))}.` : ''}`
  }</p>
<table><tr><th>scheduler (order per U-Net call)</th>${cl.timestep === null ? '' : `<th>at t = ${cl.timestep} (state)</th><th>at t = ${cl.timestep} (x̂0)</th>`}<th>vs exact ODE</th><th>vs converged</th></tr>${orderRows}</table>
<h2>All runs</h2><p>Cost: each (scheduler, steps, batch) timed in interleaved rounds (one run of each per round) until it had ≥ ${r.setup.timing?.minRepeats ?? '?'} runs and ≥ ${r.setup.timing?.minSeconds ?? '?'} s of loop time; images/s at the median loop time, then the interquartile range and the number of runs; overhead is the median loop ÷ U-Net time.</p><table><tr><th>scheduler</th><th>steps</th><th>U-Net calls</th>${bh}<th>rel. error (exact)</th>${cl.timestep === null ? '' : `<th>rel. error at t = ${cl.timestep} (state)</th><th>(x̂0)</th>`}<th>sliced W2 ± SE</th><th>log p / dim</th></tr>${table}</table>
<p>Peak RSS of the bench process: ${r.processPeakRssMiB} MiB, the high-water mark of the whole run (demo world, references, every run), not of any one run.</p>
${microParagraph(r)}
</body></html>
`;
  return { html, missing };
}
