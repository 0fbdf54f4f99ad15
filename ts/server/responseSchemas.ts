/**
 * What each route answers, for the OpenAPI document (a client generator's types) and Fastify's serializer: the
 * success body of each route and the error body every failure shares (httpErrors.ts's sendError, auth.ts's
 * 401/403). Bodies the service may extend are open (`additionalProperties: true`), so the serializer never drops a
 * field a handler returns; only fields every answer has are `required`.
 */
import { Type, type TObject, type TSchema } from '@sinclair/typebox';

import { JOB_STATES } from './jobs/types.js';
import { ERROR_SCHEMA_ID, JOB_KINDS } from './schemas.js';

const open = <T extends Parameters<typeof Type.Object>[0]>(properties: T, description: string) => Type.Object(properties, { additionalProperties: true, description });
/** A string from a fixed list (an `enum`: a client generator makes it a union type). */
const oneOf = (values: readonly string[], description: string) => Type.Unsafe<string>({ type: 'string', enum: [...values], description });
const nullable = (schema: TSchema) => Type.Unsafe<unknown>({ ...schema, nullable: true });

const JobProgressSchema = open(
  {
    stage: Type.String(),
    index: Type.Integer({ description: '1-based position of the stage' }),
    stages: Type.Integer(),
    fraction: Type.Number({ description: 'within the stage, 0..1' }),
    rate: nullable(Type.Number({ description: "stage fraction per second over the last ~20 s of this run's own work; null until two updates show progress, while the stage makes none, and once the job has ended (done, failed or cancelled)" })),
    etaSeconds: nullable(Type.Number({ description: 'seconds to the end of the stage at that rate, counted down from its last progress update: 0 when the fraction is 1, else null while `rate` is, and null once the job has ended (done, failed or cancelled)' })),
    stalledSeconds: Type.Optional(Type.Integer({ description: "while the job runs, once its stage has reported no progress for ~20 s (the rate's window): seconds since it last did; `rate` and `etaSeconds` are then null (a worker that died, a model still loading). Absent otherwise, and from progress events" })),
    message: Type.Optional(Type.String()),
  },
  'the running stage; once the job has ended, the last stage it reported (fraction 1 when done)',
);

export const JobViewSchema = open(
  {
    id: Type.String(),
    kind: oneOf(JOB_KINDS, 'what the job runs'),
    state: oneOf(JOB_STATES, 'queued or running, then done, failed or cancelled'),
    out: Type.String({ description: 'the run folder, relative to the root' }),
    submittedAt: Type.String({ format: 'date-time' }),
    startedAt: Type.Optional(Type.String({ format: 'date-time' })),
    finishedAt: Type.Optional(Type.String({ format: 'date-time' })),
    stages: Type.Array(Type.String()),
    progress: nullable(JobProgressSchema),
    result: Type.Optional(Type.Object({}, { additionalProperties: true, description: 'what the job produced (metrics, report), once done; a batch job that failed (some of its jobs failed) has its summary here too' })),
    error: Type.Optional(Type.Object({}, { additionalProperties: true, description: 'name, code and message, as in an error answer' })),
    cancelPending: Type.Optional(Type.String({ description: "`serve --redis`: a cancelled job whose process has ended while its batch's cancel has not reached Redis (it did not answer): why; the service retries until Redis answers, and the job stays running, its run folder claimed, until then" })),
  },
  'a job',
);

export const JobListSchema = open({ jobs: Type.Array(JobViewSchema) }, 'jobs, newest first');

export const RunFileListSchema = open({ files: Type.Array(open({ path: Type.String(), bytes: Type.Integer() }, 'a file of the run folder')) }, "the run folder's visible files");

export const ModelViewSchema = open(
  {
    name: Type.String(),
    kind: Type.String({ description: 'ridge or sd' }),
    path: Type.String({ description: 'relative to the root' }),
    loadedAt: Type.String({ format: 'date-time' }),
    shape: Type.Object({}, { additionalProperties: Type.Number(), description: 'ridge: features and targets; sd: latent channels and conditioning width' }),
    scheduler: Type.Optional(Type.String()),
    inFlight: Type.Integer({ description: 'requests using it now' }),
  },
  'a loaded model',
);

export const ModelListSchema = open({ models: Type.Array(ModelViewSchema) }, 'the loaded models');

export const PredictionsSchema = open({ rows: Type.Integer(), cols: Type.Integer(), y: Type.Array(Type.Array(Type.Number())) }, 'predictions, samples × targets');

