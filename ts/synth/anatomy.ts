import type { Grid } from '../io/voxelMask.js';
import { Rng } from './rng.js';

/**
 * A toy brain on a small grid, laid out like NSD's func1pt8mm volumes: an ellipsoid brain, the visual
 * cortex (nsdgeneral) at the back (low y), the streams atlas inside it (early at the very back, ventral
 * below, parietal above), and prf-visualrois V1–hV4 inside early. ROI volumes use NSD's convention:
 * −1 outside the brain, 0 unlabelled brain, positive labels.
 */

export const STREAMS_LABELS: Record<number, string> = {
  0: 'Unknown', 1: 'early', 2: 'midventral', 3: 'midlateral', 4: 'midparietal', 5: 'ventral', 6: 'lateral', 7: 'parietal',
};
export const PRF_VISUALROIS_LABELS: Record<number, string> = {
  0: 'Unknown', 1: 'V1v', 2: 'V1d', 3: 'V2v', 4: 'V2d', 5: 'V3v', 6: 'V3d', 7: 'hV4',
};
export const NSDGENERAL_LABELS: Record<number, string> = { 0: 'Unknown', 1: 'nsdgeneral' };

export interface Anatomy {
  grid: Grid;
  brainmask: Int16Array;
  nsdgeneral: Int16Array;
  streams: Int16Array;
  prfVisualrois: Int16Array;
}

export function buildAnatomy(grid: Grid): Anatomy {
  const [X, Y, Z] = grid;
  const n = X * Y * Z;
  const brainmask = new Int16Array(n);
  const nsdgeneral = new Int16Array(n);
  const streams = new Int16Array(n);
  const prf = new Int16Array(n);
  const yEarly = Math.max(2, Math.round(Y * 0.2));
  const yVisual = Math.max(yEarly + 3, Math.round(Y * 0.45));
  const zMid = Math.floor(Z / 2);
  for (let z = 0; z < Z; z++) {
    for (let y = 0; y < Y; y++) {
      for (let x = 0; x < X; x++) {
        const i = x + X * (y + Y * z);
        const e = ((x + 0.5) / X - 0.5) ** 2 / 0.22 + ((y + 0.5) / Y - 0.5) ** 2 / 0.24 + ((z + 0.5) / Z - 0.5) ** 2 / 0.22;
        if (e > 1) {
          nsdgeneral[i] = streams[i] = prf[i] = -1;
          continue;
        }
        brainmask[i] = 1;
        const lateral = Math.abs(x + 0.5 - X / 2) > X * 0.28;
        let s = 0;
        if (y < yVisual) {
          if (y < yEarly) s = 1;
          else if (y < yEarly + 2) s = z < zMid ? 2 : lateral ? 3 : 4;
          else s = z < zMid ? 5 : lateral ? 6 : 7;
        }
        streams[i] = s;
        nsdgeneral[i] = s > 0 ? 1 : 0;
        // V1 to V3 in early, split ventral (lower) / dorsal (upper); hV4 in midventral.
        if (s === 1) prf[i] = 1 + 2 * Math.min(2, Math.floor((y / yEarly) * 3)) + (z < zMid ? 0 : 1);
        else if (s === 2) prf[i] = 7;
      }
    }
  }
  return { grid, brainmask, nsdgeneral, streams, prfVisualrois: prf };
}

/**
 * A T1-weighted image of the toy brain, as NSD's T1_to_func1pt8mm.nii.gz is for a real subject: bright white
 * matter inside a folded cortical ribbon of grey matter, dark ventricles near the centre, dark CSF in the sulci,
 * scanner-like noise; 0 outside the brain. Values are in arbitrary scanner units (about 0–1000).
 */
export function buildT1(a: Anatomy, seed = 1): Int16Array {
  const [X, Y, Z] = a.grid;
  const rng = new Rng(seed * 7919 + 13);
  const t1 = new Int16Array(X * Y * Z);
  for (let z = 0; z < Z; z++) {
    for (let y = 0; y < Y; y++) {
      for (let x = 0; x < X; x++) {
        const i = x + X * (y + Y * z);
        if (!a.brainmask[i]) continue;
        const px = (x + 0.5) / X - 0.5, py = (y + 0.5) / Y - 0.5, pz = (z + 0.5) / Z - 0.5;
        const r = Math.sqrt(px ** 2 / 0.22 + py ** 2 / 0.24 + pz ** 2 / 0.22); // 1 at the brain's surface
        const theta = Math.atan2(py, px), phi = Math.atan2(pz, Math.hypot(px, py));
        // gyri: the white-matter boundary and the sulci follow the same folding pattern
        const fold = Math.sin(5 * theta) * Math.cos(4 * phi);
        const wmEdge = 0.66 + 0.1 * fold;
        let v: number;
        if (r < wmEdge) v = 860;
        else if (r > 0.9 && fold < -0.45) v = 230; // sulcal CSF
        else v = 560 + 80 * (1 - r); // grey matter, a little darker towards the surface
        // lateral ventricles: two small ellipsoids beside the midline
        for (const side of [-1, 1]) {
          if (((px - side * 0.07) / 0.05) ** 2 + (py / 0.16) ** 2 + ((pz - 0.04) / 0.07) ** 2 < 1) v = 160;
        }
        t1[i] = Math.max(0, Math.round(v + 25 * rng.normal()));
      }
    }
  }
  return t1;
}

/** Freesurfer-style colour-table text: "value name R G B A" per line. */
export function ctabText(labels: Record<number, string>): string {
  return Object.entries(labels)
    .map(([v, name], k) => `${v.padStart(3)}  ${name.padEnd(24)} ${(k * 37) % 256} ${(k * 91) % 256} ${(k * 53) % 256} 0\n`)
    .join('');
}
