import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runBatch } from '../../ts/batch/runBatch.js';
import { formatSummary, oneLine } from '../../ts/batch/status.js';
import type { DemoWorld } from '../../ts/demo/world.js';
import { batchManifest, batchWorld, reconTemplate } from './world.js';

// A failed job's reason in the summary, summary.json and the logs is its whole message on one line: a check
// that lists its problems under a heading ('cannot start the reconstruction:') used to be cut to the heading.

const dir = mkdtempSync(join(tmpdir(), 'bl-reasons-'));
let world: DemoWorld;
beforeAll(async () => {
  world = await batchWorld(dir, [1]);
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('failure reasons', () => {
  it("oneLine keeps every line of a message, trimmed, in order, a list's problems joined by '; ' without their marks", () => {
    expect(oneLine('PreflightError: cannot start the reconstruction:\n  - img2img.size 64 gives 8×8 latents\n  - model.dir: not found\n')).toBe(
      'PreflightError: cannot start the reconstruction: img2img.size 64 gives 8×8 latents; model.dir: not found',
    );
    expect(oneLine('one line')).toBe('one line');
    expect(oneLine('first\n  second')).toBe('first; second');
  });

  it('a reconstruction whose preflight fails names the problem in the summary and summary.json, not only the heading', { timeout: 300_000 }, async () => {
    const out = join(dir, 'pre');
    const m = batchManifest(world, 'pre', out, [1]);
    const t = reconTemplate(world) as { img2img: Record<string, unknown> };
    // the world's U-Net takes the latents of its own image size only
    m.analyses[0].config = { ...t, img2img: { ...t.img2img, size: 32 } };
    const r = await runBatch(m, { concurrency: 1 });
    expect(r.state).toBe('failed');
    const cell = r.summary.find((c) => c.stage === 'extract')!;
    expect(cell.state).toBe('failed');
    expect(cell.reason).toMatch(/^PreflightError: cannot start the reconstruction: img2img\.size 32 gives 4×4 latents, but .*unet.* takes sample of 8×8 only/);
    expect(formatSummary(r.summary)).toContain(cell.reason);
    const saved = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { summary: { stage: string; reason?: string }[] };
    expect(saved.summary.find((c) => c.stage === 'extract')!.reason).toBe(cell.reason);
  });
});
