/**
 * The img2img stage's estimated U-Net evaluations (estimateImg2Img) against the calls the sampler makes, counted
 * from the engine's progress events on the tiny SD fixture, for every scheduler × img2img rule × a few (steps,
 * strength), strength·steps < 1 among them. The estimate counted ⌊steps·strength⌋ calls (× 2 with guidance): PNDM
 * makes one more (its repeated warm-up timestep; one call at t_0 where ⌊steps·strength⌋ is 0) and Heun two a step
 * but the last, so both were under-counted. Where the run's plan is refused, the estimate is refused too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';

import { ConfigError } from '../../ts/config/errors.js';
import { InvalidArgumentError } from '../../ts/errors.js';
import { resolveConfig } from '../../ts/pipeline/config.js';
import { estimateImg2Img } from '../../ts/pipeline/reconstruct.js';
import { SCHEDULERS, type SchedulerName } from '../../ts/sd/Diffusion.js';
import { disposeTinySd, loadTinySd, type TinySd } from '../sd/fixtures.js';

let tiny: TinySd | undefined;
beforeAll(async () => {
  tiny = await loadTinySd();
}, 120_000);
afterAll(() => disposeTinySd(tiny));

const SEEDS = 2;
const GUIDANCE = 5;

/** The U-Net calls one img2img run of the fixture's 3 latents (one batch) makes, from its progress events; null when refused. */
async function countedCalls(scheduler: SchedulerName, rule: 'diffusers' | 'compvis', steps: number, strength: number): Promise<{ calls: number; evaluations: number } | null> {
  const { sd, z, c, uncond } = tiny!;
  let calls = 0;
  try {
    const r = await sd.img2img({ z, c, uncond, guidance: GUIDANCE, scheduler, img2imgRule: rule, steps, strength, seeds: 3, batchSize: z.shape[0], onStep: () => calls++ });
    expect(r.stats.unetCalls).toBe(calls);
    return { calls, evaluations: r.stats.unetEvaluations };
  } catch (e) {
    expect((e as Error).name).toBe('InvalidArgumentError');
    return null;
  }
}

describe("estimateImg2Img counts the U-Net calls the run's plan makes", () => {
  const cases: [steps: number, strength: number][] = [
    [10, 0.8],
    [7, 0.5],
    [4, 1],
    [5, 0.1],
    [1, 1],
  ];
  for (const scheduler of SCHEDULERS) {
    for (const rule of ['diffusers', 'compvis'] as const) {
      it(`${scheduler}, rule ${rule}`, async () => {
        const images = tiny!.z.shape[0];
        for (const [steps, strength] of cases) {
          const what = `${scheduler} ${rule} steps ${steps} strength ${strength}`;
          const counted = await countedCalls(scheduler, rule, steps, strength);
          const input = {
            out: join('/nonexistent', 'run'),
            nsd: { root: '/nonexistent/nsd', subject: 1 },
            model: { dir: join(tiny!.root, 'optimum-1.24') },
            decoders: { z: { roi: 'nsdgeneral' }, c: { roi: 'nsdgeneral' } },
            img2img: { scheduler, rule, steps, strength, guidance: GUIDANCE, seeds: SEEDS },
          };
          let estimated: number | null;
          try {
            estimated = (await estimateImg2Img(resolveConfig(input), images)).unetEvaluations;
          } catch (e) {
            expect(['ConfigError', 'InvalidArgumentError'], `${what}: ${(e as Error).message}`).toContain((e as Error).name);
            estimated = null;
          }
          if (counted === null) {
            expect(estimated, `${what}: refused by the sampler`).toBeNull();
            continue;
          }
          // images × seeds × calls, × 2 with guidance (each call's unconditional pass)
          expect(counted.evaluations, what).toBe(images * counted.calls * 2);
          expect(estimated, what).toBe(SEEDS * counted.evaluations);
        }
      }, 120_000);
    }
  }

  it('PNDM and Heun make other counts than ⌊steps·strength⌋ (so the cases above tell them apart)', async () => {
    expect((await countedCalls('pndm', 'diffusers', 10, 0.8))!.calls).toBe(9);
    expect((await countedCalls('pndm', 'diffusers', 5, 0.1))!.calls).toBe(1);
    expect((await countedCalls('heun', 'diffusers', 10, 0.8))!.calls).toBe(15);
  });

  it('resolves the config first and refuses a testImages that is not an integer >= 0, naming it', async () => {
    const input = {
      out: '/nonexistent/run',
      nsd: { root: '/nonexistent/nsd', subject: 1 },
      model: { dir: join(tiny!.root, 'optimum-1.24') },
      img2img: { scheduler: 'ddim' as const, steps: 10, strength: 0.8, guidance: GUIDANCE, seeds: SEEDS },
    };
    // (NaN gave {"unetEvaluations": null}, -1 gave -400 and 2.5 1000)
    for (const [bad, shown] of [[NaN, 'NaN'], [-1, '-1'], [2.5, '2.5'], ['3', 'string "3"']] as const) {
      await expect(estimateImg2Img(resolveConfig(input), bad as number), String(bad)).rejects.toThrow(
        new InvalidArgumentError(`estimateImg2Img testImages: expected an integer >= 0, got ${shown}`),
      );
    }
    // a config as written (its defaults not filled in) gave null too: it is resolved as reconstruct() resolves it
    const resolved = (await estimateImg2Img(resolveConfig(input), 3)).unetEvaluations;
    expect(resolved).toBe(3 * SEEDS * 8 * 2);
    expect((await estimateImg2Img(input, 3)).unetEvaluations).toBe(resolved);
    expect((await estimateImg2Img(input, 0)).unetEvaluations).toBe(0);
    const e = await estimateImg2Img({ ...input, img2img: { ...input.img2img, steps: 0 } }, 3).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).toContain('img2img.steps');
  });
});
