/**
 * Request bodies of the service's model routes (`POST /v1/models`, `/v1/ridge/:model/predict`,
 * `/v1/sd/:model/img2img`), written like the configs: JSON Schema through TypeBox, unknown keys rejected,
 * defaults filled in by the one validator.
 */
import { Type } from './typeBuilder.js';

import { SCHEDULERS } from '../sd/schedulerConfig.js';
import { GUIDANCE_DESCRIPTION, GUIDANCE_RANGE, MAX_ORT_THREADS, SEED_RANGE } from '../sd/optionBounds.js';
import { Default, Path, Strict, Tagged, type Resolved } from './schemaKit.js';

/** A loaded model's name: used in URLs. */
export const ModelName = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$', description: 'letters, digits, _ . - (1–64 characters, used in URLs)' });

const replace = Default(Type.Boolean({ description: 'replace a loaded model of that name (requests in flight finish on the old one)' }), false);

export const LoadModelBodySchema = Tagged([
  Strict(
    {
      kind: Type.Literal('ridge'),
      name: ModelName,
      path: Path('a ridge model (.safetensors) from `brainlatent ridge fit` or RidgeModel.save'),
      replace,
    },
    { description: 'a ridge model, for /v1/ridge/{model}/predict' },
  ),
  Strict(
    {
      kind: Type.Literal('sd'),
      name: ModelName,
      path: Path('an SD 1.x ONNX model folder (diffusers/optimum layout)'),
      provider: Default(Type.String({ minLength: 1, description: "ONNX Runtime execution provider: 'cpu', 'cuda', ..." }), 'cpu'),
      threads: Default(Type.Integer({ minimum: 0, maximum: MAX_ORT_THREADS, description: 'ONNX Runtime intra-op threads (0: all cores but one, which the service keeps for its requests)' }), 0),
      scheduler: Type.Optional(
        Type.Union(SCHEDULERS.map((n) => Type.Literal(n)), {
          description:
            "the scheduler an img2img request runs when it names none, instead of the one scheduler/scheduler_config.json's _class_name names (whose other keys still apply): a folder whose class the engine does not know loads with one",
        }),
      ),
      replace,
    },
    { description: 'a Stable Diffusion model folder, for /v1/sd/{model}/img2img' },
  ),
]);
export type LoadModelBody = Resolved<typeof LoadModelBodySchema>;

export const PredictBodySchema = Strict(
  {
    x: Type.Array(Type.Array(Type.Number(), { minItems: 1 }), { minItems: 1, description: 'samples × features, one array per sample' }),
  },
  { description: 'the model input as JSON (or send a .npy body with content-type application/x-npy)' },
);
export type PredictBody = Resolved<typeof PredictBodySchema>;

/** A .npy file, base64-encoded, inside a JSON body. */
const Npy = (description: string) => Type.String({ minLength: 1, contentEncoding: 'base64', contentMediaType: 'application/x-npy', description });

export const Img2ImgBodySchema = Strict(
  {
    z: Npy('initial latents [B, 4, h, w] (float32 .npy, base64), scaled as the VAE encoder returns them'),
    c: Npy('conditioning [B, 77, D] (float32 .npy, base64)'),
    uncond: Type.Optional(Npy('unconditional embedding [1 or B, 77, D]; default: the text encoder\'s output for ""')),
    strength: Default(Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'how far into the noise z is pushed' }), 0.8),
    steps: Default(Type.Integer({ minimum: 1, maximum: 1000, description: 'scheduler steps (of which strength·steps run)' }), 50),
    guidance: Default(Type.Number({ ...GUIDANCE_RANGE, description: GUIDANCE_DESCRIPTION }), 5),
    scheduler: Type.Optional(
      Type.Union(SCHEDULERS.map((n) => Type.Literal(n)), { description: "the sampler (default: the model's, POST /v1/models' scheduler, else the one its scheduler_config.json names)" }),
    ),
    karras: Type.Optional(Type.Boolean({ description: "Karras sigmas (euler, heun, lms, dpmpp2m, dpmpp2m-sde, unipc); default: the model's config" })),
    eta: Default(Type.Number({ minimum: 0, description: 'DDIM eta' }), 0),
    seeds: Default(
      Type.Union([Type.Integer(SEED_RANGE), Type.Array(Type.Integer(SEED_RANGE), { minItems: 1 })], { description: 'one seed for all images, or one per image' }),
      0,
    ),
    rule: Default(Type.Union([Type.Literal('diffusers'), Type.Literal('compvis')], { description: "img2img noise level: diffusers' or CompVis' (one DDIM step above)" }), 'diffusers'),
    output: Default(
      Type.Union([Type.Literal('png'), Type.Literal('npy'), Type.Literal('latents')], {
        description: "'png': the images side by side in one PNG; 'npy': uint8 RGB [B, H, W, 3]; 'latents': the final latents float32 [B, 4, h, w]",
      }),
      'png',
    ),
  },
  { description: 'img2img on a loaded SD model' },
);
export type Img2ImgBody = Resolved<typeof Img2ImgBodySchema>;
