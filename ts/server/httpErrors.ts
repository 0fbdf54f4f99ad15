/**
 * Errors → HTTP: invalid input (NaN in a request body included) is a 400 that lists every problem, as is an execution provider the request named that this service cannot run, input over one of
 * the service's limits (LimitError) a 413 (a 400 for a file the client named), a missing model, job, run file or route a 404 whose `code` names the kind (notFound.ts), a known path with another method a 405 with Allow, a busy run folder, a taken model name or a load past maxModels (or a load dropped by a DELETE or a later load of its name), a batch name another manifest holds in Redis or the cancel of an ended job a 409, a full queue, a closing service or an unreachable
 * Redis (serve --redis, batch-layer jobs) a 503 with Retry-After; a loaded model that turns finite inputs into NaN/Inf is a 500 naming the model and the output
 * (ModelOutputError: the service's fault, not the client's); anything else is a 500 whose body says only what kind
 * of failure it was (the details go to the log). Every body's `code` is the error's own `.code` (ShapeMismatch,
 * InvalidArgument, ModelNotFound, …: what an embedder catching the same error in-process reads; Fastify's FST_* code
 * for its own 4xx) and `name` its class, so an HTTP client and the library agree on what failed.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

import { RedisUnreachableError } from '../batch/errors.js';
import { ConfigError } from '../config/index.js';
import { BackendUnavailableError, BrainlatentError, CancelledError, FormatError, InvalidArgumentError, LimitError, MissingFileError, NonFiniteError, OutOfMemoryError, ShapeError } from '../errors.js';
import { clientWentAway } from './clientGone.js';
import { JobFinishedError } from './jobs/jobErrors.js';
import { bodyRefusal, charsetOf, contentCodings } from './jsonBodies.js';
import { JobConflictError } from './jobs/LocalJobRunner.js';
import { BatchNameTakenError } from './jobs/batchName.js';
import { ModelOutputError } from './models/ModelOutputError.js';
import { BodyTimeoutError } from './bodyTimeout.js';
import { ModelExistsError, ModelLimitError, ModelLoadCancelledError } from './models/ModelRegistry.js';
import { MethodNotAllowedError, NotFoundError } from './notFound.js';
import { publicError, shownWith, type PublicError } from './publicError.js';
import { PathOutsideRootError } from './rootPaths.js';
import { RequestValidationError } from './validation.js';
import { ClosedError, QueueFullError } from './workQueue.js';

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 404: 'Not Found', 405: 'Method Not Allowed', 408: 'Request Timeout', 409: 'Conflict', 413: 'Payload Too Large', 414: 'URI Too Long', 415: 'Unsupported Media Type', 500: 'Internal Server Error', 503: 'Service Unavailable' };

/** Errors about a file or folder the client named by path (POST /v1/models' body.path), not the request's content. */
const aboutNamedFile = new WeakSet<object>();

/** What is wrong with a file or folder the client named is what is wrong with that field: its message says so. */
export function fieldOfFile(e: unknown, field: string): unknown {
  const aboutFile = [FormatError, MissingFileError, InvalidArgumentError, ShapeError, LimitError].some((k) => e instanceof k) || typeof (e as NodeJS.ErrnoException)?.syscall === 'string';
  if (aboutFile) {
    (e as Error).message = `${field}: ${(e as Error).message}`;
    aboutNamedFile.add(e as Error);
  }
  return e;
}

/** Backends the client chose that this service cannot run (POST /v1/models' body.provider): the request's, not a 500. */
const requestedBackends = new WeakSet<object>();

/** `e` is about a backend the request named (providerRefusal): a 400, where the service's own is a 500. */
export function requestedBackend(e: BackendUnavailableError): BackendUnavailableError {
  requestedBackends.add(e);
  return e;
}

/** Seconds a client is told to wait after an allocation failure (other requests' memory is freed as they end). */
const ALLOCATION_RETRY_AFTER_S = 30;

