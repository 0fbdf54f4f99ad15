/**
 * A batch resumed over a damaged final image: the shard that wrote it runs again (its marker records its PNGs as it
 * wrote them), then the merge and what follows; the other shards are kept. Before, the shard was skipped because its
 * PNGs existed, and the merge recorded the damaged image as the stage's.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runBatch } from '../../ts/batch/runBatch.js';
import type { DemoWorld } from '../../ts/demo/world.js';
import { batchManifest, batchWorld } from './world.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-damaged-shard-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let world: DemoWorld;

beforeAll(async () => {
  world = await batchWorld(dir, [1]);
}, 300_000);

describe('a batch resumed over a damaged final image', () => {
  it('reruns the one shard that wrote it, the merge and the stages after; run again, skips all', { timeout: 600_000 }, async () => {
    const out = join(dir, 'batch');
    const manifest = batchManifest(world, 'dmg', out, [1]);
    expect((await runBatch(manifest, { concurrency: 1 })).state).toBe('done');
    const folder = join(out, 'subj01', 'recon');
    const shards = join(folder, 'stages', 'img2img.shards');
    const file = readdirSync(shards).filter((f) => f.endsWith('.json')).sort()[0];
    const marker = JSON.parse(readFileSync(join(shards, file), 'utf8')) as { outputs: string[]; outputFiles: Record<string, { size: number }> };
    const sample = marker.outputs[0];
    const good = readFileSync(join(folder, sample));
    expect(marker.outputFiles[sample].size).toBe(good.length);
    writeFileSync(join(folder, sample), 'junk\n');
    const again = await runBatch(manifest, { concurrency: 1 });
    expect(again.state).toBe('done');
    const ran = again.jobs.filter((j) => j.state === 'done').map((j) => j.id);
    expect(ran).toEqual([`dmg.subj01.recon.img2img.${file.replace(/\.json$/, '')}`, 'dmg.subj01.recon.img2img', 'dmg.subj01.recon.evaluate', 'dmg.subj01.recon.report', 'dmg.subj01']);
    expect(readFileSync(join(folder, sample))).toEqual(good);
    expect((await runBatch(manifest, { concurrency: 1 })).jobs.every((j) => j.state === 'skipped')).toBe(true);
  });

  it("the merge takes its PNGs' records from the shards' markers, reading only a PNG that moved since", { timeout: 600_000 }, async () => {
    const out = join(dir, 'batch');
    const manifest = batchManifest(world, 'dmg', out, [1]);
    expect((await runBatch(manifest, { concurrency: 1 })).state).toBe('done');
    const folder = join(out, 'subj01', 'recon');
    const shards = join(folder, 'stages', 'img2img.shards');
    const file = join(shards, readdirSync(shards).filter((f) => f.endsWith('.json')).sort()[0]);
    const marker = JSON.parse(readFileSync(file, 'utf8')) as { outputs: string[]; outputFiles: Record<string, { size: number; mtimeMs: number; sha256: string }> };
    const [kept, moved] = marker.outputs;
    const sha256 = marker.outputFiles[moved].sha256;
    // a hash no read of the PNG would give: the merged marker holds it only if the merge took it unread
    const wrong = '0'.repeat(64);
    marker.outputFiles[kept].sha256 = wrong;
    writeFileSync(file, JSON.stringify(marker));
    // the other PNG the same, at another time (a copy without its times): read, and its record is the present one
    const t = statSync(join(folder, moved)).mtimeMs / 1000 + 10;
    utimesSync(join(folder, moved), t, t);
    rmSync(join(folder, 'stages', 'img2img.json'));
    const again = await runBatch(manifest, { concurrency: 1 });
    expect(again.jobs.filter((j) => j.state === 'done').map((j) => j.id)).toEqual(['dmg.subj01.recon.img2img', 'dmg.subj01.recon.evaluate', 'dmg.subj01.recon.report', 'dmg.subj01']);
    const merged = JSON.parse(readFileSync(join(folder, 'stages', 'img2img.json'), 'utf8')) as { outputs: string[]; outputFiles: Record<string, unknown> };
    expect(merged.outputFiles[kept]).toEqual({ ...marker.outputFiles[kept], sha256: wrong });
    expect(merged.outputFiles[moved]).toEqual({ size: marker.outputFiles[moved].size, mtimeMs: statSync(join(folder, moved)).mtimeMs, sha256 });
    expect(Object.keys(merged.outputFiles).sort()).toEqual([...merged.outputs].sort());
  });
});
