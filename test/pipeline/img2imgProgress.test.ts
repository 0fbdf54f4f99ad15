/**
 * The record of an interrupted img2img stage's finished units is used only over the same inputs: the same
 * config and the same markers of the stages img2img reads from (an upstream stage that ran again since makes
 * the earlier samples stale), and by the same version of the stage (another keyed its noise otherwise).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { configHash, type ReconstructConfig } from '../../ts/pipeline/config.js';
import { img2imgProgress } from '../../ts/pipeline/img2imgProgress.js';
import { stageRecipe } from '../../ts/pipeline/runFolder.js';

const out = mkdtempSync(join(tmpdir(), 'bl-img2img-progress-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));
const config = { out, img2img: { seeds: 2 } } as unknown as ReconstructConfig;
const marker = (stage: string, finishedAt: string) => writeFileSync(join(out, 'stages', `${stage}.json`), JSON.stringify({ stage, finishedAt }));

/** The key the stage's record had before recipes (the noise keyed by place in the test list): config, shard, upstream markers. */
function legacyKey(c: ReconstructConfig, label: string): string {
  const hash = createHash('sha256').update(configHash(c)).update(label);
  for (const s of ['extract', 'features', 'decoders', 'zonly']) hash.update(`\0${s}\0`).update(readFileSync(join(out, 'stages', `${s}.json`), 'utf8'));
  return hash.digest('hex').slice(0, 32);
}

describe('img2img progress record', () => {
  it('keeps finished units across runs over the same inputs, and forgets them over others', async () => {
    mkdirSync(join(out, 'stages'), { recursive: true });
    for (const s of ['extract', 'features', 'decoders', 'zonly']) marker(s, '2026-12-01T10:00:00Z');
    const a = await img2imgProgress(config, 'i0-24_s0-2');
    expect(a.has(0, 0)).toBe(false);
    await a.add(0, 0);
    await a.add(0, 1);
    const b = await img2imgProgress(config, 'i0-24_s0-2');
    expect([b.has(0, 0), b.has(0, 1), b.has(16, 0)]).toEqual([true, true, false]);
    // another shard, another config: not theirs
    expect((await img2imgProgress(config, 'i0-24_s0-1')).has(0, 0)).toBe(false);
    expect((await img2imgProgress({ ...config, img2img: { seeds: 3 } } as unknown as ReconstructConfig, 'i0-24_s0-2')).has(0, 0)).toBe(false);
    // a record an earlier version of the stage wrote (its key made without the recipe, the noise keyed otherwise)
    const file = join(out, 'stages', 'img2img.partial', 'i0-24_s0-2.json');
    const current = JSON.parse(readFileSync(file, 'utf8'));
    // (its config and recipe said apart from the key, for an older brainlatent to refuse the folder: runFolder.test.ts)
    expect([current.configHash, current.recipe, typeof current.brainlatent]).toEqual([configHash(config), stageRecipe('img2img'), 'string']);
    writeFileSync(file, JSON.stringify({ ...current, key: legacyKey(config, 'i0-24_s0-2') }));
    expect((await img2imgProgress(config, 'i0-24_s0-2')).has(0, 0)).toBe(false);
    writeFileSync(file, JSON.stringify(current));
    expect((await img2imgProgress(config, 'i0-24_s0-2')).has(0, 0)).toBe(true);
    // the decoders ran again since: the samples were made from other decoded features
    marker('decoders', '2026-12-01T11:00:00Z');
    expect((await img2imgProgress(config, 'i0-24_s0-2')).has(0, 0)).toBe(false);
    // finished: the record goes
    await b.remove();
    marker('decoders', '2026-12-01T10:00:00Z');
    expect((await img2imgProgress(config, 'i0-24_s0-2')).has(0, 0)).toBe(false);
  });

  // a finished run folder kept an empty stages/img2img.partial/
  it("removes the folder with the last shard's record, not while another shard's is in it", async () => {
    mkdirSync(join(out, 'stages'), { recursive: true });
    for (const s of ['extract', 'features', 'decoders', 'zonly']) marker(s, '2026-12-01T10:00:00Z');
    const dir = join(out, 'stages', 'img2img.partial');
    const a = await img2imgProgress(config, 'i0-12_s0-2');
    const b = await img2imgProgress(config, 'i12-24_s0-2');
    await a.add(0, 0);
    await b.add(12, 0);
    expect(readdirSync(dir).sort()).toEqual(['i0-12_s0-2.json', 'i12-24_s0-2.json']);
    await a.remove();
    expect(readdirSync(dir)).toEqual(['i12-24_s0-2.json']);
    await b.remove();
    expect(existsSync(dir)).toBe(false);
    // a stage that finished without recording a unit (every one done before) removes nothing it does not own
    const c = await img2imgProgress(config, 'i0-24_s0-2');
    await c.remove();
    expect(existsSync(join(out, 'stages'))).toBe(true);
    // a shard still recording after the folder went: its record makes the folder again
    await b.add(12, 1);
    expect(JSON.parse(readFileSync(join(dir, 'i12-24_s0-2.json'), 'utf8')).done).toEqual([[12, 0], [12, 1]]);
    await b.remove();
    expect(existsSync(dir)).toBe(false);
  });
});
