/**
 * report.html of a reconstruction run: the run's metrics with a caption for exactly the columns shown, the
 * published results in their own columns, each decoder's chosen alphas, CV curve and accuracy per target
 * (charts rendered to SVG at report time; without vega and vega-lite, a note in place of each: ts/report/optionalParts),
 * and the gallery with every image's metrics in a sortable table.
 * Paths are relative to the run folder; the page opens from disk.
 */
import { formatMetric, leftOutNote, metricHeader, metricsCaption, publishedBetter } from '../eval/table.js';
import { METRIC_COLUMNS, PUBLISHED } from '../eval/published.js';
import { BASE_CSS, displayPath, esc, SORTABLE_SCRIPT, url } from '../report/html.js';
import { sessionsFact, warningBox } from '../report/sessions.js';
import type { MissingDependencyError } from '../errors.js';
import type { ReconstructConfig } from './config.js';
import { decoderCharts, type DecoderSummary } from './decoderCharts.js';

type Better = 'higher' | 'lower';

export interface RunMetrics {
  zonly: Record<string, number>;
  final: Record<string, number>;
  better: Record<string, Better>;
  /** Test images (absent in run folders from before it was recorded). */
  images?: number;
  /** Images each metric left out of its mean, having no correlation (absent in run folders from before they were counted). */
  leftOut?: { zonly: Record<string, number>; final: Record<string, number> };
  /** 2WI metrics' comparisons left out (the final's summed over the seeds; absent in run folders from before they were recorded). */
  comparisonsLeftOut?: { zonly: Record<string, number>; final: Record<string, number> };
  /** Per test image, in the order of `ids` (absent in run folders written before per-image values were kept). */
  perImage?: { ids: number[]; zonly: Record<string, number[]>; final: Record<string, number[]> };
}

export interface ReportInput {
  config: ReconstructConfig;
  ids: number[];
  /** Image paths relative to the run folder. */
  images: (id: number) => { original: string; zonly: string; samples: string[] };
  metrics: RunMetrics;
  decoders: Record<string, DecoderSummary>;
  /** Per-target test accuracy of each decoder (decoders/<t>_target_r.npy), when recorded. */
  targetAccuracy?: Record<string, Float32Array | null>;
  /** Warnings the run raised (shown at the top). */
  warnings?: string[];
  /** The sessions the extraction read (its stage's record), listed with the data; absent in run folders from before. */
  sessions?: number[];
  /** The run's stand-ins for NSD and Stable Diffusion, a sentence each (syntheticInputs); none for real data. */
  synthetic?: string[];
}

const REPORT_CSS = `
.decoder{display:flex;flex-wrap:wrap;gap:12px 24px;align-items:flex-start}.decoder svg{max-width:100%;height:auto}
.facts td:first-child{font-weight:600}
#published .set{text-align:left}
table.gallery td{text-align:right}table.gallery td.img{padding:2px;text-align:center}
table.gallery img{width:104px;height:104px;display:block;image-rendering:auto}
table.gallery td.seeds img{width:50px;height:50px;display:inline-block;margin:1px}
table.gallery td.seeds{width:112px;text-align:left}
table.gallery th.grp,table.gallery thead th{text-align:center}table.gallery td.z{color:#666}
table.gallery thead th[data-sort]{white-space:normal;min-width:4.5em;max-width:6.5em;font-size:12.5px}
.id{font-family:ui-monospace,monospace}
`;

/**
 * The gallery's images load as they scroll into view: NSD's 1,000 test images × (the original, the z-only image and 5
 * seeds) at 512 px are ~7,000 PNGs, 2–3 GB that a browser fetched and decoded before the page answered. Their boxes
 * are sized by the CSS above, so the browser knows which are in view before any loads.
 */
const LAZY = ' loading="lazy" decoding="async"';

/** ' ' and the metrics that left images out of their means, or '' (ts/eval/table.ts leftOutNote). */
function leftOutSentence(m: RunMetrics): string {
  if (!m.leftOut || m.images === undefined) return '';
  const c = m.comparisonsLeftOut;
  const note = leftOutNote([{ label: 'z-only', leftOut: m.leftOut.zonly, comparisons: c?.zonly }, { label: 'final', leftOut: m.leftOut.final, comparisons: c?.final, summed: true }], m.images);
  return note ? ` ${note}` : '';
}

