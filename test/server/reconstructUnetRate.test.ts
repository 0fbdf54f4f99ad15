/**
 * unet_steps_total{source="job"} counts the U-Net evaluations (of one latent: images × the engine's U-Net calls ×
 * 2 with guidance) that a reconstruct job's img2img shards ran in that job: a resumed job counts only the shards it ran, and
 * a cancelled job the shards it finished. Before, a job whose img2img stage merged counted the whole run's estimate
 * (every image and seed) over the merged shards' seconds, and a cancelled job counted nothing.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { DemoWorld } from '../../ts/demo/world.js';
import { batchWorld, singleConfig } from '../batch/world.js';
import { readEvents, startTestServer, type TestServer } from './helpers.js';

let s: TestServer;
let world: DemoWorld;
beforeAll(async () => {
  s = await startTestServer();
  world = await batchWorld(s.root, [1]);
}, 300_000);
afterAll(async () => s?.stop());

const rel = (p: string) => p.slice(s.root.length + 1);
/** The world's reconstruction: 8 test images × 2 seeds, strength 0.8, guidance 5; a job's shards are one per seed. */
const body = (out: string, steps = 10) => {
  const c = singleConfig(world, 1, out) as unknown as { nsd: { root: string }; model: { dir: string }; img2img: object };
  return { kind: 'reconstruct', config: { ...c, nsd: { ...c.nsd, root: rel(c.nsd.root) }, model: { ...c.model, dir: rel(c.model.dir) }, img2img: { ...c.img2img, steps } } };
};
const perShard = (steps: number) => 8 * Math.floor(steps * 0.8) * 2;
const SHARDS = ['k0-0.i0-7', 'k1-1.i0-7'];
const shardMarker = (out: string, label: string) => join(s.root, out, 'stages', 'img2img.shards', `${label}.json`);

async function unetTotal(): Promise<number> {
  const m = (await s.call('GET', '/metrics')).text;
  return Number(/^brainlatent_unet_steps_total\{source="job"\} (\S+)$/m.exec(m)?.[1] ?? 0);
}

async function run(b: object, onEvent?: (id: string, e: { event: string; data: any }) => void) {
  const r = await s.call('POST', '/v1/jobs', b);
  expect(r.status, r.text).toBe(202);
  const events = await readEvents(`${s.url}/v1/jobs/${r.json.id}/events`, {}, (e) => onEvent?.(r.json.id, e));
  return events[events.length - 1];
}

describe('a reconstruct job and unet_steps_total{source="job"}', { timeout: 600_000 }, () => {
  it('counts every shard of a fresh run, then only the shard a resumed run redid', async () => {
    expect(await unetTotal()).toBe(0);
    const first = await run(body('runs/rate'));
    expect(first.event, JSON.stringify(first.data.error)).toBe('result');
    expect(await unetTotal()).toBe(2 * perShard(10));
    const rate = Number(/^brainlatent_unet_steps_per_second\{source="job"\} (\S+)$/m.exec((await s.call('GET', '/metrics')).text)?.[1]);
    expect(rate).toBeGreaterThan(0);

    // the second seed's shard is gone: the same body resumes the run and redoes that shard only
    rmSync(shardMarker('runs/rate', SHARDS[1]));
    const again = await run(body('runs/rate'));
    expect(again.event, JSON.stringify(again.data.error)).toBe('result');
    expect(await unetTotal()).toBe(3 * perShard(10));
  });

  it('a cancelled job counts the shards it finished', async () => {
    const before = await unetTotal();
    // (longer shards: the cancel comes once one of them is done, while the other is still to run or running)
    let sent = false;
    const last = await run(body('runs/cancelled', 200), (id, e) => {
      if (!sent && e.event === 'progress' && e.data.stage === 'img2img' && /^1\/2 shards/.test(e.data.message ?? '')) {
        sent = true;
        void s.call('DELETE', `/v1/jobs/${id}`);
      }
    });
    expect(sent).toBe(true);
    expect(last.data.state).toBe('cancelled');
    // the shards whose outputs are complete (a marker): at least the one done when the cancel came
    const finished = SHARDS.filter((l) => existsSync(shardMarker('runs/cancelled', l))).length;
    expect(finished).toBeGreaterThanOrEqual(1);
    expect(await unetTotal()).toBe(before + finished * perShard(200));
  });
});
