/**
 * The sampling options of a run (scheduler, steps, strength, …), checked in one place. Pure: no model is
 * loaded, so the CLI checks its flags here — and plans the run — before it loads anything, and
 * `Diffusion.plan`/`img2img` check the same options with the same rules. Each message names the option
 * as its caller's user wrote it (`steps` in the API, `--steps` on the command line).
 */
import { InvalidArgumentError } from '../errors.js';
import { nativeSync } from '../native/call.js';
import { describeNumber } from '../ridge/alphas.js';
import { checkIntegerAt } from '../ridge/options.js';
import type { NativePlanOptions, SamplerPlanInfo, ScheduleConfig } from '../native/samplerTypes.js';
import { KARRAS_SCHEDULERS, SCHEDULERS, type SchedulerName } from './schedulerConfig.js';

/** How the inference timesteps are spaced over the training schedule (diffusers' `timestep_spacing`). */
export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';
export const TIMESTEP_SPACINGS: readonly TimestepSpacing[] = ['leading', 'trailing', 'linspace'];
export const IMG2IMG_RULES = ['diffusers', 'compvis'] as const;
export type Img2imgRule = (typeof IMG2IMG_RULES)[number];

export interface PlanOptions {
  scheduler?: SchedulerName;
  karras?: boolean;
  timestepSpacing?: TimestepSpacing;
  steps?: number;
  strength?: number;
  eta?: number;
  img2imgRule?: 'diffusers' | 'compvis';
}

/** How a caller's user names each option (default: the option's own name). */
export type OptionLabels = Partial<Record<keyof PlanOptions, string>>;

/**
 * Each plan option's name where a user writes it — a flag, the img2img request's field, a reconstruction config's
 * img2img field — without the prefix: the same everywhere, so that it is written once (planLabels).
 */
const PLAN_NAMES: Required<OptionLabels> = {
  scheduler: 'scheduler',
  karras: 'karras',
  timestepSpacing: 'spacing',
  steps: 'steps',
  strength: 'strength',
  eta: 'eta',
  img2imgRule: 'rule',
};

/** The plan options' names (each once). */
export const PLAN_OPTION_KEYS = Object.keys(PLAN_NAMES) as (keyof PlanOptions)[];

/** The plan options as a user writes them under `prefix`: '--' (flags), 'body.' (a request), 'img2img.' (a config). */
export function planLabels(prefix: string): Required<OptionLabels> {
  return Object.fromEntries(PLAN_OPTION_KEYS.map((k) => [k, `${prefix}${PLAN_NAMES[k]}`])) as Required<OptionLabels>;
}

/** The plan options under their own (API) names, after the call that takes them: 'img2img steps', 'img2img img2imgRule'. */
export function callLabels(what: string): Required<OptionLabels> {
  return Object.fromEntries(PLAN_OPTION_KEYS.map((k) => [k, `${what} ${k}`])) as Required<OptionLabels>;
}

/** The command line's names for the plan options. */
export const PLAN_FLAGS = planLabels('--');

/** What a run plans from when an option is absent: the folder's schedule and the scheduler its config names. */
export interface PlanDefaults {
  schedule: ScheduleConfig;
  scheduler: SchedulerName;
}

/** A choice as typed (quoted), anything else with its type (describeNumber: `string "10"`, `an object`). */
function describeChoice(v: unknown): string {
  return typeof v === 'string' ? `'${v}'` : describeNumber(v);
}

/**
 * What only DDIM defines, checked before a run so each problem names the option (the engine's own says neither):
 * eta > 0, and CompVis' img2img rule, which noises one step above the first and so needs a step above it
 * (strength·steps < steps). A reconstruction config lists these with its other problems (pipeline/config.ts).
 */
export function ddimOnlyProblems(
  scheduler: SchedulerName,
  eta: number,
  rule: string,
  steps: number,
  strength: number,
  name: (k: keyof PlanOptions) => string,
  /** The other options a problem cites, after the one it is labelled by (default `name`): without the file again. */
  cited: (k: keyof PlanOptions) => string = name,
): string[] {
  const problems: string[] = [];
  if (eta > 0 && scheduler !== 'ddim') problems.push(`${name('eta')}: eta > 0 is defined for the ddim scheduler only, not ${scheduler} (${cited('scheduler')})`);
  if (rule !== 'compvis') return problems;
  if (scheduler !== 'ddim') {
    problems.push(`${name('img2imgRule')}: the compvis img2img rule is defined for the ddim scheduler only, not ${scheduler} (${cited('scheduler')})`);
  } else if (Math.min(Math.trunc(steps * strength), steps) === steps) {
    problems.push(
      `${name('img2imgRule')}: the compvis img2img rule needs strength·steps < steps (it noises one step above the first, past the schedule here); got ${cited('strength')} ${strength} with ${cited('steps')} ${steps}`,
    );
  }
  return problems;
}

