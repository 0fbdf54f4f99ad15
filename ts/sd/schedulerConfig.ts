/**
 * A model folder's scheduler/scheduler_config.json: validated once here (every error names the file
 * and the field), kept as the keys it names, and mapped to the scheduler its `_class_name` picks (PNDM, SD 1.x's,
 * when it names none; the caller's choice, when there is one, runs instead and the class is not needed).
 * Keys the file does not name take the defaults of the scheduler class that runs, as diffusers'
 * `from_config` gives them (so SD 1.5's file, which names no timestep_spacing, runs DDIM, PNDM and
 * DDPM with "leading" and Euler, Euler ancestral, LMS, Heun, DPM-Solver and UniPC with "linspace").
 */
import { join } from 'node:path';

import { FormatError, InvalidArgumentError } from '../errors.js';
import { checkKnownKeys } from '../ridge/options.js';
import type { ScheduleConfig } from '../native/samplerTypes.js';
import { readModelFile } from './modelRoots.js';
import { parsePythonJsonFile } from '../io/pythonJson.js';

export type SchedulerName =
  | 'ddim'
  | 'pndm'
  | 'ddpm'
  | 'lms'
  | 'euler'
  | 'euler-ancestral'
  | 'heun'
  | 'dpmpp2m'
  | 'dpmpp2m-sde'
  | 'unipc';

export const SCHEDULERS: readonly SchedulerName[] = [
  'ddim',
  'pndm',
  'ddpm',
  'lms',
  'euler',
  'euler-ancestral',
  'heun',
  'dpmpp2m',
  'dpmpp2m-sde',
  'unipc',
];

/** Schedulers that have diffusers' use_karras_sigmas. */
export const KARRAS_SCHEDULERS: readonly SchedulerName[] = ['euler', 'heun', 'lms', 'dpmpp2m', 'dpmpp2m-sde', 'unipc'];

/** diffusers class name → scheduler (DPMSolverMultistepScheduler depends on its algorithm_type). */
export const SCHEDULER_CLASSES: Record<string, SchedulerName> = {
  DDIMScheduler: 'ddim',
  PNDMScheduler: 'pndm',
  DDPMScheduler: 'ddpm',
  LMSDiscreteScheduler: 'lms',
  EulerDiscreteScheduler: 'euler',
  EulerAncestralDiscreteScheduler: 'euler-ancestral',
  HeunDiscreteScheduler: 'heun',
  DPMSolverMultistepScheduler: 'dpmpp2m',
  UniPCMultistepScheduler: 'unipc',
};

/** SD 1.5's scheduler_config.json, as the engine reads it (what a folder without one gets). */
export const SD1_SCHEDULE: ScheduleConfig = {
  numTrainTimesteps: 1000,
  betaStart: 0.00085,
  betaEnd: 0.012,
  betaSchedule: 'scaled_linear',
  setAlphaToOne: false,
  stepsOffset: 1,
  clipSample: false,
  skipPrkSteps: true,
};

/** A scheduler config: the keys the file names, its class's scheduler, and what it allows. */
export interface SchedulerConfigFile {
  /** The file read, or a description when there was none. */
  source: string;
  /** `_class_name` ('' when absent). */
  className: string;
  /** The scheduler that runs when a run names none: the caller's choice, else the one `_class_name` picks (PNDM when the file names none). */
  scheduler: SchedulerName;
  /** The keys the file names, camelCased (absent ones take the class defaults in the engine). */
  schedule: ScheduleConfig;
}

