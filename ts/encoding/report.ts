/**
 * The encoding run's report.html, written from the run folder alone (encoding.json, maps/, the NSD folder for
 * the anatomy and atlases): an interactive viewer (NiiVue, its UMD bundle copied to report_files/, every
 * volume embedded, so the page opens offline from file://) with every map over the subject's anatomy,
 * threshold and colour-map controls, and the voxel's coordinates, values and regions on click; a region table
 * that fits the page; the variance-partition convention; and per map a static figure (mosaics/, for papers and
 * e-mail) beside its region table.
 */
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { niftiGrid, readNifti } from '../io/nifti.js';
import type { Grid } from '../io/voxelMask.js';
import { roiPath } from '../nsd/paths.js';
import { BASE_CSS, esc, SORTABLE_SCRIPT, url } from '../report/html.js';
import { sessionsFact, warningBox, type SessionsRead } from '../report/sessions.js';
import { fileStem, type EncodingSummary, type MapKind, type MapRecord, type MosaicOptions } from './mapFiles.js';
import { sortedMedian } from './metrics.js';
import { mosaicPng } from './mosaic.js';
import { applyAffine, voxelToWorld, type Affine } from './orientation.js';
import { labelNames } from './regions.js';
import { findUnderlay, type Underlay } from './underlay.js';
import { VIEWER_CSS, VIEWER_SCRIPT } from './viewerScript.js';
import { withAtomicPath, writeFileAtomic } from '../io/atomicWrite.js';
import { MissingDependencyError } from '../errors.js';
import { optionalPackageFile } from '../optionalDependencies.js';
import { missingPartNote } from '../report/optionalParts.js';

/** The folder beside report.html that holds the viewer's script. */
export const REPORT_FILES = 'report_files';

export interface LoadedMap extends MapRecord {
  volume: Float32Array;
  bytes: Buffer;
  display: MapDisplay;
  regions: RegionStat[];
}

/** How a map is shown: colour map, range, threshold, and what the threshold means. */
export interface MapDisplay {
  signed: boolean;
  vmax: number;
  threshold: number;
  quantity: string;
  thresholdNote: string;
}

interface Atlas {
  name: string;
  path: string;
  bytes: Buffer;
  values: Float32Array;
  names: Map<number, string>;
}

export interface RegionStat {
  atlas: string;
  region: string;
  voxels: number;
  mean: number;
  median: number;
}

/**
 * Held-out r significant at p < 0.05 (one-sided, uncorrected) for n test images, by Fisher's z:
 * tanh(1.645 / √(n − 3)).
 */
export function significantR(n: number): number {
  return n > 3 ? Math.tanh(1.6449 / Math.sqrt(n - 3)) : 1;
}

function percentileAbs(v: Float32Array, f: number): number {
  const a: number[] = [];
  for (const x of v) if (Number.isFinite(x)) a.push(Math.abs(x));
  if (!a.length) return 1;
  a.sort((x, y) => x - y);
  return a[Math.min(a.length - 1, Math.round(f * (a.length - 1)))] || a[a.length - 1] || 1;
}

const QUANTITY: Record<MapKind, string> = {
  r: 'held-out r',
  'banded-r': 'held-out r',
  'r-over-sqrt-nc': 'r / √NC',
  alpha: 'log10 α',
  'noise-ceiling': 'noise ceiling',
  'banded-r2': 'held-out R²',
  'banded-r2-without': 'held-out R²',
  'banded-alpha': 'log10 α',
  'band-weight': 'γ',
  unique: 'unique R²',
  shared: 'shared R²',
};

/** Largest |value| of the finite values (1 when there are none). */
function maxAbs(v: Float32Array): number {
  let m = 0;
  for (const x of v) if (Number.isFinite(x) && Math.abs(x) > m) m = Math.abs(x);
  return m || 1;
}