/** Our two rows under our metric names, with units in the headers and the caption for these columns. */
function runTable(m: RunMetrics, seeds: number): string {
  const names = Object.keys(m.final);
  const row = (label: string, values: Record<string, number>) =>
    `<tr><td>${esc(label)}</td>${names.map((n) => `<td>${esc(formatMetric(n, values[n], m.better[n]))}</td>`).join('')}</tr>`;
  return `<table id="metrics"><thead><tr><th>reconstruction</th>${names.map((n) => `<th>${esc(metricHeader(n, m.better[n]))}</th>`).join('')}</tr></thead>
<tbody>${row('z-only (decoded z, VAE-decoded)', m.zonly)}${row(`final (img2img, mean of ${seeds} seed${seeds > 1 ? 's' : ''})`, m.final)}</tbody>
<caption>${esc(metricsCaption(names.map((n) => ({ name: n, better: m.better[n] }))))} Values are means over the test images.${esc(leftOutSentence(m))}</caption></table>`;
}

/** Published rows in the eight published columns; our rows join them only for metrics of the same name. */
export function publishedTable(m: RunMetrics, testSet: string, synthetic = false): string {
  const cols = [...METRIC_COLUMNS];
  // (a metric of the same name but the other kind, a distance where the published one is an identification, is not the published metric)
  const shared = cols.filter((c) => c in m.final && m.better[c] === publishedBetter(c));
  const ours = shared.length
    ? [[`this run${synthetic ? ' (synthetic)' : ''}: z-only`, m.zonly] as const, [`this run${synthetic ? ' (synthetic)' : ''}: final`, m.final] as const]
        .map(([label, v]) => `<tr><td>${esc(label)}</td><td class="set"><small>${esc(testSet)}</small></td>${cols.map((c) => `<td>${shared.includes(c) ? esc(formatMetric(c, v[c], m.better[c])) : ''}</td>`).join('')}</tr>`)
        .join('')
    : '';
  const rows = PUBLISHED.map((p) => {
    const v = p.values as Record<string, number | undefined>;
    const cell = (c: string) => (v[c] === undefined ? '<td>–</td>' : `<td>${publishedBetter(c) === 'higher' && c !== 'PixCorr' && c !== 'SSIM' ? v[c]!.toFixed(1) : v[c]!.toFixed(3)}</td>`);
    return `<tr><td>${esc(p.method)}<br><small>${esc(p.source)}</small></td><td class="set"><small>${esc(p.testSet)}</small></td>${cols.map(cell).join('')}</tr>`;
  }).join('\n');
  const note = shared.length
    ? `This run's rows appear where it computed a metric of the same name (${shared.join(', ')}).` +
      (synthetic ? " This run's data or model are brainlatent's synthetic stand-ins, not NSD and Stable Diffusion: its rows are not comparable with the published ones." : '')
    : `This run computed none of these metrics (its feature networks are not the published AlexNet, Inception, CLIP, EffNet-B and SwAV), so it has no row here.`;
  return `<div class="scroll"><table id="published"><thead><tr><th>method</th><th class="set">test set</th>${cols.map((c) => `<th>${esc(metricHeader(c, publishedBetter(c)))}</th>`).join('')}</tr></thead>
<tbody>${ours}${rows}</tbody>
<caption>${esc(metricsCaption(cols.map((c) => ({ name: c, better: publishedBetter(c) }))))} "–": not reported. Published on the real NSD with the real networks; the
test sets differ between tables (37 or 40 sessions). ${esc(note)}</caption></table></div>`;
}

/** A statistic to 3 decimals, or a dash where there is none (NaN, stored as null: e.g. no CV score was defined). */
const fixed3 = (v: number | null | undefined) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(3) : '–');

