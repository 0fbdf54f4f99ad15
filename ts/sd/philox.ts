/**
 * TypeScript port of the engine's counter-based noise (native/core/src/philox.cpp): Philox4x32-10
 * with key (seed lo, seed hi) and counter (element / 4, stream, image index lo, image index hi),
 * Box-Muller in float64 on word pairs. Used by the reference loop and to reproduce native runs.
 */

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

function mulhi(a: number, b: number): number {
  const aL = a & 0xffff;
  const aH = a >>> 16;
  const bL = b & 0xffff;
  const bH = b >>> 16;
  const ll = aL * bL;
  const lh = aL * bH;
  const hl = aH * bL;
  const hh = aH * bH;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (hh + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 65536)) >>> 0;
}

/** One Philox4x32-10 block. */
export function philox4x32(counter: readonly number[], key: readonly number[]): [number, number, number, number] {
  let [c0, c1, c2, c3] = counter.map((v) => v >>> 0);
  let k0 = key[0] >>> 0;
  let k1 = key[1] >>> 0;
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi(M0, c0);
    const lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi(M1, c2);
    const lo1 = Math.imul(M1, c2) >>> 0;
    const n0 = (hi1 ^ c1 ^ k0) >>> 0;
    const n2 = (hi0 ^ c3 ^ k1) >>> 0;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  return [c0, c1, c2, c3];
}

const TWO32 = 4294967296;
const TWO_PI = 6.283185307179586;

/** Elements [first, first + count) of the normal stream of (seed, imageIndex, stream). */
export function philoxNormal(seed: number, imageIndex: number, stream: number, first: number, count: number): Float32Array {
  const out = new Float32Array(count);
  const key = [seed % TWO32, Math.floor(seed / TWO32)];
  const idx = [imageIndex % TWO32, Math.floor(imageIndex / TWO32)];
  let i = 0;
  while (i < count) {
    const e = first + i;
    const block = Math.floor(e / 4);
    const w = philox4x32([block % TWO32, stream, idx[0], idx[1]], key);
    const v: number[] = [];
    for (const [a, b] of [
      [w[0], w[1]],
      [w[2], w[3]],
    ]) {
      const u1 = (a + 1) / TWO32;
      const u2 = (b + 0.5) / TWO32;
      const r = Math.sqrt(-2 * Math.log(u1));
      v.push(r * Math.cos(TWO_PI * u2), r * Math.sin(TWO_PI * u2));
    }
    for (let lane = e % 4; lane < 4 && i < count; lane++, i++) out[i] = v[lane];
  }
  return out;
}

/** The stream of the VAE encoder's posterior sample. */
export const ENCODE_STREAM = 0xffffffff;
