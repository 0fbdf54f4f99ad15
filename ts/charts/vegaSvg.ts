/**
 * Charts for the reports: a Vega-Lite spec compiled by vega-lite and rendered to an SVG string by vega's
 * headless renderer, in Node, at report time — so a report is a static file with no script for its charts.
 * Specs carry their data inline (`data: {values: [...]}`); nothing is ever loaded from a URL or a file.
 */
import type { Loader } from 'vega';
import type { TopLevelSpec } from 'vega-lite';

import { InvalidArgumentError } from '../errors.js';
import { loadCharts } from '../optionalDependencies.js';

export interface VegaSvgOptions {
  /** Called with each warning vega raises while rendering (a scale domain with a zero on a log axis, say). Default: ignored. */
  onWarning?: (message: string) => void;
}

/** The reports' look: system font, quiet grid, sizes readable in a page and in print. */
export const CHART_CONFIG = {
  font: 'system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif',
  background: 'white',
  view: { stroke: null },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', gridColor: '#e6e6e6', domainColor: '#888', tickColor: '#888' },
  legend: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal' },
  title: { fontSize: 13, fontWeight: 'normal', anchor: 'start' },
  header: { labelFontSize: 12, titleFontSize: 12 },
} as const;

/** A loader that refuses every load: a report's charts never depend on a file or the network. */
function offlineLoader(loader: () => Loader): Loader {
  const l = loader();
  const refuse = async (uri: string): Promise<never> => {
    throw new InvalidArgumentError(`charts: a chart asked to load '${uri}'; report charts must carry their data inline (data.values)`);
  };
  l.load = refuse;
  l.sanitize = refuse;
  return l;
}

let chartCount = 0;

/**
 * Renders a Vega-Lite (v5) spec to a standalone `<svg>` string. Compile-time warnings of vega-lite (an
 * encoding it drops, a field type it ignores) are errors: every spec in this package is written to compile
 * cleanly. Element ids in the SVG (clip paths, gradients) are made unique per chart, so several charts can be
 * inlined into one HTML page.
 */
export async function renderVegaLiteSvg(spec: object, options: VegaSvgOptions = {}): Promise<string> {
  if (!spec || typeof spec !== 'object' || Array.isArray(spec)) throw new InvalidArgumentError('renderVegaLiteSvg: expected a Vega-Lite spec object');
  // optional dependencies: a slim install (--omit=optional) has no charts, and says how to add them
  const { vega: { loader, parse, View }, 'vega-lite': { compile } } = await loadCharts();
  const warnings: string[] = [];
  const logger = {
    level(): number { return 0; },
    warn: (...args: readonly unknown[]) => {
      warnings.push(args.map(String).join(' '));
      return logger;
    },
    info: () => logger,
    debug: () => logger,
    error: (...args: readonly unknown[]) => {
      throw new InvalidArgumentError(`Vega-Lite: ${args.map(String).join(' ')}`);
    },
  };
  let compiled;
  try {
    compiled = compile({ config: CHART_CONFIG, ...(spec as TopLevelSpec) } as TopLevelSpec, { logger: logger as never });
  } catch (e) {
    throw new InvalidArgumentError(`renderVegaLiteSvg: the Vega-Lite spec does not compile: ${(e as Error).message}`);
  }
  if (warnings.length) throw new InvalidArgumentError(`renderVegaLiteSvg: Vega-Lite warned while compiling the spec: ${warnings.join('; ')}`);
  const urls = (compiled.spec.data ?? []).flatMap((d) => ('url' in d && d.url !== undefined ? [String(typeof d.url === 'string' ? d.url : JSON.stringify(d.url))] : []));
  if (urls.length) throw new InvalidArgumentError(`renderVegaLiteSvg: the spec loads data from ${urls.join(', ')}; report charts must carry their data inline (data.values)`);
  const errors: string[] = [];
  const view = new View(parse(compiled.spec), { renderer: 'none', loader: offlineLoader(loader) });
  view.logger({
    level: () => 0,
    warn: (...args: readonly unknown[]) => {
      options.onWarning?.(args.map(String).join(' '));
      return view;
    },
    info: () => view,
    debug: () => view,
    error: (...args: readonly unknown[]) => {
      errors.push(args.map(String).join(' '));
      return view;
    },
  } as never);
  try {
    const svg = await view.toSVG();
    if (errors.length) throw new InvalidArgumentError(`renderVegaLiteSvg: vega failed to render the chart: ${errors.join('; ')}`);
    return uniqueIds(svg, `c${++chartCount}-`);
  } finally {
    view.finalize();
  }
}

/** Prefixes every id="…" and its references (url(#…), href="#…") so inlined charts do not collide. */
function uniqueIds(svg: string, prefix: string): string {
  const ids = new Set<string>();
  for (const m of svg.matchAll(/\sid="([^"]+)"/g)) ids.add(m[1]);
  if (ids.size === 0) return svg;
  return svg
    .replace(/\sid="([^"]+)"/g, (_, id: string) => ` id="${prefix}${id}"`)
    .replace(/url\(#([^)]+)\)/g, (m, id: string) => (ids.has(id) ? `url(#${prefix}${id})` : m))
    .replace(/href="#([^"]+)"/g, (m, id: string) => (ids.has(id) ? `href="#${prefix}${id}"` : m));
}
