/**
 * safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header
 * length, a JSON header naming each tensor's dtype, shape and byte range, then the raw data.
 * Readable from Python with `safetensors.numpy.load_file`.
 */
import { open } from 'node:fs/promises';

import { FormatError, ShapeError } from '../errors.js';
import { withAtomicFile } from './atomicWrite.js';
import { allocate, BYTES, bytesOf, dtypeOf, product, type DType, type NumericArray } from './typedArrays.js';

export interface Tensor {
  data: NumericArray;
  shape: number[];
}

export interface SafetensorsFile {
  tensors: Record<string, Tensor & { dtype: DType }>;
  metadata: Record<string, string>;
}

const CODE: Record<DType, string> = { float32: 'F32', float64: 'F64', int16: 'I16', int32: 'I32', uint8: 'U8' };
const FROM_CODE: Record<string, DType> = { F32: 'float32', F64: 'float64', I16: 'int16', I32: 'int32', U8: 'uint8' };
const CHUNK = 64 << 20;

export async function writeSafetensors(
  path: string,
  tensors: Record<string, Tensor>,
  metadata: Record<string, string> = {},
): Promise<void> {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  const names = Object.keys(tensors);
  for (const name of names) {
    const t = tensors[name];
    if (product(t.shape) !== t.data.length) {
      throw new ShapeError(`${path}: tensor '${name}' has ${t.data.length} elements but shape [${t.shape.join(', ')}]`);
    }
    header[name] = { dtype: CODE[dtypeOf(t.data)], shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json = json.padEnd(Math.ceil(json.length / 8) * 8, ' ');
  const jsonBytes = Buffer.from(json, 'utf8');
  const pre = Buffer.alloc(8);
  pre.writeBigUInt64LE(BigInt(jsonBytes.length));
  await withAtomicFile(path, async (fh) => {
    await fh.write(pre);
    await fh.write(jsonBytes);
    for (const name of names) {
      const bytes = bytesOf(tensors[name].data);
      for (let off = 0; off < bytes.length; off += CHUNK) await fh.write(bytes, off, Math.min(CHUNK, bytes.length - off));
    }
  });
}

export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const pre = Buffer.alloc(8);
    await fh.read(pre, 0, 8, 0);
    const n = Number(pre.readBigUInt64LE());
    if (size < 8 || n <= 0 || 8 + n > size) throw new FormatError(`${path}: not a safetensors file (header length ${n}, file ${size} bytes)`);
    const hb = Buffer.alloc(n);
    await fh.read(hb, 0, n, 8);
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(hb.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new FormatError(`${path}: safetensors header is not valid JSON`);
    }
    const base = 8 + n;
    const out: SafetensorsFile = { tensors: {}, metadata: {} };
    for (const [name, value] of Object.entries(header)) {
      if (name === '__metadata__') {
        out.metadata = (value ?? {}) as Record<string, string>;
        continue;
      }
      const v = value as { dtype: string; shape: number[]; data_offsets: [number, number] };
      const dtype = FROM_CODE[v.dtype];
      if (!dtype) throw new FormatError(`${path}: tensor '${name}' has unsupported dtype ${v.dtype}`);
      const count = product(v.shape);
      const [b, e] = v.data_offsets;
      if (e - b !== count * BYTES[dtype] || base + e > size) {
        throw new FormatError(`${path}: tensor '${name}' (${v.dtype} [${v.shape.join(', ')}]) has bad or truncated data range [${b}, ${e})`);
      }
      const data = allocate(dtype, count);
      const bytes = bytesOf(data);
      for (let off = 0; off < bytes.length; off += CHUNK) {
        const len = Math.min(CHUNK, bytes.length - off);
        const { bytesRead } = await fh.read(bytes, off, len, base + b + off);
        if (bytesRead < len) throw new FormatError(`${path}: tensor '${name}' is truncated`);
      }
      out.tensors[name] = { data, shape: v.shape, dtype };
    }
    return out;
  } finally {
    await fh.close();
  }
}
