/**
 * The encoding config's schema (`brainlatent encode`, `encode()`, the service's job body): which subject and
 * voxels, which diffusion-model features, how to fit them, what to write.
 */
import type { Static } from '@sinclair/typebox';
import { Type } from './typeBuilder.js';

import { MAX_MOSAIC_SCALE, MAX_MOSAIC_SLICES } from '../encoding/mosaicBounds.js';
import { MAX_FOLDS, MAX_MEMORY_BUDGET, MAX_N_ITER } from '../ridge/options.js';
import { DEFAULT_ALPHAS } from '../ridge/RidgeCV.js';
import { GUIDANCE_DESCRIPTION, GUIDANCE_RANGE, MAX_IMAGE_BATCH, SEED_RANGE } from '../sd/optionBounds.js';
import { resolveAlphaGrid } from './alphaGrid.js';
import { ConfigError } from './errors.js';
import { fieldLabel } from './problems.js';
import { NsdSessions, sessionSpecProblems } from './sessions.js';
import { checkConfig } from './validate.js';
import { AlphaGrid, Default, Nullable, Path, Region, Strict, ZscoreDdof, Tagged, type Resolved } from './schemaKit.js';

// (not starting with a dot: a set or joint model named '..' wrote its fit files beside fits/, its maps hidden)
const setName = (description: string) => Type.String({ pattern: '^[A-Za-z0-9_-][A-Za-z0-9_.-]*$', title: 'of letters, digits, _ . or -, not starting with .', description });
const seed = (description: string) => Default(Type.Integer({ ...SEED_RANGE, description }), 0);

const FileSet = Strict(
  {
    name: setName('name of the feature set'),
    kind: Type.Literal('file'),
    path: Path('an .npy of images × features'),
    ids: Default(Nullable(Path('ids'), { description: 'an .npy with the 73k id of each row; null: rows are ids 1..N' }), null),
  },
  { description: 'precomputed features' },
);

const ZSet = Strict({ name: setName('name of the feature set'), kind: Type.Literal('z') }, { description: "the VAE latent of the image (posterior mean × scaling factor), flattened 4×h×w" });

const CSet = Strict(
  { name: setName('name of the feature set'), kind: Type.Literal('c') },
  { description: "the text encoder's last hidden state, mean over the image's captions (Takagi & Nishimoto)" },
);

const ZcSet = Strict(
  {
    name: setName('name of the feature set'),
    kind: Type.Literal('zc'),
    strength: Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'img2img strength' }),
    steps: Default(Type.Integer({ minimum: 1, maximum: 1000, description: 'DDIM steps' }), 50),
    guidance: Default(Type.Number({ ...GUIDANCE_RANGE, description: GUIDANCE_DESCRIPTION }), 5),
    seed: seed('seed of the noise, keyed by (seed, 73k id)'),
  },
  { description: 'z_c: the latent after img2img from z conditioned on c' },
);

const UnetSet = Strict(
  {
    name: setName('prefix of the feature sets'),
    kind: Type.Literal('unet'),
    layers: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'U-Net tensor names (`brainlatent sd layers --model DIR` lists them)' }),
    timesteps: Type.Array(Type.Integer({ minimum: 0, maximum: 999 }), { minItems: 1, description: 'timesteps the U-Net sees z noised to' }),
    pool: Default(Type.Integer({ minimum: 1, description: '[B, C, H, W] outputs are average-pooled to pool × pool (1: per-channel means)' }), 1),
    seed: seed('seed of the noise, keyed by (seed, 73k id)'),
  },
  { description: 'U-Net activations, one feature set per layer × timestep, named <name>:<layer>@t<timestep>' },
);

export const FeatureSetSchema = Tagged([FileSet, ZSet, CSet, ZcSet, UnetSet], { description: 'a feature set' });

export const BandedSchema = Strict(
  {
    name: Type.String({ pattern: '^[A-Za-z0-9_+-][A-Za-z0-9_.+-]*$', title: 'of letters, digits, _ . + or -, not starting with .', description: 'name of the joint model' }),
    sets: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'feature sets fitted jointly, by name' }),
    nIter: Default(Type.Integer({ minimum: 1, maximum: MAX_N_ITER, description: 'random-search candidates for the band weights' }), 100),
    seed: seed('seed of the random search'),
    alphas: Type.Optional(AlphaGrid("ridge penalties (default: ridge.alphas)")),
    partition: Default(Type.Boolean({ description: 'variance partitioning: unique and shared held-out R² (two or more sets)' }), true),
  },
  { description: 'banded ridge over several feature sets (one alpha per band and voxel)' },
);

