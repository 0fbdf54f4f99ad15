/**
 * A reconstruct job reports the img2img stage's U-Net time to the steps/s metric only when that stage ran in the job:
 * a resumed job whose img2img had finished before read the old marker's unetSeconds and counted it again.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import { afterAll, describe, expect, it, vi } from 'vitest';

import type { ReconstructConfig } from '../../ts/pipeline/config.js';
import { paths } from '../../ts/pipeline/runFolder.js';
import type { StageUpdate } from '../../ts/server/jobs/types.js';

// the batch layer reports each stage's end as the job's progress: 'skipped' (a resumed run's) or 'done'
let statuses: Record<string, 'done' | 'skipped'> = {};
vi.mock('../../ts/server/jobs/batchLayer.js', async (importOriginal) => ({
  ...(await importOriginal<object>()),
  runOnBatchLayer: async (_batch: unknown, _kind: unknown, control: { progress(p: StageUpdate): void }) => {
    Object.entries(statuses).forEach(([stage, status], i) => control.progress({ stage, index: i + 1, stages: 8, fraction: 1, status }));
    return { state: 'done' };
  },
}));
const { executeJob } = await import('../../ts/server/jobs/executeJob.js');

const dir = mkdtempSync(join(tmpdir(), 'bl-unet-rate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// a finished run folder: 4 test images × 2 seeds × 10 of 20 steps (strength 0.5), no guidance: 80 U-Net evaluations in 8 s
const out = join(dir, 'run');
const config = { out, nsd: { root: join(dir, 'nsd'), subject: 1 }, img2img: { steps: 20, strength: 0.5, seeds: 2, guidance: 1 } } as unknown as ReconstructConfig;
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'metrics.json'), JSON.stringify({ images: 4, zonly: {}, final: {} }));
mkdirSync(dirname(paths(out).stage('img2img')), { recursive: true });
writeFileSync(paths(out).stage('img2img'), JSON.stringify({ stage: 'img2img', seconds: 9, outputs: [], summary: { unetSeconds: 8 } }));

async function run(img2img: 'done' | 'skipped') {
  statuses = { betas: 'skipped', extract: 'skipped', zonly: 'skipped', img2img, evaluate: img2img };
  const unet = vi.fn();
  const progress = vi.fn();
  const spec = { id: 'job1', kind: 'reconstruct', input: { kind: 'reconstruct', config, force: false, batchesDir: join(dir, 'batches') } };
  const result = await executeJob(spec as never, { signal: new AbortController().signal, progress, unet });
  return { unet, progress, result };
}

describe('a reconstruct job and the U-Net rate metric', () => {
  it('a resumed job whose img2img was skipped counts no U-Net time (the marker is an earlier job\'s)', async () => {
    const { unet, progress, result } = await run('skipped');
    expect(unet).not.toHaveBeenCalled();
    // its progress still reaches the job, and its result reads the run folder
    expect(progress.mock.calls.map(([p]) => [p.stage, p.status])).toContainEqual(['img2img', 'skipped']);
    expect(result).toMatchObject({ testImages: 4, state: 'done' });
  });

  it('a job whose img2img ran counts its evaluations and seconds once', async () => {
    const { unet } = await run('done');
    expect(unet.mock.calls).toEqual([[80, 8]]);
  });
});