function decoderSection(name: string, d: DecoderSummary, charts: string[]): string {
  const warn = (d.warnings ?? []).map(warningBox).join('');
  const unresolved = d.unresolvedAlphas
    ? `<tr><td>unresolved alphas</td><td>${d.unresolvedAlphas} (below the float32 resolution of this problem; never chosen)</td></tr>`
    : '';
  return `<h3>${esc(name)} decoder: <code>${esc(d.roi)}</code> → ${esc(name)}</h3>${warn}
<table class="facts"><tbody>
<tr><td>training rows × voxels</td><td>${d.trainRows.toLocaleString('en')} × ${d.voxels.toLocaleString('en')}</td></tr>
<tr><td>targets</td><td>${d.targets.toLocaleString('en')}${d.constantTargets ? ` (${d.constantTargets.toLocaleString('en')} constant over the training images: left out of the α statistics)` : ''}</td></tr>
<tr><td>CV ${esc(d.score === 'pearson' ? 'r' : 'R²')} at the chosen α: mean over all targets${d.medianBestScore !== undefined ? ' / median over those that vary' : ''}</td><td>${fixed3(d.meanCvScore)}${d.medianBestScore !== undefined ? ` / ${fixed3(d.medianBestScore)}` : ''}</td></tr>
<tr><td>mean r(decoded, true) over test images</td><td>${fixed3(d.testFeatureCorrelation)} <small>(Takagi &amp; Nishimoto's printed accuracy)</small></td></tr>
${alphaEdgeRows(d)}
${unresolved}</tbody></table>
<div class="decoder">${charts.join('\n')}</div>`;
}

/**
 * The targets the features do not predict (CV score <= 0 at every α), and the shares of the others that chose an
 * edge of the grid: the population of the chosen-α chart (decoderCharts) and of the stage's warning, so the three
 * agree. An α chosen for a target with no signal means nothing (the most shrinkage is its best), so it is counted apart.
 */
export function alphaEdgeRows(d: DecoderSummary): string {
  if (d.edgeLow === undefined) return '';
  const score = d.score === 'pearson' ? 'CV r' : 'CV R²';
  const pct = (v: number | undefined) => `${(100 * (v ?? 0)).toFixed(1)}%`;
  const edges = `${pct(d.edgeLow)} / ${pct(d.edgeHigh)}`;
  if (d.unpredictableTargets === undefined) {
    // (a run folder from before the unpredictable targets were counted apart)
    return `<tr><td>targets${d.constantTargets ? ' that vary' : ''} that chose the grid's smallest / largest α</td><td>${edges}</td></tr>`;
  }
  const predictable = d.predictableAlphaCounts?.reduce((a, b) => a + b, 0) ?? d.targets - (d.constantTargets ?? 0) - d.unpredictableTargets;
  const n = (v: number) => v.toLocaleString('en');
  const unpredictable = `<tr><td>targets with ${esc(score)} ≤ 0 at every α</td><td>${n(d.unpredictableTargets)}${d.unpredictableTargets ? ' <small>(the features predict nothing there, so their chosen α means nothing: left out of the chosen-α chart and the shares below)</small>' : ''}</td></tr>`;
  const who = d.unpredictableTargets || d.constantTargets ? `of the ${n(predictable)} targets with ${score} > 0 at some α, the share` : 'share of the targets';
  return `${unpredictable}\n<tr><td>${esc(who)} that chose the grid's smallest / largest α</td><td>${edges}</td></tr>`;
}

/** The gallery: one row per test image, its images, then its metrics (final and z-only), sortable by any column. */
function gallery(r: ReportInput): string {
  const m = r.metrics;
  const names = Object.keys(m.final);
  const per = m.perImage;
  const index = new Map((per?.ids ?? []).map((id, i) => [id, i]));
  let col = 5;
  const heads = (set: 'final' | 'z-only') =>
    names.map((n) => `<th data-sort="number" data-col="${col++}" title="${esc(`${set}: ${n}`)}">${esc(metricHeader(n, m.better[n])).replace('(', '<wbr>(')}</th>`).join('');
  const finalHeads = heads('final');
  const zHeads = heads('z-only');
  const cell = (set: 'final' | 'zonly', n: string, i: number | undefined) => {
    const v = i === undefined ? undefined : per?.[set][n]?.[i];
    return `<td class="${set === 'zonly' ? 'z' : ''}" data-v="${v === undefined || !Number.isFinite(v) ? '' : v}">${esc(formatMetric(n, v, m.better[n]))}</td>`;
  };
  const rows = r.ids
    .map((id) => {
      const im = r.images(id);
      const i = index.get(id);
      const seeds = im.samples.slice(1).map((s, k) => `<img src="${url(s)}" alt="seed ${k + 1}"${LAZY}>`).join('');
      return (
        `<tr><td class="id" data-v="${id - 1}">${String(id - 1).padStart(5, '0')}</td>` +
        `<td class="img"><img src="${url(im.original)}" alt="original ${id - 1}"${LAZY}></td>` +
        `<td class="img"><img src="${url(im.zonly)}" alt="z-only ${id - 1}"${LAZY}></td>` +
        `<td class="img"><img src="${url(im.samples[0])}" alt="final ${id - 1}"${LAZY}></td>` +
        `<td class="img seeds">${seeds}</td>` +
        names.map((n) => cell('final', n, i)).join('') +
        names.map((n) => cell('zonly', n, i)).join('') +
        '</tr>'
      );
    })
    .join('\n');
  const caption = per
    ? `Click a metric's header to sort (again to reverse). Per-image 2WI: the share of the other test images' ground truths that correlate less with this reconstruction than its own does (%). Final values are means over seeds. ${metricsCaption(names.map((n) => ({ name: n, better: m.better[n] })))}`
    : 'This run folder has no per-image metrics in metrics.json (see metrics_per_image.csv).';
  return `<div class="scroll"><table class="gallery sortable" id="per-image"><thead>
<tr><th rowspan="2" data-sort="number" data-col="0">imgidx</th><th rowspan="2">original</th><th rowspan="2">z-only</th><th rowspan="2">final (seed 0)</th><th rowspan="2">other seeds</th>
<th class="grp" colspan="${names.length}">final</th><th class="grp" colspan="${names.length}">z-only</th></tr>
<tr>${finalHeads}${zHeads}</tr></thead>
<tbody>
${rows}
</tbody><caption>${esc(caption)}</caption></table></div>`;
}

