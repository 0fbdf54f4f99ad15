import type { NativeBuildInfo } from './addonTypes.js';
import { binding } from './binding.js';

/** What the native engine was built with: BLAS vendor, thread count, backends (and why CUDA is missing). */
export function buildInfo(): NativeBuildInfo {
  return binding().buildInfo();
}
