/** A plain float64 ridge reference: centring, Cholesky solve, brute-force K-fold CV. */

function cholSolve(a: Float64Array, b: Float64Array, m: number, rhs: number): Float64Array {
  const l = Float64Array.from(a);
  for (let j = 0; j < m; j++) {
    let s = l[j * m + j];
    for (let k = 0; k < j; k++) s -= l[j * m + k] ** 2;
    l[j * m + j] = Math.sqrt(s);
    for (let i = j + 1; i < m; i++) {
      let v = l[i * m + j];
      for (let k = 0; k < j; k++) v -= l[i * m + k] * l[j * m + k];
      l[i * m + j] = v / l[j * m + j];
    }
  }
  const x = Float64Array.from(b);
  for (let c = 0; c < rhs; c++) {
    for (let i = 0; i < m; i++) {
      let v = x[i * rhs + c];
      for (let k = 0; k < i; k++) v -= l[i * m + k] * x[k * rhs + c];
      x[i * rhs + c] = v / l[i * m + i];
    }
    for (let i = m - 1; i >= 0; i--) {
      let v = x[i * rhs + c];
      for (let k = i + 1; k < m; k++) v -= l[k * m + i] * x[k * rhs + c];
      x[i * rhs + c] = v / l[i * m + i];
    }
  }
  return x;
}

export interface RefFit { w: Float64Array; xm: Float64Array; ym: Float64Array }

/** Ridge on the given rows with intercept by centring: W = (XcᵀXc + αI)⁻¹ XcᵀYc. */
export function refFit(x: ArrayLike<number>, y: ArrayLike<number>, p: number, t: number, rows: number[], alpha: number, intercept = true): RefFit {
  const m = rows.length;
  const xm = new Float64Array(p), ym = new Float64Array(t);
  if (intercept) {
    for (const r of rows) {
      for (let j = 0; j < p; j++) xm[j] += x[r * p + j] / m;
      for (let j = 0; j < t; j++) ym[j] += y[r * t + j] / m;
    }
  }
  const g = new Float64Array(p * p), b = new Float64Array(p * t);
  for (const r of rows) {
    for (let i = 0; i < p; i++) {
      const xi = x[r * p + i] - xm[i];
      for (let j = 0; j < p; j++) g[i * p + j] += xi * (x[r * p + j] - xm[j]);
      for (let j = 0; j < t; j++) b[i * t + j] += xi * (y[r * t + j] - ym[j]);
    }
  }
  for (let i = 0; i < p; i++) g[i * p + i] += alpha;
  return { w: cholSolve(g, b, p, t), xm, ym };
}

export function refPredict(f: RefFit, x: ArrayLike<number>, p: number, t: number, row: number, j: number): number {
  let s = f.ym[j];
  for (let k = 0; k < p; k++) s += (x[row * p + k] - f.xm[k]) * f.w[k * t + j];
  return s;
}

/** Mean fold R² per (alpha, target) and the best alpha per target (ties to the larger alpha). */
export function refCv(x: ArrayLike<number>, y: ArrayLike<number>, n: number, p: number, t: number, alphas: number[], folds: ArrayLike<number>, k: number) {
  const cv = new Float64Array(alphas.length * t);
  for (let v = 0; v < k; v++) {
    const tr: number[] = [], va: number[] = [];
    for (let i = 0; i < n; i++) (folds[i] === v ? va : tr).push(i);
    alphas.forEach((alpha, a) => {
      const f = refFit(x, y, p, t, tr, alpha);
      for (let j = 0; j < t; j++) {
        let ymean = 0;
        for (const i of va) ymean += y[i * t + j] / va.length;
        let sse = 0, sst = 0;
        for (const i of va) {
          const d = refPredict(f, x, p, t, i, j) - y[i * t + j];
          sse += d * d;
          sst += (y[i * t + j] - ymean) ** 2;
        }
        cv[a * t + j] += (1 - sse / sst) / k;
      }
    });
  }
  const best = Array.from({ length: t }, (_, j) => {
    let b = 0;
    for (let a = 1; a < alphas.length; a++) {
      const s = cv[a * t + j], bs = cv[b * t + j];
      if (s > bs || (s === bs && alphas[a] > alphas[b])) b = a;
    }
    return alphas[b];
  });
  return { cv, best };
}