export function mapDisplay(kind: MapKind, volume: Float32Array, testImages: number, options: MosaicOptions = {}): MapDisplay {
  const isR = kind === 'r' || kind === 'banded-r';
  const isAlpha = kind === 'alpha' || kind === 'banded-alpha';
  const isR2 = kind === 'banded-r2' || kind === 'banded-r2-without';
  // log10 α below 0 (α < 1) is shown in blue, as the figures draw negative values only on a diverging scale
  const signed = kind === 'unique' || kind === 'shared' || isR2 || (isAlpha && volume.some((v) => v < 0));
  // alphas and weights: the whole range, so the grid's ends (and γ = 1) get the end colour
  const vmax = isR && options.vmax !== undefined ? options.vmax : isAlpha ? maxAbs(volume) : kind === 'band-weight' ? 1 : Math.max(percentileAbs(volume, 0.99), 1e-3);
  let threshold = 0;
  let thresholdNote = 'every voxel with a value is shown';
  if (isAlpha) {
    thresholdNote = signed ? 'every voxel with a value is shown; blue: alpha below 1' : thresholdNote;
  } else if (isR2) {
    threshold = 0.01;
    thresholdNote = 'as measured, not floored; shown where |R²| ≥ 0.01; blue: negative (predicts the test betas worse than their mean)';
  } else if (isR) {
    threshold = options.threshold ?? significantR(testImages);
    thresholdNote =
      options.threshold !== undefined
        ? `shown where r ≥ ${threshold.toFixed(2)} (the config's threshold)`
        : `shown where r ≥ ${threshold.toFixed(2)}: p < 0.05 one-sided, uncorrected, ${testImages} test images`;
  } else if (signed) {
    threshold = 0.01;
    thresholdNote = 'defined where the joint model has R² > 0; shown where |R²| ≥ 0.01; blue: negative';
  } else if (kind === 'r-over-sqrt-nc') {
    // (drawn where its set's r passes the r maps' threshold: a noise voxel with a small ceiling reached ratios of 2.6,
    // bright across the figure, and a ratio past 1, over the ceiling, is noise too; review s45)
    const r = options.threshold ?? significantR(testImages);
    thresholdNote = `the figure shows where the noise ceiling is above 1% of variance and r ≥ ${r.toFixed(2)} (the r maps' threshold), the map and the viewer every voxel with a ceiling above 1%; the bar ends at 1, the ceiling`;
    return { signed, vmax: 1, threshold, quantity: QUANTITY[kind], thresholdNote };
  }
  return { signed, vmax: Math.max(vmax, threshold * 1.05), threshold, quantity: QUANTITY[kind], thresholdNote };
}

/**
 * What a map's figure draws: its volume, but a feature set's r/√NC only where its r map passes that map's threshold
 * (NaN elsewhere); the map file and the region means keep every voxel with a ceiling above 1%.
 */
export function figureVolume(m: Pick<LoadedMap, 'kind' | 'featureSet' | 'volume'>, maps: readonly Pick<LoadedMap, 'kind' | 'featureSet' | 'volume' | 'display'>[]): Float32Array {
  const r = m.kind === 'r-over-sqrt-nc' ? maps.find((x) => x.kind === 'r' && x.featureSet === m.featureSet) : undefined;
  if (!r) return m.volume;
  return m.volume.map((v, i) => (r.volume[i] >= r.display.threshold ? v : NaN));
}

/** Mean and median of a map per region of each atlas (and over all its voxels), over the voxels where it has a value. */
export function regionStats(volume: Float32Array, atlases: Atlas[]): RegionStat[] {
  const stat = (atlas: string, region: string, vals: number[]): RegionStat => {
    vals.sort((a, b) => a - b);
    return {
      atlas,
      region,
      voxels: vals.length,
      mean: vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : NaN,
      median: sortedMedian(vals),
    };
  };
  const all: number[] = [];
  for (const v of volume) if (Number.isFinite(v)) all.push(v);
  const out = [stat('mask', 'all', all)];
  for (const a of atlases) {
    const by = new Map<number, number[]>();
    for (let i = 0; i < volume.length; i++) {
      const v = volume[i];
      const l = Math.round(a.values[i]);
      if (!Number.isFinite(v) || !(l > 0)) continue;
      (by.get(l) ?? by.set(l, []).get(l)!).push(v);
    }
    for (const l of [...by.keys()].sort((x, y) => x - y)) out.push(stat(a.name, a.names.get(l) ?? String(l), by.get(l)!));
  }
  return out;
}

