/**
 * OpenBLAS's CPU kernels in a bench's comparison processes. Debian's numpy and scikit-learn link the same
 * OpenBLAS 0.3.21 as the engine, which takes Intel CPUs past its table (Raptor Lake, Emerald Rapids, …) for a Prescott (SSE3 kernels,
 * a fifth of an AVX-512 GEMM rate). The engine corrects that in its own process (buildInfo().blasCore);
 * its comparisons get the same core by OPENBLAS_CORETYPE, so that they measure the code, not the kernels.
 */
import { nativeSync } from '../native/call.js';

/** `base` with OPENBLAS_CORETYPE set to the engine's core where the engine chose it (else `base` as it is). */
export function sameKernelsEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const core = nativeSync((b) => b.buildInfo().blasCore);
  return core.source === 'engine' ? { ...base, OPENBLAS_CORETYPE: core.name } : base;
}

/** The kernels for a bench's first line: "Cooperlake kernels (…why…)". */
export function kernelsLine(): string {
  const core = nativeSync((b) => b.buildInfo().blasCore);
  if (!core.name) return 'kernels: the BLAS is not OpenBLAS';
  if (core.source === 'engine') return `${core.name} kernels, in the comparisons too (OPENBLAS_CORETYPE): ${core.note}`;
  const line = `${core.name} kernels (${core.source === 'OPENBLAS_CORETYPE' ? "OPENBLAS_CORETYPE's" : "OpenBLAS's"} choice)`;
  return core.note ? `${line}: ${core.note}` : line;
}
