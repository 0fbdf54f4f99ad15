/**
 * /v1/models (load a ridge model or an SD model folder once, list, unload), /v1/ridge/:model/predict and
 * /v1/sd/:model/img2img. Compute runs off the event loop (predict threads; the engine's sampler thread) behind
 * bounded queues: when a queue is full the route answers 503 with Retry-After at once.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import type { Img2ImgBody, LoadModelBody, PredictBody } from '../../config/service.js';
import { Img2ImgBodySchema, LoadModelBodySchema, PredictBodySchema } from '../../config/service.js';
import { FormatError, NonFiniteError, ShapeError } from '../../errors.js';
import { assertFinite, firstNonFinite } from '../../io/finite.js';
import { decodeNpy } from '../../io/npy.js';
import type { Matrix } from '../../matrix.js';
import type { Tensor } from '../../sd/tensor.js';
import type { ServiceContext } from '../context.js';
import { imagesNpy, latentsNpy, pngStrip } from '../models/imageResponse.js';
import { engineWhere, ModelOutputError, type ModelOutput } from '../models/ModelOutputError.js';
import { ModelNameParams, ModelParams } from '../schemas.js';
import { QueueFullError, type WorkQueue } from '../workQueue.js';

export const NPY_TYPE = 'application/x-npy';

/** A 2-D (or 1-D: one sample) float array from a .npy body. */
function matrixFromNpy(body: Buffer): Matrix {
  const a = decodeNpy(body, 'body');
  if (a.shape.length !== 1 && a.shape.length !== 2) throw new ShapeError(`body: expected a 2-D array (samples × features), got shape (${a.shape.join(', ')})`);
  const [rows, cols] = a.shape.length === 1 ? [1, a.shape[0]] : a.shape;
  if (!(a.data instanceof Float32Array) && !(a.data instanceof Float64Array)) throw new FormatError(`body: expected float32 or float64 data, got ${a.dtype}`);
  const data = a.data instanceof Float32Array ? a.data : Float32Array.from(a.data);
  // a float64 value beyond float32's range becomes Inf here: the client's error too
  assertFinite(data, 'body (X as .npy)', { shape: [rows, cols], axes: ['sample', 'feature'] });
  return { data, rows, cols };
}

function matrixFromJson(x: number[][]): Matrix {
  const cols = x[0].length;
  const data = new Float32Array(x.length * cols);
  x.forEach((row, i) => {
    if (row.length !== cols) throw new ShapeError(`body.x[${i}]: has ${row.length} features, body.x[0] has ${cols}`);
    data.set(row, i * cols);
  });
  // JSON has no NaN, but 1e39 is Inf in float32 and 1e999 already in JSON.parse
  assertFinite(data, 'body.x', { shape: [x.length, cols], axes: ['sample', 'feature'] });
  return { data, rows: x.length, cols };
}

function tensorFromBase64(text: string, field: string, rank: number): Tensor {
  const a = decodeNpy(Buffer.from(text, 'base64'), field);
  if (!(a.data instanceof Float32Array)) throw new FormatError(`${field}: expected float32 data, got ${a.dtype}`);
  if (a.shape.length !== rank) throw new ShapeError(`${field}: expected a ${rank}-D array, got shape (${a.shape.join(', ')})`);
  assertFinite(a.data, field, { shape: a.shape });
  return { data: a.data, shape: a.shape };
}

const wantsNpy = (req: FastifyRequest) => (req.headers.accept ?? '').includes(NPY_TYPE);