export const HealthSchema = open({ status: Type.String() }, 'the process answers');
export const ReadySchema = open(
  {
    ready: Type.Boolean(),
    // (a probe needs only the status; what runs where is the service's own business: Redis's host, the models' names)
    runner: Type.Optional(Type.String({ description: 'the job runner: what it runs on, or why it cannot run jobs (only to a client the service answers: the token, or loopback without one)' })),
    models: Type.Optional(Type.Array(open({ name: Type.String(), kind: Type.String() }, 'a loaded model'), { description: 'the loaded models (only to a client the service answers: the token, or loopback without one)' })),
  },
  'readiness',
);
export const SessionStateSchema = open({ tokenRequired: Type.Boolean(), signedIn: Type.Boolean() }, 'whether the service needs a token and this client is signed in');
export const OpenApiSchema = Type.Object({}, { additionalProperties: true, description: 'an OpenAPI 3 document' });

/** What each error status means on this service (the body is ErrorSchema's, by reference). */
const ERROR_MEANING: Record<number, string> = {
  400: 'the request is not valid: `message` says what, and `problems` lists it: one per problem of a body or config that fails validation, each naming the field; else the message as the one problem',
  401: 'no valid bearer token or session (WWW-Authenticate: Bearer)',
  403: 'the service has no token and answers loopback clients only',
  404: '`code` names what was not found: ModelNotFound (with `model`), JobNotFound (with `id`), FileNotFound',
  408: 'RequestTimeout: the body sent nothing for bodyTimeoutMs, or came slower than 1,024 bytes a second past its first bodyTimeoutMs; the connection is closed',
  409: 'a conflict: JobConflict (a run folder in use), BatchNameTaken (with --redis, a manifest whose name another manifest\'s batch holds, or a job accepted with another manifest has claimed), ModelExists (the name is loaded, or another request is loading it), TooManyModels (maxModels models are loaded: DELETE /v1/models/NAME frees one), ModelLoadCancelled (a DELETE of the name, or a later load of it with `replace`, came first: the model this load loaded was dropped), JobFinished (with `id`, `state`)',
  413: 'the body is over the limit (`limit`, bytes), or content over a reader’s limit (LimitError)',
  415: 'a body of a media type the route does not take, or compressed (a Content-Encoding other than identity)',
  429: 'TooManyGuesses: this address has a few wrong tokens waiting for their answer (each is answered late); its token was not compared: retry after Retry-After',
  500: "the service failed (ModelOutput: a model made NaN/Inf, with `model` and `output`; OutOfMemory with `reason` 'budget': a memory budget refused the work); details in its log",
  503: "try again later (Retry-After): QueueFull, ShuttingDown, RedisUnreachable, OutOfMemory with `reason` 'allocation' (the machine could not provide the memory just now)",
};

export type ErrorStatus = keyof typeof ERROR_MEANING;

/** Every route can answer these: a token (401/403; 429 while its address has wrong tokens waiting), a closing service (503), a failure (500). */
const ALWAYS: ErrorStatus[] = [401, 403, 429, 500, 503];

/** `statuses` (and the ones every route that needs the token has) with the shared error body, each described. */
export function errorResponses(...statuses: ErrorStatus[]): Record<number, TSchema> {
  return errorsOf([...statuses, ...ALWAYS]);
}

/** The same for a route answered without the token (no 401/403/429). */
export function publicErrorResponses(...statuses: ErrorStatus[]): Record<number, TSchema> {
  return errorsOf([...statuses, 500, 503]);
}

/** The shared error body (schemas.ts's ErrorSchema, added to the plugin's scope), described. */
export const errorBody = (description: string): TSchema => Type.Unsafe({ $ref: `${ERROR_SCHEMA_ID}#`, description });

function errorsOf(statuses: ErrorStatus[]): Record<number, TSchema> {
  const out: Record<number, TSchema> = {};
  // (a route that takes a body, whose limit is a 413, ends one that comes too slowly: bodyTimeout.ts)
  const all = statuses.includes(413) ? [...statuses, 408] : statuses;
  for (const s of [...new Set(all)].sort()) out[s] = errorBody(ERROR_MEANING[s]);
  return out;
}

/** A 204 (no body). */
export const NO_CONTENT = { 204: Type.Unsafe({ type: 'null', description: 'done; no body' }) };

/** A body that is not JSON: described by media type only (the serializer leaves strings, buffers and streams alone). */
export function binary(description: string, types: string[]): TSchema {
  return Type.Unsafe({ description, content: Object.fromEntries(types.map((t) => [t, { schema: { type: 'string', format: 'binary' } }])) });
}

/** `schema` with a description (the OpenAPI response's). */
export const described = <T extends TObject>(schema: T, description: string): T => ({ ...schema, description });