/** The map records of encoding.json; a version-1 file (no list) is read from its feature-set and banded entries. */
export function mapRecordsOf(s: EncodingSummary | (Omit<EncodingSummary, 'maps' | 'version'> & { version: 1; maps?: undefined })): MapRecord[] {
  if (s.maps) return s.maps;
  const out: MapRecord[] = [];
  const png = (file: string) => join('mosaics', `${fileStem(file.replace(/^maps[\\/]/, '').replace(/\.nii\.gz$/, ''))}.png`);
  out.push({ kind: 'noise-ceiling', file: join('maps', 'noise-ceiling.nii.gz'), mosaic: join('mosaics', 'noise-ceiling.png'), label: 'noise ceiling', description: 'noise ceiling (fraction of variance)' });
  const bandedNames = new Set(s.banded.map((b) => b.name));
  for (const f of s.featureSets) {
    if (bandedNames.has(f.name)) continue;
    out.push({ kind: 'r', featureSet: f.name, file: f.map, mosaic: png(f.map), label: f.name, description: f.description });
  }
  for (const b of s.banded) {
    for (const [key, file] of Object.entries(b.maps)) {
      if (key === 'r') out.push({ kind: 'banded-r', banded: b.name, file, mosaic: png(file), label: b.name, description: `held-out r of banded ${b.name}` });
      else if (key === 'shared') out.push({ kind: 'shared', banded: b.name, file, mosaic: png(file), label: `${b.name}: shared R²`, description: `shared R2 in ${b.name}` });
      else if (key.startsWith('unique-')) {
        const space = key.slice('unique-'.length);
        out.push({ kind: 'unique', banded: b.name, space, file, mosaic: png(file), label: `${b.name}: unique R² of ${space}`, description: `unique R2 of ${space} in ${b.name}` });
      }
    }
  }
  return out;
}

/**
 * NiiVue's UMD bundle, the one build that runs from file://. The package is ESM-only and exports no path to
 * it, so it is looked for in the node_modules folders Node would search for the package; it is an optional
 * dependency (a slim install has none: the error says how to add it).
 */
const niivueBundle = (): string => optionalPackageFile('@niivue/niivue', join('dist', 'niivue.umd.js'), "the encoding report's brain viewer");

/** A count as the report's summary writes it: with thousands separators (1,508), in the tables too. */
export const fmtCount = (n: number): string => n.toLocaleString('en');

const fmt = (v: number, d = 3) => (Number.isFinite(v) ? (Math.abs(v) < 0.5 * 10 ** -d ? 0 : v).toFixed(d).replace('-', '−') : '–');

/** The order maps are listed in: accuracy first, then the ceiling, then the partitions, then the alphas and weights chosen. */
const KIND_ORDER: MapKind[] = ['r', 'banded-r', 'r-over-sqrt-nc', 'noise-ceiling', 'banded-r2', 'banded-r2-without', 'unique', 'shared', 'alpha', 'banded-alpha', 'band-weight'];

