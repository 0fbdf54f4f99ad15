/**
 * The reconstruction loads its model with the config's img2img.scheduler, the one every sampler call runs: a model
 * folder whose scheduler/scheduler_config.json names a class the engine does not know (a newer diffusers scheduler)
 * reconstructs, the dry run's probes load it too, and the file's other keys (the betas) still apply.
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { buildDemoWorld, type DemoWorld } from '../../ts/demo/world.js';
import type { ReconstructConfigInput } from '../../ts/pipeline/config.js';
import { lazyDiffusion } from '../../ts/pipeline/lazyDiffusion.js';
import { reconstruct } from '../../ts/pipeline/reconstruct.js';
import { readSchedulerConfig } from '../../ts/sd/schedulerConfig.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-sched-load-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let world: DemoWorld;
const fooModel = join(tmp, 'model-foo');
const cfgFile = join(fooModel, 'scheduler', 'scheduler_config.json');

beforeAll(async () => {
  world = await buildDemoWorld({ out: join(tmp, 'world'), imageSize: 64, sessions: 4, trialsPerSession: 60, testImages: 6 });
  cpSync(world.modelDir, fooModel, { recursive: true });
  writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(readFileSync(cfgFile, 'utf8')), _class_name: 'FooScheduler', beta_end: 0.02 }));
});

// (the compvis img2img rule is DDIM's: another scheduler runs diffusers' rule)
const config = (out: string, scheduler: string): ReconstructConfigInput => ({
  ...world.config,
  out: join(tmp, out),
  model: { ...world.config.model, dir: fooModel },
  img2img: { ...world.config.img2img, scheduler: scheduler as never, rule: scheduler === 'ddim' ? 'compvis' : 'diffusers', steps: 4, seeds: 1 },
  evaluation: { ...world.config.evaluation, networks: [] },
});

describe("a model folder whose scheduler_config.json names a class the engine does not know", () => {
  it('is a folder Diffusion.load refuses without a scheduler, naming the class (the case this covers)', async () => {
    await expect(readSchedulerConfig(fooModel)).rejects.toThrow(`${cfgFile}: _class_name 'FooScheduler' is not a scheduler the engine knows`);
  });

  it("loads with the config's img2img.scheduler, keeping the file's other keys", async () => {
    const model = lazyDiffusion({ model: { ...world.config.model, dir: fooModel, provider: 'cpu', threads: 1, memory: 'default', ortLibrary: null }, img2img: { scheduler: 'euler' } as never });
    try {
      const sd = await model.get();
      expect(sd.defaultScheduler()).toBe('euler');
      expect(sd.schedulerConfig.className).toBe('FooScheduler');
      expect(sd.schedule.betaEnd).toBe(0.02);
    } finally {
      model.dispose();
    }
  });

  it('reconstructs end to end with the scheduler configured, and its dry run probes it', async () => {
    const r = await reconstruct(config('run', 'euler'));
    expect(r.stages.map((s) => s.status)).toEqual(r.stages.map(() => 'ran'));
    expect(r.metrics?.final.PixCorr).toEqual(expect.any(Number));
    const images = readdirSync(join(tmp, 'run', 'images'));
    expect(images.filter((n) => n.endsWith('_000.png'))).toHaveLength(r.testImages);
    expect(JSON.parse(readFileSync(join(tmp, 'run', 'run.json'), 'utf8')).config.img2img.scheduler).toBe('euler');

    const dry = await reconstruct(config('dry', 'ddim'), { dryRun: true });
    expect(dry.estimates!.img2img.seconds).toBeGreaterThan(0);
    expect(existsSync(join(tmp, 'dry', 'run.json'))).toBe(false);
  });
});
