/** report.html: the metrics table and a gallery (original | z-only | final per row), relative links only, so it opens from disk. */
import { formatValue } from '../eval/table.js';
import { PUBLISHED } from '../eval/published.js';
import type { ReconstructConfig } from './config.js';

export interface ReportInput {
  config: ReconstructConfig;
  ids: number[];
  images: (id: number) => { original: string; zonly: string; samples: string[] };
  metrics: { zonly: Record<string, number>; final: Record<string, number>; better: Record<string, 'higher' | 'lower'> };
  decoders: Record<string, { testFeatureCorrelation: number; roi: string; voxels: number }>;
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const url = (p: string): string => p.split(/[\\/]/).map(encodeURIComponent).join('/');

export function renderReport(r: ReportInput): string {
  const c = r.config;
  const names = Object.keys(r.metrics.final);
  const cell = (name: string, v: number | undefined) => esc(formatValue(v === undefined ? undefined : { name, value: v, better: r.metrics.better[name], perImage: new Float64Array() }));
  const published = PUBLISHED.map((p) => {
    const v = p.values as Record<string, number | undefined>;
    return `<tr class="pub"><td>${esc(p.method)}<br><small>${esc(p.source)}</small></td>${names.map((n) => `<td>${v[n] === undefined ? '' : v[n]}</td>`).join('')}</tr>`;
  }).join('\n');
  const ours = (label: string, m: Record<string, number>) => `<tr><td>${esc(label)}</td>${names.map((n) => `<td>${cell(n, m[n])}</td>`).join('')}</tr>`;
  const rows = r.ids
    .map((id) => {
      const im = r.images(id);
      const extra = im.samples.slice(1).map((s) => `<img class="small" src="${url(s)}" alt="seed">`).join('');
      return `<tr><td class="id">${id - 1}</td><td><img src="${url(im.original)}" alt="original"></td><td><img src="${url(im.zonly)}" alt="z-only"></td><td><img src="${url(im.samples[0])}" alt="final"></td><td>${extra}</td></tr>`;
    })
    .join('\n');
  const dec = Object.entries(r.decoders)
    .map(([t, d]) => `<li>${esc(t)} from <code>${esc(d.roi)}</code> (${d.voxels} voxels): mean r(decoded, true) over test images = ${d.testFeatureCorrelation.toFixed(3)}</li>`)
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>brainlatent reconstruction — subject ${c.nsd.subject}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}tr.pub{color:#666}
.gallery td{text-align:center;vertical-align:middle}.gallery img{width:160px;height:160px;image-rendering:auto}
.gallery img.small{width:64px;height:64px;margin:1px}.id{font-family:monospace}
</style></head><body>
<h1>Reconstruction, subject ${c.nsd.subject}</h1>
<p>${r.ids.length} test images; model <code>${esc(c.model.dir)}</code>; img2img strength ${c.img2img.strength}, ${c.img2img.steps} ${esc(c.img2img.scheduler)} steps, guidance ${c.img2img.guidance}, ${c.img2img.seeds} seed(s).</p>
<ul>${dec}</ul>
<h2>Metrics</h2>
<p>Identification columns in % (chance 50); EffNet-B and SwAV are correlation distances (lower is better). Published rows use the real NSD and networks; compare them only with runs that do too.</p>
<table><tr><th>method</th>${names.map((n) => `<th>${esc(n)}</th>`).join('')}</tr>
${ours('z-only', r.metrics.zonly)}
${ours('final', r.metrics.final)}
${published}
</table>
<h2>Gallery</h2>
<table class="gallery"><tr><th>imgidx</th><th>original</th><th>z-only</th><th>final</th><th>other seeds</th></tr>
${rows}
</table>
</body></html>
`;
}
