/**
 * /v1/models (load a ridge model or an SD model folder once, list, unload), /v1/ridge/:model/predict and
 * /v1/sd/:model/img2img. Compute runs off the event loop (predict threads; the engine's sampler thread) behind
 * bounded queues: when a queue is full the route answers 503 with Retry-After at once.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import type { Img2ImgBody, LoadModelBody, PredictBody } from '../../config/service.js';
import { Img2ImgBodySchema, LoadModelBodySchema, PredictBodySchema } from '../../config/service.js';
import { FormatError, InvalidArgumentError, LimitError, NonFiniteError, ShapeError } from '../../errors.js';
import { firstNonFiniteSliced } from '../../io/finite.js';
import type { Matrix } from '../../matrix.js';
import type { Diffusion } from '../../sd/Diffusion.js';
import type { Tensor } from '../../sd/tensor.js';
import { img2imgFields } from '../../sd/img2imgNames.js';
import { planLabels, resolvePlanOptions, type PlanOptions } from '../../sd/samplingOptions.js';
import { CHOOSE_SCHEDULER, SCHEDULERS } from '../../sd/schedulerConfig.js';
import { preferredType } from '../accept.js';
import type { ServiceContext } from '../context.js';
import { clientSignal } from '../clientGone.js';
import { fieldOfFile } from '../httpErrors.js';
import { LargeBody, useDataBodies } from '../models/dataBodies.js';
import { ModelNotFoundError } from '../notFound.js';
import { providerRefusal } from '../models/providerRefusal.js';
import { engineWhere, ModelOutputError, type ModelOutput } from '../models/ModelOutputError.js';
import { img2imgInput, matrixFromJson, matrixFromNpy, type Img2ImgInput } from '../models/requestBodies.js';
import { imagesNpy, latentsNpy, pngStrip, predictionsJson, type Answer } from '../models/responseBodies.js';
import { binary, described, errorResponses, ModelListSchema, ModelViewSchema, NO_CONTENT, PredictionsSchema } from '../responseSchemas.js';
import { ModelNameParams, ModelParams } from '../schemas.js';
import { bodyValidator, RequestValidationError } from '../validation.js';
import { QueueFullError, type WorkQueue } from '../workQueue.js';

export const NPY_TYPE = 'application/x-npy';

/** Whether the request's Accept prefers .npy to JSON (by q-values; JSON when it says nothing). */
const wantsNpy = (req: FastifyRequest) => preferredType(req.headers.accept, ['application/json', NPY_TYPE]) === NPY_TYPE;

/** The img2img body's names for the plan options and the arrays, so a refusal names the field the client sent. */
const BODY_FIELDS = planLabels('body.');
const BODY_ARRAYS = img2imgFields('body.');

/**
 * The request's settings checked as the model's plan checks them, before sampling: more steps than the schedule
 * has (1000 under leading spacing) is a 400 naming `body.steps` and the most it takes, a strength that runs no step
 * one naming `body.strength` and `body.steps` (the engine named no field).
 */
function checkPlan(sd: Diffusion, plan: PlanOptions): void {
  resolvePlanOptions({ schedule: sd.schedule, scheduler: plan.scheduler ?? sd.defaultScheduler() }, plan, BODY_FIELDS);
}

/**
 * A seeds array has one seed per image of body.z: the one img2img setting the schema cannot check alone (the values'
 * range is the schema's). Checked before the request is queued, so that a request that could never run is not
 * answered with a full queue's 503, and named as the body's field (the sampler's own words named 'img2img seeds').
 */
function checkSeeds(seeds: number | number[], images: number): void {
  if (Array.isArray(seeds) && seeds.length !== images) {
    throw new InvalidArgumentError(`body.seeds: expected one seed per image of body.z (${images}), got an array of ${seeds.length}`);
  }
}

/**
 * The latents' size against the service's limit, before anything else is done with them: the work (the U-Net's
 * activations, the decoded images, the PNG) grows with images × height × width, which the body's limit does not bound.
 */
function checkLatentPixels(z: Tensor, limit: number): void {
  const [images, , height, width] = z.shape;
  const pixels = images * height * width;
  if (pixels <= limit) return;
  const n = (v: number) => v.toLocaleString('en');
  throw new LimitError(
    `body.z: ${images} image${images === 1 ? '' : 's'} of ${height} × ${width} latents are ${n(pixels)} latent pixels (images × height × width), over this service's limit of ${n(limit)} (latentPixelLimit): send fewer or smaller images per request`,
    { field: 'body.z' },
  );
}

