/**
 * NumPy .npy files (format versions 1-3): little-endian float32/float64/int16/int32/uint8 in C
 * order. Data are read straight into the typed array's memory in chunks, never through an
 * intermediate Buffer of the whole file.
 */
import { open } from 'node:fs/promises';

import { FormatError, ShapeError } from '../errors.js';
import type { Matrix } from '../matrix.js';
import { withAtomicFile } from './atomicWrite.js';
import { allocate, BYTES, bytesOf, dtypeOf, product, type DType, type NumericArray } from './typedArrays.js';

export interface NpyArray {
  data: NumericArray;
  shape: number[];
  dtype: DType;
}

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const DESCR: Record<string, DType> = { '<f4': 'float32', '<f8': 'float64', '<i2': 'int16', '<i4': 'int32', '|u1': 'uint8', '<u1': 'uint8' };
const DESCR_OF: Record<DType, string> = { float32: '<f4', float64: '<f8', int16: '<i2', int32: '<i4', uint8: '|u1' };
const CHUNK = 64 << 20;

export interface NpyHeader {
  dtype: DType;
  shape: number[];
  dataOffset: number;
}

function parseHeader(path: string, text: string): { descr: string; fortran: boolean; shape: number[] } {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new FormatError(`${path}: malformed .npy header ${JSON.stringify(text.trim())}`);
  }
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => Number(s.replace(/L$/, '')));
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new FormatError(`${path}: bad shape (${shapeText}) in .npy header`);
  return { descr, fortran: fortran === 'True', shape };
}

/** Reads only the header: dtype, shape and where the data start. */
export async function readNpyHeader(path: string): Promise<NpyHeader> {
  const fh = await open(path, 'r');
  try {
    return await headerFrom(fh, path);
  } finally {
    await fh.close();
  }
}

async function headerFrom(fh: import('node:fs/promises').FileHandle, path: string): Promise<NpyHeader> {
  const pre = Buffer.alloc(12);
  const { bytesRead } = await fh.read(pre, 0, 12, 0);
  if (bytesRead < 10 || !pre.subarray(0, 6).equals(MAGIC)) throw new FormatError(`${path}: not a .npy file (bad magic)`);
  const major = pre[6];
  let headerLen: number, start: number;
  if (major === 1) {
    headerLen = pre.readUInt16LE(8);
    start = 10;
  } else if (major === 2 || major === 3) {
    headerLen = pre.readUInt32LE(8);
    start = 12;
  } else {
    throw new FormatError(`${path}: unsupported .npy format version ${major}`);
  }
  const hb = Buffer.alloc(headerLen);
  const r = await fh.read(hb, 0, headerLen, start);
  if (r.bytesRead < headerLen) throw new FormatError(`${path}: truncated .npy header`);
  const { descr, fortran, shape } = parseHeader(path, hb.toString('latin1'));
  const dtype = DESCR[descr];
  if (!dtype) {
    const why = descr.startsWith('>') ? 'big-endian data' : `dtype '${descr}'`;
    throw new FormatError(`${path}: ${why} is not supported; expected little-endian float32, float64, int16, int32 or uint8`);
  }
  if (fortran) throw new FormatError(`${path}: Fortran-ordered arrays are not supported; save with C order (np.ascontiguousarray)`);
  return { dtype, shape, dataOffset: start + headerLen };
}

export async function readNpy(path: string): Promise<NpyArray> {
  const fh = await open(path, 'r');
  try {
    const { dtype, shape, dataOffset } = await headerFrom(fh, path);
    const count = product(shape);
    const data = allocate(dtype, count);
    const bytes = bytesOf(data);
    let done = 0;
    while (done < bytes.length) {
      const len = Math.min(CHUNK, bytes.length - done);
      const { bytesRead } = await fh.read(bytes, done, len, dataOffset + done);
      if (bytesRead === 0) {
        throw new FormatError(
          `${path}: truncated .npy file: shape (${shape.join(', ')}) ${dtype} needs ${bytes.length} data bytes, found ${done}`,
        );
      }
      done += bytesRead;
    }
    return { data, shape, dtype };
  } finally {
    await fh.close();
  }
}

