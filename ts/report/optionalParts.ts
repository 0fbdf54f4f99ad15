/**
 * The one rule for a report part that needs an optional dependency (the charts: vega and vega-lite; the encoding
 * report's brain viewer: @niivue/niivue), which `npm install brainlatent --omit=optional` leaves out: the report is
 * still written, with its tables, numbers and images, and each such part is replaced by a short visible note that
 * says what it would show and the exact install line (the loader's MissingDependencyError). The run warns once
 * (`missingPartsWarning`), and the stage records the packages it did without (`missingDependenciesSummary`), so that
 * once they are installed the same command redoes the report stage alone (stageState).
 */
import { renderVegaLiteSvg } from '../charts/vegaSvg.js';
import { MissingDependencyError } from '../errors.js';
import { esc } from './html.js';

/** Inline style, so the note looks the same in every report, whatever its own stylesheet. */
const NOTE_STYLE = 'border:1px dashed #b08a00;background:#fffbe6;color:#5c4700;padding:8px 12px;margin:8px 0;max-width:46em;font-size:13px;line-height:1.45';

/**
 * The note in place of a part of a report: "<part> not included. It would show <what>.", and how to add it.
 * `rerun`: what to do once the packages are installed ("run the same command again: only its report stage runs").
 */
export function missingPartNote(part: string, what: string, e: MissingDependencyError, rerun: string): string {
  const one = e.packages.length === 1;
  const list = one ? e.packages[0] : `${e.packages.slice(0, -1).join(', ')} and ${e.packages[e.packages.length - 1]}`;
  return (
    `<div class="missing-dependency" role="note" style="${NOTE_STYLE}"><b>${esc(part)} not included.</b> It would show ${esc(what)}. ` +
    `It needs ${esc(list)}, ${one ? 'an optional dependency' : 'optional dependencies'} of brainlatent that ${one ? 'is' : 'are'} not installed here. ` +
    `To add it: <code>${esc(e.install)}</code>, then ${esc(rerun)}.</div>`
  );
}

/** A Vega-Lite spec's title, as a chart's note names it (“z decoder: chosen α” (share of its 512 targets)). */
export function chartTitle(spec: object): string {
  const t = (spec as { title?: unknown }).title;
  if (typeof t === 'string') return `“${t}”`;
  if (t && typeof t === 'object') {
    const { text, subtitle } = t as { text?: unknown; subtitle?: unknown };
    const sub = Array.isArray(subtitle) ? subtitle.join(', ') : typeof subtitle === 'string' ? subtitle : '';
    const main = Array.isArray(text) ? text.join(' ') : typeof text === 'string' ? text : '';
    if (main) return sub ? `“${main}” (${sub})` : `“${main}”`;
  }
  return 'a chart';
}

/** A report's charts: each rendered to SVG, or, without vega and vega-lite, a note in its place. */
export interface ReportCharts {
  /** One entry per spec, in order: an `<svg>`, or the note that replaces it. */
  html: string[];
  /** Why the charts are notes (null when they were drawn). */
  missing: MissingDependencyError | null;
}

/**
 * Renders each spec (renderVegaLiteSvg); when the chart packages are not installed, every chart becomes a note
 * naming what it would show. Any other error is thrown as it was.
 */
export async function chartsOrNotes(specs: readonly object[], rerun: string): Promise<ReportCharts> {
  const settled = await Promise.allSettled(specs.map((s) => renderVegaLiteSvg(s)));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (!failed) return { html: settled.map((s) => (s as PromiseFulfilledResult<string>).value), missing: null };
  if (!(failed.reason instanceof MissingDependencyError)) throw failed.reason;
  const missing = failed.reason;
  return { html: specs.map((s) => missingPartNote('Chart', chartTitle(s), missing, rerun)), missing };
}

/** The one warning line of a run whose report left parts out: which packages, the install line, and what then. */
export function missingPartsWarning(report: string, parts: string, e: MissingDependencyError, rerun: string): string {
  const list = e.packages.length === 1 ? e.packages[0] : `${e.packages.slice(0, -1).join(', ')} and ${e.packages[e.packages.length - 1]}`;
  return `${report} written without ${parts}: ${list} ${e.packages.length === 1 ? 'is' : 'are'} not installed (optional dependencies of brainlatent); ${e.install}, then ${rerun}`;
}

/**
 * What a stage's marker records of the packages its outputs were made without: `summary.missingDependencies`. Its
 * `warnings` are the run's warning (reconstruct and encode report them, also when the stage is skipped: the report
 * still lacks the parts), and once every package of `packages` is installed, stageState no longer counts the stage as
 * done, so the next run redoes it.
 */
export interface MissingDependenciesRecord {
  packages: string[];
  install: string;
  warnings: string[];
}

/** The stage summary's entry for a report written without `parts` (null when nothing was missing). */
export function missingDependenciesSummary(
  report: string,
  parts: string,
  e: MissingDependencyError | null,
  rerun: string,
): { missingDependencies: MissingDependenciesRecord } | Record<string, never> {
  if (!e) return {};
  return { missingDependencies: { packages: [...e.packages], install: e.install, warnings: [missingPartsWarning(report, parts, e, rerun)] } };
}

/** The warnings a stage's summary records of a report written without parts (none when it was complete). */
export function missingDependenciesWarnings(summary: Record<string, unknown> | undefined): string[] {
  const w = (summary?.missingDependencies as { warnings?: unknown } | undefined)?.warnings;
  return Array.isArray(w) ? w.filter((x): x is string => typeof x === 'string') : [];
}