const NUMBER_KEYS: Record<string, keyof ScheduleConfig> = {
  num_train_timesteps: 'numTrainTimesteps',
  beta_start: 'betaStart',
  beta_end: 'betaEnd',
  steps_offset: 'stepsOffset',
  clip_sample_range: 'clipSampleRange',
  sigma_min: 'sigmaMin',
  sigma_max: 'sigmaMax',
};
const BOOL_KEYS: Record<string, keyof ScheduleConfig> = {
  set_alpha_to_one: 'setAlphaToOne',
  clip_sample: 'clipSample',
  use_karras_sigmas: 'useKarrasSigmas',
  skip_prk_steps: 'skipPrkSteps',
};
const STRING_KEYS: Record<string, { key: keyof ScheduleConfig; allowed: string[] }> = {
  beta_schedule: { key: 'betaSchedule', allowed: ['linear', 'scaled_linear', 'squaredcos_cap_v2'] },
  timestep_spacing: { key: 'timestepSpacing', allowed: ['leading', 'trailing', 'linspace'] },
  prediction_type: { key: 'predictionType', allowed: ['epsilon'] },
  variance_type: { key: 'varianceType', allowed: ['fixed_small', 'fixed_small_log', 'fixed_large'] },
};
/** Options that change the math in ways the engine does not implement: allowed only at these values. */
const FIXED: Record<string, unknown[]> = {
  trained_betas: [null],
  thresholding: [false],
  rescale_betas_zero_snr: [false],
  use_exponential_sigmas: [false],
  use_beta_sigmas: [false],
  use_lu_lambdas: [false],
  use_flow_sigmas: [false],
  use_dynamic_shifting: [false],
  timestep_type: ['discrete'],
  interpolation_type: ['linear'],
  final_sigmas_type: ['zero'],
  solver_order: [2],
  solver_type: ['midpoint', 'bh2'],
  lower_order_final: [true],
  euler_at_final: [false],
  predict_x0: [true],
  disable_corrector: [[]],
  lambda_min_clipped: [null, -Infinity, '-inf'],
  algorithm_type: ['dpmsolver++', 'sde-dpmsolver++'],
};

/** What a folder's config resolves to besides its keys. */
export interface SchedulerChoice {
  /**
   * The scheduler the caller chose (`--scheduler`, Diffusion.load's `scheduler`): it runs instead of the one the
   * file's `_class_name` names, which is then not needed (an unknown class is no error), as diffusers'
   * `XScheduler.from_config(file)` reads a file's keys into any class. The keys are read and checked all the same.
   */
  scheduler?: SchedulerName;
}

/** How to choose a scheduler, for the errors that the choice resolves (the service says its own way instead). */
export const CHOOSE_SCHEDULER = `choose one with --scheduler (the command line) or Diffusion.load's scheduler option (the API): ${SCHEDULERS.join(', ')}`;

/** Validates a parsed scheduler_config.json; `source` names it in every error. */
export function parseSchedulerConfig(json: unknown, source = 'scheduler_config.json', choice: SchedulerChoice = {}): SchedulerConfigFile {
  const o = configObject(json, source);
  const schedule = parseScheduleKeys(o, source);
  const className = typeof o._class_name === 'string' ? o._class_name : '';
  if (o._class_name !== undefined && typeof o._class_name !== 'string') throw new FormatError(`${source}: _class_name must be a string`);
  const scheduler = choice.scheduler ?? schedulerOfClass(o, className, source);
  return { source, className, scheduler, schedule: { ...schedule, source } };
}

function configObject(json: unknown, source: string): Record<string, unknown> {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new FormatError(`${source}: expected a JSON object, got ${json === null ? 'null' : Array.isArray(json) ? 'an array' : typeof json}`);
  }
  return json as Record<string, unknown>;
}

/**
 * The scheduler a file's class picks. A file without `_class_name` runs PNDM, SD 1.x's scheduler (what a folder
 * without a config runs, and what diffusers' SD 1.x exports name), so the class's one requirement applies.
 */
