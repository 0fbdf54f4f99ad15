/**
 * The reconstruction config's schema (`brainlatent reconstruct`, `reconstruct()`, the service's job body):
 * Takagi & Nishimoto's settings as defaults (method.md §1), with the intercept handled properly.
 */
import type { Static } from '@sinclair/typebox';
import { Type } from './typeBuilder.js';

import { KARRAS_SCHEDULERS, SCHEDULERS } from '../sd/schedulerConfig.js';
import { GUIDANCE_DESCRIPTION, GUIDANCE_RANGE, MAX_IMAGE_BATCH, MAX_ORT_THREADS, SEED_RANGE } from '../sd/optionBounds.js';
import { AlphaGrid, Default, Nullable, Path, Region, Strict, ZscoreDdof, type Resolved } from './schemaKit.js';
import { NsdSessions } from './sessions.js';
import { MAX_FOLDS, MAX_MEMORY_BUDGET } from '../ridge/options.js';

/** TN's α grid (1e-6 … 1) extended to 1e6 so that cross-validation can regularise (method.md §1.4 pitfall 2). */
export const RECONSTRUCT_ALPHAS = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1, 10, 100, 1e3, 1e4, 1e5, 1e6];

const positiveInt = (description: string) => Type.Integer({ minimum: 1, description });
const side = (description: string) => Type.Integer({ minimum: 8, maximum: 4096, description });
/** A side the VAE works on: latents are 1/8 of it. */
const latentSide = (description: string) => Type.Integer({ minimum: 8, maximum: 4096, multipleOf: 8, description });
const rgb = (description: string, positive = false) => {
  const n = () => (positive ? Type.Number({ exclusiveMinimum: 0 }) : Type.Number());
  return Type.Tuple([n(), n(), n()], { description });
};

const decoder = (roi: string, target: string) =>
  Strict(
    {
      roi: Default(Region(`voxels that predict ${target}: a region spec (streams:early, nsdgeneral, prf-visualrois:V1v,V2v) or a mask .nii.gz`), roi),
      alphas: Default(AlphaGrid('ridge penalties searched by cross-validation, per target'), RECONSTRUCT_ALPHAS),
      folds: Default(Type.Integer({ minimum: 2, maximum: MAX_FOLDS, description: 'cross-validation folds (grouped by image)' }), 5),
      standardize: Default(Type.Boolean({ description: "z-score the voxels with the training trials' statistics (TN's StandardScaler)" }), true),
      fitIntercept: Default(Type.Boolean({ description: "fit an intercept (centre X and Y); false reproduces TN's uncentred Y" }), true),
      score: Default(Type.Union([Type.Literal('r2'), Type.Literal('pearson')], { description: 'cross-validation score' }), 'r2'),
      zscore: Default(
        Type.Union([Type.Literal('none'), Type.Literal('session'), Type.Literal('train')], { description: 'NSD adapter: z-score the betas per session, with the training statistics, or not' }),
        'none',
      ),
      zscoreDdof: Type.Optional(ZscoreDdof),
      averageTrain: Default(Type.Boolean({ description: 'average the repetitions of each training image (one row per image)' }), false),
      memoryBudget: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_MEMORY_BUDGET, description: "bytes (a whole number) for the fit's work buffers (default: the engine's); the preflight refuses one below the fit's fixed part" })),
    },
    { description: `the ridge decoder from voxels to ${target}` },
  );

export const FeatureNetworkSchema = Strict(
  {
    name: Type.String({ minLength: 1, description: 'name in the metrics table, e.g. "AlexNet(2)"' }),
    path: Path('the ONNX image network'),
    inputSize: side('side the images are resized to'),
    output: Type.Optional(Type.String({ minLength: 1, description: "output to read (default: the network's first)" })),
    mean: Type.Optional(rgb('per-channel mean (default ImageNet)')),
    // (> 0: FeatureNetwork.open refuses one that is not, at the evaluate stage, after the fits and img2img)
    std: Type.Optional(rgb('per-channel SD (default ImageNet)', true)),
    metric: Type.Union([Type.Literal('identification'), Type.Literal('distance')], { description: 'two-way identification (higher is better) or correlation distance (lower is better)' }),
  },
  { description: 'a feature network for the identification metrics' },
);

