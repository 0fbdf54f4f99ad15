/**
 * How metrics are written everywhere (CSV, console, reports): two-way identification in percent (chance 50%),
 * PixCorr and SSIM as correlations, distances as they are. Values are stored as fractions (metrics.json);
 * only their display is in percent, like the published tables.
 */
import type { MetricValue } from './evaluate.js';
import { COLUMN_BETTER, METRIC_COLUMNS, PUBLISHED, type MetricColumn } from './published.js';

export interface TableRow {
  method: string;
  source: string;
  metrics: MetricValue[];
}

/** Which way a metric is better. */
export type Better = 'higher' | 'lower';

/** A set's metrics by name, as metrics.json and a stage's summary record them: their values. */
export const metricValues = (ms: MetricValue[]): Record<string, number> => Object.fromEntries(ms.map((m) => [m.name, m.value]));
/** The images each metric left out of its mean (no correlation: a constant image or feature row). */
export const leftOutCounts = (ms: MetricValue[]): Record<string, number> => Object.fromEntries(ms.map((m) => [m.name, m.leftOut ?? 0]));
/** The 2WI metrics' comparisons left out (a seeds' mean: summed over the seeds); other metrics have none. */
export const comparisonsLeftOut = (ms: MetricValue[]): Record<string, number> =>
  Object.fromEntries(ms.flatMap((m) => (m.comparisonsLeftOut === undefined ? [] : [[m.name, m.comparisonsLeftOut]])));
/** Each metric's values per image (fractions, like the means), in the images' order. */
export const perImageValues = (ms: MetricValue[]): Record<string, number[]> => Object.fromEntries(ms.map((m) => [m.name, Array.from(m.perImage)]));
/** Which way each metric is better. */
export const metricsBetter = (ms: MetricValue[]): Record<string, Better> => Object.fromEntries(ms.map((m) => [m.name, m.better]));

const csvCell = (s: string): string => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** Identification accuracies (higher is better, other than PixCorr and SSIM) are shown in %. */
export function isPercentMetric(name: string, better: Better | undefined): boolean {
  return better === 'higher' && name !== 'PixCorr' && name !== 'SSIM';
}

/** A metric's value as shown: "96.9" for an identification accuracy of 0.969, "0.817" for PixCorr. */
export function formatMetric(name: string, value: number | undefined, better: Better | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '';
  return isPercentMetric(name, better) ? (100 * value).toFixed(1) : value.toFixed(3);
}

/** A column header with its unit: "Pixels(2WI) %", "SSIM", "EffNet-B ↓". */
export function metricHeader(name: string, better: Better | undefined): string {
  return isPercentMetric(name, better) ? `${name} %` : better === 'lower' ? `${name} ↓` : name;
}

export function formatValue(m: MetricValue | undefined): string {
  return m ? formatMetric(m.name, m.value, m.better) : '';
}

/** One sentence per kind of column shown, naming those columns: the caption of exactly this table. */
export function metricsCaption(columns: { name: string; better: Better | undefined }[]): string {
  const names = (f: (c: { name: string; better: Better | undefined }) => boolean) => columns.filter(f).map((c) => c.name);
  const list = (xs: string[]) => (xs.length <= 2 ? xs.join(' and ') : `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`);
  const parts: string[] = [];
  const corr = names((c) => c.name === 'PixCorr' || c.name === 'SSIM');
  if (corr.length) parts.push(`${list(corr)}: higher is better (1 = identical).`);
  const pct = names((c) => isPercentMetric(c.name, c.better));
  if (pct.length) parts.push(`${list(pct)}: two-way identification in % (chance 50%, higher is better).`);
  const dist = names((c) => c.better === 'lower');
  if (dist.length) parts.push(`${list(dist)}: correlation distance, 1 − r (lower is better).`);
  return parts.join(' ');
}

/**
 * One sentence naming the metrics that left images out of their means, for each set of values (z-only, final),
 * or '' when none did: a uniform image or a constant feature row has no correlation (ts/eval/evaluate.ts). A 2WI
 * metric's comparisons left out (`comparisons`; `summed`: over the seeds) are named with it: a uniform ground truth
 * drops one comparison from every other image's score, and a seed's uniform sample drops comparisons though the
 * other seeds score the image.
 */
export function leftOutNote(
  sets: { label: string; leftOut: Record<string, number> | undefined; comparisons?: Record<string, number>; summed?: boolean }[],
  images: number,
): string {
  const parts = sets.flatMap(({ label, leftOut, comparisons, summed }) =>
    Object.entries(leftOut ?? {})
      .filter(([name, n]) => n > 0 || (comparisons?.[name] ?? 0) > 0)
      .map(([name, n]) => {
        const k = comparisons?.[name] ?? 0;
        const also = k > 0 ? `; ${k} comparison${k === 1 ? '' : 's'}${summed ? ' over the seeds' : ''}` : '';
        return `${name} ${n} of ${images} image${images === 1 ? '' : 's'} (${label}${also})`;
      }),
  );
  return parts.length ? `Left out of the means, having no correlation (a uniform image or a constant feature row): ${parts.join(', ')}.` : '';
}

/** Our rows' metric names, then the published columns. */
export function metricColumns(rows: TableRow[]): string[] {
  const names: string[] = [];
  for (const r of rows) for (const m of r.metrics) if (!names.includes(m.name)) names.push(m.name);
  for (const c of METRIC_COLUMNS) if (!names.includes(c)) names.push(c);
  return names;
}

/** metrics.csv: our rows and the published ones, 2WI in % like the published tables. */
export function metricsCsv(rows: TableRow[], withPublished = true): string {
  const cols = metricColumns(rows);
  const lines = [['method', 'source', ...cols].map(csvCell).join(',')];
  for (const r of rows) {
    lines.push([r.method, r.source, ...cols.map((c) => formatValue(r.metrics.find((m) => m.name === c)))].map(csvCell).join(','));
  }
  if (withPublished) {
    for (const p of PUBLISHED) {
      const v = p.values as Record<string, number | undefined>;
      lines.push([p.method, `published: ${p.source}; ${p.testSet}`, ...cols.map((c) => (v[c] === undefined ? '' : String(v[c])))].map(csvCell).join(','));
    }
  }
  return lines.join('\n') + '\n';
}

/** A fixed-width text table for the console, units in the headers. */
export function metricsText(rows: { method: string; values: Record<string, number> }[], better: Record<string, Better>): string {
  const cols = rows.length ? Object.keys(rows[0].values) : [];
  const width = Math.max(10, ...cols.map((c) => metricHeader(c, better[c]).length + 2));
  const label = Math.max(8, ...rows.map((r) => r.method.length + 2));
  const head = ['method'.padEnd(label), ...cols.map((c) => metricHeader(c, better[c]).padStart(width))].join('');
  const body = rows.map((r) => [r.method.padEnd(label), ...cols.map((c) => formatMetric(c, r.values[c], better[c]).padStart(width))].join(''));
  return [head, ...body].join('\n');
}

/** The published columns' direction, for a table that shows them. */
export function publishedBetter(name: string): Better | undefined {
  return (COLUMN_BETTER as Record<string, Better>)[name as MetricColumn];
}
