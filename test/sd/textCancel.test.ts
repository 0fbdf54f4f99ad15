/**
 * Diffusion.encodeText takes an AbortSignal, and the abort interrupts the text encoder's run in flight (ONNX Runtime's
 * terminate flag, through the job's cancel token) as it does OnnxModel.run's and the VAE's: encodeText took no signal,
 * and its run was a plain one that neither an abort nor a worker's end nor the process's exit could stop (the job
 * waited for the whole run). The interrupted run ends the job as Cancelled, not as an ONNX Runtime failure, and no
 * conditioning comes back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { CancelledError, InvalidArgumentError } from '../../ts/errors.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import { writeSlowTextEncoder } from '../helpers/slowTextEncoder.js';
import { computing } from '../helpers/computing.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-text-cancel-'));
let sd: Diffusion;
let msPerCaption = 0;

const ids = (captions: number): Int32Array => Int32Array.from({ length: captions * 77 }, (_, i) => 300 + (i % 200));

beforeAll(async () => {
  await writeSdFixture(join(tmp, 'model'));
  writeSlowTextEncoder(join(tmp, 'model'));
  sd = await Diffusion.load(join(tmp, 'model'), { components: ['text_encoder'], intraOpThreads: 1, interOpThreads: 1 });
  await sd.encodeText(ids(1)); // (the first run allocates)
  const t0 = performance.now();
  await sd.encodeText(ids(8));
  msPerCaption = (performance.now() - t0) / 8;
}, 120_000);
afterAll(() => {
  sd?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

it("an abort during the text encoder's run interrupts it: the job rejects as cancelled long before the run could end", async () => {
  // a run of ≥ 6 s on this machine's own measure (sized so that a run waited for is told apart from one interrupted
  // on a loaded machine as on a fast one)
  const captions = Math.min(4096, Math.ceil(6000 / msPerCaption));
  const runMs = captions * msPerCaption;
  const ac = new AbortController();
  const p = sd.encodeText(ids(captions), { signal: ac.signal });
  await computing(20, p);
  const abortedAt = performance.now();
  ac.abort();
  const outcome = await p.then(
    (c) => ({ resolved: c }),
    (e: unknown) => ({ rejected: e, afterMs: performance.now() - abortedAt }),
  );
  expect(outcome).not.toHaveProperty('resolved');
  const { rejected, afterMs } = outcome as { rejected: unknown; afterMs: number };
  expect(rejected).toBeInstanceOf(CancelledError);
  expect((rejected as Error).message).toBe(`encode_text of ${captions} captions cancelled (its run was interrupted)`);
  expect(afterMs).toBeLessThan(runMs / 2);
  // the model still works afterwards, with a signal that does not abort
  const c = await sd.encodeText(ids(2), { signal: new AbortController().signal });
  expect(c.shape).toEqual([2, 77, 512]);
}, 120_000);

it('an aborted signal stops encodeText before it starts; a signal that is not an AbortSignal and an unknown option are refused', async () => {
  const ac = new AbortController();
  ac.abort();
  await expect(sd.encodeText(ids(1), { signal: ac.signal })).rejects.toThrow(/^encodeText: aborted before it started/);
  await expect(sd.encodeText(ids(1), { signal: 5 as unknown as AbortSignal })).rejects.toThrow(/^encodeText signal: expected an AbortSignal, got 5$/);
  await expect(sd.encodeText(ids(1), { chunk: 1 } as never)).rejects.toBeInstanceOf(InvalidArgumentError);
});