export const ReconstructConfigSchema = Strict(
  {
    out: Path('the run folder'),
    nsd: Strict(
      {
        root: Path('the NSD root folder'),
        subject: Type.Integer({ minimum: 1, maximum: 8, description: 'NSD subject' }),
        sessions: NsdSessions(),
        format: Default(Type.Union([Type.Literal('auto'), Type.Literal('nifti'), Type.Literal('hdf5')], { description: 'betas files to read (auto: .hdf5 when present)' }), 'auto'),
        cacheDir: Default(Nullable(Path('extraction cache'), { description: 'extraction cache folder; null: <out>/cache' }), null),
        captions: Default(Nullable(Path('captions'), { description: "a captions file (CSV or JSON) instead of NSD's COCO captions; null: COCO" }), null),
        testImages: Default(Nullable(Type.Integer({ minimum: 2 }), { description: 'reconstruct only the first N test images in id order (the N smallest 73k ids); null: all' }), null),
      },
      { description: 'the subject and its data' },
    ),
    model: Strict(
      {
        dir: Path('the SD 1.x ONNX model folder (diffusers/optimum layout)'),
        provider: Default(Type.String({ minLength: 1, description: 'ONNX Runtime execution provider' }), 'cpu'),
        ortLibrary: Default(Nullable(Path('library'), { description: "an ONNX Runtime shared library; null: onnxruntime-node's" }), null),
        threads: Default(Type.Integer({ minimum: 0, maximum: MAX_ORT_THREADS, description: "ONNX Runtime intra-op threads, of the model's sessions and the evaluation's feature networks (0: ORT's default, one per physical core)" }), 0),
        memory: Type.Optional(
          Type.Union([Type.Literal('default'), Type.Literal('lean')], {
            description: "ONNX Runtime's memory: 'default' (fastest) or 'lean' (no arena, patterns or pre-packing, one U-Net row per run: the lowest peak for SD 1.x on a CPU)",
          }),
        ),
      },
      { description: 'the diffusion model' },
    ),
    features: Default(
      Strict(
        {
          zSize: Default(latentSide('side the stimuli are resized to before the VAE (TN: 320 → z 4×40×40)'), 320),
          zMode: Default(Type.Union([Type.Literal('mean'), Type.Literal('sample')], { description: 'VAE posterior mean or a sample (TN: a sample)' }), 'sample'),
          seed: Default(Type.Integer({ ...SEED_RANGE, description: "seed of the VAE posterior samples (keyed by image)" }), 42),
          batchSize: Default(Type.Integer({ minimum: 1, maximum: MAX_IMAGE_BATCH, description: 'images per VAE / text-encoder call' }), 8),
        },
        { description: 'the training targets z and c' },
      ),
      {},
    ),
    decoders: Default(Strict({ z: Default(decoder('streams:early', 'z'), {}), c: Default(decoder('streams:ventral', 'c'), {}) }, { description: 'the two ridge decoders' }), {}),
    img2img: Default(
      Strict(
        {
          size: Default(latentSide('side of the img2img images (TN: the z-only image resized to 512 and re-encoded)'), 512),
          reencode: Default(Type.Union([Type.Literal('mean'), Type.Literal('sample')], { description: 'VAE posterior mean or a sample when re-encoding the z-only image' }), 'sample'),
          strength: Default(Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'img2img strength: the fraction of the schedule run' }), 0.8),
          steps: Default(Type.Integer({ minimum: 1, maximum: 1000, description: 'scheduler steps' }), 50),
          guidance: Default(Type.Number({ ...GUIDANCE_RANGE, description: GUIDANCE_DESCRIPTION }), 5),
          scheduler: Default(
            Type.Union(
              SCHEDULERS.map((n) => Type.Literal(n)),
              { description: "the sampler, exact to diffusers' scheduler of the same name (TN: ddim)" },
            ),
            'ddim',
          ),
          karras: Type.Optional(Type.Boolean({ description: `Karras sigmas (use_karras_sigmas), defined for ${KARRAS_SCHEDULERS.join(', ')}` })),
          eta: Default(Type.Number({ minimum: 0, description: 'DDIM eta' }), 0),
          seeds: Default(positiveInt('samples per image (TN: 5)'), 5),
          seed: Default(Type.Integer({ ...SEED_RANGE, description: 'seed of sample k is seed + k; the noise is keyed by (seed, image index)' }), 42),
          rule: Default(
            Type.Union([Type.Literal('compvis'), Type.Literal('diffusers')], {
              description:
                "'compvis' reproduces TN's noise level (one DDIM step above the first step; ddim only), 'diffusers' the diffusers pipelines' (the first step's); with fewer than about 8 steps 'compvis' leaves noise in the images (demo PixCorr 0.29 at 4 steps): use 'diffusers' there",
            }),
            'compvis',
          ),
          // (Diffusion.img2img's bound, 2^31 - 1: a larger one passed here and was refused only at the img2img stage,
          // after extraction and the fits)
          batchSize: Default(Type.Integer({ minimum: 1, maximum: 2147483647, description: 'images per U-Net call' }), 4),
        },
        { description: 'the final images' },
      ),
      {},
    ),
    evaluation: Default(
      Strict(
        {
          // (SSIM's Gaussian window takes 11 pixels: a smaller side failed at the evaluation stage, after img2img)
          size: Default(Type.Integer({ minimum: 11, maximum: 4096, description: 'side for PixCorr and SSIM (425 in the published protocol; at least 11, SSIM\'s window)' }), 425),
          networks: Default(Type.Array(FeatureNetworkSchema, { description: 'ONNX image networks for two-way identification or distance' }), []),
          pixelIdentification: Default(Type.Boolean({ description: 'two-way identification on the raw pixels too' }), true),
        },
        { description: 'the metrics' },
      ),
      {},
    ),
  },
  {
    description: 'brainlatent reconstruct: fMRI → images with Stable Diffusion img2img',
    examples: [
      {
        out: 'runs/subj01',
        nsd: { root: '/data/nsd', subject: 1, testImages: 100 },
        model: { dir: 'models/sd-v1-4-onnx' },
        img2img: { seeds: 5, steps: 50 },
        evaluation: { networks: [{ name: 'AlexNet(2)', path: 'alexnet_features4.onnx', inputSize: 224, metric: 'identification' }] },
      },
    ],
  },
);

/** What a user writes: out, nsd.root, nsd.subject and model.dir are required; everything else has a default. */
export type ReconstructConfigInput = Static<typeof ReconstructConfigSchema>;
/** A validated config: every default filled in. */
export type ReconstructConfig = Resolved<typeof ReconstructConfigSchema>;
export type DecoderConfig = ReconstructConfig['decoders']['z'];
export type FeatureNetworkConfig = ReconstructConfig['evaluation']['networks'][number];
