/**
 * Request validation in the plugin's scope, through the configs' own ajv (the validator the CLI and the library
 * use): unknown keys are rejected with a 400, never stripped; defaults are filled in; and every problem is listed
 * at once, each naming the field ("body.config.nsd.subject: expected an integer from 1 to 8, got number 9").
 * Query strings and path parameters are text, so they are checked by a second instance that coerces types. Fastify
 * answers the first part that fails (params, then body, then query string): everyInvalidPart adds the others'.
 */
import { Ajv } from 'ajv';
import type { FastifyInstance, FastifyRequest, FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';

import { CONFIG_AJV_OPTIONS, problemsFrom, validatorFor } from '../config/index.js';
import { BrainlatentError } from '../errors.js';

/** The request parts in the order Fastify validates them, which is the order a 400 lists them in. */
const PART_ORDER = ['params', 'body', 'querystring', 'headers'];

/** Each failing part's problems, keyed by the part's name as Fastify gives it (params, body, querystring). */
export type PartProblems = Readonly<Record<string, readonly string[]>>;

/** `parts`' names that have problems, in PART_ORDER (an unknown name last). */
function failingParts(parts: PartProblems): string[] {
  const rank = (p: string) => (PART_ORDER.includes(p) ? PART_ORDER.indexOf(p) : PART_ORDER.length);
  return Object.keys(parts)
    .filter((p) => parts[p].length > 0)
    .sort((a, b) => rank(a) - rank(b));
}

/** The message of a 400 for `problems` in the parts `names` ('the request body is not valid (1 problem): …'). */
export function notValidMessage(names: readonly string[], problems: readonly string[]): string {
  const part = names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
  return `the request ${part} ${names.length === 1 ? 'is' : 'are'} not valid (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  - ${problems.join('\n  - ')}`;
}

/**
 * A request that does not match its route's schema: HTTP 400 with every problem. Built with one part's problems
 * (`new RequestValidationError('body', [...])`) or several parts' (`{ body: [...], querystring: [...] }`): the
 * message names each part that failed, and `problems` lists them part by part, params, then body, then query string.
 */
export class RequestValidationError extends BrainlatentError {
  readonly problems: string[];
  /** The problems of each part that failed (what `problems` lists, by part). */
  readonly parts: PartProblems;
  readonly statusCode = 400;
  constructor(part: string, problems: string[]);
  constructor(parts: PartProblems);
  constructor(part: string | PartProblems, problems: string[] = []) {
    const parts: PartProblems = typeof part === 'string' ? { [part]: problems } : part;
    // (a single part with no problem keeps its name: the message says 'the request body is not valid (0 problems)')
    const names = typeof part === 'string' ? [part] : failingParts(parts);
    const all = names.flatMap((n) => parts[n] ?? []);
    super(notValidMessage(names, all), 'InvalidRequest');
    this.problems = all;
    this.parts = Object.fromEntries(names.map((n) => [n, [...(parts[n] ?? [])]]));
  }
}

const textParts = new Ajv({ ...CONFIG_AJV_OPTIONS, coerceTypes: true });

/**
 * Runs a new validator once on a throwaway `{}`: V8 compiles ajv's generated code on its first call, which for the
 * job body (every config's schema) blocks the event loop for ~150 ms; done here, that happens while the routes are
 * registered, before the service listens, not during the first request.
 */
function warmed<V extends (data: unknown) => unknown>(validate: V): V {
  validate({});
  return validate;
}

const compiler: FastifySchemaCompiler<object> = ({ schema, httpPart }) =>
  warmed(httpPart === 'body' ? validatorFor(schema as never) : textParts.compile(schema));

/** Installs the validator and the error formatter on `app` (in its encapsulated scope only). */
export function useConfigValidation(app: FastifyInstance): void {
  app.setValidatorCompiler(compiler);
  app.setSchemaErrorFormatter((errors, dataVar) => new RequestValidationError(dataVar, problemsFrom(errors as never, dataVar)));
}

// the parts Fastify validates, in its order (it stops at the first that fails), and the request's field for each
const PARTS = [
  ['params', 'params'],
  ['body', 'body'],
  ['querystring', 'query'],
] as const;

type PartValidate = ((data: unknown, cxt?: object) => unknown) & { errors?: FastifySchemaValidationError[] | null; schemaEnv?: unknown };

/**
 * `error`, the refusal of the first part of `req` that failed its schema (Fastify's validation error, or the one a
 * route with attachValidation built from it: the part is then its req.validationError's), with the problems of the
 * parts Fastify did not go on to check, each listed under its own part: a request with a bad body and an unknown
 * query key is told both at once, not one after the other. Any other error (one a content parser or a handler
 * threw) is returned as it is.
 */
export function everyInvalidPart(error: unknown, req: FastifyRequest): unknown {
  type Validated = { validationContext?: string };
  const first = (error as Validated).validationContext ?? (req.validationError as Validated | undefined)?.validationContext;
  const at = PARTS.findIndex(([part]) => part === first);
  if (!(error instanceof RequestValidationError) || at < 0) return error;
  // (the error may hold problems of a part Fastify had passed: POST /v1/jobs' config checks find the body's past its schema)
  const parts: Record<string, readonly string[]> = { ...error.parts };
  let added = false;
  for (const [part, field] of PARTS.slice(at + 1)) {
    if (parts[part]) continue;
    // (a route with one body schema per content type has one validator for each: the request's, as Fastify picks it)
    const compiled = req.getValidationFunction(part) as PartValidate | Record<string, PartValidate> | undefined;
    const validate = typeof compiled === 'function' ? compiled : compiled && req.mediaType ? compiled[req.mediaType] : undefined;
    if (typeof validate !== 'function') continue;
    const data = req[field] ?? null;
    // (called as Fastify calls it: ajv may coerce or fill in the value in place)
    const ok = validate.schemaEnv ? validate(data, { parentData: req, parentDataProperty: field }) : validate(data);
    if (ok || !validate.errors?.length) continue;
    parts[part] = problemsFrom(validate.errors as never, part);
    added = true;
  }
  return added ? new RequestValidationError(parts) : error;
}

/**
 * The plugin's validator, except that a body `passes` accepts is let through: its route validates it later, with
 * the same validator (a large data body, in the thread that decodes it).
 */
export function bodyValidator(passes: (body: unknown) => boolean): FastifySchemaCompiler<object> {
  return (route) => {
    type Validate = ((data: unknown) => boolean) & { errors?: FastifySchemaValidationError[] | null };
    const validate = compiler(route) as Validate;
    if (route.httpPart !== 'body') return validate;
    const checked = ((data: unknown) => {
      if (passes(data)) {
        checked.errors = null;
        return true;
      }
      const ok = validate(data);
      checked.errors = validate.errors;
      return ok;
    }) as Validate;
    return checked;
  };
}