function checkDdimOnly(scheduler: SchedulerName, eta: number, rule: string, steps: number, strength: number, name: (k: keyof PlanOptions) => string): void {
  const [first] = ddimOnlyProblems(scheduler, eta, rule, steps, strength, name);
  if (first !== undefined) throw new InvalidArgumentError(first);
}

/** A scheduler's name, checked: `label` names the option or flag it came from. */
export function checkSchedulerName(v: unknown, label: string): SchedulerName {
  if (!SCHEDULERS.includes(v as SchedulerName)) {
    throw new InvalidArgumentError(`${label}: unknown scheduler ${describeChoice(v)}, expected one of ${SCHEDULERS.join(', ')}`);
  }
  return v as SchedulerName;
}

/** An img2img noise rule, checked: `label` names the option or flag it came from. */
export function checkImg2imgRule(v: unknown, label: string): Img2imgRule {
  if (!IMG2IMG_RULES.includes(v as Img2imgRule)) {
    throw new InvalidArgumentError(`${label}: expected one of ${IMG2IMG_RULES.join(', ')}, got ${describeChoice(v)}`);
  }
  return v as Img2imgRule;
}

/** The schedulers that index ᾱ by the timestep itself (the engine refuses a timestep past the schedule for them). */
const ALPHA_INDEXED: readonly SchedulerName[] = ['ddim', 'pndm', 'ddpm'];

/**
 * The largest step count a schedule takes for this scheduler: never more than its training timesteps (the engine
 * refuses steps > num_train_timesteps for every scheduler), and under 'leading' spacing the timesteps are
 * i·⌊T/N⌋ + steps_offset (i < N), so with N close to T the first one passes T − 1, and ᾱ-indexed schedulers (DDIM,
 * PNDM, DDPM; as diffusers) cannot index it: SD 1.x's steps_offset 1 allows 999 steps, not 1000. The engine's rules
 * (native/core/src/scheduler.cpp, make_sampler_plan and spaced()), checked before any plan so the message names the
 * option and the largest valid value; the engine stays the backstop.
 */
export function largestSteps(schedule: ScheduleConfig, scheduler: SchedulerName): number {
  const T = schedule.numTrainTimesteps ?? 1000;
  // the class's own spacing unless the schedule names one (as the engine's resolve_schedule)
  const spacing = schedule.timestepSpacing ?? (ALPHA_INDEXED.includes(scheduler) ? 'leading' : 'linspace');
  if (!ALPHA_INDEXED.includes(scheduler) || spacing !== 'leading') return T;
  const offset = schedule.stepsOffset ?? 0;
  for (let n = T; n >= 1; n--) if ((n - 1) * Math.floor(T / n) + offset <= T - 1) return n;
  return 0;
}

/**
 * The steps against the schedule's limit (largestSteps), named as the caller's user wrote it
 * ('img2img.steps 1000 is too many for this model's schedule: …; at most 999'), or null when they fit.
 */
export function stepsLimitProblem(steps: number, schedule: ScheduleConfig, scheduler: SchedulerName, name: string): string | null {
  const max = largestSteps(schedule, scheduler);
  if (steps <= max) return null;
  const T = schedule.numTrainTimesteps ?? 1000;
  const offset = schedule.stepsOffset ?? 0;
  const source = schedule.source ? ` (${schedule.source})` : '';
  if (max === T) {
    return `${name} ${steps} is too many for this model's schedule${source}: it has ${T} training timesteps (num_train_timesteps), and no scheduler takes more steps than that; ${name} is at most ${T}`;
  }
  return (
    `${name} ${steps} is too many for this model's schedule${source}: under leading spacing with steps_offset ${offset} ` +
    `${scheduler}'s first timestep would pass ${T - 1}, the last of its ${T} training timesteps; ${name} is at most ${max} here`
  );
}

