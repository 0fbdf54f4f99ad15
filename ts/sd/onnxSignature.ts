/**
 * The declared inputs and outputs of an ONNX model, read without reading its weights: the protobuf is walked
 * field by field and everything but the graph's `input` (11) and `output` (12) entries is skipped by its length,
 * so a U-Net whose gigabytes of initializers sit inside model.onnx costs a few small reads, not a decode of the
 * whole file (which is what onnx.ModelProto.decode would take). Used to check inputs against a model's fixed
 * sizes before the model is loaded (seconds to a minute for SD 1.x).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

import { FormatError, MissingFileError } from '../errors.js';
import { onnx } from './onnxProto.js';

/** A declared tensor: its name and dimensions (a number when fixed, the parameter's name or null when not). */
export interface OnnxTensorDecl {
  name: string;
  dims: (number | string | null)[];
}

export interface OnnxSignature {
  inputs: OnnxTensorDecl[];
  outputs: OnnxTensorDecl[];
}

const CHUNK = 1 << 20;

/** Positioned reads through a 1 MiB window: the graph's nodes are many small messages read in a row. */
class Window {
  private buf = Buffer.alloc(0);
  private start = 0;
  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
  ) {}

  async bytes(pos: number, n: number): Promise<Buffer> {
    if (pos < this.start || pos + n > this.start + this.buf.length) {
      const len = Math.min(Math.max(n, CHUNK), this.size - pos);
      if (len < n) throw new Error(`truncated at byte ${pos} (${n} bytes wanted, ${this.size - pos} left)`);
      const b = Buffer.alloc(len);
      const { bytesRead } = await this.fh.read(b, 0, len, pos);
      if (bytesRead < n) throw new Error(`truncated at byte ${pos}`);
      this.buf = b.subarray(0, bytesRead);
      this.start = pos;
    }
    return this.buf.subarray(pos - this.start, pos - this.start + n);
  }

  /** A varint at `pos`: its value (exact below 2^53) and the position after it. */
  async varint(pos: number): Promise<[number, number]> {
    const b = await this.bytes(pos, Math.min(10, this.size - pos));
    let v = 0;
    for (let i = 0; i < b.length; i++) {
      v += (b[i] & 0x7f) * 2 ** (7 * i);
      if ((b[i] & 0x80) === 0) return [v, pos + i + 1];
    }
    throw new Error(`bad varint at byte ${pos}`);
  }
}

/**
 * Calls `visit(field, start, length)` for each length-delimited field of the message in [from, to), skipping the
 * others; a field of another wire type is stepped over by its size.
 */
async function eachField(w: Window, from: number, to: number, visit: (field: number, start: number, length: number) => Promise<void>): Promise<void> {
  let pos = from;
  while (pos < to) {
    const [tag, p1] = await w.varint(pos);
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (wire === 0) [, pos] = await w.varint(p1);
    else if (wire === 1) pos = p1 + 8;
    else if (wire === 5) pos = p1 + 4;
    else if (wire === 2) {
      const [len, p2] = await w.varint(p1);
      if (p2 + len > to) throw new Error(`field ${field} at byte ${pos} runs past its message (${len} bytes)`);
      await visit(field, p2, len);
      pos = p2 + len;
    } else throw new Error(`unsupported wire type ${wire} at byte ${pos}`);
  }
}

function decl(bytes: Buffer): OnnxTensorDecl {
  const v = onnx.ValueInfoProto.decode(bytes);
  const dims = (v.type?.tensorType?.shape?.dim ?? []).map((d) => {
    const n = d.dimValue === undefined || d.dimValue === null ? NaN : Number(d.dimValue);
    return n > 0 ? n : d.dimParam ? d.dimParam : null;
  });
  return { name: v.name ?? '', dims };
}

/** The graph's declared inputs and outputs of the ONNX file at `path` (`what` names it in errors: 'U-Net'). */
export async function readOnnxSignature(path: string, what = 'model'): Promise<OnnxSignature> {
  if (!existsSync(path)) throw new MissingFileError(`${path}: no ${what} model (expected an SD 1.x ONNX folder with ${basename(dirname(path))}/model.onnx)`);
  const fh = await open(path, 'r');
  try {
    const w = new Window(fh, (await fh.stat()).size);
    // (a file with no graph has no declared tensors, as onnx.ModelProto.decode reads it)
    const sig: OnnxSignature = { inputs: [], outputs: [] };
    await eachField(w, 0, w.size, async (field, start, length) => {
      if (field !== 7) return; // ModelProto.graph
      await eachField(w, start, start + length, async (f, s, n) => {
        if (f === 11) sig.inputs.push(decl(Buffer.from(await w.bytes(s, n))));
        else if (f === 12) sig.outputs.push(decl(Buffer.from(await w.bytes(s, n))));
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
  if (condDim === null && options.textEncoder !== false && existsSync(text)) condDim = fixedDim((await readOnnxSignature(text, 'text encoder')).outputs[0], 2);
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
