/**
 * The schedule's limit on the step count (largestSteps), the engine's rule checked before a plan: under 'leading'
 * spacing ᾱ-indexed schedulers refuse steps whose first timestep passes T − 1 (SD 1.x's steps_offset 1: 999 steps,
 * not 1000). Checked against the engine itself (planRun) for each case, so the two cannot drift apart.
 */
import { describe, expect, it } from 'vitest';

import type { ScheduleConfig } from '../../ts/native/samplerTypes.js';
import { largestSteps, planRun, resolvePlanOptions } from '../../ts/sd/samplingOptions.js';
import { SD1_SCHEDULE, type SchedulerName } from '../../ts/sd/schedulerConfig.js';

/** Whether the engine plans n steps (the TS check bypassed: a schedule copy with the limit's inputs). */
const enginePlans = (schedule: ScheduleConfig, scheduler: SchedulerName, steps: number): boolean => {
  try {
    planRun({ schedule, scheduler, steps, strength: 1, eta: 0, img2imgRule: 'diffusers' });
    return true;
  } catch {
    return false;
  }
};

describe('largestSteps: the schedule limit on img2img steps', () => {
  const cases: [string, ScheduleConfig, SchedulerName, number][] = [
    ['SD 1.x (leading, steps_offset 1)', SD1_SCHEDULE, 'ddim', 999],
    ['SD 1.x, pndm', SD1_SCHEDULE, 'pndm', 999],
    ['SD 1.x, ddpm', SD1_SCHEDULE, 'ddpm', 999],
    ['steps_offset 0', { ...SD1_SCHEDULE, stepsOffset: 0 }, 'ddim', 1000],
    ['steps_offset 3, 500 timesteps', { ...SD1_SCHEDULE, stepsOffset: 3, numTrainTimesteps: 500 }, 'ddim', 497],
    // every scheduler: no more steps than training timesteps (the engine's make_sampler_plan; was Infinity here)
    ['trailing spacing', { ...SD1_SCHEDULE, timestepSpacing: 'trailing' }, 'ddim', 1000],
    ['a σ-based scheduler (linspace)', SD1_SCHEDULE, 'euler', 1000],
    ['a σ-based scheduler, 500 timesteps', { ...SD1_SCHEDULE, numTrainTimesteps: 500 }, 'dpmpp2m', 500],
  ];
  it.each(cases)('%s', (_, schedule, scheduler, expected) => {
    const max = largestSteps(schedule, scheduler);
    expect(max).toBe(expected);
    expect(enginePlans(schedule, scheduler, max)).toBe(true);
    expect(enginePlans(schedule, scheduler, max + 1)).toBe(false);
  });

  it('refuses more, naming the option as its caller wrote it and the largest valid value', () => {
    expect(() => resolvePlanOptions({ schedule: SD1_SCHEDULE, scheduler: 'ddim' }, { steps: 1000 }, { steps: 'img2img.steps' })).toThrow(
      /^img2img\.steps 1000 is too many for this model's schedule(?: \(.*\))?: under leading spacing with steps_offset 1 ddim's first timestep would pass 999, the last of its 1000 training timesteps; img2img\.steps is at most 999 here$/,
    );
    expect(resolvePlanOptions({ schedule: SD1_SCHEDULE, scheduler: 'ddim' }, { steps: 999 }).steps).toBe(999);
  });
});
