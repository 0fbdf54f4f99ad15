/** Small text helpers for CLI summaries. */

/** Counts of chosen alphas per grid value, as aligned text rows with a bar. */
export function alphaHistogram(alphas: readonly number[], chosen: Float32Array): string {
  // One indexed pass (this runs once, unoptimised: iterating a typed array per alpha took ~25 ms at 4,096 targets).
  const slot = new Map(alphas.map((a, i) => [Math.fround(a), i]));
  const counts = alphas.map(() => 0);
  for (let j = 0; j < chosen.length; j++) {
    const i = slot.get(chosen[j]);
    if (i !== undefined) counts[i]++;
  }
  const max = Math.max(1, ...counts);
  return alphas
    .map((a, i) => `  ${a.toExponential(2).padStart(9)}  ${String(counts[i]).padStart(7)}  ${'█'.repeat(Math.round((30 * counts[i]) / max))}`)
    .join('\n');
}

export function mean(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return a.length ? s / a.length : NaN;
}

export function seconds(s: number): string {
  return s < 1 ? `${(s * 1000).toFixed(0)} ms` : `${s.toFixed(2)} s`;
}

/**
 * A path as one shell word, to paste after a command: bare when it needs no quoting, else in double quotes, or in
 * single quotes when it holds a character double quotes would still expand (" $ ` \\ !). The demo's last line is
 * `open "<out>/run/report.html"`: a folder with a space in its name was two words.
 */
export function shellWord(s: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  if (!/["$`\\!]/.test(s)) return `"${s}"`;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
