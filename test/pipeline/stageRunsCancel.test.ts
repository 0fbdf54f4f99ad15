/**
 * Ctrl-C during a model run of reconstruct's zonly and img2img stages, or during encode's noise ceiling, stops that
 * run: the stages pass their signal to the VAE decode (zonly), the re-encode and the decode after the U-Net (img2img)
 * and the ceiling's re-read of every session. Before, each ran to its end (a batch's decode is seconds per image at
 * SD's size) and its outputs were written before the abort was seen.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

import type { DemoWorld } from '../../ts/demo/world.js';
import { encode } from '../../ts/encoding/encode.js';
import { CancelledError } from '../../ts/errors.js';
import { reconstruct } from '../../ts/pipeline/reconstruct.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { batchWorld, encodeTemplate, singleConfig } from '../batch/world.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-stage-runs-cancel-'));
let world: DemoWorld;
beforeAll(async () => {
  world = await batchWorld(dir, [1]);
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  vi.restoreAllMocks();
});

type Method = 'encodeImages' | 'decode' | 'img2img';
/** Aborts `ac` as the first call of `method` that `when` accepts starts, before its job is queued (an abort during it). */
function abortAtCall(ac: AbortController, method: Method, when: () => boolean = () => true) {
  const f = Diffusion.prototype[method] as (this: Diffusion, ...a: unknown[]) => Promise<unknown>;
  return vi.spyOn(Diffusion.prototype, method).mockImplementation(function (this: Diffusion, ...a: unknown[]) {
    if (!ac.signal.aborted && when()) ac.abort(new Error('Ctrl-C'));
    return f.apply(this, a);
  } as never);
}

const kept = (stage: string) => `; the stages finished before it are kept, and the next run resumes at ${stage}`;
const images = (out: string, suffix: RegExp) => (existsSync(join(out, 'images')) ? readdirSync(join(out, 'images')).filter((f) => suffix.test(f)) : []);

describe('reconstruct: Ctrl-C stops the model run in flight', () => {
  it("in zonly's decode, img2img's re-encode and its decode after the U-Net: nothing of the interrupted run is written", async () => {
    const out = join(dir, 'recon');
    const run = (signal: AbortSignal) => reconstruct(singleConfig(world, 1, out), { signal }).then(() => null, (e: unknown) => e);

    // zonly's first batch decode (before, it was decoded and its PNGs written; the stage then finished)
    let ac = new AbortController();
    abortAtCall(ac, 'decode');
    let err = await run(ac.signal);
    expect(err).toBeInstanceOf(CancelledError);
    expect((err as Error).message).toBe(`reconstruct: cancelled in stage zonly${kept('zonly')}`);
    expect(images(out, /_z\.png$/)).toEqual([]);
    vi.restoreAllMocks();

    // img2img's re-encode of the z-only images, the run's first (features is done) (before, it ran and the U-Net's job
    // was the one refused)
    ac = new AbortController();
    abortAtCall(ac, 'encodeImages');
    const unet = vi.spyOn(Diffusion.prototype, 'img2img');
    err = await run(ac.signal);
    expect(err).toBeInstanceOf(CancelledError);
    expect((err as Error).message).toBe(`reconstruct: cancelled in stage img2img${kept('img2img')}`);
    expect(images(out, /_z\.png$/).length).toBeGreaterThan(0);
    expect(unet).not.toHaveBeenCalled();
    vi.restoreAllMocks();

    // the decode after the U-Net's run (before, it was decoded, its samples written and recorded as done)
    ac = new AbortController();
    let unetRan = false;
    const img2img = Diffusion.prototype.img2img;
    vi.spyOn(Diffusion.prototype, 'img2img').mockImplementation(function (this: Diffusion, o: Parameters<Diffusion['img2img']>[0]) {
      unetRan = true;
      return img2img.call(this, o);
    });
    abortAtCall(ac, 'decode', () => unetRan);
    err = await run(ac.signal);
    expect(err).toBeInstanceOf(CancelledError);
    expect((err as Error).message).toBe(`reconstruct: cancelled in stage img2img${kept('img2img')}`);
    expect(images(out, /_\d{3}\.png$/)).toEqual([]);
  }, 300_000);
});

describe('encode: Ctrl-C in the noise ceiling', () => {
  it("stops its re-read of the sessions' single trials", async () => {
    const out = join(dir, 'enc');
    const t = encodeTemplate(world) as { nsd: Record<string, unknown> };
    const ac = new AbortController();
    const err = await encode({ ...t, out, nsd: { ...t.nsd, root: world.nsdRoot, subject: 1 } } as never, {
      signal: ac.signal,
      onProgress: (p) => {
        if (p.stage === 'ceiling' && p.status === 'running' && !ac.signal.aborted) ac.abort(new Error('Ctrl-C'));
      },
    }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    // (before: the ceiling read every session, was recorded as done, and the run stopped after it: 'encode: cancelled')
    expect((err as Error).message).toMatch(/^encode: cancelled in stage ceiling \(extractNsd: cancelled after 0 of \d+ sessions; nothing written to the cache\)/);
    expect((err as Error).cause).toBe(ac.signal.reason);
  }, 300_000);
});
