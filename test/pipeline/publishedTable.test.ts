/**
 * The report's table of published results takes this run's value of a metric only where it is the published metric:
 * the same name and the same kind. A distance network named 'AlexNet(2)' (lower is better) was printed there as a
 * percentage, 15.5 beside Brain-Diffuser's 94.2 % two-way identification (review s35-r4).
 */
import { describe, expect, it } from 'vitest';

import { publishedTable } from '../../ts/pipeline/report.js';

const cells = (html: string, row: string): string[] => {
  const tr = html.split('<tr>').find((r) => r.includes(row))!;
  return [...tr.matchAll(/<td>([^<]*)<\/td>/g)].map((m) => m[1]);
};

describe("the report's published table", () => {
  it("shows this run's value only for a metric of the published name and kind, in its unit", () => {
    const m = {
      zonly: { PixCorr: 0.25, 'AlexNet(2)': 0.155, 'AlexNet(5)': 0.9 },
      final: { PixCorr: 0.3, 'AlexNet(2)': 0.16, 'AlexNet(5)': 0.95 },
      better: { PixCorr: 'higher', 'AlexNet(2)': 'lower', 'AlexNet(5)': 'higher' } as const,
    };
    const html = publishedTable(m, 'test set');
    const ours = cells(html, 'this run: final');
    expect(ours).toContain('0.300');
    expect(ours).toContain('95.0');
    // (the distance named like the published identification: no cell of its value)
    expect(ours.some((c) => c === '16.0' || c === '0.160')).toBe(false);
    expect(html).toContain("This run's rows appear where it computed a metric of the same name (PixCorr, AlexNet(5)).");
    expect(html).not.toContain('synthetic');
    // a run on brainlatent's stand-ins (the demo world) says so in its rows and the caption (review s45)
    const synthetic = publishedTable(m, 'test set', true);
    expect(cells(synthetic, 'this run (synthetic): final')).toContain('0.300');
    expect(synthetic).toContain("This run's data or model are brainlatent's synthetic stand-ins, not NSD and Stable Diffusion: its rows are not comparable with the published ones.");
  });

  it('knows the stand-ins by their marks: synth_truth.json in the NSD root, the demo or fixture in model_index.json', async () => {
    const { mkdtempSync, writeFileSync, mkdirSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { syntheticInputs } = await import('../../ts/pipeline/syntheticOrigin.js');
    const d = mkdtempSync(join(tmpdir(), 'bl-synthetic-'));
    try {
      mkdirSync(join(d, 'nsd'));
      mkdirSync(join(d, 'model'));
      expect(await syntheticInputs(join(d, 'nsd'), join(d, 'model'))).toEqual([]);
      writeFileSync(join(d, 'model', 'model_index.json'), JSON.stringify({ _class_name: 'OnnxStableDiffusionPipeline' }));
      expect(await syntheticInputs(join(d, 'nsd'), join(d, 'model'))).toEqual([]);
      writeFileSync(join(d, 'nsd', 'synth_truth.json'), '{}');
      writeFileSync(join(d, 'model', 'model_index.json'), JSON.stringify({ _brainlatent_fixture: {} }));
      expect(await syntheticInputs(join(d, 'nsd'), join(d, 'model'))).toEqual([
        'the betas are synthetic: a miniature NSD-shaped subject that brainlatent wrote from a planted encoding model (synth_truth.json in the NSD root), not NSD',
        'the model is a test fixture with random weights, not Stable Diffusion',
      ]);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