function statusOf(e: unknown): number {
  // Input over a limit the service keeps: in the request's content (a .npy body, a base64 array) that is 413; in a file
  // the client named by path the request is small, and a 413 would say "send less" where the fix is another file: 400.
  if (e instanceof LimitError) return aboutNamedFile.has(e) ? 400 : 413;
  if (e instanceof RequestValidationError || e instanceof ConfigError || e instanceof PathOutsideRootError) return 400;
  if (e instanceof ShapeError || e instanceof InvalidArgumentError || e instanceof FormatError || e instanceof NonFiniteError) return 400;
  if (e instanceof MissingFileError) return 400;
  if (e instanceof BackendUnavailableError && requestedBackends.has(e)) return 400;
  if (e instanceof NotFoundError) return 404;
  if (e instanceof MethodNotAllowedError) return 405;
  if (e instanceof BodyTimeoutError) return 408;
  if (e instanceof JobConflictError || e instanceof BatchNameTakenError || e instanceof ModelExistsError || e instanceof ModelLimitError || e instanceof ModelLoadCancelledError || e instanceof JobFinishedError) return 409;
  if (e instanceof QueueFullError || e instanceof ClosedError || e instanceof RedisUnreachableError) return 503;
  // the machine could not provide the memory just now: overload, like a full queue (a budget refusal stays a 500:
  // the same request fails again until the service's budget or the request changes)
  if (e instanceof OutOfMemoryError && e.reason === 'allocation') return 503;
  const fastifyCode = (e as FastifyError).statusCode;
  if (!(e instanceof BrainlatentError) && typeof fastifyCode === 'number' && fastifyCode >= 400 && fastifyCode < 500) return fastifyCode;
  if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 400;
  return 500;
}

/** The media types a route's body may have: its schema's per-type bodies, else JSON; none for a route without a body. */
function acceptedTypes(req: FastifyRequest): string[] {
  const body = req.routeOptions.schema?.body as { content?: Record<string, unknown> } | undefined;
  if (!body) return [];
  return body.content ? Object.keys(body.content) : ['application/json'];
}

/**
 * A 415 that says what the route takes (Fastify's own says only 'Unsupported Media Type'): the types, or, for a body
 * of a type it takes in a content coding, that it takes the body uncompressed (and Accept-Encoding: identity).
 */
function unsupportedMediaType(e: FastifyError, req: FastifyRequest, reply: FastifyReply): PublicError {
  const route = `${req.method} ${req.routeOptions.url ?? req.url}`;
  const sent = req.headers['content-type'] ?? '(none)';
  const types = acceptedTypes(req);
  const codings = contentCodings(req);
  if (codings.length > 0 && types.includes(sent.split(';')[0].trim().toLowerCase())) {
    // (RFC 9110 §12.5.3: a 415 for a content coding says which codings are taken)
    void reply.header('accept-encoding', 'identity');
    return { name: e.name, code: 'UnsupportedMediaType', message: `content-encoding '${codings.join(', ')}' is not taken by ${route}: send the body uncompressed (no content-encoding, or identity)` };
  }
  const want = types.length ? `expected ${types.join(' or ')}` : 'this route takes no body';
  const charset = charsetOf(sent);
  // a JSON type in a charset other than UTF-8: the charset is what is not taken
  const what = charset && !/^utf-?8$/i.test(charset) && types.includes(sent.split(';')[0].trim().toLowerCase()) ? `the charset '${charset}' of content-type '${sent}' is not taken by ${route}: JSON bodies are UTF-8` : `content-type '${sent}' is not taken by ${route}: ${want}`;
  return { name: e.name, code: 'UnsupportedMediaType', message: what };
}

/** A 413 that names the route and its limit in bytes (Fastify's own says only 'Request body is too large'). */
function bodyTooLarge(e: FastifyError, req: FastifyRequest): PublicError & { limit?: number } {
  const limit = req.routeOptions.bodyLimit;
  const route = `${req.method} ${req.routeOptions.url ?? req.url.split('?')[0]}`;
  const declared = Number(req.headers['content-length']);
  const sent = Number.isFinite(declared) && declared > 0 ? ` (this one declares ${declared.toLocaleString('en')} bytes)` : '';
  const over = typeof limit === 'number' ? `over the ${limit.toLocaleString('en')}-byte limit (${mib(limit)}) of ${route}` : `over the limit of ${route}`;
  return { name: e.name, code: e.code, message: `the request body is ${over}${sent}`, ...(typeof limit === 'number' ? { limit } : {}) };
}

