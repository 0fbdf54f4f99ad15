/**
 * What a request named and the service does not hold: one error class and one `code` per kind of thing (a model,
 * a job, a run folder's file, a route), documented in docs/server.md. The routes throw these; sendError answers
 * every one with 404 and the same body shape, so a client tells the kinds apart by `code` alone on any route.
 */
import { BrainlatentError } from '../errors.js';
import { KEEP_FINISHED } from './jobs/jobBoard.js';

export type NotFoundCode = 'ModelNotFound' | 'JobNotFound' | 'FileNotFound' | 'RouteNotFound';

export abstract class NotFoundError extends BrainlatentError {
  declare readonly code: NotFoundCode;
  /** Fields the 404 body carries besides error, message and code (the model's name, the job's id). */
  abstract readonly fields: Record<string, string>;
  constructor(message: string, code: NotFoundCode) {
    super(message, code);
  }
}

type ModelKind = 'ridge' | 'sd';

/** What a model of each kind is, and the route that runs it. */
const KIND_ROUTE: Record<ModelKind, { what: string; route: (name: string) => string }> = {
  ridge: { what: 'a ridge model', route: (name) => `POST /v1/ridge/${name}/predict` },
  sd: { what: 'a Stable Diffusion (diffusion) model', route: (name) => `POST /v1/sd/${name}/img2img` },
};

/**
 * No model of that name (of that kind, for a route that needs one) is loaded. `loadedAs`: the name is loaded as the
 * other kind, and the message says which route runs it (a client that sent an SD model to predict learns where it goes).
 */
export class ModelNotFoundError extends NotFoundError {
  readonly fields: { model: string };
  constructor(name: string, kind?: ModelKind, loadedAs?: ModelKind) {
    super(
      loadedAs && kind && loadedAs !== kind
        ? `model '${name}' is ${KIND_ROUTE[loadedAs].what}, not ${KIND_ROUTE[kind].what}: ${KIND_ROUTE[loadedAs].route(name)} runs it (this route needs ${KIND_ROUTE[kind].what}; POST /v1/models loads one)`
        : `no ${kind ? `${kind} ` : ''}model named '${name}' is loaded (POST /v1/models loads one)`,
      'ModelNotFound',
    );
    this.fields = { model: name };
  }
}

/**
 * A job the board does not hold: never submitted here, or forgotten. The service keeps its jobs in memory only (with
 * or without Redis), so a restart forgets every one, and the oldest finished ones go beyond KEEP_FINISHED; the answer
 * says so and names the id, for a client that was following the job (the page marks it so and stops).
 */
export class JobNotFoundError extends NotFoundError {
  readonly fields: { id: string };
  constructor(id: string) {
    super(
      `no job '${id}' on this service: it keeps its jobs in memory only, so a restart forgets them (their run folders stay on disk), as it forgets the oldest finished jobs beyond ${KEEP_FINISHED.toLocaleString('en')}`,
      'JobNotFound',
    );
    this.fields = { id };
  }
}

/** No such visible file in a job's run folder (hidden files and paths that leave the folder are not there either). */
export class FileNotFoundError extends NotFoundError {
  readonly fields = {};
  constructor(rel: string) {
    super(`no file '${rel}' in this run folder`, 'FileNotFound');
  }
}

/** The path is a route's, the method is not one it takes: 405 with the methods it does take (the Allow header). */
export class MethodNotAllowedError extends BrainlatentError {
  constructor(
    method: string,
    path: string,
    readonly allow: string[],
  ) {
    super(`${method} is not allowed on ${path}: it takes ${allow.join(', ')}`, 'MethodNotAllowed');
  }
}

export class RouteNotFoundError extends NotFoundError {
  readonly fields = {};
  constructor(method: string, url: string) {
    super(`no route ${method} ${url}`, 'RouteNotFound');
  }
}
