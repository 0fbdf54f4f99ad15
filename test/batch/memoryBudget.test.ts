import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { resolveManifest, type BatchManifest } from '../../ts/batch/manifest.js';
import { preflightBatch } from '../../ts/batch/preflight.js';
import { runBatch } from '../../ts/batch/runBatch.js';
import type { EncodeConfig } from '../../ts/config/encode.js';
import type { DemoWorld } from '../../ts/demo/world.js';
import { encode } from '../../ts/encoding/encode.js';
import { preflightEncode } from '../../ts/encoding/preflight.js';
import { ridgeBudgetFloor } from '../../ts/encoding/ridgeMemory.js';
import { batchWorld, encodeTemplate } from './world.js';

// ridge.memoryBudget is in bytes. A budget no fit can have (20000: GiB meant, or a typo) passed `batch plan` and
// `encode --dry-run`, and each fit then failed with OutOfMemoryError after the extraction and the embeddings had
// run, three times over (retried as transient), saying "raise memoryBudget to at least 0.00152 GiB".

const dir = mkdtempSync(join(tmpdir(), 'bl-membudget-'));
let world: DemoWorld;
beforeAll(async () => {
  world = await batchWorld(dir, [1]);
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function manifest(name: string, memoryBudget: number): BatchManifest {
  const tpl = encodeTemplate(world);
  return {
    name,
    out: join(dir, name),
    nsd: { root: world.nsdRoot },
    subjects: [1],
    analyses: [{ name: 'enc', kind: 'encode', config: { ...tpl, ridge: { ...(tpl.ridge as object), memoryBudget } } }],
  };
}

const config = (m: BatchManifest) => resolveManifest(m).subjects[0].analyses[0].config as EncodeConfig;

describe('ridge.memoryBudget', () => {
  it('a budget below what any fit needs is a preflight problem: batch plan/submit/run and encode --dry-run refuse it', async () => {
    const m = manifest('tiny', 20_000);
    const problems = await preflightBatch(resolveManifest(m));
    expect(problems.map((p) => p.problem)).toEqual([expect.stringMatching(/^ridge\.memoryBudget is 20000 bytes \(1\.86e-05 GiB\), below the \d+ bytes .* that every ridge fit of this run needs .*the budget is in bytes \(2 GiB is 2147483648\)/)]);
    const err = await encode(config(m), { dryRun: true }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.name).toBe('PreflightError');
    expect(err?.message).toMatch(/ridge\.memoryBudget is 20000 bytes/);
    // the floor is only what every fit needs: a budget at it passes the preflight
    const voxels = (await preflightEncode(config(manifest('floor', 1e12)))).voxels;
    expect(await preflightBatch(resolveManifest(manifest('floor', ridgeBudgetFloor(voxels))))).toEqual([]);
  });

  it("a fit's refusal of its budget is not retried, and says the least budget in bytes, which then suffices", { timeout: 300_000 }, async () => {
    const voxels = (await preflightEncode(config(manifest('floor', 1e12)))).voxels;
    // above the preflight's floor, below the fits' fixed footprints (X's copy and the route's buffers come on top)
    const r = await runBatch(manifest('small', ridgeBudgetFloor(voxels) + 1), { concurrency: 1 });
    expect(r.state).toBe('failed');
    const fits = r.jobs.filter((j) => j.stage.startsWith('fit.'));
    expect(fits.map((j) => [j.stage, j.state, j.attempts])).toEqual([
      ['fit.z', 'failed', 1],
      ['fit.c', 'failed', 1],
    ]);
    const least: number[] = [];
    for (const j of fits) {
      expect(j.reason).toMatch(new RegExp(`^OutOfMemoryError: ridge fit: the memory budget of \\S+ GiB \\(ridge\\.memoryBudget: ${ridgeBudgetFloor(voxels) + 1} bytes\\) is below this fit's fixed footprint`));
      const m = /raise ridge\.memoryBudget \(in bytes\) to at least (\d+) \([0-9.e-]+ GiB\)$/.exec(j.reason ?? '');
      expect(m, j.reason).not.toBeNull();
      least.push(Number(m![1]));
    }
    const ok = await runBatch(manifest('enough', Math.max(...least)), { concurrency: 1 });
    expect(ok.jobs.filter((j) => j.state !== 'done' && j.state !== 'skipped').map((j) => `${j.id}: ${j.reason}`)).toEqual([]);
  });
});
