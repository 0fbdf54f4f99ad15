/**
 * NumPy .npy files (format versions 1-3): boolean, integer and float arrays of either byte order, in C order or
 * Fortran order (transposed into C order on reading, into a copy: such a file is never mapped).
 * Every header field is checked against the file before anything is allocated: the header dictionary is parsed
 * strictly (exactly 'descr', 'fortran_order' and 'shape'), and shape × item size must equal the data bytes in the
 * file (a short file is truncated, extra bytes are trailing garbage); each failure is a FormatError naming the file
 * and the field. Data are read straight into the typed array's memory in chunks, never through a copy of the file.
 */
import { constants as bufferConstants } from 'node:buffer';
import { open, type FileHandle } from 'node:fs/promises';

import { FormatError, InvalidArgumentError, LimitError, NonFiniteError, ShapeError } from '../errors.js';
import type { Matrix } from '../matrix.js';
import { allocateArrayBuffer, mapFileRange } from './arrayAllocator.js';
import { withAtomicFile, writeChunks } from './atomicWrite.js';
import { fileOpenError, openRegularFile } from './byteStream.js';
import { fileKindOf } from './fileKind.js';
import { assertFinite, firstNonFinite } from './finite.js';
import { bytesOf, checkShape, entryOf, product, type ArrayClass, type DType, type NumericArray } from './typedArrays.js';

/** Element types read from .npy files (a superset of what is written). */
export type NpyDType = DType | 'int8' | 'uint16' | 'uint32' | 'int64' | 'uint64' | 'bool';
/** The typed array of an NpyArray, one for each NpyDType (bool as BoolArray, a Uint8Array, 64-bit integers as BigInt64Array / BigUint64Array). */
export type NpyData = NumericArray | Int8Array | Uint16Array | Uint32Array | BigInt64Array | BigUint64Array;

/**
 * A boolean array as a '|b1' .npy holds it: a Uint8Array of 0s and 1s (readNpy returns one for bool files) that
 * writeNpy writes back as '|b1', where a plain Uint8Array is written '|u1'.
 */
export class BoolArray extends Uint8Array {}

export interface NpyArray {
  data: NpyData;
  shape: number[];
  dtype: NpyDType;
}

/** A .npy file's header, checked against the file's size (see readNpyHeader). */
export interface NpyHeader {
  dtype: NpyDType;
  shape: number[];
  dataOffset: number;
  /** Bytes of data the header announces (= the bytes after the header). */
  dataBytes: number;
  littleEndian: boolean;
  /**
   * The data are in Fortran (column-major) order, as `np.save(p, X.T)` writes them: numpy's fortran_order, where more
   * than one axis is longer than 1 (otherwise both orders are the same bytes). Readers return C order all the same.
   */
  fortranOrder: boolean;
}

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const KINDS: Record<string, NpyDType> = {
  f4: 'float32', f8: 'float64', i1: 'int8', i2: 'int16', i4: 'int32', i8: 'int64',
  u1: 'uint8', u2: 'uint16', u4: 'uint32', u8: 'uint64', b1: 'bool',
};
const ITEM: Record<NpyDType, number> = {
  float32: 4, float64: 8, int8: 1, int16: 2, int32: 4, int64: 8, uint8: 1, uint16: 2, uint32: 4, uint64: 8, bool: 1,
};
/** What is written for each typed array readNpy returns, so that read → write → read gives the same dtype and values. */
const WRITTEN: { array: ArrayClass; descr: string }[] = [
  { array: Float32Array, descr: '<f4' }, { array: Float64Array, descr: '<f8' },
  { array: Int8Array, descr: '|i1' }, { array: Int16Array, descr: '<i2' }, { array: Int32Array, descr: '<i4' }, { array: BigInt64Array, descr: '<i8' },
  { array: BoolArray, descr: '|b1' }, { array: Uint8Array, descr: '|u1' }, { array: Uint16Array, descr: '<u2' }, { array: Uint32Array, descr: '<u4' }, { array: BigUint64Array, descr: '<u8' },
];
const MAX_DIMS = 32;
const CHUNK = 64 << 20;
/** numpy itself refuses headers over 10 000 bytes unless told otherwise; ours is a generous bound on the same. */
const MAX_HEADER_BYTES = 1 << 20;

/** What a reader takes (readNpy, decodeNpy): a caller that takes only some dtypes names them, and so does the refusal. */
export interface NpyReadOptions {
  /** The dtypes taken (default: every one read); any other is refused from the header, before the data are read. */
  dtypes?: readonly NpyDType[];
  /** How the refusal of a dtype names the array (default: the path or `what`). */
  label?: string;
}