/** Regions as rows, the r maps as columns: it grows down, not across, so it fits the page. */
export function summaryTable(maps: LoadedMap[]): string {
  const rMaps = maps.filter((m) => m.kind === 'r' || m.kind === 'banded-r');
  if (!rMaps.length) return '';
  const keys: { atlas: string; region: string }[] = [];
  for (const m of rMaps) for (const r of m.regions) if (!keys.some((k) => k.atlas === r.atlas && k.region === r.region)) keys.push({ atlas: r.atlas, region: r.region });
  const hi = Math.max(0.05, ...rMaps.flatMap((m) => m.regions.map((r) => (Number.isFinite(r.mean) ? r.mean : 0))));
  const cell = (v: number | undefined) => {
    const f = v !== undefined && Number.isFinite(v) ? Math.max(0, Math.min(1, v / hi)) : 0;
    return `<td style="background:rgba(230,90,30,${(0.75 * f).toFixed(2)})">${fmt(v ?? NaN)}</td>`;
  };
  let lastAtlas = '';
  const body = keys
    .map((k) => {
      const atlasCell = k.atlas !== lastAtlas ? `<th class="atlas" rowspan="${keys.filter((x) => x.atlas === k.atlas).length}">${esc(k.atlas)}</th>` : '';
      lastAtlas = k.atlas;
      const voxels = rMaps[0].regions.find((r) => r.atlas === k.atlas && r.region === k.region)?.voxels ?? 0;
      return `<tr>${atlasCell}<td class="region">${esc(k.region)}</td><td>${fmtCount(voxels)}</td>${rMaps.map((m) => cell(m.regions.find((r) => r.atlas === k.atlas && r.region === k.region)?.mean)).join('')}</tr>`;
    })
    .join('\n');
  return `<div class="scroll"><table id="region-summary" class="summary"><thead><tr><th>atlas</th><th>region</th><th>voxels</th>${rMaps
    .map((m) => `<th class="set" title="${esc(m.description)}">${esc(m.label)}</th>`)
    .join('')}</tr></thead><tbody>
${body}
</tbody><caption>Mean held-out Pearson r over each region's voxels, per feature set (columns) and joint model; shading is relative to the largest mean.</caption></table></div>`;
}

