/**
 * A guided img2img without `uncond` encodes "" on a Diffusion's first such run, and that encode took no signal: a run
 * aborted before it started, or during the encode, waited for the whole encode before it rejected (1–1.5 s on a slow
 * encoder, reviewer s39). The run's abort now rejects it at once; the encode goes on, and the next run takes it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { CancelledError } from '../../ts/errors.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import type { Tensor } from '../../ts/sd/tensor.js';
import { computing } from '../helpers/computing.js';
import { writeSlowTextEncoder } from '../helpers/slowTextEncoder.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-empty-prompt-'));
const slow = join(tmp, 'slow');
let z: Tensor, c: Tensor;

/** The Diffusion's embedding of "" once it has it (private: what these runs would otherwise have waited for). */
const emptyEmbedding = (sd: Diffusion): Tensor | undefined => (sd as unknown as { emptyEmbedding?: Tensor }).emptyEmbedding;
const emptyEncode = (sd: Diffusion): Promise<Tensor> | null => (sd as unknown as { emptyCache: Promise<Tensor> | null }).emptyCache;

beforeAll(async () => {
  await writeSdFixture(join(tmp, 'model'));
  await writeSdFixture(slow);
  // (one caption's encode: 77 rows × 120 MatMuls of 1024², about a second on one thread, the fixture's width 32 out)
  writeSlowTextEncoder(slow, 1024, 120, 32);
  const sd = await Diffusion.load(join(tmp, 'model'));
  z = await sd.encodeImages({ data: Uint8Array.from({ length: 64 * 64 * 3 }, (_, i) => (i * 37) % 256), count: 1, height: 64, width: 64 });
  c = await sd.encodeText(['a']);
  sd.dispose();
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

it('a run aborted before it started rejects without starting the encode of ""', async () => {
  const sd = await Diffusion.load(slow, { intraOpThreads: 1 });
  try {
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    const err = await sd.img2img({ z, c, steps: 4, signal: ac.signal }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    expect((err as Error).message).toBe('img2img: aborted before it started');
    expect((err as Error).cause).toEqual(new Error('stop'));
    expect(emptyEncode(sd)).toBeNull();
  } finally {
    sd.dispose();
  }
}, 60_000);

it('a run aborted during the encode of "" rejects before the encode ends; the encode is kept for the next run', async () => {
  const sd = await Diffusion.load(slow, { intraOpThreads: 1 });
  try {
    // The encode of "" is held until the run has rejected: the text encoder's result reaches the Diffusion only once
    // `release` is called, so the abort lands during the encode however fast the machine. (The abort came after a
    // fixed 50 ms, and the encode plus 4 steps took ~215 ms: on a fast machine, or with the test's thread held up,
    // the encode could end first.)
    let release = (): void => {};
    const held = new Promise<void>((r) => (release = r));
    let encoding: Promise<Tensor> | undefined;
    let encodes = 0;
    const encodeText = sd.encodeText.bind(sd);
    sd.encodeText = (captions, options) => {
      const p = encodeText(captions, options);
      encodes++;
      encoding ??= p;
      return p.then(async (t) => {
        await held;
        return t;
      });
    };
    const ac = new AbortController();
    const run = sd.img2img({ z, c, steps: 4, signal: ac.signal }).catch((e: unknown) => e);
    // the run started the encode of "" (the cached promise exists: the run awaits it); the abort comes once the
    // encoder computes, not while its job still waits for the engine's thread
    expect(emptyEncode(sd)).not.toBeNull();
    expect(encoding).toBeDefined();
    await computing(20, encoding!);
    ac.abort();
    const err = await run;
    expect(err).toBeInstanceOf(CancelledError);
    expect((err as Error).message).toBe('img2img: cancelled while the empty prompt was encoded');
    // the rejection came while the encode was still running (held), not after it
    expect(emptyEmbedding(sd)).toBeUndefined();
    release();
    const empty = await emptyEncode(sd)!;
    expect(empty.shape).toEqual([1, 77, 32]);
    // the next run takes the kept embedding (no second encode) and runs to the end
    const out = await sd.img2img({ z, c, steps: 4, signal: new AbortController().signal });
    expect(emptyEncode(sd)).not.toBeNull();
    expect(encodes).toBe(1);
    expect(out.latents.shape).toEqual(z.shape);
  } finally {
    sd.dispose();
  }
}, 60_000);