export const EncodeConfigSchema = Strict(
  {
    out: Path('the run folder (maps/, mosaics/, regions.csv, report.html, encoding.json)'),
    nsd: Strict(
      {
        root: Path('the NSD root folder'),
        subject: Type.Integer({ minimum: 1, maximum: 8, description: 'NSD subject' }),
        roi: Default(Region('voxels to model: a region spec (nsdgeneral, streams, prf-visualrois:V1v) or a mask .nii.gz on the subject grid'), 'nsdgeneral'),
        sessions: NsdSessions(),
        format: Default(Type.Union([Type.Literal('auto'), Type.Literal('nifti'), Type.Literal('hdf5')], { description: 'betas files to read (auto: .hdf5 when present)' }), 'auto'),
        zscore: Default(Type.Union([Type.Literal('session'), Type.Literal('train'), Type.Literal('none')], { description: 'z-score the betas per session (NSD practice), with the training statistics, or not' }), 'session'),
        zscoreDdof: Type.Optional(ZscoreDdof),
        averageTrain: Default(Type.Boolean({ description: 'average the repetitions of each training image (one row per image)' }), true),
        divisor: Default(Type.Number({ exclusiveMinimum: 0, description: 'raw betas are divided by this (NSD stores percent signal change × 300)' }), 300),
        cacheDir: Default(Nullable(Path('cache'), { description: 'extraction cache folder; null: <out>/cache' }), null),
        captions: Default(Nullable(Path('captions'), { description: "a captions file (CSV or JSON) instead of NSD's COCO captions; null: COCO" }), null),
      },
      { description: 'the subject and its data' },
    ),
    model: Default(Nullable(Path('model'), { description: 'the SD 1.x ONNX folder, needed by every feature set kind but "file"' }), null),
    imageSize: Default(Type.Integer({ minimum: 8, maximum: 4096, multipleOf: 8, description: 'side the stimuli are resized to before the VAE' }), 512),
    featureSets: Type.Array(FeatureSetSchema, { minItems: 1, description: 'the features compared: each is fitted to every voxel' }),
    ridge: Default(
      Strict(
        {
          alphas: Default(AlphaGrid('ridge penalties searched by cross-validation, per voxel'), [...DEFAULT_ALPHAS]),
          // (RidgeCV's bound: a larger count passed here and the preflight's fit plan threw RidgeCV's own words, naming no field)
          folds: Default(Type.Integer({ minimum: 2, maximum: MAX_FOLDS, description: 'cross-validation folds, grouped by image' }), 5),
          score: Default(Type.Union([Type.Literal('r2'), Type.Literal('pearson')], { description: 'cross-validation score' }), 'r2'),
          route: Default(Type.Union([Type.Literal('auto'), Type.Literal('primal'), Type.Literal('kernel')], { description: "decompose XᵀX ('primal') or XXᵀ ('kernel'); auto picks the cheaper" }), 'auto'),
          cvMethod: Default(
            Type.Union([Type.Literal('auto'), Type.Literal('per-fold'), Type.Literal('exact')], { description: "one decomposition per fold, or one in all with closed-form CV; auto picks the cheaper" }),
            'auto',
          ),
          memoryBudget: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_MEMORY_BUDGET, description: "bytes (a whole number) for the fit's work buffers (default: the engine's)" })),
        },
        { description: 'the ridge fits (RidgeCV, X standardised)' },
      ),
      {},
    ),
    banded: Default(Type.Array(BandedSchema, { description: 'joint models over several feature sets, with variance partitioning' }), []),
    regions: Default(Type.Array(Type.String({ minLength: 1 }), { description: 'atlases of the region table' }), ['streams', 'prf-visualrois']),
    noiseCeiling: Default(
      Type.Union([Type.Literal('auto'), Type.Literal('none'), Type.Literal('estimate'), Path('ncsnr')], {
        description: "'auto' (ncsnr.nii.gz beside the betas when present), 'none', 'estimate' (from the test repetitions) or an ncsnr .nii.gz",
      }),
      'auto',
    ),
    mosaic: Default(
      Strict(
        {
          vmax: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'colour range top of the r maps (default: the 99th percentile of |r|)' })),
          threshold: Type.Optional(
            Type.Number({ minimum: 0, description: 'r below this is not drawn (default: significant at p < 0.05 one-sided, uncorrected, for the test images)' }),
          ),
          // maxima here, not at the maps stage after every fit (scale 1e4 failed there allocating 86 GB)
          scale: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_MOSAIC_SCALE, description: 'pixels per voxel (default: slices about 180 px wide)' })),
          columns: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_MOSAIC_SLICES, description: 'slices per row (default: a roughly 4:3 figure)' })),
          slices: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_MOSAIC_SLICES, description: 'axial slices shown at most (default 16; 1: the middle one)' })),
        },
        { description: 'the static figures (mosaics/*.png) of the r maps: axial slices over the anatomy' },
      ),
      {},
    ),
    featureBatch: Default(Type.Integer({ minimum: 1, maximum: MAX_IMAGE_BATCH, description: 'images per model call' }), 8),
  },
  {
    description: 'brainlatent encode: voxel-wise encoding models of diffusion-model features',
    examples: [
      {
        out: 'encoding-subj01',
        nsd: { root: '/data/nsd', subject: 1, roi: 'nsdgeneral' },
        model: './sd-v1-5-onnx',
        featureSets: [
          { name: 'z', kind: 'z' },
          { name: 'c', kind: 'c' },
          { name: 'zc', kind: 'zc', strength: 0.5 },
          { name: 'unet', kind: 'unet', layers: ['/mid_block/attentions.0/Add_output_0'], timesteps: [201, 801], pool: 4 },
        ],
        ridge: { alphas: '1e1:1e7:10', folds: 5 },
        banded: [{ name: 'z+c', sets: ['z', 'c'] }],
        noiseCeiling: 'auto',
      },
    ],
  },
);