/**
 * Fastify's own 4xx as it says it; a body its content parser refused (a 400 FST_ERR_CTP_*: not JSON, empty, …) in
 * the form of the validator's 400, its problem naming the body (BodyRefusal; Fastify's own message otherwise).
 */
function fastifyRefusal(e: FastifyError, status: number): PublicError {
  const parserRefused = status === 400 && e.code.startsWith('FST_ERR_CTP_');
  const told = parserRefused && !Array.isArray((e as { problems?: unknown }).problems) ? bodyRefusal(e, `body: ${e.message}`) : e;
  const problems = (told as { problems?: unknown }).problems;
  return { name: told.name, code: told.code, message: told.message, ...(parserRefused && Array.isArray(problems) ? { problems: problems as string[] } : {}) };
}

const mib = (bytes: number) => (bytes >= 1 << 20 ? `${+(bytes / 2 ** 20).toFixed(2)} MiB` : `${+(bytes / 1024).toFixed(2)} KiB`);

/** `show` rewrites what the client is told (the plugin's: the server's paths under the root made root-relative). */
export function sendError(e: unknown, req: FastifyRequest, reply: FastifyReply, show: (text: string) => string = (t) => t): FastifyReply {
  const status = statusOf(e);
  if (e instanceof CancelledError && clientWentAway(req)) req.log.info({ reason: e.message }, 'client went away');
  else if (status >= 500 && !(e instanceof QueueFullError) && !(e instanceof ClosedError) && !(e instanceof RedisUnreachableError)) req.log.error({ err: e }, 'request failed');
  if (e instanceof QueueFullError) void reply.header('retry-after', String(e.retryAfter));
  if (e instanceof ClosedError || e instanceof RedisUnreachableError) void reply.header('retry-after', '5');
  if (status === 503 && e instanceof OutOfMemoryError) void reply.header('retry-after', String(ALLOCATION_RETRY_AFTER_S));
  // Fastify's own 4xx errors (bad JSON, too large, wrong media type) describe the request, not a file
  const fastify4xx = !(e instanceof BrainlatentError) && status < 500 && typeof (e as FastifyError).code === 'string' && (e as FastifyError).code.startsWith('FST_');
  if (e instanceof MethodNotAllowedError) void reply.header('allow', e.allow.join(', '));
  const fastifyError = e as FastifyError;
  const tooLarge = fastify4xx && fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? bodyTooLarge(fastifyError, req) : undefined;
  const mediaType = fastifyError.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE';
  const body = shownWith(tooLarge ?? (mediaType ? unsupportedMediaType(fastifyError, req, reply) : fastify4xx ? fastifyRefusal(fastifyError, status) : publicError(e)), show);
  const model = e instanceof ModelOutputError ? { model: e.model, output: e.output } : {};
  const fields = e instanceof NotFoundError || e instanceof JobFinishedError ? e.fields : {};
  const limit = tooLarge?.limit !== undefined ? { limit: tooLarge.limit } : {};
  const allow = e instanceof MethodNotAllowedError ? { allow: e.allow } : {};
  // every 400 lists its problems: the validator's one per problem, any other (a body that is not a .npy, a provider
  // this service cannot run) its message as the one problem, so that a client shows `problems` whatever refused it
  const problems = body.problems ? { problems: body.problems } : status === 400 ? { problems: [body.message] } : {};
  // an OutOfMemory says whether a budget refused it (the same request fails again) or the allocator failed (may pass later)
  const reason = body.reason ? { reason: body.reason } : {};
  return reply.code(status).send({ error: STATUS_TEXT[status] ?? 'Error', ...problems, message: body.message, code: body.code ?? body.name, name: body.name, ...reason, ...model, ...fields, ...limit, ...allow });
}

/**
 * Fastify's `frameworkErrors` option: the errors its router meets before any route or plugin sees the request (a URL
 * it cannot decode, FST_ERR_BAD_URL; a path parameter over maxParamLength, a 414) answered in the service's error form
 * (error, message, code, name), where Fastify's own body has no `name`. An app's option, not a plugin's: startServer
 * sets it, and an app that embeds the plugin may pass it to Fastify().
 */
export function frameworkErrors(e: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendError(e, req, reply);
}
