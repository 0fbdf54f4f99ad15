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
import { encode } from '../../ts/encoding/encode.js';
import { reconstruct } from '../../ts/pipeline/reconstruct.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { batchWorld, encodeTemplate, singleConfig } from '../batch/world.js';
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
    expect((err as Error).message).toMatch(
      /^reconstruct --dry-run: cancelled while estimating stage features \(encode_text of \d+ captions cancelled \(its run was interrupted\)\); no stage ran and nothing was written$/,
    );
    expect((err as Error).cause).toBe(ac.signal.reason);
    // the warm-up's VAE and text runs only (before, the best of two ran after it: 3 of each)
    expect(texts).toHaveBeenCalledTimes(1);
    expect(images).toHaveBeenCalledTimes(1);
  }, 300_000);

  it('every model run the probes make (VAE encode and decode, text, img2img) takes the job\'s signal', async () => {
    const ac = new AbortController();
    const signals = new Map<string, unknown[]>();
    for (const m of ['encodeImages', 'encodeText', 'decode'] as const) {
      const f = Diffusion.prototype[m] as (this: Diffusion, x: unknown, o?: { signal?: AbortSignal }) => Promise<unknown>;
      vi.spyOn(Diffusion.prototype, m).mockImplementation(function (this: Diffusion, x: unknown, o?: { signal?: AbortSignal }) {
        // (not img2img's own encoding of "" for guidance: one short run, cached for every later call, whoever's signal)
        const emptyPrompt = m === 'encodeText' && Array.isArray(x) && x.length === 1 && x[0] === '';
        if (!emptyPrompt) signals.set(m, [...(signals.get(m) ?? []), o?.signal]);
        return f.call(this, x, o);
      } as never);
    }
    const img2img = Diffusion.prototype.img2img;
    vi.spyOn(Diffusion.prototype, 'img2img').mockImplementation(function (this: Diffusion, o: Parameters<Diffusion['img2img']>[0]) {
      signals.set('img2img', [...(signals.get('img2img') ?? []), o.signal]);
      return img2img.call(this, o);
    });
    expect(await dryRun('signals', ac.signal)).toBeNull();
    // (before, the z-only probe's decodes and the img2img probe's re-encodes and decodes ran without it)
    const without = [...signals].flatMap(([m, s]) => s.filter((x) => x !== ac.signal).map(() => m));
    expect(without).toEqual([]);
    expect([...signals.keys()].sort()).toEqual(['decode', 'encodeImages', 'encodeText', 'img2img']);
  }, 300_000);

  it('an abort before the estimate stops at the session read, the first probe (it read every session of the probe three times)', async () => {
    const ac = new AbortController();
    ac.abort(new Error('Ctrl-C'));
    const err = await dryRun('aborted', ac.signal);
    expect(err).toBeInstanceOf(CancelledError);
    expect((err as Error).message).toBe(
      'reconstruct --dry-run: cancelled while estimating stage extract (extractNsd: cancelled after 0 of 1 session; nothing written to the cache); no stage ran and nothing was written',
    );
    expect((err as Error).cause).toBe(ac.signal.reason);
  }, 300_000);

  it('an abort after the model probes stops the metrics probe, at its first job (the dry run finished, evaluate and report estimated)', async () => {
    const ac = new AbortController();
    const dispose = Diffusion.prototype.dispose;
    // (the estimate disposes of its model once the img2img probe is done: the metrics come next)
    vi.spyOn(Diffusion.prototype, 'dispose').mockImplementation(function (this: Diffusion) {
      dispose.call(this);
      ac.abort(new Error('Ctrl-C'));
    });
    const err = await dryRun('after-model', ac.signal);
    expect(err).toBeInstanceOf(CancelledError);
    // (the job's own message, 'pixCorr: aborted before it started', said neither that a dry run stopped nor where)
    expect((err as Error).message).toBe('reconstruct --dry-run: cancelled while estimating stage evaluate; no stage ran and nothing was written');
    expect((err as Error).cause).toBe(ac.signal.reason);
  }, 300_000);
});

describe('encode --dry-run', () => {
  /** A dry run of the encoding template; the error it ends with, or null. */
  function encodeDryRun(out: string, signal: AbortSignal): Promise<unknown> {
    const t = encodeTemplate(world) as { nsd: Record<string, unknown> };
    return encode({ ...t, out: join(dir, out), nsd: { ...t.nsd, root: world.nsdRoot, subject: 1 } } as never, { dryRun: true, signal }).then(
      () => null,
      (e: unknown) => e,
    );
  }

  it('an abort before the estimate stops at the session read (it read the probe session three times, then loaded the model)', async () => {
    const ac = new AbortController();
    ac.abort(new Error('Ctrl-C'));
    const err = await encodeDryRun('enc', ac.signal);
    expect(err).toBeInstanceOf(CancelledError);
    expect((err as Error).message).toBe(
      'encode --dry-run: cancelled while estimating stage extract (extractNsd: cancelled after 0 of 1 session; nothing written to the cache); no stage ran and nothing was written',
    );
    expect((err as Error).cause).toBe(ac.signal.reason);
  }, 300_000);

  it("an abort once the embedding probe is done stops the first table's ridge probe, and names its stage", async () => {
    const ac = new AbortController();
    const dispose = Diffusion.prototype.dispose;
    // (the embedding probe disposes of its model when done; the template's z and c tables need no other)
    vi.spyOn(Diffusion.prototype, 'dispose').mockImplementation(function (this: Diffusion) {
      dispose.call(this);
      ac.abort(new Error('Ctrl-C'));
    });
    const err = await encodeDryRun('enc-fit', ac.signal);
    expect(err).toBeInstanceOf(CancelledError);
    // (before: 'RidgeCV.fit: aborted before it started')
    expect((err as Error).message).toBe('encode --dry-run: cancelled while estimating stage fit.z; no stage ran and nothing was written');
    expect((err as Error).cause).toBe(ac.signal.reason);
  }, 300_000);
});