/** What a user writes: out, nsd.root, nsd.subject and featureSets are required. */
export type EncodeConfigInput = Static<typeof EncodeConfigSchema>;
/** A validated config: every default filled in, alpha grids as numbers. */
export type EncodeConfig = Resolved<typeof EncodeConfigSchema>;
export type FeatureSetSpec = EncodeConfig['featureSets'][number];
export type BandedSpec = EncodeConfig['banded'][number];

/** The feature sets a spec expands to: its name, or one per layer × timestep for U-Net features. */
export function featureSetNames(spec: Pick<FeatureSetSpec, 'name' | 'kind'> & { layers?: string[]; timesteps?: number[] }): string[] {
  if (spec.kind !== 'unet') return [spec.name];
  return (spec.layers ?? []).flatMap((l) => (spec.timesteps ?? []).map((t) => `${spec.name}:${l}@t${t}`));
}

/**
 * Validates an encode config (from JSON or code) without changing it and returns a copy with the defaults
 * filled in and the alpha grids parsed; throws a ConfigError listing every problem, the schema's and these:
 * a feature set name used twice, banded sets naming sets that are not defined, a model folder missing where
 * features need one, a sessions spec that is not numbers and ascending ranges. `source` names the config in the messages (a file name).
 */
export function resolveEncodeConfig(input: unknown, source = 'config'): EncodeConfig {
  const { value: c, problems } = checkConfig(EncodeConfigSchema, input, source);
  const at = (...segs: (string | number)[]) => fieldLabel(source, segs.map(String));
  // a grid the schema has already rejected is not parsed again
  const grid = (v: unknown, label: string) =>
    (typeof v === 'string' || Array.isArray(v)) && !problems.some((p) => p.startsWith(`${label}:`)) ? resolveAlphaGrid(v as string | number[], label, problems) : (v as number[]);
  if (c && typeof c === 'object' && Array.isArray(c.featureSets)) {
    if (c.ridge && typeof c.ridge === 'object') c.ridge.alphas = grid(c.ridge.alphas, at('ridge', 'alphas'));
    const names = new Map<string, number>();
    c.featureSets.forEach((s, i) => {
      if (!s || typeof s !== 'object' || typeof s.name !== 'string') return;
      for (const n of featureSetNames(s as FeatureSetSpec)) {
        if (names.has(n)) problems.push(`${at('featureSets', i, 'name')}: feature set name '${n}' is used twice (also by featureSets[${names.get(n)}])`);
        else names.set(n, i);
      }
    });
    const needModel = [...new Set(c.featureSets.filter((s) => s && typeof s === 'object' && s.kind !== 'file' && typeof s.name === 'string').map((s) => `'${s.name}'`))];
    if (c.nsd?.zscoreDdof !== undefined && c.nsd.zscore === 'none') problems.push(`${at('nsd', 'zscoreDdof')}: set, but nsd.zscore is 'none' (no z-score to apply it to)`);
    if (needModel.length && c.model === null) problems.push(`${at('model')}: required by feature sets ${needModel.join(', ')} (an SD 1.x ONNX folder)`);
    const bandedNames = new Set<string>();
    (Array.isArray(c.banded) ? c.banded : []).forEach((b, i) => {
      if (!b || typeof b !== 'object') return;
      if (typeof b.name === 'string') {
        if (names.has(b.name) || bandedNames.has(b.name)) problems.push(`${at('banded', i, 'name')}: '${b.name}' is already the name of a feature set or banded model (maps are written under it)`);
        bandedNames.add(b.name);
      }
      (Array.isArray(b.sets) ? b.sets : []).forEach((s, k, all) => {
        if (all.indexOf(s) !== k) problems.push(`${at('banded', i, 'sets', k)}: '${s}' is listed twice`);
        else if (typeof s === 'string' && !names.has(s)) {
          problems.push(`${at('banded', i, 'sets', k)}: banded '${b.name}' names feature set '${s}', which is not defined (defined: ${[...names.keys()].join(', ')})`);
        }
      });
      if (b.alphas !== undefined) b.alphas = grid(b.alphas, at('banded', i, 'alphas'));
    });
  }
  if (c && typeof c === 'object') problems.push(...sessionSpecProblems(c.nsd?.sessions, at('nsd', 'sessions')));
  if (problems.length) throw new ConfigError(source, problems, 'encode config');
  return c;
}
