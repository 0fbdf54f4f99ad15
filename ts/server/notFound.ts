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

/** No model of that name (of that kind, for a route that needs one) is loaded. */
export class ModelNotFoundError extends NotFoundError {
  readonly fields: { model: string };
  constructor(name: string, kind?: 'ridge' | 'sd') {
    super(`no ${kind ? `${kind} ` : ''}model named '${name}' is loaded (POST /v1/models loads one)`, 'ModelNotFound');
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

export class RouteNotFoundError extends NotFoundError {
  readonly fields = {};
  constructor(method: string, url: string) {
    super(`no route ${method} ${url}`, 'RouteNotFound');
  }
}
