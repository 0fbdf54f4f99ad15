/**
 * The declared inputs and outputs of an ONNX model, read without reading its weights: the protobuf is walked
 * field by field and everything but the graph's `input` (11) and `output` (12) entries is skipped by its length,
 * so a U-Net whose gigabytes of initializers sit inside model.onnx costs a few small reads, not a decode of the
 * whole file (which is what onnx.ModelProto.decode would take). Used to check inputs against a model's fixed
 * sizes before the model is loaded (seconds to a minute for SD 1.x).
 */
import { basename, dirname, join } from 'node:path';

import { FormatError, MissingFileError } from '../errors.js';
import { modelPathExists, openModelFile } from './modelRoots.js';
import { eachField, FileWindow } from './onnxProto.js';
import { onnxProto } from '../lazyPackages.js';

/** A declared tensor: its name and dimensions (a number when fixed, the parameter's name or null when not). */
export interface OnnxTensorDecl {
  name: string;
  dims: (number | string | null)[];
}

export interface OnnxSignature {
  inputs: OnnxTensorDecl[];
  outputs: OnnxTensorDecl[];
}

function decl(bytes: Buffer): OnnxTensorDecl {
  const v = onnxProto().ValueInfoProto.decode(bytes);
  const dims = (v.type?.tensorType?.shape?.dim ?? []).map((d) => {
    const n = d.dimValue === undefined || d.dimValue === null ? NaN : Number(d.dimValue);
    return n > 0 ? n : d.dimParam ? d.dimParam : null;
  });
  return { name: v.name ?? '', dims };
}

/** The graph's declared inputs and outputs of the ONNX file at `path` (`what` names it in errors: 'U-Net'). */
export async function readOnnxSignature(path: string, what = 'model'): Promise<OnnxSignature> {
  // (under a service's model roots the file is checked before anything of it is read, and read from the file checked:
  // a link out of the root is refused alike whether or not its target exists, never its names read)
  const fh = await openModelFile(path, 'the model file').then(
    (o) => o.handle,
    (e: unknown) => {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new MissingFileError(`${path}: no ${what} model (expected an SD 1.x ONNX folder with ${basename(dirname(path))}/model.onnx)`);
      throw e instanceof FormatError ? e : new FormatError(`${path}: not a readable ONNX model (${(e as Error).message})`);
    },
  );
  try {
    const w = new FileWindow(fh, (await fh.stat()).size);
    // (a file with no graph has no declared tensors, as onnx.ModelProto.decode reads it)
    const sig: OnnxSignature = { inputs: [], outputs: [] };
    await eachField(w, 0, w.size, async (m) => {
      if (m.field !== 7 || m.wire !== 2) return; // ModelProto.graph
      await eachField(w, m.data, m.end, async (g) => {
        if (g.wire !== 2) return;
        if (g.field === 11) sig.inputs.push(decl(Buffer.from(await w.bytes(g.data, g.end - g.data))));
        else if (g.field === 12) sig.outputs.push(decl(Buffer.from(await w.bytes(g.data, g.end - g.data))));
      });
    });
    return sig;
  } catch (e) {
    if (e instanceof MissingFileError) throw e;
    throw new FormatError(`${path}: not a readable ONNX model (${(e as Error).message})`);
  } finally {
    await fh.close();
  }
}

/** What an SD 1.x folder's U-Net declares, with the text encoder's width where the U-Net leaves its own open. */
export interface UnetDeclaredSizes {
  /** unet/model.onnx. */
  path: string;
  /** The latent input's name ('sample') and its declared dimensions ([batch_size, 4, 16, 16]). */
  sampleName: string;
  sampleDims: (number | string | null)[];
  /** Latent channels, height and width: numbers where the export fixes them (the demo world's U-Net: 16×16), else null. */
  channels: number | null;
  height: number | null;
  width: number | null;
  /** encoder_hidden_states' sequence length and width D where fixed (else null; D then from the text encoder's output). */
  sequence: number | null;
  condDim: number | null;
}

const fixedDim = (d: OnnxTensorDecl | undefined, k: number): number | null => (typeof d?.dims[k] === 'number' ? (d.dims[k] as number) : null);

/**
 * The sizes the folder's U-Net declares (latents [B, C, h, w], conditioning [B, S, D]), read from the files'
 * signatures without loading or decoding the models. D falls back to the text encoder's output width when the
 * U-Net leaves it open and a text encoder is there (unless `textEncoder` is false).
 */
export async function unetDeclaredSizes(modelDir: string, options: { textEncoder?: boolean } = {}): Promise<UnetDeclaredSizes> {
  const path = join(modelDir, 'unet', 'model.onnx');
  const { inputs } = await readOnnxSignature(path, 'U-Net');
  const sample = inputs.find((i) => i.name === 'sample') ?? inputs[0];
  const cond = inputs.find((i) => i.name === 'encoder_hidden_states');
  let condDim = fixedDim(cond, 2);
  const text = join(modelDir, 'text_encoder', 'model.onnx');
  if (condDim === null && options.textEncoder !== false && (await modelPathExists(text, 'the model file'))) {
    condDim = fixedDim((await readOnnxSignature(text, 'text encoder')).outputs[0], 2);
  }
  return {
    path,
    sampleName: sample?.name ?? 'sample',
    sampleDims: sample?.dims ?? [],
    channels: fixedDim(sample, 1),
    height: fixedDim(sample, 2),
    width: fixedDim(sample, 3),
    sequence: fixedDim(cond, 1),
    condDim,
  };
}

/**
 * A U-Net exported at one latent size (the demo world's exact denoiser) runs only at that size: null when latents
 * of `height`×`width` fit what it declares, else the latent size it takes (an open side taken as given).
 */
export function latentSizeMismatch(s: Pick<UnetDeclaredSizes, 'height' | 'width'>, height: number, width: number): { height: number; width: number } | null {
  if ((s.height === null || s.height === height) && (s.width === null || s.width === width)) return null;
  return { height: s.height ?? height, width: s.width ?? width };
}
