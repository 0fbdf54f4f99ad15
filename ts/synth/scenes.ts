import { InvalidArgumentError } from '../errors.js';
import type { RgbImage } from '../io/resize.js';
import { describeNumber } from '../ridge/alphas.js';
import { checkInteger } from '../ridge/options.js';
import { Rng } from './rng.js';

/**
 * Procedural scenes: one or two coloured shapes at named positions on a named background, drawn at any size,
 * each with a caption that says exactly what is drawn. Seeded, so a scene list is the same everywhere.
 */

export const SHAPES = ['circle', 'square', 'triangle', 'cross', 'ring'] as const;
export const COLOURS = {
  red: [220, 40, 40],
  green: [40, 180, 60],
  blue: [40, 80, 220],
  yellow: [240, 220, 40],
  purple: [150, 60, 190],
  orange: [245, 140, 30],
  white: [245, 245, 245],
  black: [20, 20, 20],
} as const satisfies Record<string, readonly [number, number, number]>;
export const SIZES = ['small', 'large'] as const;
export const POSITIONS = [
  'top left', 'top', 'top right',
  'left', 'centre', 'right',
  'bottom left', 'bottom', 'bottom right',
] as const;
export const BACKGROUNDS = ['grey', 'sky', 'grass', 'sand', 'night'] as const;

export type ShapeName = (typeof SHAPES)[number];
export type ColourName = keyof typeof COLOURS;
export type SizeName = (typeof SIZES)[number];
export type PositionName = (typeof POSITIONS)[number];
export type BackgroundName = (typeof BACKGROUNDS)[number];

export interface SceneObject {
  shape: ShapeName;
  colour: ColourName;
  size: SizeName;
  position: PositionName;
}

export interface Scene {
  objects: SceneObject[];
  background: BackgroundName;
  caption: string;
}

const COLOUR_NAMES = Object.keys(COLOURS) as ColourName[];

/** Background colours at the top and bottom of the image (a vertical gradient). */
const BACKGROUND_RGB: Record<BackgroundName, [readonly number[], readonly number[]]> = {
  grey: [[140, 140, 140], [110, 110, 110]],
  sky: [[90, 150, 230], [210, 230, 250]],
  grass: [[110, 170, 90], [50, 110, 40]],
  sand: [[235, 215, 165], [200, 175, 120]],
  night: [[10, 12, 40], [35, 40, 80]],
};

const BACKGROUND_PHRASE: Record<BackgroundName, string> = {
  grey: 'on a grey background',
  sky: 'against a blue sky',
  grass: 'on green grass',
  sand: 'on sand',
  night: 'against a night sky',
};

function positionPhrase(p: PositionName): string {
  if (p === 'centre') return 'in the centre';
  if (p === 'left' || p === 'right') return `on the ${p}`;
  return `at the ${p}`;
}

export function sceneCaption(objects: SceneObject[], background: BackgroundName): string {
  const parts = objects.map((o) => `a ${o.size} ${o.colour} ${o.shape} ${positionPhrase(o.position)}`);
  return `${parts.join(' and ')} ${BACKGROUND_PHRASE[background]}`;
}

/** A random scene: one or two objects at distinct positions. */
export function randomScene(rng: Rng): Scene {
  const n = rng.next() < 0.5 ? 1 : 2;
  const positions = rng.shuffle([...POSITIONS]).slice(0, n);
  const objects = positions.map((position) => ({
    shape: rng.pick(SHAPES),
    colour: rng.pick(COLOUR_NAMES),
    size: rng.pick(SIZES),
    position,
  }));
  const background = rng.pick(BACKGROUNDS);
  return { objects, background, caption: sceneCaption(objects, background) };
}

/** `n` scenes from `seed`. */
export function generateScenes(n: number, seed: number): Scene[] {
  // (NaN or -1 gave no scenes, 2.5 two; a seed is read by its low 32 bits, so a fractional or string one is another world)
  checkInteger(n, 'n', 'generateScenes', 0);
  if (!Number.isSafeInteger(seed)) throw new InvalidArgumentError(`generateScenes seed: expected an integer, got ${describeNumber(seed)}`);
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => randomScene(rng));
}

/** Draws a scene as an RGB uint8 image of size × size. */
export function renderScene(scene: Scene, size: number): RgbImage {
  checkInteger(size, 'size', 'renderScene', 8);
  const data = new Uint8Array(size * size * 3);
  const [top, bottom] = BACKGROUND_RGB[scene.background];
  for (let y = 0; y < size; y++) {
    const t = y / (size - 1);
    const rgb = [0, 1, 2].map((c) => Math.round(top[c] * (1 - t) + bottom[c] * t));
    for (let x = 0; x < size; x++) data.set(rgb, (y * size + x) * 3);
  }
  for (const o of scene.objects) drawObject(data, size, o);
  return { data, width: size, height: size };
}

function drawObject(data: Uint8Array, size: number, o: SceneObject): void {
  const k = POSITIONS.indexOf(o.position);
  const cx = ((k % 3) * 2 + 1) / 6;
  const cy = (Math.floor(k / 3) * 2 + 1) / 6;
  const r = o.size === 'large' ? 0.15 : 0.09;
  const rgb = COLOURS[o.colour];
  const x0 = Math.max(0, Math.floor((cx - r) * size));
  const x1 = Math.min(size, Math.ceil((cx + r) * size));
  const y0 = Math.max(0, Math.floor((cy - r) * size));
  const y1 = Math.min(size, Math.ceil((cy + r) * size));
  for (let py = y0; py < y1; py++) {
    for (let px = x0; px < x1; px++) {
      // Pixel centre in units of r, relative to the object's centre.
      const dx = ((px + 0.5) / size - cx) / r;
      const dy = ((py + 0.5) / size - cy) / r;
      if (inside(o.shape, dx, dy)) data.set(rgb, (py * size + px) * 3);
    }
  }
}

function inside(shape: ShapeName, dx: number, dy: number): boolean {
  const d = Math.hypot(dx, dy);
  switch (shape) {
    case 'circle': return d <= 1;
    case 'ring': return d <= 1 && d >= 0.6;
    case 'square': return Math.abs(dx) <= 0.85 && Math.abs(dy) <= 0.85;
    case 'triangle': return dy <= 0.85 && dy >= -1 && Math.abs(dx) <= (dy + 1) / 1.85;
    case 'cross': return (Math.abs(dx) <= 0.3 && Math.abs(dy) <= 1) || (Math.abs(dy) <= 0.3 && Math.abs(dx) <= 1);
  }
}
