import { checkControl } from '../callbackOptions.js';
import { CancelledError, InvalidArgumentError, ShapeError } from '../errors.js';
import { checkInteger } from '../ridge/options.js';
import { readMatrixNpy } from '../io/npy.js';
import { read73kIdsNpy, rowsAs73kIdsProblem } from '../nsd/ids.js';
import type { RgbImage } from '../io/resize.js';
import type { Matrix } from '../matrix.js';
import { Diffusion, type SdComponent } from '../sd/Diffusion.js';
import { unetFeatures, type OnnxModel } from '../sd/OnnxModel.js';
import { nativeSync } from '../native/call.js';
import { INT32_MAX } from '../sd/native.js';
import { readScheduleConfig } from '../sd/schedulerConfig.js';
import { philoxNormal } from '../sd/philox.js';
import type { Tensor } from '../sd/tensor.js';
import { featureSetNames, type FeatureSetSpec } from '../config/encode.js';
import { exposedLayerTypes, layerBatchProblem, missingUnetLayers, withExposedUnet, type LoadedUnet } from './unetLayers.js';

export type { FeatureSetSpec } from '../config/encode.js';
export { featureSetNames } from '../config/encode.js';

export interface FeatureTable {
  name: string;
  /** 73k id of each row. */
  ids: Int32Array;
  x: Matrix;
  /** What it is, for the report. */
  description: string;
  /** For U-Net features: layer and timestep. */
  layer?: string;
  timestep?: number;
}

/** Where images and captions come from (the NSD adapter in encode(), anything in tests). */
export interface ImageSource {
  image(id: number): RgbImage;
  captions(id: number): string[];
}

export interface FeatureOptions {
  /** SD 1.x ONNX folder, needed by every kind but 'file'. */
  model?: string;
  /** Images per model call. Default 8. */
  batch?: number;
  onProgress?: (p: { set: string; done: number; total: number }) => void;
  signal?: AbortSignal;
}

/** Reads a 'file' feature set: rows keyed by 73k id. */
export async function readFeatureFile(spec: Extract<FeatureSetSpec, { kind: 'file' }>): Promise<FeatureTable> {
  const x = await readMatrixNpy(spec.path, `feature set '${spec.name}'`);
  const ids = spec.ids ? await read73kIdsNpy(spec.ids, `feature set '${spec.name}' ids`) : Int32Array.from({ length: x.rows }, (_, i) => i + 1);
  if (ids.length !== x.rows) throw new ShapeError(`feature set '${spec.name}': ${spec.ids} has ${ids.length} ids for the ${x.rows} rows of ${spec.path}`);
  const beyond = spec.ids ? null : rowsAs73kIdsProblem(x.rows, spec.path, `feature set '${spec.name}'`);
  if (beyond) throw new ShapeError(beyond);
  return { name: spec.name, ids, x, description: describeFeatures(spec) };
}

/** z and c of every image, the inputs of every model feature set. */
export interface Embeddings {
  /** 73k id of each row. */
  ids: Int32Array;
  /** VAE posterior mean × scaling factor, flattened [4, h, w] per row. */
  z: Matrix;
  /** Text-encoder hidden states averaged over the image's captions, flattened [77, D] per row. */
  c: Matrix;
  /** Per-row shapes: z [4, h, w], c [77, D]. */
  zShape: number[];
  cShape: number[];
}