export function regionTable(m: LoadedMap): string {
  const rows = m.regions
    .map((r) => `<tr><td>${esc(r.atlas === 'mask' ? 'whole mask' : `${r.atlas}: ${r.region}`)}</td><td data-v="${r.voxels}">${fmtCount(r.voxels)}</td><td data-v="${r.mean}">${fmt(r.mean)}</td><td data-v="${r.median}">${fmt(r.median)}</td></tr>`)
    .join('');
  return `<table class="regions sortable"><thead><tr><th data-sort="text" data-col="0">region</th><th data-sort="number" data-col="1">voxels</th><th data-sort="number" data-col="2">mean ${esc(m.display.quantity)}</th><th data-sort="number" data-col="3">median</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function mapSection(m: LoadedMap, id: number, viewer: boolean): string {
  return `<section class="map" id="map-${id}"><h3>${esc(m.label)} <small>${esc(m.display.quantity)}</small></h3>
<p class="note">${esc(m.description)}. ${esc(m.display.thresholdNote.charAt(0).toUpperCase() + m.display.thresholdNote.slice(1))}. <a href="${url(m.file)}">NIfTI</a> · <a href="${url(m.mosaic)}">figure (PNG)</a> ·
${viewer ? `<button type="button" class="show" data-map="${id}">show in the viewer</button>` : ''}</p>
<div class="pair"><img class="mosaic" src="${url(m.mosaic)}" alt="${esc(m.label)}: axial slices">${regionTable(m)}</div></section>`;
}

function conventionBox(s: EncodingSummary, maps: LoadedMap[]): string {
  const parts = maps.filter((m) => m.kind === 'unique' || m.kind === 'shared');
  if (!parts.length) return '';
  const negatives = parts.map((m) => {
    let neg = 0, def = 0;
    for (const v of m.volume) if (Number.isFinite(v)) {
      def++;
      if (v < 0) neg++;
    }
    return `${m.label}: ${fmtCount(neg)} of ${fmtCount(def)} voxels negative`;
  });
  return `<div class="convention" id="partition-convention"><h3>Variance partitioning: how to read unique and shared R²</h3>
<ul>
<li>Each model (the joint model, and the joint model without one feature space) is fitted on the training images and scored by its
<b>held-out R²</b> on the test images. A model that predicts the test data worse than their mean has a negative R²; it explains
no variance, so <b>every R² is floored at 0 before partitioning</b>.</li>
<li><b>unique(space)</b> = R²₊(all) − R²₊(all without the space); <b>shared</b> = R²₊(all) − Σ unique (for two spaces:
R²₊(A) + R²₊(B) − R²₊(A∪B)). A unique part can therefore never exceed the joint model's R², and the parts add up to it.</li>
<li>The partition is computed only where the <b>joint model explains variance</b> (R²(all) &gt; 0); elsewhere the maps hold no value
(NaN), and region means are over the voxels that have one.</li>
<li>Negative values are <b>kept, not clipped</b>: a negative unique part means the joint model predicted better without that space
(shrinkage spread over a useless space, or noise); a negative shared part means the spaces explain more together than the sum of
their parts. Both are shown in blue. ${esc(negatives.join('; '))}.</li>
</ul>
<p class="note">Recorded in encoding.json as <code>partitionConvention</code>: ${esc(s.partitionConvention)}.</p></div>`;
}

/**
 * The report's "noise ceiling" fact: whether there is one and where it came from (the config's noiseCeiling), so
 * "none" under the default 'auto' says why (no ncsnr.nii.gz beside the betas) rather than leaving it a puzzle.
 */
export function noiseCeilingFact(s: Pick<EncodingSummary, 'noiseCeiling' | 'config'>): string {
  const asked = s.config.noiseCeiling;
  const file = (p: string) => p.split(/[\\/]/).pop() ?? p;
  if (s.noiseCeiling) {
    if (asked === 'estimate') return 'yes (estimated from the test repetitions)';
    if (asked === 'auto' || asked === undefined) return 'yes (ncsnr.nii.gz beside the betas)';
    return typeof asked === 'string' ? `yes (${file(asked)})` : 'yes';
  }
  if (asked === 'auto' || asked === undefined) return "none (noiseCeiling 'auto': no ncsnr.nii.gz beside the betas)";
  if (asked === 'none') return "none (noiseCeiling 'none')";
  return 'none';
}

/**
 * The report's line on the voxels whose betas are the same on every test image (none when there are none, or in a
 * folder from before they were counted): their r and R² are NaN, blank in the maps and left out of every region mean.
 */
export function constantVoxelsFact(s: Pick<EncodingSummary, 'constantVoxels' | 'voxels'>): [string, string][] {
  const n = s.constantVoxels ?? 0;
  if (!n) return [];
  return [['constant voxels', `${fmtCount(n)} of ${fmtCount(s.voxels)}: the same betas on every test image, so no variance to explain; their r and R² are NaN (no value in the maps) and left out of the region means`]];
}

/**
 * The report's training-set line: with averageTrain false the fit's rows are trials (an image's repetitions each a
 * row), said with the images they show (a folder from before trainRows has the trials in trainImages).
 */
export function trainingFact(s: Pick<EncodingSummary, 'trainImages' | 'trainRows' | 'config'>): [string, string] {
  const trials = (s.config.nsd as { averageTrain?: boolean }).averageTrain === false;
  if (!trials) return ['training images', fmtCount(s.trainImages)];
  return ['training trials', s.trainRows === undefined ? fmtCount(s.trainImages) : `${fmtCount(s.trainRows)} (of ${fmtCount(s.trainImages)} images)`];
}

/**
 * Writes mosaics/, report_files/niivue.umd.js and report.html into the run folder; returns the files written
 * (relative), and `missing`: why the brain viewer is a note (@niivue/niivue is not installed; null when the
 * viewer is there). Without the viewer the rest of the report is complete.
 */
export async function writeEncodingReport(out: string, summary: EncodingSummary): Promise<{ files: string[]; missing: MissingDependencyError | null }> {
  const records = mapRecordsOf(summary)
    .map((r, k) => [r, k] as const)
    .sort((a, b) => KIND_ORDER.indexOf(a[0].kind) - KIND_ORDER.indexOf(b[0].kind) || a[1] - b[1])
    .map(([r]) => r);
  const files: string[] = [];
  const maps: LoadedMap[] = [];
  let grid: Grid | null = null;
  let affine: Affine | null = null;
  for (const r of records) {
    let read;
    try {
      read = await readNifti(join(out, r.file));
    } catch {
      if (r.kind === 'noise-ceiling' && !summary.noiseCeiling) continue; // (version-1 folders list it unconditionally)
      throw new Error(`encoding report: ${join(out, r.file)} (listed in encoding.json) cannot be read`);
    }
    grid ??= niftiGrid(read.header);
    affine ??= voxelToWorld(read.header);
    maps.push({ ...r, volume: read.data, bytes: await readFile(join(out, r.file)), display: mapDisplay(r.kind, read.data, summary.testImages, summary.config.mosaic), regions: [] });
  }
  if (!grid || !affine) throw new Error(`encoding report: ${out}/encoding.json lists no readable map`);
  const root = summary.config.nsd.root;
  const subject = summary.subject;
  const underlay = await findUnderlay(root, subject, grid);
  const atlases: Atlas[] = [];
  for (const name of summary.config.regions ?? []) {
    const path = roiPath(root, subject, name);
    try {
      const { header, data } = await readNifti(path);
      const g = niftiGrid(header);
      if (g[0] !== grid[0] || g[1] !== grid[1] || g[2] !== grid[2]) continue;
      atlases.push({ name, path, bytes: await readFile(path), values: data, names: await labelNames(root, name) });
    } catch {
      // absent atlas: said in the header (atlasesMissing)
    }
  }
  for (const m of maps) m.regions = regionStats(m.volume, atlases);

  // static figures
  await mkdir(join(out, 'mosaics'), { recursive: true });
  const opts = summary.config.mosaic ?? {};
  for (const m of maps) {
    const { bytes } = mosaicPng({
      grid,
      affine,
      volume: figureVolume(m, maps),
      underlay: underlay?.volume ?? null,
      title: `${m.label} · ${m.display.quantity} · subject ${subject}`,
      quantity: m.display.quantity,
      colormap: m.display.signed ? 'diverging' : 'warm',
      vmax: m.display.vmax,
      threshold: m.display.threshold,
      note: `${m.display.thresholdNote}; neurological view (left is left); underlay: ${underlay ? underlay.kind : 'none'}`,
      maxSlices: opts.slices,
      scale: opts.scale,
      columns: opts.columns,
    });
    await writeFileAtomic(join(out, m.mosaic), bytes);
    files.push(m.mosaic);
  }

  // the viewer's bundle, from an optional dependency: without it (a slim install) the report says how to add it
  let missing: MissingDependencyError | null = null;
  let bundle: string | null = null;
  try {
    bundle = niivueBundle();
  } catch (e) {
    if (!(e instanceof MissingDependencyError)) throw e;
    missing = e;
  }
  if (bundle) {
    await mkdir(join(out, REPORT_FILES), { recursive: true });
    await withAtomicPath(join(out, REPORT_FILES, 'niivue.umd.js'), (tmp) => copyFile(bundle, tmp));
    await writeFileAtomic(join(out, REPORT_FILES, 'NIIVUE-LICENSE.txt'), NIIVUE_LICENSE);
    files.push(join(REPORT_FILES, 'niivue.umd.js'), join(REPORT_FILES, 'NIIVUE-LICENSE.txt'));
  }
  await writeFileAtomic(join(out, 'report.html'), reportHtml(summary, maps, underlay, atlases, grid, affine, missing));
  files.push('report.html');
  return { files, missing };
}

/** What to do once NiiVue is installed (the note and the warning say it): the report stage alone runs again (stageState). */
export const ENCODE_REPORT_RERUN = 'run the same encode again: only its report stage runs, now with the viewer';

/** The note in place of the brain viewer when @niivue/niivue is not installed. */
function viewerNote(e: MissingDependencyError): string {
  return missingPartNote(
    'Brain viewer',
    'every map over the subject’s anatomy in three planes and 3D, with threshold and colour-map controls and each voxel’s values and regions on click (the static figures and region tables below are complete without it)',
    e,
    ENCODE_REPORT_RERUN,
  );
}

/** The voxel where the map is largest, and its position in mm: where the viewer opens. */
function startVoxel(volume: Float32Array, grid: Grid, affine: Affine): { vox: number[]; mm: number[] } | null {
  let best = -Infinity, at = -1;
  for (let i = 0; i < volume.length; i++) if (volume[i] > best) [best, at] = [volume[i], i];
  if (at < 0) return null;
  const vox = [at % grid[0], Math.floor(at / grid[0]) % grid[1], Math.floor(at / (grid[0] * grid[1]))];
  return { vox, mm: applyAffine(affine, vox[0], vox[1], vox[2]) };
}

function reportHtml(s: EncodingSummary, maps: LoadedMap[], underlay: Underlay | null, atlases: Atlas[], grid: Grid, affine: Affine, noViewer: MissingDependencyError | null): string {
  const b64 = (id: string, bytes: Buffer) => `<script type="application/octet-stream" id="${id}">${bytes.toString('base64')}</script>`;
  const viewerConfig = {
    underlay: underlay ? { id: 'vol-underlay', kind: underlay.kind } : null,
    maps: maps.map((m, k) => ({ id: `vol-map-${k}`, label: m.label, kind: m.kind, quantity: m.display.quantity, signed: m.display.signed, vmax: m.display.vmax, threshold: m.display.threshold })),
    atlases: atlases.map((a, k) => ({ id: `vol-atlas-${k}`, name: a.name, labels: Object.fromEntries(a.names) })),
    start: maps.length ? startVoxel(maps[0].volume, grid, affine) : null,
  };
  // the volumes the viewer shows, embedded, and its scripts (left out with the viewer)
  const viewerData = () => `${underlay ? b64('vol-underlay', underlay.bytes) : ''}
${maps.map((m, k) => b64(`vol-map-${k}`, m.bytes)).join('\n')}
${atlases.map((a, k) => b64(`vol-atlas-${k}`, a.bytes)).join('\n')}
<script type="application/json" id="viewer-config">${JSON.stringify(viewerConfig).replace(/</g, '\\u003c')}</script>
<script src="${REPORT_FILES}/niivue.umd.js"></script>
<script>${VIEWER_SCRIPT}</script>`;
  const groups: [string, MapKind[]][] = [
    ['Accuracy: held-out r', ['r', 'banded-r']],
    ['Noise ceiling and normalised accuracy', ['noise-ceiling', 'r-over-sqrt-nc']],
    ['Joint models: held-out R² and variance partitioning', ['banded-r2', 'banded-r2-without', 'unique', 'shared']],
    ['Regularisation chosen by cross-validation: alpha and band weights', ['alpha', 'banded-alpha', 'band-weight']],
  ];
  const sections = groups
    .map(([title, kinds]) => {
      const inGroup = maps.map((m, k) => [m, k] as const).filter(([m]) => kinds.includes(m.kind));
      if (!inGroup.length) return '';
      return `<h2>${esc(title)}</h2>\n${kinds.includes('unique') ? conventionBox(s, maps) : ''}${inGroup.map(([m, k]) => mapSection(m, k, noViewer === null)).join('\n')}`;
    })
    .join('\n');
  const sessions = sessionsFact({ sessions: s.sessions, nsd: s.config.nsd as SessionsRead['nsd'] });
  const meta: [string, string][] = [
    ['subject', String(s.subject)],
    ['voxels', `${fmtCount(s.voxels)} (${s.roi})`],
    ...constantVoxelsFact(s),
    trainingFact(s),
    ['test images', `${fmtCount(s.testImages)} (betas averaged over repetitions)`],
    ...(sessions ? [['sessions', sessions.text] as [string, string]] : []),
    ['anatomy', underlay ? `${underlay.kind} (${underlay.path.split(/[\\/]/).slice(-2).join('/')})` : 'none found (no T1_to_func1pt8mm, mean or brainmask)'],
    ['atlases', atlases.map((a) => a.name).join(', ') + (s.atlasesMissing.length ? `; not found: ${s.atlasesMissing.join(', ')}` : '')],
    ['noise ceiling', noiseCeilingFact(s)],
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>brainlatent encoding — subject ${s.subject}</title>
<style>${BASE_CSS}${REPORT_CSS}${VIEWER_CSS}</style></head><body>
<h1>Encoding models, subject ${s.subject}</h1>
<table class="meta"><tbody>${meta.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</tbody></table>
${sessions?.warning ? warningBox(sessions.warning) : ''}
<h2>Brain viewer</h2>
${noViewer ? viewerNote(noViewer) : `<div id="viewer" class="viewer">
<div class="canvas-box"><canvas id="brain-canvas"></canvas></div>
<div class="controls">
<label>map <select id="map-select">${maps.map((m, k) => `<option value="${k}">${esc(m.label === m.display.quantity ? m.label : `${m.label} — ${m.display.quantity}`)}</option>`).join('')}</select></label>
<label>colour map <select id="colormap-select"></select></label>
<label>threshold <input id="threshold" type="range" min="0" max="1" step="0.001"> <output id="threshold-value"></output></label>
<label>maximum <input id="vmax" type="number" step="any"></label>
<label class="check" id="show-negative-label"${maps[0]?.display.signed ? '' : ' hidden'}><input id="show-negative" type="checkbox" checked> negative values (blue)</label>
<label>view <select id="slice-type"><option value="multiplanar">three planes + 3D</option><option value="axial">axial</option><option value="coronal">coronal</option><option value="sagittal">sagittal</option></select></label>
<p class="hint">Click or drag in a slice to move the crosshair; scroll to change slice. ${underlay ? `Underlay: ${esc(underlay.kind)}.` : 'No anatomy found: maps are shown alone.'}</p>
<div id="voxel-info" class="info" aria-live="polite">Click a voxel.</div>
</div>
</div>`}
<h2>Mean accuracy per region</h2>
${summaryTable(maps)}
${sections}
${noViewer ? '' : viewerData()}
<script>${SORTABLE_SCRIPT}</script>
</body></html>
`;
}