export async function modelRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  const runOn = async <T>(queue: WorkQueue, task: () => Promise<T>): Promise<T> => {
    try {
      return await queue.run(task);
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

  app.addContentTypeParser([NPY_TYPE, 'application/octet-stream'], { parseAs: 'buffer', bodyLimit: ctx.dataBodyLimit }, (_req, body, done) => done(null, body));

  app.post('/v1/models', { bodyLimit: ctx.bodyLimit, schema: { tags: ['models'], summary: 'Load a ridge model or an SD model folder', body: LoadModelBodySchema } }, async (req, reply) => {
    const b = req.body as LoadModelBody;
    const abs = await ctx.root.resolve(b.path, 'body.path');
    const view = await ctx.models.load({ ...b, provider: 'provider' in b ? b.provider : undefined, threads: 'threads' in b ? b.threads : undefined }, abs, ctx.root.relative(abs));
    return reply.code(201).send(view);
  });

  app.get('/v1/models', { schema: { tags: ['models'], summary: 'Loaded models' } }, async () => ({ models: ctx.models.list() }));

  app.get('/v1/models/:name', { schema: { tags: ['models'], summary: 'A loaded model', params: ModelNameParams } }, async (req: FastifyRequest<{ Params: { name: string } }>, reply) => {
    return ctx.models.get(req.params.name) ?? reply.code(404).send({ error: 'Not Found', message: `no model named '${req.params.name}'`, code: 'ModelNotFound' });
  });

  app.delete('/v1/models/:name', { schema: { tags: ['models'], summary: 'Unload a model (requests in flight finish first)', params: ModelNameParams } }, async (req: FastifyRequest<{ Params: { name: string } }>, reply) => {
    return ctx.models.unload(req.params.name)
      ? reply.code(204).send()
      : reply.code(404).send({ error: 'Not Found', message: `no model named '${req.params.name}'`, code: 'ModelNotFound' });
  });

  app.post(
    '/v1/ridge/:model/predict',
    {
      bodyLimit: ctx.dataBodyLimit,
      schema: {
        tags: ['models'],
        summary: 'Ridge predictions: ((X − x_mean) / x_scale) · coef + intercept. JSON in and out, or .npy (Accept: application/x-npy)',
        params: ModelParams,
        body: { content: { 'application/json': { schema: PredictBodySchema }, [NPY_TYPE]: { schema: { description: 'X as .npy (float32 or float64, samples × features)' } } } },
      },
    },
    async (req: FastifyRequest<{ Params: { model: string } }>, reply: FastifyReply) => {
      const t0 = performance.now();
      const name = req.params.model;
      const model = ctx.models.ridge(name);
      const x = Buffer.isBuffer(req.body) ? matrixFromNpy(req.body) : matrixFromJson((req.body as PredictBody).x);
      if (x.cols !== model.nFeatures) throw new ShapeError(`body: X has ${x.cols} features per sample but model '${name}' takes ${model.nFeatures}`);
      const y = await ctx.models.predict(name, x).catch((e: unknown) => {
        if (e instanceof QueueFullError) ctx.metrics.rejected.inc({ pool: 'predict' });
        throw e;
      });
      ctx.metrics.predictSeconds.observe({ model: name }, (performance.now() - t0) / 1000);
      const bad = firstNonFinite(y.data);
      if (bad >= 0) throw modelFault(name, 'predictions', `sample ${Math.floor(bad / y.cols)}, target ${bad % y.cols}`);
      if (wantsNpy(req)) return reply.type(NPY_TYPE).send(latentsNpy({ data: y.data, shape: [y.rows, y.cols] }));
      const rows: number[][] = [];
      for (let i = 0; i < y.rows; i++) rows.push(Array.from(y.data.subarray(i * y.cols, (i + 1) * y.cols)));
      return { rows: y.rows, cols: y.cols, y: rows };
    },
  );

  app.post(
    '/v1/sd/:model/img2img',
    { bodyLimit: ctx.dataBodyLimit, schema: { tags: ['models'], summary: 'img2img from latents and conditioning (.npy, base64); PNG or .npy back', params: ModelParams, body: Img2ImgBodySchema } },
    async (req: FastifyRequest<{ Params: { model: string } }>, reply: FastifyReply) => {
      const t0 = performance.now();
      const name = req.params.model;
      const b = req.body as Img2ImgBody;
      const z = tensorFromBase64(b.z, 'body.z', 4);
      const c = tensorFromBase64(b.c, 'body.c', 3);
      const uncond = b.uncond ? tensorFromBase64(b.uncond, 'body.uncond', 3) : undefined;
      // a client that goes away cancels its sampler run at the next step
      const abort = new AbortController();
      const onClose = () => {
        if (!reply.raw.writableFinished) abort.abort();
      };
      reply.raw.on('close', onClose);
      try {
        const out = await runOn(ctx.img2imgQueue, () =>
          ctx.models.withDiffusion(name, async (sd) => {
            const r = await nonFiniteIsModels(name, 'unet', () => sd.img2img({
              z,
              c,
              uncond,
              strength: b.strength,
              steps: b.steps,
              guidance: b.guidance,
              scheduler: b.scheduler,
              karras: b.karras,
              eta: b.eta,
              seeds: b.seeds,
              img2imgRule: b.rule,
              signal: abort.signal,
            }));
            ctx.metrics.unet('img2img', r.stats.unetCalls, r.stats.loopSeconds);
            if (b.output === 'latents') return { type: NPY_TYPE, bytes: latentsNpy(r.latents) };
            const images = await nonFiniteIsModels(name, 'vae_decoder', () => sd.decode(r.latents));
            return b.output === 'npy' ? { type: NPY_TYPE, bytes: imagesNpy(images) } : { type: 'image/png', bytes: await pngStrip(images) };
          }),
        );
        ctx.metrics.img2imgSeconds.observe({ model: name }, (performance.now() - t0) / 1000);
        return reply.type(out.type).header('x-brainlatent-images', String(z.shape[0])).send(out.bytes);
      } finally {
        reply.raw.off('close', onClose);
      }
    },
  );
}