/**
 * img2img runs the last ⌊steps·strength⌋ of the steps (diffusers' get_timesteps; the engine's make_sampler_plan
 * computes it the same way, in doubles), so strength·steps < 1 runs none, and the engine refuses the plan. Checked
 * here so the message names the options as the caller's user wrote them ('--strength 0.3 with --steps 1'), with a
 * strength that runs. PNDM at 2 or more steps is the exception: it has one timestep more than steps (its second is
 * repeated), and get_timesteps' timesteps[steps:] leaves it the last one, t_0, alone: diffusers makes one PLMS call
 * there (from the latents noised at t_0), and so does the engine.
 */
export function noStepProblem(steps: number, strength: number, scheduler: SchedulerName, name: (k: keyof PlanOptions) => string): string | null {
  if (Math.min(Math.trunc(steps * strength), steps) >= 1) return null;
  // (pndm's timesteps are [t_{N-1}, t_{N-2}, t_{N-2}, …, t_0]: timesteps[N:] is t_0 alone)
  if (scheduler === 'pndm' && steps >= 2) return null;
  const what = `${name('strength')} ${strength} with ${name('steps')} ${steps}`;
  const needs = `strength·steps must be at least 1 (e.g. ${name('strength')} ${smallestStrength(steps)} with ${name('steps')} ${steps})`;
  return `${what} runs no denoising step: img2img runs the last ⌊steps·strength⌋ of the steps, 0 here; ${needs}`;
}

/** The smallest strength to 6 significant digits, rounded up, with which `steps` runs a step (trunc(steps·strength) >= 1). */
export function smallestStrength(steps: number): number {
  const v = 1 / steps;
  const unit = 10 ** (Math.floor(Math.log10(v)) - 5);
  let s = Number((Math.ceil(v / unit - 1e-6) * unit).toPrecision(6));
  while (Math.trunc(steps * s) < 1) s = Number((s + unit).toPrecision(6));
  return s;
}

/**
 * Checks the options and resolves them against the folder's defaults into the engine's plan options. Only a missing
 * (undefined) option takes its default: an explicit null is refused like any other wrong value, as the types say.
 */
export function resolvePlanOptions(defaults: PlanDefaults, o: PlanOptions, labels: OptionLabels = {}): NativePlanOptions {
  const name = (k: keyof PlanOptions): string => labels[k] ?? k;
  const scheduler = checkSchedulerName(o.scheduler === undefined ? defaults.scheduler : o.scheduler, name('scheduler'));
  const steps = checkIntegerAt(o.steps === undefined ? 50 : o.steps, name('steps'));
  const strength = o.strength === undefined ? 0.8 : o.strength;
  if (typeof strength !== 'number' || !(strength > 0 && strength <= 1)) {
    throw new InvalidArgumentError(`${name('strength')}: expected a number in (0, 1], got ${describeNumber(strength)}`);
  }
  const eta = o.eta === undefined ? 0 : o.eta;
  if (typeof eta !== 'number' || !(eta >= 0) || !Number.isFinite(eta)) {
    throw new InvalidArgumentError(`${name('eta')}: expected a finite number >= 0, got ${describeNumber(eta)}`);
  }
  if (o.timestepSpacing !== undefined && !TIMESTEP_SPACINGS.includes(o.timestepSpacing)) {
    throw new InvalidArgumentError(`${name('timestepSpacing')}: expected one of ${TIMESTEP_SPACINGS.join(', ')}, got ${describeChoice(o.timestepSpacing)}`);
  }
  const rule = checkImg2imgRule(o.img2imgRule === undefined ? 'diffusers' : o.img2imgRule, name('img2imgRule'));
  // (the engine's schedule takes a boolean; a truthy 'yes' would reach it as its own field's TypeError)
  if (o.karras !== undefined && typeof o.karras !== 'boolean') {
    throw new InvalidArgumentError(`${name('karras')}: expected true or false, got ${describeChoice(o.karras)}`);
  }
  if (o.karras && !KARRAS_SCHEDULERS.includes(scheduler)) {
    throw new InvalidArgumentError(`${name('karras')}: Karras sigmas are defined for ${KARRAS_SCHEDULERS.join(', ')}, not ${scheduler}`);
  }
  checkDdimOnly(scheduler, eta, rule, steps, strength, name);
  const schedule: ScheduleConfig = { ...defaults.schedule };
  if (o.karras !== undefined) schedule.useKarrasSigmas = o.karras;
  if (o.timestepSpacing !== undefined) schedule.timestepSpacing = o.timestepSpacing;
  // a config's Karras setting belongs to its own class: it does not follow to a scheduler without it
  if (o.karras === undefined && !KARRAS_SCHEDULERS.includes(scheduler)) delete schedule.useKarrasSigmas;
  const tooMany = stepsLimitProblem(steps, schedule, scheduler, name('steps'));
  if (tooMany) throw new InvalidArgumentError(tooMany);
  const none = noStepProblem(steps, strength, scheduler, name);
  if (none) throw new InvalidArgumentError(none);
  const plan: NativePlanOptions = { schedule, scheduler, steps, strength, eta, img2imgRule: rule };
  if (eta > 0) checkEtaBound(plan, name);
  return plan;
}