function schedulerOfClass(o: Record<string, unknown>, className: string, source: string): SchedulerName {
  if (!className) {
    if (o.skip_prk_steps !== true) {
      throw new FormatError(
        `${source}: names no _class_name, so it runs PNDMScheduler (SD 1.x's), which needs skip_prk_steps: true (the engine has no PRK warm-up); ` +
          `set _class_name and/or skip_prk_steps, or ${CHOOSE_SCHEDULER}`,
      );
    }
    return 'pndm';
  }
  const s = SCHEDULER_CLASSES[className];
  if (!s) {
    throw new FormatError(
      `${source}: _class_name '${className}' is not a scheduler the engine knows; known: ${Object.keys(SCHEDULER_CLASSES).join(', ')} (or ${CHOOSE_SCHEDULER})`,
    );
  }
  if (s === 'pndm' && o.skip_prk_steps !== true) {
    throw new FormatError(`${source}: PNDMScheduler without skip_prk_steps: true (the PRK warm-up) is not supported; SD 1.x's configs set it (or ${CHOOSE_SCHEDULER})`);
  }
  return s === 'dpmpp2m' && o.algorithm_type === 'sde-dpmsolver++' ? 'dpmpp2m-sde' : s;
}

/** The schedule keys of a config object, checked (every error names `source` and the field). */
/** A config value as the file writes it (NaN and ±Infinity as Python's JSON does, not as null). */
const shown = (v: unknown): string => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : JSON.stringify(v));

function parseScheduleKeys(o: Record<string, unknown>, source: string): ScheduleConfig {
  const schedule: ScheduleConfig = {};
  const put = (k: keyof ScheduleConfig, v: unknown): void => {
    (schedule as Record<string, unknown>)[k] = v;
  };
  for (const [field, key] of Object.entries(NUMBER_KEYS)) {
    const v = o[field];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new FormatError(`${source}: ${field} must be a finite number, got ${shown(v)}`);
    put(key, v);
  }
  for (const [field, key] of Object.entries(BOOL_KEYS)) {
    const v = o[field];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'boolean') throw new FormatError(`${source}: ${field} must be true or false, got ${JSON.stringify(v)}`);
    put(key, v);
  }
  for (const [field, { key, allowed }] of Object.entries(STRING_KEYS)) {
    const v = o[field];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string' || !allowed.includes(v)) {
      throw new FormatError(`${source}: ${field} is ${JSON.stringify(v)}; supported: ${allowed.join(', ')}`);
    }
    put(key, v);
  }
  for (const [field, values] of Object.entries(FIXED)) {
    if (!(field in o)) continue;
    const v = o[field];
    // (numbers by value: JSON.stringify writes NaN and ±Infinity, which Python's JSON holds, as null)
    const same = (a: unknown) => (typeof a === 'number' || typeof v === 'number' ? Object.is(a, v) : JSON.stringify(a) === JSON.stringify(v));
    if (!values.some(same)) {
      throw new FormatError(`${source}: ${field} = ${shown(v)} is not supported by the engine (supported: ${values.map(shown).join(', ')})`);
    }
  }
  const int = (k: 'numTrainTimesteps' | 'stepsOffset', field: string): void => {
    const v = schedule[k];
    if (v !== undefined && !Number.isInteger(v)) throw new FormatError(`${source}: ${field} must be an integer, got ${v}`);
  };
  int('numTrainTimesteps', 'num_train_timesteps');
  int('stepsOffset', 'steps_offset');
  if (schedule.numTrainTimesteps !== undefined && (schedule.numTrainTimesteps < 2 || schedule.numTrainTimesteps > 100000)) {
    throw new FormatError(`${source}: num_train_timesteps must be in [2, 100000], got ${schedule.numTrainTimesteps}`);
  }
  for (const [field, k] of [['beta_start', 'betaStart'], ['beta_end', 'betaEnd']] as const) {
    const v = schedule[k];
    if (v !== undefined && !(v > 0 && v < 1)) throw new FormatError(`${source}: ${field} must be in (0, 1), got ${v}`);
  }
  if (schedule.stepsOffset !== undefined && schedule.stepsOffset < 0) {
    throw new FormatError(`${source}: steps_offset must be >= 0, got ${schedule.stepsOffset}`);
  }
  return schedule;
}

/**
 * Overrides of a folder's schedule given as an option (camelCased keys, e.g. Diffusion.load's `schedule`): checked
 * as the file's own keys are, every error naming the option (`where`), not the file they are merged into.
 */
