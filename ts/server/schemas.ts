/**
 * The service's request and response schemas. Job bodies wrap the configs' own schemas (reconstruct, encode,
 * ridge-fit), so a config is checked by the same rules whether it comes from a file, code or HTTP.
 */
import { Type } from '@sinclair/typebox';

import { MANIFEST_SCHEMA } from '../batch/manifest.js';
import { EncodeConfigSchema, ReconstructConfigSchema } from '../config/index.js';
import { RidgeFitConfigSchema } from '../config/ridgeFit.js';
import { Default, Path, Strict, Tagged } from '../config/schemaKit.js';
import { ModelName } from '../config/service.js';
import { JOB_STATES, type JobKind } from './jobs/types.js';

// The manifest's own schema (its $id stays with the batch layer's validator).
const { $id: _id, ...manifestSchema } = MANIFEST_SCHEMA;
const ManifestSchema = Type.Unsafe<Record<string, unknown>>({ ...manifestSchema, description: 'a batch manifest (docs/batch.md)' });

const force = Default(Type.Boolean({ description: 'redo every stage even when the run folder holds its outputs' }), false);

export const DemoJobSchema = Strict(
  {
    kind: Type.Literal('demo'),
    out: Path('the folder for the demo world (world/) and its run (run/)'),
    seed: Default(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1, description: 'seed of the world' }), 0),
    sessions: Default(Type.Integer({ minimum: 4, maximum: 40, description: 'sessions of the miniature NSD' }), 16),
    testImages: Default(Type.Integer({ minimum: 4, maximum: 200, description: 'test images (reconstructed)' }), 24),
    seeds: Default(Type.Integer({ minimum: 1, maximum: 10, description: 'samples per test image' }), 2),
    steps: Default(Type.Integer({ minimum: 2, maximum: 200, description: 'DDIM steps: at least 2 (img2img denoises the last ⌊steps·0.8⌋ of them, none at 1)' }), 20),
  },
  { description: "the demo world built from a seed and reconstructed as brainlatent demo does, with lighter defaults (world seed 0, 2 samples per image, 20 steps); its run folder is out's run/" },
);

export const JobBodySchema = Tagged(
  [
    Strict({ kind: Type.Literal('reconstruct'), config: ReconstructConfigSchema, force }, { description: 'brainlatent reconstruct' }),
    Strict({ kind: Type.Literal('encode'), config: EncodeConfigSchema, force }, { description: 'brainlatent encode' }),
    Strict({ kind: Type.Literal('ridge-fit'), config: RidgeFitConfigSchema }, { description: 'brainlatent ridge fit' }),
    Strict({ kind: Type.Literal('batch'), manifest: ManifestSchema }, { description: 'brainlatent batch run: subjects × analyses' }),
    DemoJobSchema,
  ],
  { description: 'a job: its kind and its config' },
);

export const JobIdParams = Strict({ id: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$', description: 'a job id' }) });
export const ModelParams = Strict({ model: ModelName });
export const ModelNameParams = Strict({ name: ModelName });

/** Every kind of job (a job body's `kind`). */
export const JOB_KINDS = ['reconstruct', 'encode', 'ridge-fit', 'batch', 'demo'] as const satisfies readonly JobKind[];

export const JobListQuery = Strict({
  state: Type.Optional(Type.Union(JOB_STATES.map((s) => Type.Literal(s)), { description: 'only jobs in this state' })),
  kind: Type.Optional(Type.Union(JOB_KINDS.map((s) => Type.Literal(s)), { description: 'only jobs of this kind' })),
});

/** The query string of a route that declares none: no keys (an unknown one is a 400, not ignored). */
export const NoQuery = Strict({});

export const SessionBodySchema = Strict({ token: Type.String({ minLength: 1, maxLength: 4096, description: "the service's bearer token" }) });

/** The $id of the shared error body (unique, so a host app's own shared schemas cannot collide with it). */
export const ERROR_SCHEMA_ID = 'BrainlatentError';

/**
 * Error bodies: what failed, its code and class, and for a 400 every problem naming its field. A shared schema
 * (added to the plugin's scope), referenced by every error response: one named component in the OpenAPI document.
 */
export const ErrorSchema = Type.Object(
  {
    error: Type.String({ description: 'the HTTP status text' }),
    message: Type.String(),
    code: Type.String({ description: "the error's own code (ShapeMismatch, InvalidArgument, ModelNotFound, …), as the library's errors carry it" }),
    name: Type.Optional(Type.String({ description: "the error's class (ShapeError, …); absent in a 401 or 403" })),
    problems: Type.Optional(Type.Array(Type.String())),
  },
  { $id: ERROR_SCHEMA_ID, additionalProperties: true, description: 'an error: what failed (`message`), its kind (`code`) and class (`name`); more fields for some codes' },
);
