/** The reconstruction report's decoder charts, as Vega-Lite specs rendered to SVG (ts/charts), or notes without vega. */
import { chartsOrNotes, type ReportCharts } from '../report/optionalParts.js';
import { ALPHA_EDGE_SHARE } from '../ridge/alphas.js';

/** What the decoders stage records per decoder (decoders/summary.json). */
export interface DecoderSummary {
  roi: string;
  trainRows: number;
  voxels: number;
  targets: number;
  meanCvScore: number;
  /** Takagi & Nishimoto's printed accuracy: mean over test images of r(decoded, true) across features. */
  testFeatureCorrelation: number;
  score?: string;
  alphas?: number[];
  alphaCounts?: number[];
  /** Per alpha, over the targets with a positive CV score at some alpha (edgeLow/edgeHigh's population; absent in older runs). */
  predictableAlphaCounts?: number[];
  /** Quantiles over the targets that are not constant in training (those score 0 at every alpha). */
  cvCurve?: { alpha: number; mean: number; q10: number; median: number; q90: number; resolved: boolean }[];
  constantTargets?: number;
  medianBestScore?: number;
  edgeLow?: number;
  edgeHigh?: number;
  /** Non-constant targets that score <= 0 at every alpha (left out of the edge shares). */
  unpredictableTargets?: number;
  unresolvedAlphas?: number;
  warnings?: string[];
}

const alphaLabel = (a: number): string => {
  const e = Math.log10(a);
  return Math.abs(e - Math.round(e)) < 1e-9 ? `1e${Math.round(e)}` : a.toPrecision(2);
};

/** Bars: the share of targets that chose each alpha of the grid; the grid's edges in orange when above 5%. */
const EDGE = `grid edge, > ${100 * ALPHA_EDGE_SHARE}% of targets`;

/**
 * The targets the chosen-α chart counts, and its subtitle lines saying which: those with a positive CV score at some
 * α, the population of the edge shares (edgeLow/edgeHigh) the table and the warning give, with the targets left out
 * stated. A run folder from before predictableAlphaCounts was recorded has only the counts over the targets that vary:
 * the chart says that it counts the unpredictable ones too.
 */
export function chosenAlphaCounts(d: DecoderSummary): { counts: number[]; subtitle: string[] } {
  const n = (v: number) => v.toLocaleString('en');
  const score = d.score === 'pearson' ? 'CV r' : 'CV R²';
  const unpredictable = d.unpredictableTargets ?? 0;
  const constant = d.constantTargets ? [`${n(d.constantTargets)} constant targets left out`] : [];
  if (d.predictableAlphaCounts) {
    const total = d.predictableAlphaCounts.reduce((a, b) => a + b, 0);
    const who = unpredictable || d.constantTargets ? `targets with ${score} > 0` : 'targets';
    const left = unpredictable ? [`${n(unpredictable)} with ${score} ≤ 0 at every α left out`] : [];
    return { counts: d.predictableAlphaCounts, subtitle: [`share of its ${n(total)} ${who}`, ...left, ...constant] };
  }
  const counts = d.alphaCounts ?? [];
  const total = counts.reduce((a, b) => a + b, 0);
  const also = unpredictable ? [`incl. ${n(unpredictable)} with ${score} ≤ 0 at every α`] : [];
  return { counts, subtitle: [`share of its ${n(total)} ${d.constantTargets ? 'non-constant ' : ''}targets`, ...also, ...constant] };
}

/** vega measures text without a font (0.8 em per character): subtitles are kept to short lines so charts stay narrow. */
export function alphaHistogramSpec(name: string, d: DecoderSummary): object {
  const alphas = d.alphas ?? [];
  const { counts, subtitle } = chosenAlphaCounts(d);
  const total = counts.reduce((a, b) => a + b, 0) || 1;
  const values = alphas.map((a, i) => {
    const share = (100 * counts[i]) / total;
    const edge = (i === 0 || i === alphas.length - 1) && share > 100 * ALPHA_EDGE_SHARE;
    return { alpha: alphaLabel(a), share, label: `${share.toFixed(share < 10 ? 1 : 0)}%`, where: edge ? EDGE : 'inside' };
  });
  return {
    title: { text: `${name} decoder: chosen α`, subtitle },
    width: 300,
    height: 170,
    data: { values },
    encoding: { x: { field: 'alpha', type: 'ordinal', sort: null, title: 'α (grid)', axis: { labelAngle: 0 } } },
    layer: [
      {
        mark: 'bar',
        encoding: {
          y: { field: 'share', type: 'quantitative', title: '% of targets', scale: { domain: [0, 100] } },
          color: {
            field: 'where',
            type: 'nominal',
            scale: { domain: ['inside', EDGE], range: ['#4c78a8', '#e8740c'] },
            legend: { orient: 'bottom', title: null, labelLimit: 0 },
          },
        },
      },
      { mark: { type: 'text', dy: -6, fontSize: 10 }, encoding: { y: { field: 'share', type: 'quantitative' }, text: { field: 'label', type: 'nominal' } } },
    ],
  };
}

