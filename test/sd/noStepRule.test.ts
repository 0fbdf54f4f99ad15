/**
 * img2img runs the last ⌊steps·strength⌋ of the steps; with none the engine refuses the plan in its own words
 * ("strength 0.3 with 1 steps runs no denoising step (needs strength >= 1/steps)"), naming neither option as its
 * caller wrote it. resolvePlanOptions checks the same rule first (noStepProblem), named by the caller's labels.
 * Checked against the engine itself (planRun) for every scheduler, so the two cannot drift apart.
 */
import { describe, expect, it } from 'vitest';

import { noStepProblem, planRun, resolvePlanOptions, smallestStrength } from '../../ts/sd/samplingOptions.js';
import { SCHEDULERS, SD1_SCHEDULE, type SchedulerName } from '../../ts/sd/schedulerConfig.js';

const enginePlans = (scheduler: SchedulerName, steps: number, strength: number): boolean => {
  try {
    planRun({ schedule: SD1_SCHEDULE, scheduler, steps, strength, eta: 0, img2imgRule: 'diffusers' });
    return true;
  } catch (e) {
    expect((e as Error).message).toMatch(/runs no denoising step/);
    return false;
  }
};

describe('the no-denoising-step rule: steps·strength < 1', () => {
  it("is the engine's rule, for every scheduler (1/49 is one: 49 × (1/49) < 1 in doubles)", () => {
    const cases: [number, number][] = [[1, 0.3], [1, 1], [2, 0.3], [2, 0.5], [3, 0.3], [3, 1 / 3], [3, 0.34], [49, 1 / 49], [49, 0.0204082], [10, 0.1], [50, 0.019], [50, 0.02]];
    for (const scheduler of SCHEDULERS) {
      for (const [steps, strength] of cases) {
        expect(noStepProblem(steps, strength, scheduler, (k) => k) === null, `${scheduler} ${steps} ${strength}`).toBe(enginePlans(scheduler, steps, strength));
      }
    }
  });

  it('suggests a strength that runs one step, as small as 6 digits allow', () => {
    for (let steps = 1; steps <= 999; steps++) {
      const s = smallestStrength(steps);
      expect(Math.trunc(steps * s), String(steps)).toBe(1);
      expect(s - 1 / steps).toBeLessThan(1e-5 / steps);
    }
    expect([1, 2, 3, 7, 49, 50].map(smallestStrength)).toEqual([1, 0.5, 0.333334, 0.142858, 0.0204082, 0.02]);
  });

  it("names the options as the caller's user wrote them", () => {
    const labels = { steps: 'img2img.steps', strength: 'img2img.strength' };
    expect(() => resolvePlanOptions({ schedule: SD1_SCHEDULE, scheduler: 'ddim' }, { steps: 1, strength: 0.3 }, labels)).toThrow(
      'img2img.strength 0.3 with img2img.steps 1 runs no denoising step: img2img runs the last ⌊steps·strength⌋ of the steps, 0 here; strength·steps must be at least 1 (e.g. img2img.strength 1 with img2img.steps 1)',
    );
    // pndm's extra timestep: diffusers' get_timesteps keeps it (one call at t_0), and so does the engine
    expect(resolvePlanOptions({ schedule: SD1_SCHEDULE, scheduler: 'pndm' }, { steps: 3, strength: 0.3 }, labels).strength).toBe(0.3);
    // one step with pndm has one timestep: nothing extra
    expect(() => resolvePlanOptions({ schedule: SD1_SCHEDULE, scheduler: 'pndm' }, { steps: 1, strength: 0.3 })).toThrow(/^strength 0\.3 with steps 1 runs no denoising step/);
    expect(resolvePlanOptions({ schedule: SD1_SCHEDULE, scheduler: 'pndm' }, { steps: 3, strength: 0.333334 }).strength).toBe(0.333334);
  });
});
