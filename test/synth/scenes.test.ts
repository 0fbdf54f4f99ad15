import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../ts/errors.js';
import { resizeRgb } from '../../ts/io/resize.js';
import { latentFeatures, LATENT_DIM, SEMANTIC_DIM, SEMANTIC_NAMES, semanticFeatures } from '../../ts/synth/features.js';
import { COLOURS, generateScenes, renderScene } from '../../ts/synth/scenes.js';

describe('procedural scenes', () => {
  it('are seeded and deterministic', () => {
    expect(generateScenes(20, 3)).toEqual(generateScenes(20, 3));
    expect(generateScenes(20, 3)).not.toEqual(generateScenes(20, 4));
  });

  it('captions say what is drawn', () => {
    for (const s of generateScenes(50, 11)) {
      for (const o of s.objects) {
        expect(s.caption).toContain(`${o.size} ${o.colour} ${o.shape}`);
      }
      expect(s.objects.length).toBeGreaterThanOrEqual(1);
      expect(new Set(s.objects.map((o) => o.position)).size).toBe(s.objects.length);
    }
  });

  it('draws the object colour at the object centre, at any size', () => {
    const scene = {
      objects: [{ shape: 'square' as const, colour: 'red' as const, size: 'large' as const, position: 'top left' as const }],
      background: 'night' as const,
      caption: '',
    };
    for (const size of [16, 64, 425]) {
      const img = renderScene(scene, size);
      expect(img.data.length).toBe(size * size * 3);
      const c = Math.floor(size / 6);
      expect(Array.from(img.data.subarray((c * size + c) * 3, (c * size + c) * 3 + 3))).toEqual([...COLOURS.red]);
      const far = (size - 1) * size + size - 1;
      expect(img.data[far * 3 + 2]).toBeGreaterThan(img.data[far * 3]); // night background is blue-ish
    }
  });

  it('features: latent is 8×8×3 in [-1, 1], semantic counts caption words', () => {
    const [scene] = generateScenes(1, 5);
    const img = renderScene(scene, 40);
    const lat = latentFeatures(img);
    expect(lat.length).toBe(LATENT_DIM);
    expect(Math.max(...lat)).toBeLessThanOrEqual(1);
    expect(Math.min(...lat)).toBeGreaterThanOrEqual(-1);
    // Area-averaging: the latent of an image is the latent of its exact 2× upscale.
    const up = resizeRgb(img, 80);
    expect(Math.max(...latentFeatures(up).map((v, i) => Math.abs(v - lat[i])))).toBeLessThan(0.05);
    const sem = semanticFeatures(scene);
    expect(sem.length).toBe(SEMANTIC_DIM);
    expect(sem[SEMANTIC_NAMES.indexOf(`background:${scene.background}`)]).toBe(1);
    expect(sem.reduce((a, b) => a + b, 0)).toBe(scene.objects.length * 4 + 1);
  });
});

describe('resizeRgb', () => {
  it('area-averages when shrinking and keeps constant images constant', () => {
    const img = { data: new Uint8Array(4 * 4 * 3).map((_, i) => (Math.floor(i / 3) % 2 ? 200 : 100)), width: 4, height: 4 };
    const half = resizeRgb(img, 2);
    expect(Array.from(half.data)).toEqual(new Array(12).fill(150));
    const flat = { data: new Uint8Array(5 * 3 * 3).fill(77), width: 5, height: 3 };
    expect(Array.from(resizeRgb(flat, 13, 7).data)).toEqual(new Array(13 * 7 * 3).fill(77));
    expect(() => resizeRgb(flat, 0)).toThrow(/size must be positive/);
  });
});

describe('generateScenes refuses a count or a seed that is not one', () => {
  it('names the argument', () => {
    // (NaN and -1 gave no scenes, 2.5 two; a string seed was another world)
    expect(() => generateScenes(NaN, 1)).toThrow(new InvalidArgumentError('generateScenes n: expected an integer >= 0, got NaN'));
    expect(() => generateScenes(2.5, 1)).toThrow(/^generateScenes n: expected an integer >= 0, got 2\.5$/);
    expect(() => generateScenes(2, '3' as unknown as number)).toThrow(/^generateScenes seed: expected an integer, got string "3"$/);
    expect(() => generateScenes(2, 1.5)).toThrow(/^generateScenes seed: expected an integer, got 1\.5$/);
    expect(generateScenes(0, 1)).toEqual([]);
  });

  it('renderScene names its size in the same form', () => {
    const [scene] = generateScenes(1, 5);
    expect(() => renderScene(scene, 4)).toThrow(new InvalidArgumentError('renderScene size: expected an integer >= 8, got 4'));
    expect(() => renderScene(scene, 8.5)).toThrow(new InvalidArgumentError('renderScene size: expected an integer >= 8, got 8.5'));
  });
});
