/**
 * A cancelled `--dry-run` stops the probe in flight: the estimates pass the job's signal to every probe that can stop
 * (the SD runs, the session read, the metrics, the ridge fits; loading the model cannot). Before 2dc5085 the features
 * probe's VAE and text encoder took no signal, and a Ctrl-C during it waited for its three runs (the warm-up and the
 * best of two); the z-only and img2img probes' decodes and re-encodes, the session read and the metrics still took
 * none after it.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

import type { DemoWorld } from '../../ts/demo/world.js';
import { CancelledError } from '../../ts/errors.js';
import { reconstruct } from '../../ts/pipeline/reconstruct.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { batchWorld, singleConfig } from '../batch/world.js';
import { computing } from '../helpers/computing.js';
import { writeSlowTextEncoder } from '../helpers/slowTextEncoder.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-estimate-cancel-'));
let world: DemoWorld;
/** The world's model with a text encoder that computes for seconds per probe batch (~2.4 s here: its captions' rows × 120 MatMuls of 1024²). */
let slowModel: string;
beforeAll(async () => {
  world = await batchWorld(dir, [1]);
  slowModel = join(dir, 'slow-model');
  cpSync(world.modelDir, slowModel, { recursive: true });
  writeSlowTextEncoder(slowModel, 1024, 120, 64);
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  vi.restoreAllMocks();
});

/** A dry run of the one-subject config (`model`: another model folder); the error it ends with, or null. */
function dryRun(out: string, signal: AbortSignal, model?: string): Promise<unknown> {
  const c = singleConfig(world, 1, join(dir, out)) as { model: Record<string, unknown> };
  const config = model ? { ...c, model: { ...c.model, dir: model } } : c;
  return reconstruct(config as never, { dryRun: true, signal }).then(
    () => null,
    (e: unknown) => e,
  );
}

describe('reconstruct --dry-run: an abort stops the probe in flight', () => {
  it("during the features probe's text encode: the run is interrupted, and the probe's later runs never start", async () => {
    const ac = new AbortController();
    const encodeText = Diffusion.prototype.encodeText;
    const texts = vi.spyOn(Diffusion.prototype, 'encodeText').mockImplementation(function (this: Diffusion, ...args: Parameters<Diffusion['encodeText']>) {
      const run = encodeText.apply(this, args);
      // (once the run computes: the warm-up's, seconds long on the slow encoder)
      if (!ac.signal.aborted) void computing(20, run).then(() => ac.abort(new Error('Ctrl-C')));
      return run;
    });
    const images = vi.spyOn(Diffusion.prototype, 'encodeImages');
    const err = await dryRun('slow-text', ac.signal, slowModel);
    expect(err).toBeInstanceOf(CancelledError);
    expect((err as Error).message).toMatch(/^encode_text of \d+ captions cancelled \(its run was interrupted\)$/);
    expect((err as Error).cause).toBe(ac.signal.reason);
    // the warm-up's VAE and text runs only (before, the best of two ran after it: 3 of each)
    expect(texts).toHaveBeenCalledTimes(1);
    expect(images).toHaveBeenCalledTimes(1);
  }, 300_000);
});