/** Numbers a caller reads as float32 (float64 converted). */
export const FLOAT_DTYPES: readonly NpyDType[] = ['float32', 'float64'];

const KIND_NAMES: Record<string, string> = { f: 'float', i: 'int', u: 'uint', c: 'complex', b: 'bool', m: 'timedelta', M: 'datetime' };

/** A descr read or not, as a dtype name: 'int32', or "float16 ('<f2')" for one not read. */
function dtypeName(descr: string, dtype: NpyDType | undefined): string {
  if (dtype) return dtype;
  const m = /^[<>|=]([a-zA-Z])(\d+)$/.exec(descr);
  const kind = m ? KIND_NAMES[m[1]] : undefined;
  return kind ? `${kind}${Number(m![2]) * 8} ('${descr}')` : `dtype '${descr}'`;
}

/** The refusal of a dtype: what the caller takes when it said, else what this reader reads. */
function dtypeRefusal(descr: string, dtype: NpyDType | undefined, dtypes?: readonly NpyDType[]): string {
  if (!dtypes) return `dtype '${descr}' is not read; expected a boolean, integer or float32/float64 type (e.g. '<f4', '<i8', '|b1')`;
  const list = dtypes.length > 1 ? `${dtypes.slice(0, -1).join(', ')} or ${dtypes[dtypes.length - 1]}` : dtypes[0];
  return `expected ${list} data, got ${dtypeName(descr, dtype)}`;
}

function fail(path: string, field: string, msg: string): FormatError {
  return new FormatError(`${path}: ${msg}`, { path, field });
}

/** Reads only the header: dtype, shape and where the data start, all checked against the file's size. */
export async function readNpyHeader(path: string, options: NpyReadOptions = {}): Promise<NpyHeader> {
  const fh = await openFile(path);
  try {
    return await headerFrom(fh, path, options);
  } finally {
    await fh.close();
  }
}

async function openFile(path: string): Promise<FileHandle> {
  return (await openRegularFile(path)).fh;
}

async function headerFrom(fh: FileHandle, path: string, options: NpyReadOptions): Promise<NpyHeader> {
  const size = (await fh.stat()).size;
  const pre = Buffer.alloc(12);
  const { bytesRead } = await fh.read(pre, 0, 12, 0);
  const lead = leadIn(path, size, pre.subarray(0, bytesRead));
  const hb = Buffer.alloc(lead.headerLen);
  const r = await fh.read(hb, 0, lead.headerLen, lead.start);
  if (r.bytesRead < lead.headerLen) throw fail(path, 'header_len', 'truncated .npy header');
  return headerFromDict(path, size, lead, hb, options);
}

/** Magic, version and header length, checked against the `size` bytes of the whole file. */
function leadIn(path: string, size: number, pre: Buffer): { major: number; start: number; headerLen: number } {
  // np.savez writes a zip: PK\x03\x04 (a member), or PK\x05\x06 for an empty archive
  const zip = pre.length >= 4 && pre.toString('latin1', 0, 2) === 'PK' && ((pre[2] === 3 && pre[3] === 4) || (pre[2] === 5 && pre[3] === 6));
  if (zip) {
    throw fail(path, 'magic', 'a .npz (zip) archive, not a .npy file: np.load it and np.save the array you need');
  }
  if (pre.length < 10 || !pre.subarray(0, 6).equals(MAGIC)) {
    // (a model, an HDF5 file given as an array: said what it is)
    const kind = pre.subarray(0, 6).equals(MAGIC) ? null : fileKindOf(pre);
    throw fail(path, 'magic', kind ? `${kind}, not a .npy file (which starts with \\x93NUMPY)` : 'not a .npy file (it does not start with \\x93NUMPY)');
  }
  const major = pre[6];
  let headerLen: number, start: number;
  if (major === 1) {
    headerLen = pre.readUInt16LE(8);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (pre.length < 12) throw fail(path, 'header_len', `truncated .npy file (${size} bytes)`);
    headerLen = pre.readUInt32LE(8);
    start = 12;
  } else {
    throw fail(path, 'version', `unsupported .npy format version ${major}.${pre[7]}; expected 1.0, 2.0 or 3.0`);
  }
  if (start + headerLen > size) {
    throw fail(path, 'header_len', `header length ${headerLen} runs past the end of the ${size}-byte file (truncated or corrupt)`);
  }
  if (headerLen > MAX_HEADER_BYTES) {
    throw new LimitError(`${path}: .npy header of ${headerLen} bytes is over the ${MAX_HEADER_BYTES}-byte limit`, { path, field: 'header_len' });
  }
  return { major, start, headerLen };
}

