/** The float64 Pearson correlation of two equal-length sequences: the tests' reference for r. */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i] / n;
    mb += b[i] / n;
  }
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

/** The float64 coefficient of determination 1 − Σ(p − a)² / Σ(a − ā)²: the tests' reference for R². */
export function r2(p: ArrayLike<number>, a: ArrayLike<number>): number {
  const n = a.length;
  let m = 0;
  for (let i = 0; i < n; i++) m += a[i] / n;
  let sse = 0, sst = 0;
  for (let i = 0; i < n; i++) {
    sse += (p[i] - a[i]) ** 2;
    sst += (a[i] - m) ** 2;
  }
  return 1 - sse / sst;
}
