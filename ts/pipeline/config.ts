/**
 * The reconstruction config: validated against its JSON Schema (ts/config/reconstruct.ts, defaults included)
 * with every problem listed at once, and hashed for the run folder.
 */
import { createHash } from 'node:crypto';

import { resolveAlphaGrid } from '../config/alphaGrid.js';
import { fillDefaults } from '../config/defaults.js';
import { ConfigError } from '../config/errors.js';
import { MAX_SEED } from '../sd/optionBounds.js';
import { ddimOnlyProblems } from '../sd/samplingOptions.js';
import { KARRAS_SCHEDULERS, SCHEDULERS } from '../sd/schedulerConfig.js';
import { RECONSTRUCT_ALPHAS, ReconstructConfigSchema, type ReconstructConfig } from '../config/reconstruct.js';
import { fieldNames, type FieldFlags } from '../config/fieldNames.js';
import { fieldLabel } from '../config/problems.js';
import { sessionSpecProblems } from '../config/sessions.js';
import { checkConfig } from '../config/validate.js';

export type { ReconstructConfig, ReconstructConfigInput, DecoderConfig, FeatureNetworkConfig } from '../config/reconstruct.js';

/** TN's α grid (1e-6 … 1) extended to 1e6 so that cross-validation can regularise (method.md §1.4 pitfall 2). */
export const DEFAULT_ALPHAS = RECONSTRUCT_ALPHAS;

/** The JSON Schema of the config. */
export const CONFIG_SCHEMA = ReconstructConfigSchema;

/**
 * Validates a config object (from JSON or code) without changing it and returns a copy with the defaults filled
 * in; throws a ConfigError listing every problem. `source` names the config in the messages (a file name);
 * `fieldFlags`, the command line that gave some of its fields by flags (the CLI's): a problem of a field a flag gave
 * (or of any field with a flag, where there is no config file) names the flag (fieldNames).
 */
export function resolveConfig(input: unknown, source = 'config', fieldFlags?: FieldFlags): ReconstructConfig {
  const { value: c, problems } = checkConfig(ReconstructConfigSchema, input, source);
  const names = fieldNames(fieldFlags);
  // a field's problem is labelled with the file and the field, or with the flag that gave it
  const label = (path: string[]) => {
    const name = names.name(path.join('.'));
    return name === path.join('.') ? fieldLabel(source, path) : name;
  };
  for (const t of ['z', 'c'] as const) {
    const d = c?.decoders?.[t];
    if (d && (typeof d.alphas === 'string' || Array.isArray(d.alphas))) {
      d.alphas = resolveAlphaGrid(d.alphas as string | number[], fieldLabel(source, ['decoders', t, 'alphas']), problems);
    }
    if (d?.zscoreDdof !== undefined && d.zscore === 'none') {
      problems.push(`${fieldLabel(source, ['decoders', t, 'zscoreDdof'])}: set, but decoders.${t}.zscore is 'none' (no z-score to apply it to)`);
    }
  }
  problems.push(...sessionSpecProblems(c?.nsd?.sessions, fieldLabel(source, ['nsd', 'sessions'])));
  const g = c?.img2img;
  if (g?.karras && typeof g.scheduler === 'string' && !KARRAS_SCHEDULERS.includes(g.scheduler)) {
    problems.push(`${label(['img2img', 'karras'])}: Karras sigmas are defined for ${KARRAS_SCHEDULERS.join(', ')}, not ${g.scheduler}`);
  }
  // what only DDIM defines (eta, the compvis rule): here, not when the img2img stage starts after the others ran
  if (g && SCHEDULERS.includes(g.scheduler) && typeof g.eta === 'number' && typeof g.steps === 'number' && typeof g.strength === 'number') {
    const key = (k: string) => (k === 'img2imgRule' ? 'rule' : k);
    // the fields a problem cites are named within the config (img2img.steps), or by their flags
    problems.push(...ddimOnlyProblems(g.scheduler, g.eta, g.rule, g.steps, g.strength, (k) => label(['img2img', key(k)]), (k) => names.name(`img2img.${key(k)}`)));
  }
  // sample k's noise is seeded seed + k: the last sample's seed must be a seed too, or the img2img stage refuses it
  // only after extraction, features and decoders ran
  if (g && Number.isInteger(g.seed) && g.seed >= 0 && g.seed <= MAX_SEED && Number.isInteger(g.seeds) && g.seeds >= 1 && g.seed + (g.seeds - 1) > MAX_SEED) {
    const seeds = names.valued('img2img.seeds', g.seeds);
    const fewerSeeds = names.setTo('img2img.seeds', { words: `${MAX_SEED - g.seed + 1} or fewer` });
    const seedGiven = (input as { img2img?: { seed?: unknown } } | null)?.img2img?.seed !== undefined;
    problems.push(
      seedGiven
        ? `${label(['img2img', 'seed'])}: sample k is seeded img2img.seed + k, so the last of ${seeds} has seed ${g.seed} + ${g.seeds - 1}, ` +
            `above the largest seed ${MAX_SEED}; expected img2img.seed at most ${MAX_SEED - (g.seeds - 1)} with ${g.seeds} seeds` +
            // (seeds from a flag: fewer of them is the change at hand)
            (names.name('img2img.seeds') !== 'img2img.seeds' ? `, or ${fewerSeeds}` : '')
        : // the default seed, which the flags-only form cannot change: the seeds are the problem, named by their flag there
          `${label(['img2img', 'seeds'])}: sample k is seeded ${g.seed} + k (the default seed), so the last of ${seeds} has seed ${g.seed} + ${g.seeds - 1}, ` +
            `above the largest seed ${MAX_SEED}; ${fewerSeeds}`,
    );
  }
  problems.push(...networkNameProblems(c?.evaluation?.networks, source));
  if (problems.length) throw new ConfigError(source, problems, 'reconstruction config');
  return c;
}