/** The header dictionary's dtype and shape, and shape × item size checked against the data bytes present. */
function headerFromDict(path: string, size: number, lead: { major: number; start: number; headerLen: number }, hb: Buffer, options: NpyReadOptions): NpyHeader {
  const { major, start, headerLen } = lead;
  let text: string;
  if (major === 3) {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(hb);
    } catch {
      throw fail(path, 'header', 'the version 3 header is not valid UTF-8');
    }
  } else text = hb.toString('latin1');
  const { descr, fortran, shape } = parseHeaderDict(path, text);
  const m = /^([<>|=])([a-z])(\d+)$/.exec(descr);
  const dtype = m ? KINDS[`${m[2]}${m[3]}`] : undefined;
  if (!m || !dtype || (options.dtypes && !options.dtypes.includes(dtype))) {
    throw new FormatError(`${options.label ?? path}: ${dtypeRefusal(descr, dtype, options.dtypes)}`, { path, field: 'descr' });
  }
  const littleEndian = m[1] !== '>';
  const fortranOrder = fortran && shape.filter((d) => d > 1).length > 1;
  const count = product(shape);
  if (!Number.isSafeInteger(count)) throw fail(path, 'shape', `shape (${shape.join(', ')}) has more elements than can be counted exactly`);
  const dataOffset = start + headerLen;
  const dataBytes = count * ITEM[dtype];
  const present = size - dataOffset;
  if (present < dataBytes) {
    throw fail(path, 'shape', `truncated .npy file: shape (${shape.join(', ')}) ${dtype} needs ${dataBytes} data bytes, the file holds ${present}`);
  }
  if (present > dataBytes) {
    throw fail(path, 'shape', `${present - dataBytes} trailing bytes after the ${dataBytes} data bytes of shape (${shape.join(', ')}) ${dtype}`);
  }
  if (dataBytes > bufferConstants.MAX_LENGTH) {
    throw new LimitError(`${path}: ${dataBytes} data bytes exceed the ${bufferConstants.MAX_LENGTH}-byte limit of one array in Node`, { path, field: 'shape' });
  }
  return { dtype, shape, dataOffset, dataBytes, littleEndian, fortranOrder };
}

/**
 * The header dictionary, parsed as the Python literal it is: `{'descr': '<f4', 'fortran_order': False,
 * 'shape': (3, 4), }` followed by spaces and a newline. Anything else is refused, naming what was wrong.
 */
function parseHeaderDict(path: string, text: string): { descr: string; fortran: boolean; shape: number[] } {
  let i = 0;
  const ws = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const bad = (what: string) => fail(path, 'header', `malformed .npy header (${what} at byte ${i}): ${JSON.stringify(text.slice(0, 120).trim())}`);
  const str = (): string => {
    const q = text[i];
    if (q !== "'" && q !== '"') throw bad('expected a quoted string');
    const end = text.indexOf(q, i + 1);
    if (end < 0) throw bad('unterminated string');
    const s = text.slice(i + 1, end);
    if (s.includes('\\')) throw bad('escape in string');
    i = end + 1;
    return s;
  };
  const int = (): number => {
    const m = /^\d+L?/.exec(text.slice(i, i + 32));
    if (!m) throw bad('expected a non-negative integer');
    i += m[0].length;
    const v = Number(m[0].replace(/L$/, ''));
    if (!Number.isSafeInteger(v)) throw fail(path, 'shape', `dimension ${m[0]} is too large`);
    return v;
  };
  const values: Record<string, unknown> = {};
  ws();
  if (text[i++] !== '{') throw bad("expected '{'");
  ws();
  while (text[i] !== '}') {
    const key = str();
    if (key in values) throw bad(`duplicate key '${key}'`);
    ws();
    if (text[i++] !== ':') throw bad("expected ':'");
    ws();
    if (key === 'descr') {
      if (text[i] === '[') throw fail(path, 'descr', 'structured (record) dtypes are not read; expected a plain numeric array');
      values[key] = str();
    } else if (key === 'fortran_order') {
      if (text.startsWith('True', i)) values[key] = true;
      else if (text.startsWith('False', i)) values[key] = false;
      else throw bad('fortran_order must be True or False');
      i += values[key] ? 4 : 5;
    } else if (key === 'shape') {
      if (text[i++] !== '(') throw bad("expected '(' for the shape");
      const dims: number[] = [];
      ws();
      while (text[i] !== ')') {
        dims.push(int());
        ws();
        if (text[i] === ',') {
          i++;
          ws();
        } else if (text[i] !== ')') throw bad("expected ',' or ')' in the shape");
      }
      i++;
      if (dims.length > MAX_DIMS) throw fail(path, 'shape', `${dims.length} dimensions; numpy allows at most ${MAX_DIMS}`);
      values[key] = dims;
    } else {
      throw bad(`unexpected key '${key}'`);
    }
    ws();
    if (text[i] === ',') {
      i++;
      ws();
    } else if (text[i] !== '}') throw bad("expected ',' or '}'");
  }
  i++;
  if (text.slice(i).trim() !== '') throw bad('text after the dictionary');
  for (const k of ['descr', 'fortran_order', 'shape']) if (!(k in values)) throw fail(path, k, `.npy header has no '${k}'`);
  return { descr: values.descr as string, fortran: values.fortran_order as boolean, shape: values.shape as number[] };
}