/**
 * The CV score against alpha over the targets that vary: the median and the 10th–90th percentile band; the
 * mean dashed, clipped to the band's range (a few near-constant targets can drag it far below zero).
 */
export function cvCurveSpec(name: string, d: DecoderSummary): object {
  const values = (d.cvCurve ?? []).filter((p) => p.resolved).map((p) => ({ alpha: p.alpha, mean: p.mean, q10: p.q10, q90: p.q90, median: p.median }));
  const lo = Math.min(...values.map((v) => v.q10)), hi = Math.max(...values.map((v) => v.q90));
  const pad = 0.05 * (hi - lo || 1);
  const domain = [lo - pad, hi + pad];
  const clipped = values.some((v) => v.mean < domain[0] || v.mean > domain[1]);
  const x = { field: 'alpha', type: 'quantitative', scale: { type: 'log' }, title: 'α (grid)', axis: { format: '.0e', values: values.map((v) => v.alpha), grid: true } };
  const score = d.score === 'pearson' ? 'CV Pearson r' : 'CV R²';
  const y = { type: 'quantitative', scale: { domain, nice: false } };
  const constant = d.constantTargets ? [`${d.constantTargets.toLocaleString('en')} constant targets left out`] : [];
  return {
    title: { text: `${name} decoder: ${score} against α`, subtitle: ['median, 10th–90th percentile band', `dashed: mean${clipped ? ' (clipped)' : ''}`, ...constant] },
    width: 300,
    height: 170,
    data: { values },
    layer: [
      { mark: { type: 'area', opacity: 0.22, color: '#4c78a8', clip: true }, encoding: { x, y: { ...y, field: 'q10', title: score }, y2: { field: 'q90' } } },
      { mark: { type: 'line', color: '#4c78a8', point: true, clip: true }, encoding: { x, y: { ...y, field: 'median' } } },
      { mark: { type: 'line', color: '#222', strokeDash: [4, 3], clip: true }, encoding: { x, y: { ...y, field: 'mean' } } },
    ],
  };
}

/** Histogram of the per-target accuracy on the test images (r between decoded and true feature over images). */
export function targetAccuracySpec(name: string, targetR: Float32Array): object {
  const values = Array.from(targetR).filter(Number.isFinite).map((r) => ({ r }));
  const undefinedR = targetR.length - values.length;
  const mean = values.reduce((a, v) => a + v.r, 0) / Math.max(1, values.length);
  return {
    title: { text: `${name} decoder: accuracy per target`, subtitle: ['r(decoded, true) over test images', `dashed: mean ${mean.toFixed(3)}`, ...(undefinedR ? [`${undefinedR.toLocaleString('en')} targets constant in test left out`] : [])] },
    width: 300,
    height: 170,
    layer: [
      {
        data: { values },
        mark: { type: 'bar', color: '#54a24b' },
        encoding: {
          x: { field: 'r', type: 'quantitative', bin: { maxbins: 40, extent: [-1, 1] }, title: 'test r per target', axis: { values: [-1, -0.5, 0, 0.5, 1], format: '.1f' } },
          y: { aggregate: 'count', type: 'quantitative', title: 'targets' },
        },
      },
      { data: { values: [{ mean }] }, mark: { type: 'rule', color: '#222', strokeDash: [4, 3] }, encoding: { x: { field: 'mean', type: 'quantitative' } } },
    ],
  };
}

/** The decoder's charts that its summary has data for: chosen alphas, CV curve, per-target test accuracy. */
export function decoderChartSpecs(name: string, d: DecoderSummary, targetR: Float32Array | null): object[] {
  const specs = [d.alphas && d.alphaCounts ? alphaHistogramSpec(name, d) : null, d.cvCurve ? cvCurveSpec(name, d) : null, targetR ? targetAccuracySpec(name, targetR) : null];
  return specs.filter((s): s is object => s !== null);
}

/**
 * What to do once the chart packages are installed (the notes and the warning say it): the report stage's marker
 * records that it was written without them, so the same run redoes that stage alone (stageState).
 */
export const REPORT_RERUN = 'run the same reconstruct (or demo) again: only its report stage runs, now with the charts';

/** The decoder's charts as SVG, or without vega and vega-lite (a slim install) a note in place of each. */
export async function decoderCharts(name: string, d: DecoderSummary, targetR: Float32Array | null): Promise<ReportCharts> {
  return chartsOrNotes(decoderChartSpecs(name, d, targetR), REPORT_RERUN);
}
