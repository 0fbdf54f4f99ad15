/**
 * ts/sd/half.ts: float32 → half bits, round to nearest even. Every half value converts to itself; every
 * midpoint between neighbouring halves rounds to the even one and a hair either side to the nearer one
 * (all 63,488 finite pairs, subnormals included); overflow, underflow, zeros, infinities and NaN.
 * (native/core/bench/sd1_weights.cpp's copy was checked against GCC's _Float16 on all 2^32 floats.)
 */
import { describe, expect, it } from 'vitest';

import { floatToHalfBits, halfBitsToFloat } from '../../ts/sd/half.js';

describe('floatToHalfBits', () => {
  it('known values', () => {
    expect(floatToHalfBits(1)).toBe(0x3c00);
    expect(floatToHalfBits(-2)).toBe(0xc000);
    expect(floatToHalfBits(0.1)).toBe(0x2e66);
    expect(floatToHalfBits(65504)).toBe(0x7bff); // the largest half
    expect(floatToHalfBits(65519.99)).toBe(0x7bff);
    expect(floatToHalfBits(65520)).toBe(0x7c00); // the midpoint to 2^16 rounds to even: inf
    expect(floatToHalfBits(1e9)).toBe(0x7c00);
    expect(floatToHalfBits(-Infinity)).toBe(0xfc00);
    expect(floatToHalfBits(2 ** -24)).toBe(0x0001); // the smallest subnormal
    expect(floatToHalfBits(2 ** -25)).toBe(0x0000); // half of it: ties to even (0)
    expect(floatToHalfBits(1.0001 * 2 ** -25)).toBe(0x0001);
    expect(floatToHalfBits(-(2 ** -26))).toBe(0x8000);
    expect(floatToHalfBits(-0)).toBe(0x8000);
    expect(floatToHalfBits(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up out of the subnormals
    expect(floatToHalfBits(1e-45)).toBe(0); // a float32 subnormal
    expect(floatToHalfBits(NaN) & 0x7e00).toBe(0x7e00);
  });

  it('is exact on halves and rounds every midpoint to even', () => {
    const bad: string[] = [];
    const check = (x: number, want: number) => {
      if (floatToHalfBits(x) !== want) bad.push(`${x} → ${floatToHalfBits(x).toString(16)}, expected ${want.toString(16)}`);
    };
    for (let h = 0; h < 0x7c00; h++) {
      for (const sign of [0, 0x8000]) {
        const v = halfBitsToFloat(h | sign);
        check(v, h | sign);
        if (h === 0x7bff) continue;
        const next = halfBitsToFloat((h + 1) | sign);
        const mid = (v + next) / 2; // exact in float32: halves have 11 significant bits
        if (Math.fround(mid) !== mid) bad.push(`midpoint ${mid} is not a float32`);
        check(mid, (h & 1 ? h + 1 : h) | sign);
        const ulp = (next - v) / 4096; // two float32 ulps: mid ± ulp is exact in float32 and lies nearer one half
        check(mid - ulp, h | sign);
        check(mid + ulp, (h + 1) | sign);
      }
    }
    expect(bad.slice(0, 10)).toEqual([]);
  });
});
