/**
 * Request validation in the plugin's scope, through the configs' own ajv (the validator the CLI and the library
 * use): unknown keys are rejected with a 400, never stripped; defaults are filled in; and every problem is listed
 * at once, each naming the field ("body.config.nsd.subject: expected an integer from 1 to 8, got number 9").
 * Query strings and path parameters are text, so they are checked by a second instance that coerces types.
 */
import { Ajv } from 'ajv';
import type { FastifyInstance, FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';

import { CONFIG_AJV_OPTIONS, problemsFrom, validatorFor } from '../config/index.js';
import { BrainlatentError } from '../errors.js';

/** A request that does not match its route's schema: HTTP 400 with every problem. */
export class RequestValidationError extends BrainlatentError {
  readonly problems: string[];
  readonly statusCode = 400;
  constructor(part: string, problems: string[]) {
    super(`the request ${part} is not valid (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  - ${problems.join('\n  - ')}`, 'InvalidRequest');
    this.problems = problems;
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
