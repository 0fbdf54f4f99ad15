import { describe, expect, it } from 'vitest';

import { NonFiniteError } from '../../ts/errors.js';
import { assertFinite, firstNonFinite } from '../../ts/io/finite.js';

describe('assertFinite', () => {
  it('finds the first NaN or ±Inf, or -1', () => {
    expect(firstNonFinite(Float32Array.from([1, 2, 3]))).toBe(-1);
    expect(firstNonFinite(Float32Array.from([1, NaN, Infinity]))).toBe(1);
    expect(firstNonFinite(Float64Array.from([0, -Infinity]))).toBe(1);
    expect(firstNonFinite(new Float32Array(0))).toBe(-1);
    expect(firstNonFinite(Float32Array.from([3.4e38, -3.4e38, 1e-45]))).toBe(-1);
  });

  it('names the array, the first bad element by axis, its value and the count', () => {
    const a = new Float32Array(12);
    a[7] = NaN;
    a[9] = Infinity;
    const err = (() => {
      try {
        assertFinite(a, 'betas (s1.nii.gz)', { shape: [3, 4], axes: ['trial', 'voxel'] });
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeInstanceOf(NonFiniteError);
    expect(err!.message).toBe('betas (s1.nii.gz): element [trial 1, voxel 3] (flat index 7) is NaN (2 of 12 values are not finite); finite numbers are required');
    expect(() => assertFinite(Float64Array.from([1, -Infinity]), 'v')).toThrow('v: element [1] is -Infinity; finite numbers are required');
    expect(() => assertFinite(Float32Array.from([1, 2]), 'ok')).not.toThrow();
  });
});
