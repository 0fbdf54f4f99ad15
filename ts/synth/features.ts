import { resizeRgbFloat, type RgbImage } from '../io/resize.js';
import { BACKGROUNDS, COLOURS, POSITIONS, SHAPES, SIZES, type Scene } from './scenes.js';

/**
 * The two feature spaces the miniature NSD's voxels are planted on: a "latent" (image) space, a coarse
 * colour grid standing in for an image autoencoder's latent, and a "semantic" (caption) space, a bag of the
 * caption's content words. Both are deterministic functions of the image and the scene.
 */

/** Side of the latent grid: the latent is LATENT_GRID × LATENT_GRID × 3. */
export const LATENT_GRID = 8;
export const LATENT_DIM = LATENT_GRID * LATENT_GRID * 3;

/** Latent features: the image area-averaged to 8×8, RGB scaled to [-1, 1], order (row, column, channel). */
export function latentFeatures(img: RgbImage): Float32Array {
  const f = resizeRgbFloat(img, LATENT_GRID, LATENT_GRID);
  for (let i = 0; i < f.length; i++) f[i] = f[i] / 127.5 - 1;
  return f;
}

/** Names of the semantic features in order: shapes, colours, sizes, positions, backgrounds. */
export const SEMANTIC_NAMES: readonly string[] = [
  ...SHAPES.map((s) => `shape:${s}`),
  ...Object.keys(COLOURS).map((c) => `colour:${c}`),
  ...SIZES.map((s) => `size:${s}`),
  ...POSITIONS.map((p) => `position:${p}`),
  ...BACKGROUNDS.map((b) => `background:${b}`),
];
export const SEMANTIC_DIM = SEMANTIC_NAMES.length;

/** Semantic features: how many times each content word appears in the scene (its caption). */
export function semanticFeatures(scene: Scene): Float32Array {
  const f = new Float32Array(SEMANTIC_DIM);
  const add = (name: string) => {
    f[SEMANTIC_NAMES.indexOf(name)] += 1;
  };
  for (const o of scene.objects) {
    add(`shape:${o.shape}`);
    add(`colour:${o.colour}`);
    add(`size:${o.size}`);
    add(`position:${o.position}`);
  }
  add(`background:${scene.background}`);
  return f;
}