export interface BatchOptions {
  /** Images per model call. Default 8. */
  batch?: number;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

function checkAbort(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError('feature extraction aborted', { cause: signal.reason });
}

/** Rows [r0, r1) of a matrix as a batch tensor of per-row shape `shape` (a copy of that batch only). */
function rowsTensor(m: Matrix, r0: number, r1: number, shape: number[]): Tensor {
  return { data: m.data.slice(r0 * m.cols, r1 * m.cols), shape: [r1 - r0, ...shape] };
}

/** z and c for every id, `batch` images per VAE / text-encoder call. */
export async function embedImages(diffusion: Diffusion, ids: Int32Array, source: ImageSource, opts: BatchOptions = {}): Promise<Embeddings> {
  const batch = opts.batch ?? 8;
  let z: Float32Array | null = null;
  let c: Float32Array | null = null;
  let zShape: number[] = [];
  let cShape: number[] = [];
  for (let b0 = 0; b0 < ids.length; b0 += batch) {
    checkAbort(opts.signal);
    const bids = Array.from(ids.subarray(b0, Math.min(ids.length, b0 + batch)));
    const imgs = bids.map((id) => source.image(id));
    const { width, height } = imgs[0];
    if (imgs.some((im) => im.width !== width || im.height !== height)) throw new ShapeError('embedImages: images of one batch differ in size');
    const data = new Uint8Array(imgs.length * width * height * 3);
    imgs.forEach((im, i) => data.set(im.data, i * width * height * 3));
    const zb = await diffusion.encodeImages({ data, count: imgs.length, width, height }, { mode: 'mean', signal: opts.signal });
    const cb = await captionEmbedding(diffusion, bids, source, opts.signal);
    zShape = zb.shape.slice(1);
    cShape = cb.shape.slice(1);
    const zPer = zb.data.length / bids.length, cPer = cb.data.length / bids.length;
    z ??= new Float32Array(ids.length * zPer);
    c ??= new Float32Array(ids.length * cPer);
    z.set(zb.data, b0 * zPer);
    c.set(cb.data, b0 * cPer);
    opts.onProgress?.(b0 + bids.length, ids.length);
  }
  const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  return {
    ids,
    z: { data: z ?? new Float32Array(0), rows: ids.length, cols: size(zShape) },
    c: { data: c ?? new Float32Array(0), rows: ids.length, cols: size(cShape) },
    zShape,
    cShape,
  };
}

/** z_c: img2img from z conditioned on c at the spec's strength, noise keyed by (seed, 73k id). */
export async function zcFeatures(diffusion: Diffusion, spec: Extract<FeatureSetSpec, { kind: 'zc' }>, e: Embeddings, opts: BatchOptions = {}): Promise<FeatureTable> {
  const batch = opts.batch ?? 8;
  const x = new Float32Array(e.z.data.length);
  for (let b0 = 0; b0 < e.ids.length; b0 += batch) {
    checkAbort(opts.signal);
    const b1 = Math.min(e.ids.length, b0 + batch);
    const z = rowsTensor(e.z, b0, b1, e.zShape);
    const c = rowsTensor(e.c, b0, b1, e.cShape);
    const noise = keyedNoise(spec.seed, Array.from(e.ids.subarray(b0, b1)), z.shape);
    const r = await diffusion.img2img({ z, c, strength: spec.strength, steps: spec.steps, guidance: spec.guidance, scheduler: 'ddim', noise, signal: opts.signal });
    x.set(r.latents.data, b0 * e.z.cols);
    opts.onProgress?.(b1, e.ids.length);
  }
  return { name: spec.name, ids: e.ids, x: { data: x, rows: e.ids.length, cols: e.z.cols }, description: describeFeatures(spec) };
}

/**
 * U-Net activations: the U-Net run once per timestep on z noised to it (√ᾱ·z + √(1−ᾱ)·ε, ε keyed by
 * (seed, 73k id)) with c, on the engine's ONNX Runtime (OnnxModel), with the U-Net's graph given the layers as
 * outputs in memory (withExposedUnet: nothing written to disk, the weights read from their files; the model is
 * disposed when done, on error and abort too). One table per layer × timestep,
 * in that order. A layer that is not float32 or float16 (read as float32), or whose first dimension is not the batch, is refused.
 */
export async function unetLayerFeatures(
  modelDir: string,
  spec: Extract<FeatureSetSpec, { kind: 'unet' }>,
  e: Embeddings,
  opts: BatchOptions = {},
): Promise<FeatureTable[]> {
  const schedule = await readScheduleConfig(modelDir);
  const alphas = nativeSync((b) => b.sdAlphasCumprod(schedule));
  const tables = await withExposedUnet(modelDir, spec.layers, async (model, exposed) => {
    const bad = exposedLayerTypes(model, exposed, spec.layers).flatMap((t) => (t.problem ? [t.problem] : []));
    if (bad.length) throw new InvalidArgumentError(`feature set '${spec.name}': ${bad.join('; ')}`);
    return await unetTables(model, exposed, spec, alphas, e, opts);
  });
  return spec.layers.flatMap((layer) =>
    spec.timesteps.map((timestep) => {
      const name = `${spec.name}:${layer}@t${timestep}`;
      return { name, ids: e.ids, x: tables.get(name)!, description: describeFeatures(spec, layer, timestep), layer, timestep };
    }),
  );
}

/** The tables of unetLayerFeatures by name, from the loaded U-Net with the layers exposed. */
async function unetTables(
  model: OnnxModel,
  exposed: LoadedUnet,
  spec: Extract<FeatureSetSpec, { kind: 'unet' }>,
  alphas: ArrayLike<number>,
  e: Embeddings,
  opts: BatchOptions,
): Promise<Map<string, Matrix>> {
  const batch = opts.batch ?? 8;
  const n = e.ids.length;
  const tables = new Map<string, Matrix>();
  for (let b0 = 0; b0 < n; b0 += batch) {
    checkAbort(opts.signal);
    const b1 = Math.min(n, b0 + batch);
    const z = rowsTensor(e.z, b0, b1, e.zShape);
    const cond = rowsTensor(e.c, b0, b1, e.cShape);
    for (const t of spec.timesteps) {
      const noise = keyedNoise(spec.seed, Array.from(e.ids.subarray(b0, b1)), z.shape);
      const a = alphas[t];
      const xt = z.data.map((v, q) => Math.sqrt(a) * v + Math.sqrt(1 - a) * noise.data[q]);
      const outs = await unetFeatures(model, { sample: { data: xt, shape: z.shape }, timestep: t, cond }, spec.layers, { signal: opts.signal });
      for (const l of spec.layers) {
        const name = `${spec.name}:${l}@t${t}`;
        const out = outs[l];
        if (!out) throw new InvalidArgumentError(`${name}: the U-Net returned no such output`);
        // a tensor without a row per image would be cut into rows of garbage
        const unbatched = layerBatchProblem(l, exposed.ops.get(l) ?? '', out.shape, b1 - b0);
        if (unbatched) throw new ShapeError(`feature set '${spec.name}': ${unbatched}`);
        const pooled = pool(out, spec.pool);
        const per = pooled.length / (b1 - b0);
        let m = tables.get(name);
        if (!m) tables.set(name, (m = { data: new Float32Array(n * per), rows: n, cols: per }));
        if (per !== m.cols) throw new ShapeError(`${name}: ${per} values per image, ${m.cols} in an earlier batch`);
        m.data.set(pooled, b0 * per);
      }
    }
    opts.onProgress?.(b1, n);
  }
  return tables;
}

/**
 * Computes every feature set for `ids`: 'file' sets are read; z and c come from one pass of the VAE and the
 * text encoder (images and captions read once per batch); z_c and U-Net sets are computed from them.
 * Tables come in spec order, 'file' sets first.
 */
export async function computeFeatures(specs: FeatureSetSpec[], ids: Int32Array, source: ImageSource, opts: FeatureOptions = {}): Promise<FeatureTable[]> {
  checkControl(opts, 'computeFeatures', ['onProgress']);
  // a batch of 0 or -1 made empty batches, 2.5 fractional offsets: both failed deep inside with no option named
  if (opts?.batch !== undefined) checkInteger(opts.batch, 'batch', 'computeFeatures', 1, INT32_MAX);
  const out: FeatureTable[] = [];
  for (const s of specs) if (s.kind === 'file') out.push(await readFeatureFile(s));
  const model = specs.filter((s) => s.kind !== 'file');
  if (model.length === 0) return out;
  if (!opts.model) throw new InvalidArgumentError(`feature sets ${model.map((s) => `'${s.name}'`).join(', ')} need a model folder (model: an SD 1.x ONNX folder)`);
  const dir = opts.model;
  const batchOpts = (set: string): BatchOptions => ({ batch: opts.batch, signal: opts.signal, onProgress: (done, total) => opts.onProgress?.({ set, done, total }) });
  // U-Net layer names are checked before any heavy work (without loading the U-Net)
  for (const s of model) {
    const missing = s.kind === 'unet' ? await missingUnetLayers(dir, s.layers) : null;
    if (missing) throw new InvalidArgumentError(`feature set '${s.name}': ${missing}`);
  }
  const components: SdComponent[] = ['text_encoder', 'vae_encoder'];
  if (model.some((s) => s.kind === 'zc')) components.push('unet');
  const diffusion = await Diffusion.load(dir, { components });
  try {
    const e = await embedImages(diffusion, ids, source, batchOpts('z,c'));
    for (const s of model) {
      if (s.kind === 'z' || s.kind === 'c') out.push({ name: s.name, ids: e.ids, x: s.kind === 'z' ? e.z : e.c, description: describeFeatures(s) });
      else if (s.kind === 'zc') out.push(await zcFeatures(diffusion, s, e, batchOpts(s.name)));
      else if (s.kind === 'unet') out.push(...(await unetLayerFeatures(dir, s, e, batchOpts(s.name))));
    }
    return out;
  } finally {
    diffusion.dispose();
  }
}

/** What a feature table is, for the report. */
export function describeFeatures(s: FeatureSetSpec, layer?: string, t?: number): string {
  switch (s.kind) {
    case 'file':
      return `features from ${s.path}`;
    case 'z':
      return 'z: VAE latent of the image (posterior mean × scaling factor)';
    case 'c':
      return 'c: text-encoder hidden states, mean over the captions';
    case 'zc':
      return `z_c: latent after img2img at strength ${s.strength} (${s.steps} steps, guidance ${s.guidance})`;
    case 'unet':
      return `U-Net ${layer} at t=${t}, pooled to ${s.pool}×${s.pool}`;
  }
}

/**
 * c per image: the text encoder on every caption, averaged over each image's captions (also the batch's shared c).
 * `signal` interrupts the text encoder's run.
 */
export async function captionEmbedding(diffusion: Diffusion, ids: number[], source: ImageSource, signal?: AbortSignal): Promise<Tensor> {
  const caps = ids.map((id) => {
    const list = source.captions(id);
    if (list.length === 0) throw new InvalidArgumentError(`image ${id} has no caption, so its c cannot be computed`);
    return list;
  });
  const all = await diffusion.encodeText(caps.flat(), { signal });
  const [, seq, dim] = all.shape;
  const per = seq * dim;
  const out = new Float32Array(ids.length * per);
  let row = 0;
  caps.forEach((list, i) => {
    const o = out.subarray(i * per, (i + 1) * per);
    for (let k = 0; k < list.length; k++, row++) {
      const src = all.data.subarray(row * per, (row + 1) * per);
      for (let q = 0; q < per; q++) o[q] += src[q] / list.length;
    }
  });
  return { data: out, shape: [ids.length, seq, dim] };
}

/** Noise keyed by (seed, 73k id), so features do not depend on batching or order. */
function keyedNoise(seed: number, ids: number[], shape: number[]): Tensor {
  const per = shape.slice(1).reduce((a, b) => a * b, 1);
  const data = new Float32Array(ids.length * per);
  ids.forEach((id, i) => data.set(philoxNormal(seed, id, 0, 0, per), i * per));
  return { data, shape };
}

/** [B, C, H, W] → [B, C·P·P] by adaptive average pooling; other ranks (first dimension B, checked) are flattened per image. */
/** Columns per image of a layer whose output has `shape` ([B, …]) once pooled as pool() does: [B, C, H, W] to C × P × P. */
export function pooledWidth(shape: readonly number[], p: number): number {
  if (shape.length !== 4) return shape.slice(1).reduce((a, b) => a * b, 1);
  const [, C, H, W] = shape;
  const P = Math.min(p, H, W);
  return C * P * P;
}

function pool(t: Tensor, p: number): Float32Array {
  const data = t.data;
  const dims = t.shape;
  if (dims.length !== 4) return data;
  const [B, C, H, W] = dims;
  const P = Math.min(p, H, W);
  const out = new Float32Array(B * C * P * P);
  for (let b = 0; b < B; b++) {
    for (let ch = 0; ch < C; ch++) {
      const src = (b * C + ch) * H * W;
      for (let py = 0; py < P; py++) {
        const y0 = Math.floor((py * H) / P), y1 = Math.floor(((py + 1) * H) / P);
        for (let px = 0; px < P; px++) {
          const x0 = Math.floor((px * W) / P), x1 = Math.floor(((px + 1) * W) / P);
          let s = 0;
          for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) s += data[src + y * W + x];
          out[((b * C + ch) * P + py) * P + px] = s / ((y1 - y0) * (x1 - x0));
        }
      }
    }
  }
  return out;
}
