/**
 * The reconstruction config: its schema, defaults (Takagi & Nishimoto's settings, method.md §1, with the
 * intercept handled properly) and validation that lists every problem at once.
 */
import { createHash } from 'node:crypto';

import { ConfigError } from './errors.js';
import { opt, req, validate, type Schema } from './schema.js';

export interface DecoderConfig {
  /** Region spec for the NSD adapter: 'streams:early', 'nsdgeneral', 'prf-visualrois:V1,V2', a mask path. */
  roi: string;
  alphas: number[];
  folds: number;
  /** z-score the voxels with the training trials' statistics (TN's StandardScaler). */
  standardize: boolean;
  /** Fit an intercept (centre X and Y). TN leaves Y uncentred (method.md §1.4 pitfall 1); false reproduces that. */
  fitIntercept: boolean;
  score: 'r2' | 'pearson';
  /** NSD adapter preprocessing. */
  zscore: 'none' | 'session' | 'train';
  averageTrain: boolean;
}

export interface FeatureNetworkConfig {
  name: string;
  path: string;
  inputSize: number;
  output?: string;
  mean?: [number, number, number];
  std?: [number, number, number];
  metric: 'identification' | 'distance';
}

export interface ReconstructConfig {
  /** The run folder. */
  out: string;
  nsd: {
    root: string;
    subject: number;
    /** Sessions spec ("1-37"); null: every session present among 1–37. */
    sessions: string | null;
    format: 'auto' | 'nifti' | 'hdf5';
    /** Extraction cache; null: <out>/cache. */
    cacheDir: string | null;
    /** A captions file (CSV or JSON) instead of NSD's COCO captions; null: COCO. */
    captions: string | null;
    /** Reconstruct only the first N test images (in id order); null: all. */
    testImages: number | null;
  };
  model: {
    dir: string;
    provider: string;
    ortLibrary: string | null;
    /** ONNX Runtime intra-op threads (0: ORT's default). */
    threads: number;
  };
  features: {
    /** Side the stimuli are resized to before the VAE (TN: 320 → z 4×40×40). */
    zSize: number;
    /** VAE posterior mean or a sample (TN: a sample). */
    zMode: 'mean' | 'sample';
    seed: number;
    batchSize: number;
  };
  decoders: { z: DecoderConfig; c: DecoderConfig };
  img2img: {
    /** Side of the img2img images (TN: the z-only image resized to 512 and re-encoded). */
    size: number;
    reencode: 'mean' | 'sample';
    strength: number;
    steps: number;
    guidance: number;
    scheduler: 'ddim' | 'euler' | 'dpmpp2m';
    eta: number;
    /** Samples per image (TN: 5). */
    seeds: number;
    /** Seed of sample k is seed + k; the noise is keyed by (seed, image index). */
    seed: number;
    /** 'compvis' reproduces TN's noise level (one DDIM step above), 'diffusers' the diffusers pipelines'. */
    rule: 'compvis' | 'diffusers';
    batchSize: number;
  };
  evaluation: {
    /** Side for PixCorr and SSIM (425 in the published protocol). */
    size: number;
    networks: FeatureNetworkConfig[];
    /** Two-way identification on the raw pixels too. */
    pixelIdentification: boolean;
  };
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends (infer U)[] ? U[] : T[K] extends object ? DeepPartial<T[K]> : T[K] };
/** What a user writes: out, nsd.root, nsd.subject and model.dir are required; everything else has a default. */
export type ReconstructConfigInput = DeepPartial<ReconstructConfig> & {
  out: string;
  nsd: DeepPartial<ReconstructConfig['nsd']> & { root: string; subject: number };
  model: DeepPartial<ReconstructConfig['model']> & { dir: string };
};

/** TN's α grid (1e-6 … 1) extended to 1e6 so that cross-validation can regularise (method.md §1.4 pitfall 2). */
export const DEFAULT_ALPHAS = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1, 10, 100, 1e3, 1e4, 1e5, 1e6];

const decoderDefaults = (roi: string): DecoderConfig => ({
  roi,
  alphas: DEFAULT_ALPHAS,
  folds: 5,
  standardize: true,
  fitIntercept: true,
  score: 'r2',
  zscore: 'none',
  averageTrain: false,
});

export const DEFAULTS: Omit<ReconstructConfig, 'out' | 'nsd' | 'model'> & {
  nsd: Omit<ReconstructConfig['nsd'], 'root' | 'subject'>;
  model: Omit<ReconstructConfig['model'], 'dir'>;
} = {
  nsd: { sessions: null, format: 'auto', cacheDir: null, captions: null, testImages: null },
  model: { provider: 'cpu', ortLibrary: null, threads: 0 },
  features: { zSize: 320, zMode: 'sample', seed: 42, batchSize: 8 },
  decoders: { z: decoderDefaults('streams:early'), c: decoderDefaults('streams:ventral') },
  img2img: {
    size: 512,
    reencode: 'sample',
    strength: 0.8,
    steps: 50,
    guidance: 5,
    scheduler: 'ddim',
    eta: 0,
    seeds: 5,
    seed: 42,
    rule: 'compvis',
    batchSize: 4,
  },
  evaluation: { size: 425, networks: [], pixelIdentification: true },
};

