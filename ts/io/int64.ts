/** int64/uint64 values read as float64: exact up to ±(2^53 − 1), refused beyond (a rounded value is a silent error). */

const LIMIT = BigInt(Number.MAX_SAFE_INTEGER);

/** The words for a value float64 cannot hold exactly, after "holds the value …". */
export const INEXACT_INT64 = 'beyond ±(2^53 − 1), where float64 (which it is read as) stops holding integers exactly';

/** Whether float64 holds `x` exactly (|x| ≤ 2^53 − 1). */
export function isExactInt64(x: bigint): boolean {
  return x <= LIMIT && x >= -LIMIT;
}

/** The index of the first value beyond ±(2^53 − 1), or -1. */
export function firstInexactInt64(v: BigInt64Array | BigUint64Array): number {
  for (let i = 0; i < v.length; i++) if (!isExactInt64(v[i])) return i;
  return -1;
}

/** `v` as float64; `refuse(i)` names the first value float64 would round. */
export function int64ToFloat64(v: BigInt64Array | BigUint64Array, refuse: (index: number) => Error): Float64Array {
  const bad = firstInexactInt64(v);
  if (bad >= 0) throw refuse(bad);
  const out = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = Number(v[i]);
  return out;
}
