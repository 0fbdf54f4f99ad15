/**
 * The ridge-fit job's config (the service's `POST /v1/jobs` with kind "ridge-fit"): the options of
 * `brainlatent ridge fit`, with the run folder that receives model.safetensors and fit.json.
 */
import { Type } from './typeBuilder.js';

import { MAX_FOLDS } from '../ridge/options.js';
import { AlphaGrid, Default, Nullable, Path, Strict, type Resolved } from './schemaKit.js';

const choice = <T extends string>(values: readonly T[], description: string) => Type.Union(values.map((v) => Type.Literal(v)), { description });

export const RidgeFitConfigSchema = Strict(
  {
    out: Path('the run folder: model.safetensors and fit.json are written there'),
    x: Path('X as .npy (float32 or float64, samples × features)'),
    y: Path('Y as .npy (float32 or float64, samples × targets)'),
    groups: Default(Nullable(Path('group labels'), { description: 'a group label per sample (.npy int): a group never straddles folds, e.g. the image id of each trial; null: contiguous folds' }), null),
    alphas: Default(AlphaGrid('candidate penalties, searched per target by cross-validation'), '1e1:1e7:10'),
    folds: Default(Type.Integer({ minimum: 2, maximum: MAX_FOLDS, description: 'cross-validation folds' }), 5),
    score: Default(choice(['r2', 'pearson'] as const, 'CV score maximised per target'), 'r2'),
    fitIntercept: Default(Type.Boolean({ description: 'centre X and Y with training means (an unpenalised intercept)' }), true),
    standardize: Default(Type.Boolean({ description: 'z-score X columns with training statistics (stored in the model)' }), false),
    route: Default(choice(['auto', 'primal', 'kernel'] as const, "decompose XᵀX ('primal') or XXᵀ ('kernel'); auto picks the cheaper"), 'auto'),
    cvMethod: Default(choice(['auto', 'per-fold', 'exact'] as const, "one decomposition per fold, or one in all with closed-form CV ('exact')"), 'auto'),
    eigPrecision: Default(choice(['auto', 'float32', 'float64'] as const, 'precision of the eigendecompositions'), 'auto'),
    memoryGiB: Default(
      Nullable(Type.Number({ exclusiveMinimum: 0, description: "budget of the engine's work buffers, in GiB" }), {
        description:
          "budget of the engine's work buffers in GiB (X's copy, Grams, decompositions, target batches), checked against the fit's plan when the job is submitted; null: the engine's default, 2 GiB raised to the fit's fixed footprint plus a batch of 2,048 targets when it needs more (as `ridge fit` without --memory)",
      }),
      null,
    ),
  },
  { description: 'a RidgeCV fit of Y on X (brainlatent ridge fit)' },
);

export type RidgeFitConfig = Resolved<typeof RidgeFitConfigSchema>;