const num = (o: Omit<Extract<Schema, { kind: 'number' }>, 'kind'> = {}): Schema => ({ kind: 'number', ...o });
const str: Schema = { kind: 'string', nonEmpty: true };
const bool: Schema = { kind: 'boolean' };
const oneOf = (...values: string[]): Schema => ({ kind: 'enum', values });
const obj = (fields: Record<string, ReturnType<typeof req>>): Schema => ({ kind: 'object', fields });
const side: Schema = num({ integer: true, min: 8, max: 4096 });
const triple: Schema = { kind: 'array', of: num(), minLength: 3 };

const decoderSchema = obj({
  roi: opt(str),
  alphas: opt({ kind: 'array', of: num({ min: 0, exclusiveMin: true }), minLength: 1 }),
  folds: opt(num({ integer: true, min: 2 })),
  standardize: opt(bool),
  fitIntercept: opt(bool),
  score: opt(oneOf('r2', 'pearson')),
  zscore: opt(oneOf('none', 'session', 'train')),
  averageTrain: opt(bool),
});

export const CONFIG_SCHEMA: Schema = obj({
  out: req(str),
  nsd: req(
    obj({
      root: req(str),
      subject: req(num({ integer: true, min: 1, max: 8 })),
      sessions: opt({ kind: 'nullable', of: str }),
      format: opt(oneOf('auto', 'nifti', 'hdf5')),
      cacheDir: opt({ kind: 'nullable', of: str }),
      captions: opt({ kind: 'nullable', of: str }),
      testImages: opt({ kind: 'nullable', of: num({ integer: true, min: 2 }) }),
    }),
  ),
  model: req(
    obj({
      dir: req(str),
      provider: opt(str),
      ortLibrary: opt({ kind: 'nullable', of: str }),
      threads: opt(num({ integer: true, min: 0 })),
    }),
  ),
  features: opt(
    obj({
      zSize: opt(side),
      zMode: opt(oneOf('mean', 'sample')),
      seed: opt(num({ integer: true, min: 0 })),
      batchSize: opt(num({ integer: true, min: 1 })),
    }),
  ),
  decoders: opt(obj({ z: opt(decoderSchema), c: opt(decoderSchema) })),
  img2img: opt(
    obj({
      size: opt(side),
      reencode: opt(oneOf('mean', 'sample')),
      strength: opt(num({ min: 0, max: 1, exclusiveMin: true })),
      steps: opt(num({ integer: true, min: 1, max: 1000 })),
      guidance: opt(num({ min: 0 })),
      scheduler: opt(oneOf('ddim', 'euler', 'dpmpp2m')),
      eta: opt(num({ min: 0 })),
      seeds: opt(num({ integer: true, min: 1 })),
      seed: opt(num({ integer: true, min: 0 })),
      rule: opt(oneOf('compvis', 'diffusers')),
      batchSize: opt(num({ integer: true, min: 1 })),
    }),
  ),
  evaluation: opt(
    obj({
      size: opt(side),
      pixelIdentification: opt(bool),
      networks: opt({
        kind: 'array',
        of: obj({
          name: req(str),
          path: req(str),
          inputSize: req(side),
          output: opt(str),
          mean: opt(triple),
          std: opt(triple),
          metric: req(oneOf('identification', 'distance')),
        }),
      }),
    }),
  ),
});

/** Validates a config object (from JSON or code) and fills in the defaults; throws a ConfigError listing every problem. */
export function resolveConfig(input: unknown, source = 'config'): ReconstructConfig {
  const errors = validate(input, CONFIG_SCHEMA, source);
  const c = (input ?? {}) as ReconstructConfigInput;
  if (c.img2img?.size !== undefined && c.img2img.size % 8 !== 0) errors.push(`${source}.img2img.size: expected a multiple of 8, got ${c.img2img.size}`);
  if (c.features?.zSize !== undefined && c.features.zSize % 8 !== 0) errors.push(`${source}.features.zSize: expected a multiple of 8, got ${c.features.zSize}`);
  for (const [i, n] of (c.evaluation?.networks ?? []).entries()) {
    for (const k of ['mean', 'std'] as const) {
      if (Array.isArray(n?.[k]) && n[k].length !== 3) errors.push(`${source}.evaluation.networks[${i}].${k}: expected 3 numbers (R, G, B), got ${n[k].length}`);
    }
  }
  if (errors.length) throw new ConfigError(source, errors);
  const d = DEFAULTS;
  return {
    out: c.out,
    nsd: { ...d.nsd, ...c.nsd } as ReconstructConfig['nsd'],
    model: { ...d.model, ...c.model } as ReconstructConfig['model'],
    features: { ...d.features, ...c.features },
    decoders: {
      z: { ...d.decoders.z, ...c.decoders?.z },
      c: { ...d.decoders.c, ...c.decoders?.c },
    },
    img2img: { ...d.img2img, ...c.img2img },
    evaluation: { ...d.evaluation, ...c.evaluation, networks: (c.evaluation?.networks ?? []) as FeatureNetworkConfig[] },
  };
}

/** Stable hash of the settings that determine a run's outputs (everything but `out`). */
export function configHash(c: ReconstructConfig): string {
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
