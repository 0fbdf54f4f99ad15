/**
 * float32 → IEEE 754 binary16 (half) bits, rounded to nearest, ties to even: the one conversion the float16
 * fixtures use, mirrored bit for bit by native/core/bench/sd1_weights.cpp (float_to_half_bits). Overflow
 * gives ±inf, values below half the smallest subnormal (2^-25) give ±0, NaN stays a quiet NaN.
 */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The half bits of `x` rounded to float32 first (Math.fround), then to half. */
export function floatToHalfBits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15; // the half's biased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // a half subnormal m · 2^-24 (or zero): m = M · 2^(e − 14) for the 24-bit significand M
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let h = m >>> shift;
    if (rest > half || (rest === half && h & 1)) h++; // a carry to 0x400 is the smallest normal
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // a carry may reach the exponent, or inf (0x7c00)
  return sign | h;
}

/** The float value of half bits (exact). */
export function halfBitsToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  if (exp === 0) return sign * mant * 2 ** -24;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

/** Half bits of a float32 array (little-endian bytes when viewed as Uint8Array on x86/ARM). */
export function toHalf(values: Float32Array | number[]): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = floatToHalfBits(values[i]);
  return out;
}