function allocateNpy(dtype: NpyDType, count: number): NpyData {
  return typedArrayOf(dtype, allocateArrayBuffer(count * ITEM[dtype]));
}

function typedArrayOf(dtype: NpyDType, buf: ArrayBuffer): NpyData {
  switch (dtype) {
    case 'float32': return new Float32Array(buf);
    case 'float64': return new Float64Array(buf);
    case 'int8': return new Int8Array(buf);
    case 'int16': return new Int16Array(buf);
    case 'int32': return new Int32Array(buf);
    case 'int64': return new BigInt64Array(buf);
    case 'uint8': return new Uint8Array(buf);
    case 'bool': return new BoolArray(buf);
    case 'uint16': return new Uint16Array(buf);
    case 'uint32': return new Uint32Array(buf);
    case 'uint64': return new BigUint64Array(buf);
  }
}

export async function readNpy(path: string, options: NpyReadOptions = {}): Promise<NpyArray> {
  const fh = await openFile(path);
  try {
    const header = await headerFrom(fh, path, options);
    // Large arrays that need no byte swap are mapped rather than read where a mapper is installed (arrayAllocator.ts);
    // Fortran-ordered ones are read and transposed into a copy in C order.
    const item = ITEM[header.dtype];
    if ((header.littleEndian || item === 1) && header.dataOffset % item === 0 && !header.fortranOrder) {
      const mapped = mapFileRange(fh.fd, header.dataOffset, header.dataBytes);
      if (mapped) return finishData(path, header, typedArrayOf(header.dtype, mapped));
    }
    const data = allocateNpy(header.dtype, header.dataBytes / item);
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    let done = 0;
    while (done < bytes.length) {
      const len = Math.min(CHUNK, bytes.length - done);
      const { bytesRead } = await fh.read(bytes, done, len, header.dataOffset + done);
      if (bytesRead === 0) throw fail(path, 'shape', `file shrank while being read (${done} of ${bytes.length} data bytes)`);
      done += bytesRead;
    }
    return finishData(path, header, data);
  } finally {
    await fh.close();
  }
}

/**
 * A .npy file held in memory (an HTTP body), checked exactly as a file is (`what` names it in errors); the data are
 * copied into an aligned typed array.
 */
export function decodeNpy(bytes: Uint8Array, what: string, options: NpyReadOptions = {}): NpyArray {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lead = leadIn(what, b.length, b.subarray(0, 12));
  const header = headerFromDict(what, b.length, lead, b.subarray(lead.start, lead.start + lead.headerLen), options);
  const data = allocateNpy(header.dtype, header.dataBytes / ITEM[header.dtype]);
  new Uint8Array(data.buffer, data.byteOffset, data.byteLength).set(b.subarray(header.dataOffset, header.dataOffset + header.dataBytes));
  return finishData(what, header, data);
}