/**
 * DDIM's eta against the largest the schedule allows (the plan's maxEta: its noise eta·σ_t must stay within
 * 1 − ᾱ_prev at every step that runs; just above 1 for SD's schedules, exactly 1 when the last step ends at
 * ᾱ = 1), named as the caller's user wrote it, before anything runs.
 */
function checkEtaBound(plan: NativePlanOptions, name: (k: keyof PlanOptions) => string): void {
  const { maxEta } = planRun({ ...plan, eta: 0 });
  if (plan.eta <= maxEta) return;
  throw new InvalidArgumentError(
    `${name('eta')} ${plan.eta} is too large for this schedule: DDIM's noise eta·σ_t must stay within 1 − ᾱ_prev at every step, ` +
      `which holds up to eta ${roundedDown(maxEta)} here (${plan.steps} steps, strength ${plan.strength}); eta is usually in [0, 1] (1: as DDPM)`,
  );
}

/** `v` to 6 significant digits, rounded down (a bound shown so that the value shown is itself allowed). */
function roundedDown(v: number): number {
  const unit = 10 ** (Math.floor(Math.log10(v)) - 5);
  return Number((Math.floor(v / unit) * unit).toPrecision(6));
}

/** The steps a run takes (timesteps, ᾱ, σ); the engine refuses what only the schedule can tell (e.g. more steps than the leading spacing has timesteps). */
export function planRun(plan: NativePlanOptions): SamplerPlanInfo {
  return nativeSync((b) => b.sdPlan(plan));
}

/**
 * The U-Net evaluations of one latent that a run of `plan` makes per image: one per call the plan runs (its `runs`, as
 * the engine's loop makes them: PNDM's repeated warm-up timestep and its one call at t_0 when strength·steps < 1,
 * Heun's two calls a step but the last, where the img2img rule starts; not ⌊steps·strength⌋), twice with guidance > 1
 * (the unconditional pass of each call). Every estimate of img2img's U-Net work counts with this.
 */
export function unetEvaluationsPerImage(plan: Pick<SamplerPlanInfo, 'runs'>, guidance: number): number {
  return plan.runs.length * (guided(guidance) ? 2 : 1);
}

/** Whether a guidance runs the unconditional pass: decided on the float32 the engine gets (1.00000001 is 1 there). */
export function guided(guidance: number): boolean {
  return Math.fround(guidance) > 1;
}

/** The schedulers whose steps draw noise, as the step-noise errors name them. */
export const NOISE_DRAWING_SCHEDULERS = 'ddim with eta > 0, ddpm, euler-ancestral and dpmpp2m-sde (the last two draw none at their last step)';

/**
 * Why step noise given for `plan` would be ignored, or null when some call of the run draws noise: a deterministic
 * scheduler (ddim at eta 0, euler, heun, pndm, …) or a run whose only calls draw none gives the image it gives
 * without it, byte for byte, so the noise a caller meant to reproduce another run with would change nothing.
 * `label` names the input as the caller's user gave it ('img2img stepNoise', '--step-noise FILE').
 */
export function stepNoiseProblem(plan: SamplerPlanInfo, label: string): string | null {
  if (plan.stochastic) return null;
  const which = plan.scheduler === 'ddim' ? `ddim with eta ${plan.eta}` : plan.scheduler;
  return (
    `${label}: no U-Net call of this run draws noise (${which}, ${plan.steps} steps, strength ${plan.strength}), so the step noise would be ignored ` +
    `and the result would be the same as without it; step noise is for the schedulers whose steps draw noise: ${NOISE_DRAWING_SCHEDULERS}`
  );
}
