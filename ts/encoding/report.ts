import type { RegionRow } from './regions.js';

export interface ReportEntry {
  name: string;
  description: string;
  mosaic: string; // relative path
  map: string; // relative path
  meanR: number;
  rows: RegionRow[];
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const num = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : '–');

/** report.html: a feature set × region summary, then each feature set's mosaic beside its region table. */
export function reportHtml(title: string, meta: Record<string, string>, entries: ReportEntry[]): string {
  const regions: string[] = [];
  for (const e of entries) for (const r of e.rows) if (!regions.includes(`${r.atlas}:${r.region}`)) regions.push(`${r.atlas}:${r.region}`);
  const maxR = Math.max(0.05, ...entries.flatMap((e) => e.rows.map((r) => (Number.isFinite(r.meanR) ? r.meanR : 0))));
  const cell = (v: number) => {
    const f = Number.isFinite(v) ? Math.max(0, Math.min(1, v / maxR)) : 0;
    return `<td style="background:rgba(220,60,30,${(0.85 * f).toFixed(2)})">${num(v)}</td>`;
  };
  const summary =
    `<table class="summary"><tr><th>feature set</th>${regions.map((r) => `<th>${esc(r.replace(/^mask:/, ''))}</th>`).join('')}</tr>` +
    entries
      .map((e) => `<tr><th>${esc(e.name)}</th>${regions.map((key) => cell(e.rows.find((r) => `${r.atlas}:${r.region}` === key)?.meanR ?? NaN)).join('')}</tr>`)
      .join('') +
    '</table>';
  const cards = entries
    .map((e) => {
      const norm = e.rows.some((r) => Number.isFinite(r.meanRNormalised));
      const table =
        `<table><tr><th>atlas</th><th>region</th><th>voxels</th><th>mean r</th><th>median r</th>${norm ? '<th>r / √NC</th>' : ''}</tr>` +
        e.rows
          .map((r) => `<tr><td>${esc(r.atlas)}</td><td>${esc(r.region)}</td><td>${r.voxels}</td><td>${num(r.meanR)}</td><td>${num(r.medianR)}</td>${norm ? `<td>${num(r.meanRNormalised)}</td>` : ''}</tr>`)
          .join('') +
        '</table>';
      return `<section><h2>${esc(e.name)}</h2><p>${esc(e.description)} — <a href="${esc(e.map)}">NIfTI map</a></p><div class="pair"><img src="${esc(e.mosaic)}" alt="${esc(e.name)} accuracy mosaic">${table}</div></section>`;
    })
    .join('\n');
  const metaRows = Object.entries(meta).map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f4f4f4}
.pair{display:flex;gap:1.5em;align-items:flex-start;flex-wrap:wrap}.pair img{image-rendering:pixelated;max-width:60vw;border:1px solid #999}
section{margin:1.5em 0;border-top:1px solid #ddd}
</style></head><body>
<h1>${esc(title)}</h1>
<table>${metaRows}</table>
<h2>Mean held-out Pearson r per region</h2>
${summary}
${cards}
</body></html>
`;
}
