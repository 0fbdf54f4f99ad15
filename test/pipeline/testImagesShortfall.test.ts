/**
 * `--test-images 100` (nsd.testImages) on a subject with 10 test images reconstructed the 10 in silence, the plan
 * saying '10 test images'. The preflight now warns, in the dry run's plan and before the run's first stage.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CancelledError } from '../../ts/errors.js';
import { resolveConfig } from '../../ts/pipeline/config.js';
import { preflight } from '../../ts/pipeline/preflight.js';
import { reconstruct } from '../../ts/pipeline/reconstruct.js';
import { testImagesShortfall } from '../../ts/pipeline/testImagesShortfall.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import { synthNsd, type SynthNsdResult } from '../../ts/synth/nsd.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-test-images-'));
let nsd: SynthNsdResult;
let model = '';
let runs = 0;

beforeAll(async () => {
  nsd = await synthNsd({ out: join(tmp, 'nsd'), grid: [8, 8, 8], designSessions: 3, sessions: 3, trialsPerSession: 60, sharedImages: 10, imageSize: 16, formats: ['nifti'], seed: 4 });
  model = join(tmp, 'sd');
  await writeSdFixture(model);
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const config = (testImages: number | null) => ({
  out: join(tmp, `run-${++runs}`),
  nsd: { root: nsd.root, subject: 1, testImages },
  model: { dir: model },
  decoders: { z: { roi: 'nsdgeneral' }, c: { roi: 'nsdgeneral' } },
});

// (the library names the config's field; reconstruct's command line names it in its form: reconstructFieldFlags.test.ts)
const said = "nsd.testImages is 100, but subject 1 has only 10 test images (shared images) in the sessions read: all 10 are reconstructed";

describe('more test images asked for than there are', () => {
  it('the preflight warns, naming both counts; as many or fewer, or all, it says nothing', async () => {
    expect((await preflight(resolveConfig(config(100)))).warnings).toEqual([said]);
    for (const n of [10, 4, null]) expect((await preflight(resolveConfig(config(n)))).warnings).toEqual([]);
    expect(testImagesShortfall(3, 1, 2)).toBe('nsd.testImages is 3, but subject 2 has only 1 test image (shared images) in the sessions read: all 1 are reconstructed');
  });

  it("the dry run's plan lists it under the count, and the run says it before its first stage", async () => {
    const dry = await reconstruct(config(100), { dryRun: true });
    expect(dry.plan).toContain(`warning: ${said}`);
    expect(dry.testImages).toBe(10);
    // (the run is stopped as the warning arrives: it comes before any stage)
    const ac = new AbortController();
    const warned: string[] = [];
    const run = reconstruct(config(100), { signal: ac.signal, onWarning: (w) => (warned.push(w), ac.abort()) });
    await expect(run).rejects.toBeInstanceOf(CancelledError);
    expect(warned).toEqual([said]);
  });
});