export async function modelRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  const runOn = async <T>(queue: WorkQueue, task: () => Promise<T>, signal?: AbortSignal): Promise<T> => {
    try {
      return await queue.run(task, signal);
    } catch (e) {
      if (e instanceof QueueFullError) ctx.metrics.rejected.inc({ pool: queue.name });
      throw e;
    }
  };

  /** The inputs were checked finite: a NaN/Inf from the model is the model's fault (500, counted), not the client's. */
  const modelFault = (model: string, output: ModelOutput, where: string, cause?: unknown): ModelOutputError => {
    ctx.metrics.modelOutputErrors.inc({ model, output });
    return new ModelOutputError(model, output, where, cause);
  };
  const nonFiniteIsModels = async <T>(model: string, output: ModelOutput, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (e) {
      if (!(e instanceof NonFiniteError)) throw e;
      // the one model-made input of a sampler run: the text encoder's "" embedding, when the client sent no uncond
      const from = output === 'unet' && /^img2img: uncond /.test(e.message) ? 'text_encoder' : output;
      throw modelFault(model, from, engineWhere(e), e);
    }
  };

  app.post('/v1/models', { bodyLimit: ctx.bodyLimit, schema: { operationId: 'loadModel', tags: ['models'], summary: 'Load a ridge model or an SD model folder', body: LoadModelBodySchema, response: { 201: described(ModelViewSchema, 'the model, loaded'), ...errorResponses(400, 409, 413, 415) } } }, async (req, reply) => {
    const b = req.body as LoadModelBody;
    const ticket = ctx.models.ticket(b.name);
    const abs = await ctx.root.resolve(b.path, 'body.path').finally(() => ctx.models.arrived(b.name, ticket));
    const view = await ctx.models.load(b, abs, ctx.root.relative(abs), ticket).catch((e: unknown) => {
      throw fieldOfFile(withSchedulerField(providerRefusal(e, b.kind === 'sd' ? b.provider : undefined, req.log)), 'body.path');
    });
    return reply.code(201).send(view);
  });

  app.get('/v1/models', { schema: { operationId: 'listModels', tags: ['models'], summary: 'Loaded models', response: { 200: ModelListSchema, ...errorResponses() } } }, async () => ({ models: ctx.models.list() }));

  app.get('/v1/models/:name', { schema: { operationId: 'getModel', tags: ['models'], summary: 'A loaded model', params: ModelNameParams, response: { 200: ModelViewSchema, ...errorResponses(400, 404) } } }, async (req: FastifyRequest<{ Params: { name: string } }>, reply) => {
    const view = ctx.models.get(req.params.name);
    if (!view) throw new ModelNotFoundError(req.params.name);
    return view;
  });

  app.delete('/v1/models/:name', { schema: { operationId: 'unloadModel', tags: ['models'], summary: 'Unload a model (requests in flight finish first)', params: ModelNameParams, response: { ...NO_CONTENT, ...errorResponses(400, 404) } } }, async (req: FastifyRequest<{ Params: { name: string } }>, reply) => {
    if (!ctx.models.unload(req.params.name)) throw new ModelNotFoundError(req.params.name);
    return reply.code(204).send();
  });

  // The data routes read their bodies in their own scope: large ones are decoded by a predict thread.
  await app.register(async (data) => dataRoutes(data, ctx, runOn, modelFault, nonFiniteIsModels));
}

/** A folder whose scheduler class needs a choice: the client makes it with the body's field, not the command line's flag. */
function withSchedulerField(e: unknown): unknown {
  if (e instanceof FormatError) e.message = e.message.replace(CHOOSE_SCHEDULER, `choose one with the body's "scheduler": ${SCHEDULERS.join(', ')}`);
  return e;
}

const isImg2Img = (req: FastifyRequest) => (req.routeOptions.url ?? '').endsWith('/img2img');

