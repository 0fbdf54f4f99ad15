/**
 * Ctrl-C in reconstruct says, as encode's does, which stage it stopped and that the stages before it are kept
 * (stageRunner's runStages, the loop both run): before, the engine's words came alone — "img2img: aborted before it
 * started" at img2img 31%, "ridge fit cancelled" in the decoders.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { DemoWorld } from '../../ts/demo/world.js';
import { CancelledError } from '../../ts/errors.js';
import { reconstruct, type ReconstructProgress } from '../../ts/pipeline/reconstruct.js';
import { batchWorld, singleConfig } from '../batch/world.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-recon-cancel-'));
let world: DemoWorld;
beforeAll(async () => {
  world = await batchWorld(dir, [1]);
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the reconstruction and aborts it at the first progress `at` accepts; the error it ends with. */
async function cancelledAt(at: (p: ReconstructProgress) => boolean): Promise<unknown> {
  const ac = new AbortController();
  const onProgress = (p: ReconstructProgress) => {
    if (!ac.signal.aborted && at(p)) ac.abort();
  };
  return reconstruct(singleConfig(world, 1, join(dir, 'run')), { signal: ac.signal, onProgress }).then(
    () => null,
    (e: unknown) => e,
  );
}

const kept = (stage: string) => `; the stages finished before it are kept, and the next run resumes at ${stage}`;

describe('reconstruct: Ctrl-C names the stage', () => {
  it('in the decoders, then in img2img at 31%: each message names its stage; the next run resumes there', async () => {
    const d = await cancelledAt((p) => p.stage === 'decoders' && p.fraction > 0);
    expect(d).toBeInstanceOf(CancelledError);
    expect((d as Error).message).toMatch(new RegExp(`^reconstruct: cancelled in stage decoders( \\(ridge fit cancelled\\))?${kept('decoders')}$`));

    let first: ReconstructProgress[] = [];
    const i = await cancelledAt((p) => {
      first.push(p);
      return p.stage === 'img2img' && p.fraction >= 0.31;
    });
    expect(i).toBeInstanceOf(CancelledError);
    expect((i as Error).message).toMatch(new RegExp(`^reconstruct: cancelled in stage img2img( \\(img2img cancelled (before|during) step \\d+ of \\d+( \\(its U-Net call was interrupted\\))?\\))?${kept('img2img')}$`));
    // it resumed after the decoders' cancel: extract and features were kept
    expect(first.filter((p) => p.status === 'skipped').map((p) => p.stage)).toEqual(['extract', 'features']);

    first = [];
    const r = await reconstruct(singleConfig(world, 1, join(dir, 'run')), { onProgress: (p) => first.push(p) });
    expect(r.stages.map((s) => [s.stage, s.status])).toEqual([
      ['extract', 'skipped'], ['features', 'skipped'], ['decoders', 'skipped'], ['zonly', 'skipped'], ['img2img', 'ran'], ['evaluate', 'ran'], ['report', 'ran'],
    ]);
  }, 300_000);
});
