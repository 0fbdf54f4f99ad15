/**
 * /v1/jobs: submit a reconstruct, encode, ridge-fit or demo job (202 with its id), list and read jobs, follow one
 * as Server-Sent Events (every stage in order, progress with rate and ETA, then `result` or `error`), cancel it,
 * and read its run folder.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema } from 'fastify';

import type { ServiceContext } from '../context.js';
import { jobSpecOf, withConfigProblems, type JobBody } from '../jobs/jobSpec.js';
import type { LoggedEvent } from '../jobs/jobBoard.js';
import { isFinal, type JobKind, type JobState } from '../jobs/types.js';
import { JobFinishedError } from '../jobs/jobErrors.js';
import { JobNotFoundError } from '../notFound.js';
import { binary, described, errorResponses, JobListSchema, JobViewSchema, RunFileListSchema } from '../responseSchemas.js';
import { JobBodySchema, JobIdParams, JobListQuery } from '../schemas.js';
import { listRunFolder, sendRunFile, TYPES as RUN_FILE_TYPES } from '../runFiles.js';
import { QueueFullError } from '../workQueue.js';

type IdRequest = FastifyRequest<{ Params: { id: string } }>;

const FILE_PATH = { type: 'string', description: "the file's path inside the run folder, e.g. report.html or images/0001.png ('/' between folders)" };

/** Every media type the run-file route may send: runFiles.ts's table, without parameters (charset), and its fallback. */
const RUN_FILE_MEDIA_TYPES = [...new Set([...Object.values(RUN_FILE_TYPES), 'application/octet-stream'].map((t) => t.split(';')[0].trim()))];

/** The run-file route in the OpenAPI document: its wildcard as a parameter named `path`. */
function namedWildcard({ schema, url }: { schema: FastifySchema; url: string }): { schema: FastifySchema; url: string } {
  const params = schema.params as { properties: Record<string, unknown>; required: string[] };
  const { '*': _wildcard, ...rest } = params.properties;
  return { url: url.replace(/\*$/, ':path'), schema: { ...schema, params: { ...params, properties: { ...rest, path: FILE_PATH }, required: [...params.required, 'path'] } } };
}