async function dataRoutes(
  app: FastifyInstance,
  ctx: ServiceContext,
  runOn: <T>(queue: WorkQueue, task: () => Promise<T>, signal?: AbortSignal) => Promise<T>,
  modelFault: (model: string, output: ModelOutput, where: string, cause?: unknown) => ModelOutputError,
  nonFiniteIsModels: <T>(model: string, output: ModelOutput, run: () => Promise<T>) => Promise<T>,
): Promise<void> {
  useDataBodies(
    app,
    ctx.dataBodyLimit,
    [NPY_TYPE, 'application/octet-stream'],
    (req) => (isImg2Img(req) ? 'img2img' : 'predict-json'),
    (req) => !isImg2Img(req),
  );
  // a large body is validated by the thread that decodes it, with the same validator
  app.setValidatorCompiler(bodyValidator((body) => body instanceof LargeBody));

  /** X, and the field that held it (for an error about its shape): body.x of a JSON body, or a .npy body itself. */
  // (a large body waits for a predict thread to decode it: `signal`, its client's, takes it out of that queue)
  /** A large body decoded by a predict thread; a full queue of them is counted as the decode pool's refusal. */
  const decoded = (body: LargeBody, signal: AbortSignal) =>
    ctx.predictPool.decode(body, signal).catch((e: unknown) => {
      if (e instanceof QueueFullError) ctx.metrics.rejected.inc({ pool: 'decode' });
      throw e;
    });
  const matrixOf = async (body: unknown, signal: AbortSignal): Promise<{ x: Matrix; field: string }> => {
    // (a body without a content-type is not validated: the schema is per type)
    if (body === undefined) throw new RequestValidationError('body', [`body: required, expected X as JSON ({"x": [[...], ...]}) or as .npy (content-type ${NPY_TYPE})`]);
    const field = (npy: boolean) => (npy ? 'body (X as .npy)' : 'body.x');
    if (body instanceof LargeBody) {
      const d = await decoded(body, signal);
      if (d.kind !== 'matrix') throw new Error(`a predict body decoded as ${d.kind}`);
      return { x: d.x, field: field(body.kind === 'predict-npy') };
    }
    return Buffer.isBuffer(body) ? { x: matrixFromNpy(body), field: field(true) } : { x: matrixFromJson((body as PredictBody).x), field: field(false) };
  };
  const img2imgOf = async (body: unknown, signal: AbortSignal): Promise<Img2ImgInput> => {
    if (!(body instanceof LargeBody)) return img2imgInput(body as Img2ImgBody);
    const d = await decoded(body, signal);
    if (d.kind !== 'img2img') throw new Error(`an img2img body decoded as ${d.kind}`);
    return d.input;
  };
  const answer = (reply: FastifyReply, type: string, a: Answer) => {
    if (a.length !== undefined) void reply.header('content-length', a.length);
    return reply.type(type).send(a.body);
  };

  app.post(
    '/v1/ridge/:model/predict',
    {
      bodyLimit: ctx.dataBodyLimit,
      schema: {
        operationId: 'predict',
        tags: ['models'],
        summary: 'Ridge predictions: ((X − x_mean) / x_scale) · coef + intercept. JSON in and out, or .npy (Accept: application/x-npy)',
        params: ModelParams,
        body: { content: { 'application/json': { schema: PredictBodySchema }, [NPY_TYPE]: { schema: { description: 'X as .npy (float32 or float64, samples × features)' } } } },
        response: {
          200: {
            description: 'predictions, samples × targets: JSON, or float32 .npy with Accept: application/x-npy',
            content: { 'application/json': { schema: PredictionsSchema }, [NPY_TYPE]: { schema: { type: 'string', format: 'binary' } } },
          },
          ...errorResponses(400, 404, 413, 415),
        },
      },
    },
    async (req: FastifyRequest<{ Params: { model: string } }>, reply: FastifyReply) => {
      const t0 = performance.now();
      const name = req.params.model;
      // a client that goes away while its request waits for a predict thread takes it out of the queue
      const client = clientSignal(req, reply);
      try {
        const { x, field } = await matrixOf(req.body, client.signal);
        const model = ctx.models.ridge(name);
        if (x.cols !== model.nFeatures) throw new ShapeError(`${field}: X has ${x.cols} features per sample but model '${name}' takes ${model.nFeatures}`);
        // (a few bytes a sample in, the model's targets × 4 out: the answer is bounded here, not by the body's limit)
        const predictionBytes = x.rows * model.nTargets * 4;
        if (predictionBytes > ctx.predictionLimit) {
          const most = Math.max(1, Math.floor(ctx.predictionLimit / (model.nTargets * 4)));
          throw new LimitError(
            `${field}: ${x.rows} samples × ${model.nTargets} targets of model '${name}' are ${predictionBytes} bytes of predictions, over this service's limit of ${ctx.predictionLimit} (predictionLimit): send at most ${most} samples per request`,
          );
        }
        const y = await ctx.models.predict(name, x, client.signal).catch((e: unknown) => {
          if (e instanceof QueueFullError) ctx.metrics.rejected.inc({ pool: 'predict' });
          throw e;
        });
        ctx.metrics.predictSeconds.observe({ model: name }, (performance.now() - t0) / 1000);
        const bad = await firstNonFiniteSliced(y.data);
        if (bad >= 0) throw modelFault(name, 'predictions', `sample ${Math.floor(bad / y.cols)}, target ${bad % y.cols}`);
        if (wantsNpy(req)) return answer(reply, NPY_TYPE, latentsNpy({ data: y.data, shape: [y.rows, y.cols] }));
        return answer(reply, 'application/json; charset=utf-8', predictionsJson(y));
      } finally {
        client.done();
      }
    },
  );

  app.post(
    '/v1/sd/:model/img2img',
        {
      bodyLimit: ctx.dataBodyLimit,
      schema: {
        operationId: 'img2img',
        tags: ['models'],
        summary: 'img2img from latents and conditioning (.npy, base64); PNG or .npy back',
        params: ModelParams,
        body: Img2ImgBodySchema,
        response: {
          200: binary('output "png": the B images side by side; "npy": uint8 [B,H,W,3]; "latents": float32 [B,4,h,w] (header X-Brainlatent-Images: B)', ['image/png', NPY_TYPE]),
          ...errorResponses(400, 404, 413, 415),
        },
      },
    },
    async (req: FastifyRequest<{ Params: { model: string } }>, reply: FastifyReply) => {
      const t0 = performance.now();
      const name = req.params.model;
      // a client that goes away gives up its place in the queue, or cancels its sampler run at the next step
      const client = clientSignal(req, reply);
      try {
        const { settings: b, z, c, uncond } = await img2imgOf(req.body, client.signal);
        checkLatentPixels(z, ctx.latentPixelLimit);
        const plan = { strength: b.strength, steps: b.steps, scheduler: b.scheduler, karras: b.karras, eta: b.eta, img2imgRule: b.rule };
        // the settings against the model's plan, the arrays' shapes against each other and its U-Net: a 400 naming
        // the body's fields, before the request is queued (and again when it runs: the name may be another model's then)
        const checkRequest = (sd: Diffusion) => {
          checkPlan(sd, plan);
          sd.checkImg2ImgShapes({ z, c, uncond, guidance: b.guidance }, BODY_ARRAYS);
          checkSeeds(b.seeds, z.shape[0]);
        };
        await ctx.models.withDiffusion(name, async (sd) => checkRequest(sd));
        const out = await runOn(ctx.img2imgQueue, () =>
          ctx.models.withDiffusion(name, async (sd) => {
            checkRequest(sd);
            const r = await nonFiniteIsModels(name, 'unet', () => sd.img2img({
              z,
              c,
              uncond,
              ...plan,
              guidance: b.guidance,
              seeds: b.seeds,
              signal: client.signal,
            }));
            // the jobs' unit: evaluations of one latent (a sampler call runs a whole batch), over U-Net time
            ctx.metrics.unet('img2img', r.stats.unetEvaluations, r.stats.unetSeconds);
            if (b.output === 'latents') return { type: NPY_TYPE, answer: latentsNpy(r.latents) };
            const images = await nonFiniteIsModels(name, 'vae_decoder', () => sd.decode(r.latents, { signal: client.signal }));
            return b.output === 'npy' ? { type: NPY_TYPE, answer: imagesNpy(images) } : { type: 'image/png', answer: { body: pngStrip(images) } };
          }),
          client.signal,
        );
        ctx.metrics.img2imgSeconds.observe({ model: name }, (performance.now() - t0) / 1000);
        return answer(reply.header('x-brainlatent-images', String(z.shape[0])), out.type, out.answer);
      } finally {
        client.done();
      }
    },
  );
}
