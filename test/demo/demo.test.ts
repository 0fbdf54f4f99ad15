import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { runDemo, type DemoResult } from '../../ts/demo/runDemo.js';
import { reconstruct } from '../../ts/pipeline/reconstruct.js';

// The demo world at small settings: the whole pipeline (miniature NSD → RidgeCV → native sampler on the
// closed-form ONNX models → metrics → run folder) in a few seconds.
let demo: DemoResult;
const out = mkdtempSync(join(tmpdir(), 'bl-demo-'));

beforeAll(async () => {
  demo = await runDemo({ out, testImages: 24, seeds: 2, steps: 20 });
});

describe('brainlatent demo', () => {
  it('writes the run folder with report, metrics, decoders and images named as in the reference code', () => {
    const run = join(out, 'run');
    for (const f of ['run.json', 'report.html', 'metrics.csv', 'metrics.json', 'metrics_per_image.csv', 'decoders/z.safetensors', 'decoders/c.safetensors']) {
      expect(existsSync(join(run, f)), f).toBe(true);
    }
    const id = JSON.parse(readFileSync(join(run, 'data', 'image_ids.json'), 'utf8')).test[0] as number;
    const idx = String(id - 1).padStart(5, '0');
    for (const f of [`${idx}_org.png`, `${idx}_z.png`, `${idx}_000.png`]) expect(existsSync(join(run, 'images', f)), f).toBe(true);
    const html = readFileSync(join(run, 'report.html'), 'utf8');
    expect(html).toContain(`images/${idx}_org.png`);
    expect(html).not.toMatch(/src="(\/|https?:)/);
  });

  it('reconstructs recognisable images, and img2img improves on the z-only ones', () => {
    const m = demo.run.metrics!;
    expect(m.final['Pixels(2WI)']).toBeGreaterThanOrEqual(0.9);
    expect(m.final['Pixels(2WI)']).toBeGreaterThan(m.zonly['Pixels(2WI)']);
    expect(m.final.PixCorr).toBeGreaterThan(m.zonly.PixCorr);
    expect(m.zonly['Pixels(2WI)']).toBeGreaterThan(0.8);
    expect(demo.world.prior).toBe('world');
  });

  it('resumes: a second run skips every stage; force redoes them', async () => {
    const cfg = JSON.parse(readFileSync(join(out, 'run', 'run.json'), 'utf8')).config;
    const again = await reconstruct(cfg);
    expect(again.stages.every((s) => s.status === 'skipped')).toBe(true);
    const dry = await reconstruct(cfg, { dryRun: true });
    expect(dry.plan!.join('\n')).toMatch(/skip extract/);
    expect(dry.plan!.join('\n')).toMatch(/U-Net evaluations/);
  });
});