/** niivue.umd.js is redistributed with each report: its licence goes with it (BSD 2-Clause, github.com/niivue/niivue). */
const NIIVUE_LICENSE = `niivue.umd.js is NiiVue (https://github.com/niivue/niivue), distributed under this licence:

BSD 2-Clause License

Copyright (c) 2021, Niivue
All rights reserved.

Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this
   list of conditions and the following disclaimer.

2. Redistributions in binary form must reproduce the above copyright notice,
   this list of conditions and the following disclaimer in the documentation
   and/or other materials provided with the distribution.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE
FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
`;

const REPORT_CSS = `
table.meta th{text-align:left;width:11em}table.meta td{text-align:left}
table.summary{font-size:13px}table.summary th.set{max-width:9em;white-space:normal;overflow-wrap:anywhere;vertical-align:bottom}
table.summary th.atlas{vertical-align:top;text-align:left;background:#fafafa}table.summary td.region{text-align:left}
section.map{margin:1.2em 0 1.8em}section.map h3 small{color:#666;font-weight:normal}
.pair{display:flex;gap:1.5em;align-items:flex-start;flex-wrap:wrap}.pair img.mosaic{max-width:min(100%,820px);height:auto;border:1px solid #ccc}
table.regions{font-size:12.5px}table.regions td:first-child{white-space:nowrap}
.convention{background:#f4f8fc;border:1px solid #b7cde3;border-radius:4px;padding:.3em 1em .6em;max-width:75em}
.convention h3{margin-top:.5em}.convention li{margin:.3em 0}
button.show{font:inherit;font-size:12.5px;padding:0 .5em;cursor:pointer}
`;
