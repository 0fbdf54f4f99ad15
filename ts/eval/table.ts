/** The metrics table as CSV and text, our rows next to the published ones. */
import type { MetricValue } from './evaluate.js';
import { METRIC_COLUMNS, PUBLISHED } from './published.js';

export interface TableRow {
  method: string;
  source: string;
  metrics: MetricValue[];
}

const csvCell = (s: string): string => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** Our rows use our metric names; 2WI values are written in % like the published tables. */
export function metricColumns(rows: TableRow[]): string[] {
  const names: string[] = [];
  for (const r of rows) for (const m of r.metrics) if (!names.includes(m.name)) names.push(m.name);
  for (const c of METRIC_COLUMNS) if (!names.includes(c)) names.push(c);
  return names;
}

export function formatValue(m: MetricValue | undefined): string {
  if (!m || !Number.isFinite(m.value)) return '';
  const pct = m.better === 'higher' && m.name !== 'PixCorr' && m.name !== 'SSIM';
  return pct ? (100 * m.value).toFixed(1) : m.value.toFixed(3);
}

export function metricsCsv(rows: TableRow[], withPublished = true): string {
  const cols = metricColumns(rows);
  const lines = [['method', 'source', ...cols].map(csvCell).join(',')];
  for (const r of rows) {
    lines.push([r.method, r.source, ...cols.map((c) => formatValue(r.metrics.find((m) => m.name === c)))].map(csvCell).join(','));
  }
  if (withPublished) {
    for (const p of PUBLISHED) {
      const v = p.values as Record<string, number | undefined>;
      lines.push([p.method, `published: ${p.source}`, ...cols.map((c) => (v[c] === undefined ? '' : String(v[c])))].map(csvCell).join(','));
    }
  }
  return lines.join('\n') + '\n';
}

export function metricsText(rows: TableRow[]): string {
  const cols = rows.length ? rows[0].metrics.map((m) => m.name) : [];
  const head = ['method'.padEnd(24), ...cols.map((c) => c.padStart(12))].join('');
  const body = rows.map((r) => [r.method.padEnd(24), ...cols.map((c) => formatValue(r.metrics.find((m) => m.name === c)).padStart(12))].join(''));
  return [head, ...body].join('\n');
}