/** Native byte order, booleans that are 0 or 1, and C order (a Fortran-ordered array transposed into a new one). */
function finishData(path: string, header: NpyHeader, data: NpyData): NpyArray {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (!header.littleEndian && ITEM[header.dtype] > 1) swapBytes(bytes, ITEM[header.dtype]);
  if (header.dtype === 'bool') {
    for (let k = 0; k < bytes.length; k++) {
      if (bytes[k] > 1) throw fail(path, 'data', `boolean element ${header.fortranOrder ? `${k} (in the file's Fortran order)` : k} holds byte ${bytes[k]}, expected 0 or 1`);
    }
  }
  if (header.fortranOrder) {
    const c = allocateNpy(header.dtype, data.length);
    fortranToC(data, c, header.shape);
    return { data: c, shape: header.shape, dtype: header.dtype };
  }
  return { data, shape: header.shape, dtype: header.dtype };
}

/** Element k of a Fortran-ordered array of `shape` (first axis fastest): its flat index in C order (last axis fastest). */
export function fortranToCIndex(k: number, shape: readonly number[]): number {
  let c = 0;
  let stride = 1;
  const idx: number[] = [];
  for (const d of shape) {
    idx.push(k % d);
    k = Math.floor(k / d);
  }
  for (let a = shape.length - 1; a >= 0; a--) {
    c += idx[a] * stride;
    stride *= shape[a];
  }
  return c;
}

/**
 * `src`, column-major (Fortran order) of `shape`, copied into `dst` in row-major (C) order. 2-D arrays go tile by tile
 * (cache-friendly both ways); more axes walk `dst` in order with an odometer over `src`'s strides.
 */
function fortranToC(src: NpyData, dst: NpyData, shape: readonly number[]): void {
  const s = src as unknown as { [k: number]: number | bigint };
  const d = dst as unknown as { [k: number]: number | bigint };
  if (shape.length === 2) {
    const [rows, cols] = shape;
    const TILE = 64;
    for (let r0 = 0; r0 < rows; r0 += TILE) {
      const r1 = Math.min(rows, r0 + TILE);
      for (let c0 = 0; c0 < cols; c0 += TILE) {
        const c1 = Math.min(cols, c0 + TILE);
        for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) d[r * cols + c] = s[c * rows + r];
      }
    }
    return;
  }
  const n = shape.length;
  const strides: number[] = [];
  for (let a = 0, st = 1; a < n; a++) {
    strides.push(st);
    st *= shape[a];
  }
  const idx = new Array<number>(n).fill(0);
  const last = n - 1;
  let off = 0;
  for (let k = 0; k < dst.length; k++) {
    d[k] = s[off];
    // advance the C-order index (last axis fastest) and the Fortran offset with it
    let a = last;
    while (a >= 0) {
      idx[a]++;
      off += strides[a];
      if (idx[a] < shape[a]) break;
      off -= strides[a] * shape[a];
      idx[a] = 0;
      a--;
    }
  }
}

function swapBytes(buf: Uint8Array, n: number): void {
  for (let i = 0; i < buf.length; i += n) {
    for (let a = i, b = i + n - 1; a < b; a++, b--) {
      const x = buf[a];
      buf[a] = buf[b];
      buf[b] = x;
    }
  }
}

/**
 * The magic, version, header length and header dict of a C-order array of `data`'s dtype and `shape`; an array
 * readNpy would not return, or a shape it would refuse, is refused here naming `what`.
 */
function npyHeader(data: NpyData, shape: readonly number[], what: string): Buffer {
  const { descr } = entryOf(data, WRITTEN, `${what}: data`);
  checkShape(shape, data.length, what);
  if (data instanceof BoolArray) {
    const k = data.findIndex((v) => v > 1);
    if (k >= 0) throw new InvalidArgumentError(`${what}: boolean element ${k} holds ${data[k]}, expected 0 or 1`);
  }
  if (shape.length > MAX_DIMS) throw new ShapeError(`${what}: shape has ${shape.length} dimensions; numpy allows at most ${MAX_DIMS}`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
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

/** Writes `data` (any typed array readNpy returns) with `shape` as a .npy file, atomically (ts/io/atomicWrite). */
export async function writeNpy(path: string, data: NpyData, shape: readonly number[]): Promise<void> {
  const header = npyHeader(data, shape, path);
  await withAtomicFile(path, (fh) => writeChunks(fh, [header, bytesOf(data)]));
}

/** The bytes of a .npy file of `data` with `shape` (for an HTTP response). */
export function encodeNpy(data: NpyData, shape: readonly number[]): Buffer {
  return Buffer.concat(encodeNpyParts(data, shape));
}

/** A .npy file of `data` with `shape` as its header and a view of `data` (nothing copied: for a large response). */
export function encodeNpyParts(data: NpyData, shape: readonly number[]): [Buffer, Buffer] {
  const header = npyHeader(data, shape, 'encodeNpy');
  const bytes = bytesOf(data);
  return [header, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)];
}

/** Options of readMatrixNpy. */
export interface MatrixReadOptions {
  /**
   * Refuse NaN and ±Inf, naming the first (default true: the engine needs finite numbers). False leaves the check
   * to a consumer that makes it anyway (the ridge engine checks its inputs in native code); float64 values beyond
   * float32's range are refused either way, since the conversion here is what would make them infinite.
   */
  finite?: boolean;
  /**
   * 'column': a 1-D array of n values is read as one column (n × 1), as scikit-learn takes a 1-D y (one target).
   * For a caller where that is unambiguous; by default a 1-D array is refused, as for X, whose orientation it cannot say.
   */
  vector?: 'column';
}

/** The rows × columns a readMatrixNpy of this shape returns, or null for a shape it refuses. */
export function matrixShapeOf(shape: readonly number[], opts: Pick<MatrixReadOptions, 'vector'> = {}): [number, number] | null {
  if (shape.length === 2) return [shape[0], shape[1]];
  if (shape.length === 1 && opts.vector === 'column') return [shape[0], 1];
  return null;
}

/**
 * Reads a 2-D float matrix (rows × cols) for the engine, in C order whatever the file's (a Fortran-ordered one is
 * transposed; with `vector: 'column'` a 1-D array is one column). float64 files are converted to float32 (`sourceDtype`
 * says so, for a note to the user); NaN/Inf (and float64 values beyond float32's range) are refused with the first
 * bad element's position; integer files and other ranks are refused with an error naming the file.
 */
export async function readMatrixNpy(path: string, what: string, opts: MatrixReadOptions = {}): Promise<Matrix & { sourceDtype: NpyDType }> {
  const label = `${what} (${path})`;
  const a = await readNpy(path, { dtypes: FLOAT_DTYPES, label });
  const rc = matrixShapeOf(a.shape, opts);
  if (!rc) {
    const or = opts.vector === 'column' ? ' or a 1-D array (samples: one column)' : '';
    throw new ShapeError(`${label}: expected a 2-D array (samples × columns)${or}, got shape (${a.shape.join(', ')})`);
  }
  const [rows, cols] = rc;
  const where = { shape: rc, axes: ['row', 'column'] };
  let data: Float32Array;
  if (a.data instanceof Float32Array) {
    data = a.data;
    if (opts.finite !== false) assertFinite(data, label, where);
  } else if (a.data instanceof Float64Array) {
    if (opts.finite !== false) assertFinite(a.data, label, where);
    const src = a.data;
    data = Float32Array.from(src);
    for (let k = firstNonFinite(data); k >= 0 && k < data.length; k++) {
      if (data[k] - data[k] !== 0 && Number.isFinite(src[k])) {
        throw new NonFiniteError(`${label}: element [row ${Math.floor(k / cols)}, column ${k % cols}] = ${src[k]} is beyond float32's range (±3.4e38)`);
      }
    }
  } else throw new Error(`readMatrixNpy: readNpy returned ${a.dtype} though asked for float data`);
  return { data, rows, cols, sourceDtype: a.dtype };
}

/**
 * Reads a 1-D integer vector (any integer dtype — numpy's default int64 included — or integral floats) such as a
 * groups vector, as int32; a value outside the int32 range is refused naming its index.
 */
export async function readIntVectorNpy(path: string, what: string): Promise<Int32Array> {
  const a = await readNpy(path);
  if (a.shape.length !== 1 && !(a.shape.length === 2 && a.shape[1] === 1)) {
    throw new ShapeError(`${what} (${path}): expected a 1-D array, got shape (${a.shape.join(', ')})`);
  }
  if (a.dtype === 'bool') throw new FormatError(`${what} (${path}): expected integers, got a boolean array`, { path, field: 'descr' });
  if (a.data instanceof Int32Array) return a.data;
  const out = new Int32Array(a.data.length);
  const src = a.data;
  for (let i = 0; i < src.length; i++) {
    const v = typeof src[i] === 'bigint' ? Number(src[i]) : (src[i] as number);
    if (!Number.isInteger(v)) throw new FormatError(`${what} (${path}): element ${i} is ${src[i]}, expected integers`, { path, field: 'data' });
    if (v < -2147483648 || v > 2147483647) {
      throw new FormatError(`${what} (${path}): element ${i} is ${src[i]}, outside the int32 range the groups are held in`, { path, field: 'data' });
    }
    out[i] = v;
  }
  return out;
}
