/** Reads a model folder's scheduler/scheduler_config.json into the engine's ScheduleConfig. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { FormatError } from '../errors.js';
import type { ScheduleConfig } from '../native/samplerTypes.js';

/** SD 1.x's training schedule (what a folder without scheduler_config.json gets). */
export const SD1_SCHEDULE: Required<ScheduleConfig> = {
  numTrainTimesteps: 1000,
  betaStart: 0.00085,
  betaEnd: 0.012,
  betaSchedule: 'scaled_linear',
  setAlphaToOne: false,
  stepsOffset: 1,
  timestepSpacing: 'leading',
  predictionType: 'epsilon',
};

export function scheduleFromJson(json: Record<string, unknown>, source = 'scheduler_config.json'): Required<ScheduleConfig> {
  const num = (k: string, d: number): number => {
    const v = json[k];
    if (v === undefined || v === null) return d;
    if (typeof v !== 'number') throw new FormatError(`${source}: ${k} must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const str = (k: string, d: string): string => {
    const v = json[k];
    if (v === undefined || v === null) return d;
    if (typeof v !== 'string') throw new FormatError(`${source}: ${k} must be a string, got ${JSON.stringify(v)}`);
    return v;
  };
  if (json.trained_betas !== undefined && json.trained_betas !== null) {
    throw new FormatError(`${source}: trained_betas is not supported`);
  }
  const spacing = str('timestep_spacing', SD1_SCHEDULE.timestepSpacing);
  if (spacing !== 'leading' && spacing !== 'trailing' && spacing !== 'linspace') {
    throw new FormatError(`${source}: timestep_spacing '${spacing}' is not leading, trailing or linspace`);
  }
  return {
    numTrainTimesteps: num('num_train_timesteps', SD1_SCHEDULE.numTrainTimesteps),
    betaStart: num('beta_start', SD1_SCHEDULE.betaStart),
    betaEnd: num('beta_end', SD1_SCHEDULE.betaEnd),
    betaSchedule: str('beta_schedule', SD1_SCHEDULE.betaSchedule),
    setAlphaToOne: typeof json.set_alpha_to_one === 'boolean' ? json.set_alpha_to_one : SD1_SCHEDULE.setAlphaToOne,
    stepsOffset: num('steps_offset', SD1_SCHEDULE.stepsOffset),
    timestepSpacing: spacing,
    predictionType: str('prediction_type', SD1_SCHEDULE.predictionType),
  };
}

/** The folder's schedule, or SD 1.x's when the file is absent. */
export async function readScheduleConfig(modelDir: string): Promise<Required<ScheduleConfig>> {
  const path = join(modelDir, 'scheduler', 'scheduler_config.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return { ...SD1_SCHEDULE };
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new FormatError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  return scheduleFromJson(json, path);
}
