import { existsSync, mkdtempSync, rmSync } from 'node:fs';
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
// run, three times over (retried as transient), saying "raise memoryBudget to at least 0.00152 GiB". So did a
// budget above that floor but below a fit's fixed part (X's copy, the route's Grams): the preflight now plans each
// fit's memory from its shape (RidgeCV.costModel) and refuses it up front.

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
    // the floor is only what every fit needs: at it, what is refused is each fit's own footprint (below)
    const voxels = (await preflightEncode(config(manifest('floor', 1e12)))).voxels;
    const atFloor = await preflightBatch(resolveManifest(manifest('floor', ridgeBudgetFloor(voxels))));
    expect(atFloor.map((p) => p.problem.slice(0, 16))).toEqual(["fit 'z' (stage f", "fit 'c' (stage f", "banded fit 'z+c'"]);
  });

  it("a budget above that floor but below a fit's fixed part is refused up front, naming the fit's numbers; the budget it names suffices", { timeout: 300_000 }, async () => {
    const voxels = (await preflightEncode(config(manifest('floor', 1e12)))).voxels;
    // Above the floor, below the fits' fixed footprints (X's copy and the route's buffers come on top). This passed the
    // preflight and each fit then failed with OutOfMemoryError, after the extraction and the embeddings had run.
    const small = manifest('small', ridgeBudgetFloor(voxels) + 1);
    const problems = (await preflightBatch(resolveManifest(small))).map((p) => p.problem);
    // the banded fit's too: it ran under the engine's default budget, and so was not planned, until its X (z and c
    // side by side) made the budget the per-set fits named fail it after the extraction and the embeddings
    expect(problems).toHaveLength(3);
    const least: number[] = [];
    for (const [k, [set, cols]] of ([['z', 256], ['c', 4928]] as const).entries()) {
      // the fit, its route and shape (the z table: 4 latent channels × (64 / 8)²; c: the demo text encoder's 77 tokens × 64), the parts, the budget as given
      expect(problems[k]).toMatch(
        new RegExp(
          `^fit '${set}' \\(stage fit\\.${set}\\) needs at least \\S+ GiB of work buffers \\(route (exact|per-fold)-(kernel|primal), \\d+ samples × ${cols.toLocaleString('en')} features → ${voxels.toLocaleString('en')} voxels: ` +
            `X's prepared copy \\S+ GiB, the route's Grams and decompositions \\S+ GiB, \\S+ GiB fixed in all, plus \\S+ \\S+ per voxel\\); ` +
            `ridge\\.memoryBudget is ${ridgeBudgetFloor(voxels) + 1} bytes \\(\\S+ GiB\\): raise it to at least (\\d+) bytes \\(\\S+ GiB, batches of 64 voxels\\), or leave it out`,
        ),
      );
      least.push(Number(/raise it to at least (\d+) bytes/.exec(problems[k])![1]));
    }
    expect(problems[2]).toMatch(
      new RegExp(
        `^banded fit 'z\\+c' \\(stage banded\\.z\\+c, 2 bands\\) needs at least \\S+ GiB of work buffers \\(route per-fold-kernel, \\d+ samples × 5,184 features → ${voxels.toLocaleString('en')} voxels: .*` +
          `ridge\\.memoryBudget is ${ridgeBudgetFloor(voxels) + 1} bytes \\(\\S+ GiB\\): raise it to at least (\\d+) bytes`,
      ),
    );
    least.push(Number(/raise it to at least (\d+) bytes/.exec(problems[2])![1]));
    // the banded fit needs more than either set's: the budget the batch runs at below is its
    expect(least[2]).toBeGreaterThan(Math.max(least[0], least[1]));
    // refused before anything runs: the extraction's outputs are not there
    const err = await encode(config(small)).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.name).toBe('PreflightError');
    expect(existsSync(join(config(small).out, 'data'))).toBe(false);
    // every job runs at the budget named, the banded fit included (its per-fold-kernel fit allocated past the engine's
    // own banded plan until the plan counted the refit's coefficient buffer)
    const ok = await runBatch(manifest('enough', Math.max(...least)), { concurrency: 1 });
    expect(ok.jobs.filter((j) => /\.banded\./.test(j.id)).map((j) => `${j.id.replace(/^.*\.enc\./, '')}: ${j.state}`)).toEqual(['banded.z+c: done']);
    expect(ok.jobs.filter((j) => j.state !== 'done' && j.state !== 'skipped').map((j) => `${j.id}: ${j.reason}`)).toEqual([]);
  });

  it('encode --dry-run shows each fit\'s route, shape and planned peak and batches under the budget', async () => {
    const r = await encode(config(manifest('plan', 64 * 2 ** 20)), { dryRun: true });
    const lines = r.plan!.filter((l) => /^ {2}fit '/.test(l));
    expect(lines).toEqual([
      expect.stringMatching(/^ {2}fit 'z' \(stage fit\.z\): route \S+, \d+ samples × 256 features → [\d,]+ voxels; work buffers planned at most \S+ GiB of a 0\.0625 GiB budget \(fixed \S+ GiB \+ \S+ GiB per batch\), 1 target batch of [\d,]+$/),
      expect.stringMatching(/^ {2}fit 'c' \(stage fit\.c\): route \S+, \d+ samples × 4,928 features → [\d,]+ voxels; work buffers planned at most \S+ GiB of a 0\.0625 GiB budget/),
    ]);
    expect(r.plan!.filter((l) => /^ {2}banded fit '/.test(l))).toEqual([
      expect.stringMatching(/^ {2}banded fit 'z\+c' \(stage banded\.z\+c, 2 bands\): route per-fold-kernel, \d+ samples × 5,184 features → [\d,]+ voxels; work buffers planned at most \S+ GiB of a 0\.0625 GiB budget/),
    ]);
    expect(r.plan).toContain('ridge fits, their memory planned from the shapes (ridge.memoryBudget):');
  });
});
