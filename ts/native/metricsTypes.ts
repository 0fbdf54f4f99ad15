/** Typings of the native image metrics (native/addon/addon_metrics.cpp). */
export interface NativeSsimOptions {
  sigma?: number;
  truncate?: number;
  dataRange?: number;
}

export interface MetricsBinding {
  /** Per-image Pearson r of the flattened uint8 images. */
  metricsPixcorr(a: Uint8Array, b: Uint8Array, count: number, height: number, width: number, channels: number): Promise<Float64Array>;
  /** Per-image mean SSIM on grayscale (skimage's Gaussian-weighted definition). */
  metricsSsim(
    a: Uint8Array,
    b: Uint8Array,
    count: number,
    height: number,
    width: number,
    channels: number,
    options?: NativeSsimOptions,
  ): Promise<Float64Array>;
  /** nA × nB Pearson correlations between the rows of a and the rows of b. */
  metricsCorrelation(a: Float32Array, nA: number, b: Float32Array, nB: number, dim: number): Promise<Float32Array>;
}