export async function jobRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  const board = ctx.runner.board;

  app.post(
    '/v1/jobs',
    // (a body the schema refuses reaches the handler, which adds its config's own problems to the schema's; the error
    // handler adds the query string's: validation.ts' everyInvalidPart)
    {
      bodyLimit: ctx.bodyLimit,
      attachValidation: true,
      schema: {
        operationId: 'submitJob',
        tags: ['jobs'],
        summary: 'Submit a job',
        description: "202 with the job and `Location: /v1/jobs/ID`; a reconstruct or encode config, or a batch manifest, that its preflight refuses is a 400 listing every problem (nothing queued or written)",
        body: JobBodySchema,
        response: { 202: described(JobViewSchema, 'the job, queued'), ...errorResponses(400, 409, 413, 415) },
      },
    },
    async (req, reply) => {
      if (req.validationError) throw await withConfigProblems(req.validationError, req.body, ctx.root);
      const spec = await jobSpecOf(req.body as JobBody, ctx.root, { elsewhere: ctx.jobsElsewhere });
      const view = await ctx.runner.submit(spec).catch((e: unknown) => {
        // a full job queue is an overload refusal like a full compute pool's: counted under pool="jobs"
        if (e instanceof QueueFullError) ctx.metrics.rejected.inc({ pool: 'jobs' });
        throw e;
      });
      return reply.code(202).header('location', `${req.url.replace(/\/+$/, '')}/${view.id}`).send(view);
    },
  );

  app.get('/v1/jobs', { schema: { operationId: 'listJobs', tags: ['jobs'], summary: 'List jobs (newest first)', querystring: JobListQuery, response: { 200: JobListSchema, ...errorResponses(400) } } }, async (req) => {
    const q = req.query as { state?: JobState; kind?: JobKind };
    return { jobs: board.list(q).reverse() };
  });

  app.get('/v1/jobs/:id', { schema: { operationId: 'getJob', tags: ['jobs'], summary: 'A job', params: JobIdParams, response: { 200: JobViewSchema, ...errorResponses(400, 404) } } }, async (req: IdRequest, reply) => {
    const view = board.get(req.params.id);
    if (!view) throw new JobNotFoundError(req.params.id);
    return view;
  });

  app.delete(
    '/v1/jobs/:id',
    {
      schema: {
        operationId: 'cancelJob',
        tags: ['jobs'],
        summary: 'Cancel a job (it stops at its next step or batch)',
        description: '202 with the job as it stands; 409 JobFinished (with its state) for a job that has already ended',
        params: JobIdParams,
        response: { 202: described(JobViewSchema, 'the job; it stops at its next step or batch'), ...errorResponses(400, 404, 409) },
      },
    },
    async (req: IdRequest, reply) => {
      // a job that has ended has nothing to cancel: 409 with its state, not a 202 that suggests a cancel is under way
      const before = board.get(req.params.id);
      if (before && isFinal(before.state)) throw new JobFinishedError(before.id, before.state);
      const view = await ctx.runner.cancel(req.params.id);
      if (!view) throw new JobNotFoundError(req.params.id);
      return reply.code(202).send(view);
    },
  );

  app.get(
    '/v1/jobs/:id/events',
    {
      schema: {
        operationId: 'jobEvents',
        tags: ['jobs'],
        summary: 'Follow a job as Server-Sent Events: state, stage, progress (rate, ETA), then result or error',
        params: JobIdParams,
        response: { 200: binary('the event stream (id, event, data: JSON), ending after result or error', ['text/event-stream']), ...errorResponses(400, 404) },
      },
    },
    async (req: IdRequest, reply) => {
      const id = req.params.id;
      if (!board.has(id)) throw new JobNotFoundError(id);
      const last = Number(req.headers['last-event-id']);
      let sub: ReturnType<typeof board.subscribe> = null;
      const stream = ctx.streams.start(reply, () => sub?.unsubscribe());
      const send = (e: LoggedEvent) => {
        stream.send(e.seq, e.event.event, e.event.data);
        if (e.event.event === 'result' || e.event.event === 'error') stream.end();
      };
      // Subscribing and replaying happen in one turn of the event loop, so no event falls between them.
      const after = Number.isInteger(last) && last > 0 ? last : 0;
      // (live events are all newer than the replay; an id beyond the end must not hold them back, the final one least)
      sub = board.subscribe(id, send, 0)!;
      const replay = sub.replay.filter((e) => e.seq > after);
      // A client whose Last-Event-ID is at or beyond the end of an ended job (it has the final event, or an id from
      // elsewhere) gets the final event again, so the stream ends on it, never empty (an EventSource would reconnect)
      const finalEvent = sub.final ? sub.replay[sub.replay.length - 1] : undefined;
      if (finalEvent && !replay.includes(finalEvent)) replay.push(finalEvent);
      for (const e of replay) send(e);
      if (sub.final && !stream.closed) stream.end();
    },
  );

  app.get('/v1/jobs/:id/files', { schema: { operationId: 'listRunFiles', tags: ['jobs'], summary: "The files of a job's run folder", params: JobIdParams, response: { 200: RunFileListSchema, ...errorResponses(400, 404) } } }, async (req: IdRequest, reply) => {
    const dir = board.dir(req.params.id);
    if (!dir) throw new JobNotFoundError(req.params.id);
    return { files: await listRunFolder(dir) };
  });

  app.get(
    '/v1/jobs/:id/files/*',
    {
      schema: {
        operationId: 'getRunFile',
        tags: ['jobs'],
        summary: "A file of a job's run folder (report, images, .npy, NIfTI)",
        params: { type: 'object', properties: { id: JobIdParams.properties.id, '*': FILE_PATH }, required: ['id'] },
        response: { 200: binary('the file, with its media type (by extension; application/octet-stream for others)', RUN_FILE_MEDIA_TYPES), ...errorResponses(400, 404) },
      },
      // Fastify names a wildcard '*': the document names it `path`, as a client generator needs a name
      config: { swaggerTransform: namedWildcard },
    },
    async (req: FastifyRequest<{ Params: { id: string; '*': string } }>, reply) => {
      const dir = board.dir(req.params.id);
      if (!dir) throw new JobNotFoundError(req.params.id);
      return sendRunFile(reply, dir, req.params['*'], ctx.root);
    },
  );
}