/** report.html, and why its charts are notes (null when they were drawn: vega and vega-lite are installed). */
export interface RenderedReport {
  html: string;
  missing: MissingDependencyError | null;
}

export async function renderReport(r: ReportInput): Promise<RenderedReport> {
  const c = r.config;
  const g = c.img2img;
  const decoderHtml: string[] = [];
  let missing: MissingDependencyError | null = null;
  for (const [name, d] of Object.entries(r.decoders)) {
    const charts = await decoderCharts(name, d, r.targetAccuracy?.[name] ?? null);
    missing ??= charts.missing;
    decoderHtml.push(decoderSection(name, d, charts.html));
  }
  const warnings = (r.warnings ?? []).map(warningBox).join('\n');
  const sessions = sessionsFact({ sessions: r.sessions, nsd: c.nsd });
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>brainlatent reconstruction — subject ${c.nsd.subject}</title>
<style>${BASE_CSS}${REPORT_CSS}</style></head><body>
<h1>Reconstruction, subject ${c.nsd.subject}${r.synthetic?.length ? ' (synthetic data)' : ''}</h1>
${r.synthetic?.length ? `<div class="warning" id="synthetic"><strong>Synthetic run:</strong> ${esc(r.synthetic.join('; '))}. Its metrics measure the method on this world; they are not comparable with the published NSD results.</div>` : ''}
<p>${r.ids.length} test images. Model <code>${esc(displayPath(c.out, c.model.dir))}</code>, NSD <code>${esc(displayPath(c.out, c.nsd.root))}</code>
(paths relative to this run folder). img2img from the decoded z with the decoded c: strength ${g.strength}, ${g.steps} ${esc(g.scheduler)} steps,
guidance ${g.guidance}, ${g.seeds} seed${g.seeds > 1 ? 's' : ''} per image, ${g.size} px.</p>
${sessions ? `<p id="sessions">Betas of subject ${c.nsd.subject}, sessions ${esc(sessions.text)}.</p>${sessions.warning ? `\n${warningBox(sessions.warning)}` : ''}` : ''}
${warnings}
<h2>Metrics</h2>
${runTable(r.metrics, g.seeds)}
<h3>Published results (NSD)</h3>
${publishedTable(r.metrics, `${r.ids.length} test images, subject ${c.nsd.subject}`, !!r.synthetic?.length)}
<h2>Decoders</h2>
<p class="note">RidgeCV with one α per target chosen by ${c.decoders.z.folds}-fold cross-validation grouped by image. A decoder whose chosen α pile up at
an edge of the grid (more than 5% of targets at the smallest or largest α) may want a wider grid: its optimum can lie outside.</p>
${decoderHtml.join('\n')}
<h2>Gallery and per-image metrics</h2>
${gallery(r)}
<script>${SORTABLE_SCRIPT}</script>
</body></html>
`;
  return { html, missing };
}
