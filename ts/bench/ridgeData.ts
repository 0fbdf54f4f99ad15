/**
 * Deterministic planted-map data for the ridge benchmark (ridge.md §4): a 32-factor latent
 * signal drives X and Y, targets' SNR spans 0.01-10 and every eighth target is pure noise.
 */
import { writeNpy } from '../io/npy.js';

function gaussian(seed: number): () => number {
  let s = seed >>> 0 || 1;
  const u = () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  let spare: number | null = null;
  return () => {
    if (spare !== null) { const v = spare; spare = null; return v; }
    const r = Math.sqrt(-2 * Math.log(u())), th = 2 * Math.PI * u();
    spare = r * Math.sin(th);
    return r * Math.cos(th);
  };
}

export interface RidgeBenchShape { name: string; nTrain: number; nTest: number; p: number; t: number }

export interface RidgeBenchData {
  xTrain: Float32Array; yTrain: Float32Array; xTest: Float32Array; yTest: Float32Array;
  signal: Uint8Array; // 1 where the target carries signal
}

export function plantedData(s: RidgeBenchShape, seed = 1234): RidgeBenchData {
  const g = gaussian(seed);
  const n = s.nTrain + s.nTest, f = 32;
  const lat = new Float32Array(n * f).map(() => g());
  const load = new Float32Array(f * s.p).map(() => g() * 0.35);
  const x = new Float32Array(n * s.p);
  for (let i = 0; i < n; i++) {
    const row = x.subarray(i * s.p, (i + 1) * s.p);
    for (let j = 0; j < s.p; j++) row[j] = g();
    for (let k = 0; k < f; k++) {
      const a = lat[i * f + k], l = load.subarray(k * s.p, (k + 1) * s.p);
      for (let j = 0; j < s.p; j++) row[j] += a * l[j];
    }
  }
  // Each target: a random mix of the latent factors at SNR log-uniform in [0.01, 10].
  const w = new Float32Array(f * s.t), scale = new Float32Array(s.t), signal = new Uint8Array(s.t);
  for (let j = 0; j < s.t; j++) {
    signal[j] = j % 8 === 7 ? 0 : 1;
    let norm = 0;
    for (let k = 0; k < f; k++) { const v = g(); w[k * s.t + j] = v; norm += v * v; }
    const snr = 10 ** (-2 + (3 * ((j * 7919) % s.t)) / s.t);
    scale[j] = signal[j] ? Math.sqrt(snr / norm) : 0;
  }
  const y = new Float32Array(n * s.t);
  for (let i = 0; i < n; i++) {
    const row = y.subarray(i * s.t, (i + 1) * s.t);
    for (let j = 0; j < s.t; j++) row[j] = g();
    for (let k = 0; k < f; k++) {
      const a = lat[i * f + k];
      for (let j = 0; j < s.t; j++) row[j] += a * w[k * s.t + j] * scale[j];
    }
  }
  return {
    xTrain: x.subarray(0, s.nTrain * s.p), xTest: x.subarray(s.nTrain * s.p),
    yTrain: y.subarray(0, s.nTrain * s.t), yTest: y.subarray(s.nTrain * s.t),
    signal,
  };
}

export async function writeBenchData(dir: string, s: RidgeBenchShape, d: RidgeBenchData): Promise<void> {
  await writeNpy(`${dir}/x_train.npy`, d.xTrain, [s.nTrain, s.p]);
  await writeNpy(`${dir}/y_train.npy`, d.yTrain, [s.nTrain, s.t]);
  await writeNpy(`${dir}/x_test.npy`, d.xTest, [s.nTest, s.p]);
  await writeNpy(`${dir}/y_test.npy`, d.yTest, [s.nTest, s.t]);
  await writeNpy(`${dir}/signal.npy`, d.signal, [s.t]);
}

/** Mean held-out R² over the targets that carry signal. */
export function heldOutR2(pred: Float32Array, y: Float32Array, rows: number, t: number, signal: Uint8Array): number {
  const mean = new Float64Array(t), sse = new Float64Array(t), sst = new Float64Array(t);
  for (let i = 0; i < rows; i++) for (let j = 0; j < t; j++) mean[j] += y[i * t + j] / rows;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < t; j++) {
      const d = pred[i * t + j] - y[i * t + j], c = y[i * t + j] - mean[j];
      sse[j] += d * d; sst[j] += c * c;
    }
  }
  let s = 0, c = 0;
  for (let j = 0; j < t; j++) if (signal[j]) { s += 1 - sse[j] / sst[j]; c++; }
  return s / c;
}
