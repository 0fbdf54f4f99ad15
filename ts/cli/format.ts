/** Small text helpers for CLI summaries. */

/** Counts of chosen alphas per grid value, as aligned text rows with a bar. */
export function alphaHistogram(alphas: readonly number[], chosen: Float32Array): string {
  const counts = alphas.map((a) => {
    const f = Math.fround(a);
    let c = 0;
    for (const v of chosen) if (v === f) c++;
    return c;
  });
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
