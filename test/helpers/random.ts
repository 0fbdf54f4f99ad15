/** Deterministic test data: a seeded generator and planted linear problems. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  const uniform = () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

export interface Problem {
  x: { data: Float32Array; rows: number; cols: number };
  y: { data: Float32Array; rows: number; cols: number };
}

/** Y = X·W + noise (per-target noise level rising with the target index), with offsets. */
export function planted(n: number, p: number, t: number, seed: number): Problem {
  const g = rng(seed);
  const x = new Float32Array(n * p), y = new Float32Array(n * t), w = new Float64Array(p * t);
  for (let i = 0; i < x.length; i++) x[i] = g() + 0.2;
  for (let i = 0; i < w.length; i++) w[i] = g() / Math.sqrt(p);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < t; j++) {
      let s = 1.0;
      for (let k = 0; k < p; k++) s += x[i * p + k] * w[k * t + j];
      y[i * t + j] = s + (0.3 + (2 * j) / t) * g();
    }
  }
  return { x: { data: x, rows: n, cols: p }, y: { data: y, rows: n, cols: t } };
}