export function checkScheduleOverrides(overrides: unknown, where: string): ScheduleConfig {
  if (overrides === null || typeof overrides !== 'object' || Array.isArray(overrides)) {
    throw new InvalidArgumentError(`${where}: expected an object of scheduler_config keys (e.g. { timestepSpacing: 'trailing' })`);
  }
  const fieldOf = new Map<string, string>();
  for (const [field, key] of Object.entries(NUMBER_KEYS)) fieldOf.set(key, field);
  for (const [field, key] of Object.entries(BOOL_KEYS)) fieldOf.set(key, field);
  for (const [field, { key }] of Object.entries(STRING_KEYS)) fieldOf.set(key, field);
  // (the keys' check every option object of the sd module shares: a misspelt one named with the key meant)
  checkKnownKeys(overrides, [...fieldOf.keys(), 'source'], where, 'key');
  const json: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(overrides)) {
    // (a schedule taken from a loaded pipeline carries the file it came from: named in errors, not a key to check)
    if (key === 'source') {
      if (typeof v !== 'string') throw new InvalidArgumentError(`${where}: source must be a string (the file named in errors), got ${JSON.stringify(v)}`);
      continue;
    }
    json[fieldOf.get(key) as string] = v;
  }
  try {
    return parseScheduleKeys(json, where);
  } catch (e) {
    // (the file's field names in the message become the option's camelCased keys)
    throw e instanceof FormatError ? new InvalidArgumentError(e.message.replace(/\b([a-z]+(?:_[a-z]+)+)\b/g, (f) => [...fieldOf].find(([, v]) => v === f)?.[0] ?? f)) : e;
  }
}

/** The folder's scheduler config, or SD 1.5's when it has none; a `choice` runs instead of the file's class. */
export async function readSchedulerConfig(modelDir: string, choice: SchedulerChoice = {}): Promise<SchedulerConfigFile> {
  const file = await readConfigJson(modelDir);
  if (!file) {
    return { source: `${join(modelDir, 'scheduler', 'scheduler_config.json')} (absent: SD 1.5's)`, className: 'PNDMScheduler', scheduler: choice.scheduler ?? 'pndm', schedule: { ...SD1_SCHEDULE, source: "SD 1.5's scheduler config" } };
  }
  return parseSchedulerConfig(file.json, file.path, choice);
}

/** The parsed scheduler/scheduler_config.json of a folder, or null when it has none. */
async function readConfigJson(modelDir: string): Promise<{ path: string; json: unknown } | null> {
  const path = join(modelDir, 'scheduler', 'scheduler_config.json');
  // (under a service's model roots, inside them, links followed)
  let text: string;
  try {
    // (read from the very file checked: a link flipped between the check and the read is refused)
    text = (await readModelFile(path, 'the file')).toString('utf8');
  } catch (e) {
    if (e instanceof FormatError) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new FormatError(`${path}: cannot be read (${(e as Error).message})`);
    return null;
  }
  // (as diffusers writes it: Python's -Infinity in a DPM++ config's lambda_min_clipped; a syntax error named by
  // path:line:column, as the folder's other JSON files name theirs)
  return { path, json: parsePythonJsonFile(text, path) };
}

/** The schedule of a folder's config, for callers that run no scheduler of their own (its class is not needed). */
export async function readScheduleConfig(modelDir: string): Promise<ScheduleConfig> {
  const file = await readConfigJson(modelDir);
  if (!file) return { ...SD1_SCHEDULE, source: "SD 1.5's scheduler config" };
  return { ...parseScheduleKeys(configObject(file.json, file.path), file.path), source: file.path };
}

/** Parses a config object (e.g. from a test) into the engine's keys; throws naming `source`. */
export function scheduleFromJson(json: Record<string, unknown>, source = 'scheduler_config.json'): ScheduleConfig {
  return { ...parseScheduleKeys(configObject(json, source), source), source };
}
