import { CancelledError, InvalidArgumentError, ShapeError } from '../errors.js';
import { readIntVectorNpy, readMatrixNpy } from '../io/npy.js';
import type { RgbImage } from '../io/resize.js';
import type { Matrix } from '../matrix.js';
import { Diffusion, type SdComponent } from '../sd/Diffusion.js';
import { OnnxModel, unetFeatures } from '../sd/OnnxModel.js';
import { samplerBinding } from '../sd/native.js';
import { philoxNormal } from '../sd/philox.js';
import type { Tensor } from '../sd/tensor.js';
import { featureSetNames, type FeatureSetSpec } from '../config/encode.js';
import { exposeUnetLayers } from './unetLayers.js';

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
  const ids = spec.ids ? await readIntVectorNpy(spec.ids, `feature set '${spec.name}' ids`) : Int32Array.from({ length: x.rows }, (_, i) => i + 1);
  if (ids.length !== x.rows) throw new ShapeError(`feature set '${spec.name}': ${spec.ids} has ${ids.length} ids for the ${x.rows} rows of ${spec.path}`);
  return { name: spec.name, ids, x, description: `features from ${spec.path}` };
}

/**
 * Computes model features for `ids`. One Diffusion instance serves every spec; images and captions are read
 * once per batch. U-Net layers run on the engine's ONNX Runtime (OnnxModel) with a copy of the U-Net whose graph
 * outputs include them.
 */
export async function computeFeatures(specs: FeatureSetSpec[], ids: Int32Array, source: ImageSource, opts: FeatureOptions = {}): Promise<FeatureTable[]> {
  const out: FeatureTable[] = [];
  for (const s of specs) if (s.kind === 'file') out.push(await readFeatureFile(s));
  const model = specs.filter((s) => s.kind !== 'file');
  if (model.length === 0) return out;
  if (!opts.model) throw new InvalidArgumentError(`feature sets ${model.map((s) => `'${s.name}'`).join(', ')} need a model folder (model: an SD 1.x ONNX folder)`);
  const batch = opts.batch ?? 8;
  const components: SdComponent[] = ['text_encoder', 'vae_encoder'];
  if (model.some((s) => s.kind === 'zc')) components.push('unet');
  // Check U-Net layer names before any heavy work.
  // U-Net layers run on the engine's ONNX Runtime: a copy of the U-Net with the layers as extra graph outputs
  const unets = new Map<string, OnnxModel>();
  for (const s of model) {
    if (s.kind !== 'unet') continue;
    const exposed = await exposeUnetLayers(opts.model, s.layers);
    unets.set(s.name, await OnnxModel.load(exposed.path));
  }
  const diffusion = await Diffusion.load(opts.model, { components });
  try {
    const alphas = unets.size ? samplerBinding().sdAlphasCumprod(diffusion.schedule) : new Float64Array(0);
    const rows = new Map<string, Float32Array[]>();
    const push = (name: string, data: Float32Array, count: number) => {
      const per = data.length / count;
      const list = rows.get(name) ?? [];
      for (let i = 0; i < count; i++) list.push(data.slice(i * per, (i + 1) * per));
      rows.set(name, list);
    };
    for (let b0 = 0; b0 < ids.length; b0 += batch) {
      if (opts.signal?.aborted) throw new CancelledError('feature extraction aborted');
      const bids = Array.from(ids.subarray(b0, Math.min(ids.length, b0 + batch)));
      const imgs = bids.map((id) => source.image(id));
      const { width, height } = imgs[0];
      if (imgs.some((im) => im.width !== width || im.height !== height)) throw new ShapeError('computeFeatures: images of one batch differ in size');
      const data = new Uint8Array(imgs.length * width * height * 3);
      imgs.forEach((im, i) => data.set(im.data, i * width * height * 3));
      const z = await diffusion.encodeImages({ data, count: imgs.length, width, height }, { mode: 'mean' });
      const c = await captionEmbedding(diffusion, bids, source);
      for (const s of model) {
        if (s.kind === 'z') push(s.name, z.data, bids.length);
        else if (s.kind === 'c') push(s.name, c.data, bids.length);
        else if (s.kind === 'zc') {
          const seed = s.seed ?? 0;
          const noise = keyedNoise(seed, bids, z.shape);
          const r = await diffusion.img2img({ z, c, strength: s.strength, steps: s.steps ?? 50, guidance: s.guidance ?? 5, scheduler: 'ddim', noise, signal: opts.signal });
          push(s.name, r.latents.data, bids.length);
        } else if (s.kind === 'unet') {
          const u = unets.get(s.name)!;
          for (const t of s.timesteps) {
            const noise = keyedNoise(s.seed ?? 0, bids, z.shape);
            const a = alphas[t];
            const xt = z.data.map((v, q) => Math.sqrt(a) * v + Math.sqrt(1 - a) * noise.data[q]);
            const outs = await unetFeatures(u, { sample: { data: xt, shape: z.shape }, timestep: t, cond: c }, s.layers, { signal: opts.signal });
            for (const l of s.layers) push(`${s.name}:${l}@t${t}`, pool(outs[l], s.pool ?? 1, `${s.name}:${l}`), bids.length);
          }
        }
      }
      opts.onProgress?.({ set: model.map((s) => s.name).join(','), done: Math.min(ids.length, b0 + batch), total: ids.length });
    }
    for (const s of model) {
      for (const name of featureSetNames(s)) {
        const list = rows.get(name)!;
        const cols = list[0].length;
        const x = new Float32Array(list.length * cols);
        list.forEach((r, i) => x.set(r, i * cols));
        const [, layer, t] = /^[^:]+:(.+)@t(\d+)$/.exec(name) ?? [];
        out.push({
          name,
          ids: Int32Array.from(ids),
          x: { data: x, rows: list.length, cols },
          description: describe(s, layer, t ? Number(t) : undefined),
          layer,
          timestep: t ? Number(t) : undefined,
        });
      }
    }
    return out;
  } finally {
    diffusion.dispose();
    for (const u of unets.values()) u.dispose();
  }
}

function describe(s: FeatureSetSpec, layer?: string, t?: number): string {
  switch (s.kind) {
    case 'z': return 'z: VAE latent of the image (posterior mean × scaling factor)';
    case 'c': return 'c: text-encoder hidden states, mean over the captions';
    case 'zc': return `z_c: latent after img2img at strength ${s.strength} (${s.steps ?? 50} steps, guidance ${s.guidance ?? 5})`;
    case 'unet': return `U-Net ${layer} at t=${t}, pooled to ${s.pool ?? 1}×${s.pool ?? 1}`;
    default: return s.name;
  }
}

/** c per image: the text encoder on every caption, averaged over each image's captions. */
async function captionEmbedding(diffusion: Diffusion, ids: number[], source: ImageSource): Promise<Tensor> {
  const caps = ids.map((id) => {
    const list = source.captions(id);
    if (list.length === 0) throw new InvalidArgumentError(`image ${id} has no caption, so its c cannot be computed`);
    return list;
  });
  const all = await diffusion.encodeText(caps.flat());
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

/** [B, C, H, W] → [B, C·P·P] by adaptive average pooling; other ranks are flattened per image. */
function pool(t: Tensor | undefined, p: number, what: string): Float32Array {
  if (!t) throw new InvalidArgumentError(`${what}: the U-Net returned no such output`);
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