/** The metrics a run computes besides its networks': a network of one of these names would be a second column of it. */
const BUILT_IN_METRICS = ['PixCorr', 'SSIM', 'Pixels(2WI)'];

/**
 * Each feature network names its metric's column: two of one name (or a built-in metric's) were one column in
 * metrics.json and the report, another in metrics.csv (the last network's value in one, the first's in the other).
 */
function networkNameProblems(networks: unknown, source: string): string[] {
  if (!Array.isArray(networks)) return [];
  const problems: string[] = [];
  const seen = new Map<string, number>();
  networks.forEach((n: unknown, i) => {
    const name = (n as { name?: unknown } | null)?.name;
    if (typeof name !== 'string') return;
    const field = fieldLabel(source, ['evaluation', 'networks', String(i), 'name']);
    if (BUILT_IN_METRICS.includes(name)) problems.push(`${field}: '${name}' is the name of a metric every run computes; name the network otherwise`);
    else if (seen.has(name)) problems.push(`${field}: network name '${name}' is used twice (also by evaluation.networks[${seen.get(name)}]); each names its metric's column`);
    else seen.set(name, i);
  });
  return problems;
}

/**
 * The defaults of every optional setting (from the schema). Read from the schema directly, not through
 * resolveConfig: that compiles the schema with ajv, which importing the package would then load
 * (test/config/defaults.test.ts holds this against resolveConfig's defaults).
 */
export const DEFAULTS: Omit<ReconstructConfig, 'out' | 'nsd' | 'model'> & {
  nsd: Omit<ReconstructConfig['nsd'], 'root' | 'subject'>;
  model: Omit<ReconstructConfig['model'], 'dir'>;
} = (() => {
  const minimal = { out: '-', nsd: { root: '-', subject: 1 }, model: { dir: '-' } };
  const { out: _o, nsd: { root: _r, subject: _s, ...nsd }, model: { dir: _d, ...model }, ...rest } = fillDefaults(ReconstructConfigSchema, minimal) as ReconstructConfig;
  return { ...rest, nsd, model };
})();

/** Stable hash of the settings that determine a run's outputs (everything but `out`). */
export function configHash(c: { out: string }): string {
  const { out: _out, ...rest } = c;
  return createHash('sha256').update(stableJson(rest)).digest('hex').slice(0, 16);
}

export function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}
