/** Text on RGBA pixel buffers, from the bitmap glyphs of fontData.ts (anti-aliased, alpha-blended). */
import { FONTS, type BitmapFont } from './fontData.js';

export type FontSize = 12 | 15;

/** An RGBA image being drawn (pngjs's PNG has this shape). */
export interface Canvas {
  width: number;
  height: number;
  data: Uint8Array | Buffer;
}

const decoded = new Map<number, Uint8Array>();

function font(size: FontSize): { f: BitmapFont; bytes: Uint8Array } {
  const f = FONTS[size];
  let bytes = decoded.get(size);
  if (!bytes) {
    bytes = Uint8Array.from(Buffer.from(f.data, 'base64'));
    decoded.set(size, bytes);
  }
  return { f, bytes };
}

/** Width in pixels of `text` at `size`. Characters the font lacks are drawn as '?'. */
export function textWidth(text: string, size: FontSize): number {
  const { f } = font(size);
  let w = 0;
  for (const ch of text) w += (f.glyphs[ch] ?? f.glyphs['?'])[0];
  return Math.ceil(w);
}

export function textHeight(size: FontSize): number {
  return FONTS[size].height;
}

/**
 * Draws `text` with its top-left corner at (x, y); `align` places x at the start, centre or end of the text.
 * Pixels outside the canvas are skipped.
 */
export function drawText(c: Canvas, x: number, y: number, text: string, size: FontSize, rgb: readonly [number, number, number], align: 'start' | 'middle' | 'end' = 'start'): void {
  const { f, bytes } = font(size);
  let pen = align === 'start' ? x : align === 'middle' ? x - textWidth(text, size) / 2 : x - textWidth(text, size);
  for (const ch of text) {
    const [advance, width, offset] = f.glyphs[ch] ?? f.glyphs['?'];
    const gx = Math.round(pen);
    for (let row = 0; row < f.height; row++) {
      const py = Math.round(y) + row;
      if (py < 0 || py >= c.height) continue;
      for (let col = 0; col < width; col++) {
        const a = bytes[offset + row * width + col];
        if (a === 0) continue;
        const px = gx + col;
        if (px < 0 || px >= c.width) continue;
        const o = (py * c.width + px) * 4;
        const t = a / 255;
        c.data[o] = Math.round(c.data[o] * (1 - t) + rgb[0] * t);
        c.data[o + 1] = Math.round(c.data[o + 1] * (1 - t) + rgb[1] * t);
        c.data[o + 2] = Math.round(c.data[o + 2] * (1 - t) + rgb[2] * t);
        c.data[o + 3] = 255;
      }
    }
    pen += advance;
  }
}