/** The magic, version, header length and header dict of a C-order array of `data`'s dtype and `shape`. */
function npyHeader(data: NumericArray, shape: readonly number[], what: string): Buffer {
  if (product(shape) !== data.length) {
    throw new ShapeError(`${what}: shape (${shape.join(', ')}) needs ${product(shape)} elements, data has ${data.length}`);
  }
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${DESCR_OF[dtypeOf(data)]}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const v1 = dict.length + 11 < 65536;
  const pre = v1 ? 10 : 12;
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  dict = dict.padEnd(total - pre - 1, ' ') + '\n';
  const head = Buffer.alloc(pre);
  MAGIC.copy(head, 0);
  head[6] = v1 ? 1 : 2;
  head[7] = 0;
  if (v1) head.writeUInt16LE(dict.length, 8);
  else head.writeUInt32LE(dict.length, 8);
  return Buffer.concat([head, Buffer.from(dict, 'latin1')]);
}

export async function writeNpy(path: string, data: NumericArray, shape: readonly number[]): Promise<void> {
  const header = npyHeader(data, shape, path);
  await withAtomicFile(path, async (fh) => {
    await fh.write(header);
    const bytes = bytesOf(data);
    for (let off = 0; off < bytes.length; off += CHUNK) {
      await fh.write(bytes, off, Math.min(CHUNK, bytes.length - off));
    }
  });
}

/**
 * Reads a 2-D float matrix (rows × cols) for the engine. float64 files are converted to
 * float32; integer files and other ranks are refused with an error naming the file.
 */
export async function readMatrixNpy(path: string, what: string): Promise<Matrix> {
  const a = await readNpy(path);
  if (a.shape.length !== 2) {
    throw new ShapeError(`${what} (${path}): expected a 2-D array (samples × columns), got shape (${a.shape.join(', ')})`);
  }
  let data: Float32Array;
  if (a.data instanceof Float32Array) data = a.data;
  else if (a.data instanceof Float64Array) data = Float32Array.from(a.data);
  else throw new FormatError(`${what} (${path}): expected float32 or float64 data, got ${a.dtype}`);
  return { data, rows: a.shape[0], cols: a.shape[1] };
}

/** Reads a 1-D integer vector (int16/int32, or integral floats) such as a groups vector. */
export async function readIntVectorNpy(path: string, what: string): Promise<Int32Array> {
  const a = await readNpy(path);
  if (a.shape.length !== 1 && !(a.shape.length === 2 && a.shape[1] === 1)) {
    throw new ShapeError(`${what} (${path}): expected a 1-D array, got shape (${a.shape.join(', ')})`);
  }
  if (a.data instanceof Int32Array) return a.data;
  const out = new Int32Array(a.data.length);
  for (let i = 0; i < a.data.length; i++) {
    const v = a.data[i];
    if (!Number.isInteger(v)) throw new FormatError(`${what} (${path}): element ${i} is ${v}, expected integers`);
    out[i] = v;
  }
  return out;
}

/** A .npy file held in memory (an HTTP body): its header checked, its data copied into an aligned typed array. */
export function decodeNpy(bytes: Uint8Array, what: string): NpyArray {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 10 || !b.subarray(0, 6).equals(MAGIC)) throw new FormatError(`${what}: not a .npy file (bad magic)`);
  const major = b[6];
  if (major !== 1 && major !== 2 && major !== 3) throw new FormatError(`${what}: unsupported .npy format version ${major}`);
  const start = major === 1 ? 10 : 12;
  if (b.length < start) throw new FormatError(`${what}: truncated .npy header`);
  const headerLen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  if (b.length < start + headerLen) throw new FormatError(`${what}: truncated .npy header`);
  const { descr, fortran, shape } = parseHeader(what, b.toString('latin1', start, start + headerLen));
  const dtype = DESCR[descr];
  if (!dtype) throw new FormatError(`${what}: dtype '${descr}' is not supported; expected little-endian float32, float64, int16, int32 or uint8`);
  if (fortran) throw new FormatError(`${what}: Fortran-ordered arrays are not supported; save with C order (np.ascontiguousarray)`);
  const count = product(shape);
  const offset = start + headerLen;
  const need = count * BYTES[dtype];
  if (b.length - offset !== need) {
    throw new FormatError(`${what}: shape (${shape.join(', ')}) ${dtype} needs ${need} data bytes, the body has ${b.length - offset}`);
  }
  const data = allocate(dtype, count);
  bytesOf(data).set(b.subarray(offset, offset + need));
  return { data, shape, dtype };
}

/** The bytes of a .npy file of `data` with `shape` (for an HTTP response). */
export function encodeNpy(data: NumericArray, shape: readonly number[]): Buffer {
  const bytes = bytesOf(data);
  return Buffer.concat([npyHeader(data, shape, 'encodeNpy'), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)]);
}
