/** Typings of the native image metrics (native/addon/addon_metrics.cpp). */
import type { CancelToken } from './engineTypes.js';

export interface NativeSsimOptions {
  sigma?: number;
  truncate?: number;
  dataRange?: number;
}

export interface MetricsBinding {
  /**
   * Per-image Pearson r of the flattened uint8 images. Progress (pairs done, pairs in all) about a hundred times at
   * most; the token checked before each pair.
   */
  metricsPixcorr(
    a: Uint8Array,
    b: Uint8Array,
    count: number,
    height: number,
    width: number,
    channels: number,
    onProgress?: (done: number, total: number) => void,
    cancel?: CancelToken,
  ): Promise<Float64Array>;
  /** Per-image mean SSIM on grayscale (skimage's Gaussian-weighted definition); progress and token as metricsPixcorr's. */
  metricsSsim(
    a: Uint8Array,
    b: Uint8Array,
    count: number,
    height: number,
    width: number,
    channels: number,
    options?: NativeSsimOptions,
    onProgress?: (done: number, total: number) => void,
    cancel?: CancelToken,
  ): Promise<Float64Array>;
  /** nA × nB Pearson correlations between the rows of a and the rows of b; the token checked between rows and GEMM slices. */
  metricsCorrelation(a: Float32Array, nA: number, b: Float32Array, nB: number, dim: number, cancel?: CancelToken): Promise<Float32Array>;
  /** The same on rows of bytes (images' pixels, read in place: no float copy of them). */
  metricsPixelCorrelation(a: Uint8Array, nA: number, b: Uint8Array, nB: number, dim: number, cancel?: CancelToken): Promise<Float32Array>;
  /** ts/io/resize.ts's resizeRgb of src (height × width × 3) into dst (outHeight × outWidth × 3), on the calling thread: the same bytes. */
  imageResizeRgb(src: Uint8Array, width: number, height: number, dst: Uint8Array, outWidth: number, outHeight: number): void;
}
