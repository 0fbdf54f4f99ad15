import { open } from 'node:fs/promises';
import { deflateSync, inflateSync } from 'node:zlib';
import { BrainlatentError, FormatError, InvalidArgumentError, LimitError, ShapeError } from '../errors.js';
import { describeNumber } from '../ridge/alphas.js';
import { checkInteger } from '../ridge/options.js';
import { writeFileAtomic } from './atomicWrite.js';
import { fileOpenError } from './byteStream.js';
import { DEFAULT_MAX_SLAB_BYTES, Hdf5Reader, hdf5SignatureOffset, type Range } from './hdf5.js';
import { INEXACT_INT64, isExactInt64 } from './int64.js';
import { byteLimit, readWholeFile } from './readWhole.js';
import { arrayKind } from './typedArrays.js';

/** MATLAB numeric classes we read. */
export type MatClass = 'double' | 'single' | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'logical';

/** A numeric MATLAB array: values as float64 in MATLAB's column-major order. */
export interface MatArray {
  name: string;
  className: MatClass;
  /** MATLAB dims, e.g. [8, 10000] for an 8×10000 array. */
  dims: number[];
  data: Float64Array;
}

/** A variable present in the file whose class (cell, struct, char, sparse, complex, ...) we do not read. */
export interface MatSkipped {
  name: string;
  className: string;
  skipped: true;
  /** Why a numeric variable was not read (not asked for, too big, a value float64 cannot hold, ...). */
  reason?: string;
}

export interface MatReadOptions {
  /**
   * The variables needed. A v7.3 file reads only these (the others are listed, unread), and one of them that
   * cannot be read is an error; without the list, a v7.3 variable that cannot be read is skipped with its reason.
   * A v5 file is parsed whole either way.
   */
  variables?: readonly string[];
  /** The most bytes one HDF5 read of a v7.3 variable takes (default DEFAULT_MAX_SLAB_BYTES; lower for tests). */
  slabBytes?: number;
}

export interface MatFile {
  path: string;
  version: '5' | '7.3';
  variables: Map<string, MatArray | MatSkipped>;
}

// mxCLASS ids (MAT-file format, Table 1-3).
const CLASS_IDS: Record<number, string> = {
  1: 'cell', 2: 'struct', 3: 'object', 4: 'char', 5: 'sparse', 6: 'double', 7: 'single', 8: 'int8', 9: 'uint8',
  10: 'int16', 11: 'uint16', 12: 'int32', 13: 'uint32', 14: 'int64', 15: 'uint64', 16: 'function', 17: 'opaque',
};
const NUMERIC_CLASSES = new Set(['double', 'single', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'logical']);

// miTYPE ids (Table 1-1).
const MI = { INT8: 1, UINT8: 2, INT16: 3, UINT16: 4, INT32: 5, UINT32: 6, SINGLE: 7, DOUBLE: 9, INT64: 12, UINT64: 13, MATRIX: 14, COMPRESSED: 15, UTF8: 16, UTF16: 17, UTF32: 18 } as const;
const MI_NAMES: Record<number, string> = Object.fromEntries(Object.entries(MI).map(([k, v]) => [v, `mi${k}`]));
const MI_SIZES: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8 };

/** Reads a MAT-file: v5/v7 (optionally zlib-compressed elements) with our own parser, v7.3 through h5wasm. */
export async function readMat(path: string, opts: MatReadOptions = {}): Promise<MatFile> {
  // checked before the file is opened (NaN read as out-of-bounds ranges, 0 and -1 as a '-1 bytes' cap)
  if (opts.slabBytes !== undefined) checkInteger(opts.slabBytes, 'slabBytes', 'readMat');
  // Decide the version from the header alone: v7.3 files (HDF5) can be many GB and are read in slabs.
  let head: Buffer;
  try {
    const fh = await open(path, 'r');
    try {
      head = Buffer.alloc(128);
      const { bytesRead } = await fh.read(head, 0, 128, 0);
      head = head.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch (e) {
    throw fileOpenError(path, e);
  }
  const text = head.subarray(0, Math.min(116, head.length)).toString('latin1');
  if (text.startsWith('MATLAB 7.3') || (await hdf5SignatureOffset(path)) === 512) return readMat73(path, opts);
  if (head.length < 128 || !text.startsWith('MATLAB 5.0')) {
    throw new FormatError(`${path}: not a MAT-file (expected a 128-byte header starting "MATLAB 5.0" or "MATLAB 7.3")`);
  }
  const bytes = await readWholeFile(path, byteLimit('BRAINLATENT_MAX_MAT_BYTES', 2 ** 31 - 1), 'BRAINLATENT_MAX_MAT_BYTES');
  const endian = bytes.subarray(126, 128).toString('latin1');
  if (endian !== 'IM' && endian !== 'MI') {
    throw new FormatError(`${path}: MAT header endian indicator "${endian}", expected "IM" or "MI"`, { path, field: 'endian' });
  }
  const le = endian === 'IM';
  const version = le ? bytes.readUInt16LE(124) : bytes.readUInt16BE(124);
  if (version !== 0x0100) throw new FormatError(`${path}: MAT header version 0x${version.toString(16)}, expected 0x0100 (MAT v5)`, { path, field: 'version' });
  const variables = new Map<string, MatArray | MatSkipped>();
  const budget = { left: byteLimit('BRAINLATENT_MAX_MAT_BYTES', 2 ** 31 - 1) };
  try {
    parseElements(path, bytes.subarray(128), le, variables, budget, { base: 128 });
  } catch (e) {
    // Any read past a sub-element's end that a check missed is still a FormatError naming the file.
    if (e instanceof RangeError) throw new FormatError(`${path}: malformed MAT element (${e.message})`, { path });
    throw e;
  }
  return { path, version: '5', variables };
}

/** The numeric variable `name`, with `dims` checked when given (-1 = any); a clear error otherwise. */
export function matNumeric(mat: MatFile, name: string, dims?: number[]): MatArray {
  const v = mat.variables.get(name);
  if (!v) {
    throw new FormatError(`${mat.path}: no variable ${name}; found ${[...mat.variables.keys()].join(', ') || 'none'}`);
  }
  if ('skipped' in v) {
    if (v.reason) throw new FormatError(`${mat.path}: variable ${name} (MATLAB ${v.className}) is not read: ${v.reason}`, { path: mat.path, field: name });
    throw new FormatError(`${mat.path}: variable ${name} is a MATLAB ${v.className}, expected a numeric array`);
  }
  if (dims && (dims.length !== v.dims.length || dims.some((d, i) => d >= 0 && d !== v.dims[i]))) {
    throw new ShapeError(
      `${mat.path}: variable ${name} is ${v.dims.join('×')}, expected ${dims.map((d) => (d < 0 ? '*' : d)).join('×')}`,
    );
  }
  return v;
}

function parseElements(
  path: string,
  buf: Uint8Array,
  le: boolean,
  out: Map<string, MatArray | MatSkipped>,
  budget: { left: number },
  /** Where `buf` lies: from file byte `base`, or inflated from the compressed element at file byte `inside`. */
  at: { base: number } | { inside: number },
): void {
  const bad = (field: string, msg: string) => new FormatError(`${path}: ${msg}`, { path, field });
  const topLevel = 'base' in at;
  // offsets as a hex dump of the file shows them
  const where = (off: number) => ('base' in at ? `at byte ${at.base + off}` : `at byte ${off} inside the compressed element at byte ${at.inside}`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  while (off + 8 <= buf.length) {
    const tag = readTag(dv, off, le);
    const start = off + tag.headerBytes;
    if (start + tag.nbytes > buf.length) {
      throw bad('element', `MAT element ${where(off)} claims ${tag.nbytes} bytes, only ${buf.length - start} remain (truncated file?)`);
    }
    const payload = buf.subarray(start, start + tag.nbytes);
    if (tag.type === MI.COMPRESSED) {
      // MATLAB never nests compressed elements; refusing them bounds the work a crafted file can ask for.
      if (!topLevel) throw bad('miCOMPRESSED', `a compressed element ${where(off)}`);
      let inflated: Buffer;
      try {
        inflated = inflateSync(payload, { maxOutputLength: Math.max(1, budget.left) });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
          throw new LimitError(
            `${path}: compressed MAT element ${where(off)} inflates past the ${budget.left}-byte limit (raise it with BRAINLATENT_MAX_MAT_BYTES)`,
            { path, field: 'miCOMPRESSED' },
          );
        }
        throw bad('miCOMPRESSED', `corrupt compressed MAT element ${where(off)} (${e instanceof Error ? e.message : String(e)})`);
      }
      budget.left -= inflated.length;
      parseElements(path, inflated, le, out, budget, { inside: at.base + off });
      off = start + tag.nbytes; // compressed elements are not padded
    } else if (tag.type === MI.MATRIX) {
      if (tag.nbytes > 0) {
        const v = parseMatrix(path, payload, le);
        if (out.has(v.name)) throw bad('name', `variable ${v.name} appears twice`);
        out.set(v.name, v);
      }
      off = start + pad8(tag.nbytes);
    } else {
      throw bad('element', `top-level MAT element of type ${MI_NAMES[tag.type] ?? tag.type} ${where(off)}, expected miMATRIX or miCOMPRESSED`);
    }
  }
  if (off < buf.length && buf.subarray(off).some((b) => b !== 0)) {
    throw bad('element', `${buf.length - off} trailing bytes after the last MAT element`);
  }
}

interface Tag {
  type: number;
  nbytes: number;
  headerBytes: number;
}

function readTag(dv: DataView, off: number, le: boolean): Tag {
  const first = dv.getUint32(off, le);
  // Small data element: size in the upper 16 bits, data in the following 4 bytes.
  if (first >>> 16 !== 0) return { type: first & 0xffff, nbytes: first >>> 16, headerBytes: 4 };
  return { type: first, nbytes: dv.getUint32(off + 4, le), headerBytes: 8 };
}

function pad8(n: number): number {
  return (n + 7) & ~7;
}

/** Sub-elements of an miMATRIX in order: flags, dims, name, real part (then imaginary, or class-specific parts). */
function parseMatrix(path: string, buf: Uint8Array, le: boolean): MatArray | MatSkipped {
  const bad = (field: string, msg: string) => new FormatError(`${path}: ${msg}`, { path, field });
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  const next = (what: string) => {
    if (off + 8 > buf.length) throw bad(what, `truncated miMATRIX element: no room for its ${what}`);
    const tag = readTag(dv, off, le);
    const start = off + tag.headerBytes;
    if (tag.headerBytes === 4 && tag.nbytes > 4) throw bad(what, `small data element for the ${what} claims ${tag.nbytes} bytes (at most 4)`);
    if (start + tag.nbytes > buf.length) throw bad(what, `truncated miMATRIX element: its ${what} claims ${tag.nbytes} bytes, ${buf.length - start} remain`);
    off = tag.headerBytes === 4 ? off + 8 : start + pad8(tag.nbytes);
    return { type: tag.type, bytes: buf.subarray(start, start + tag.nbytes) };
  };
  const flags = next('array flags');
  if (flags.bytes.length < 4) throw bad('array flags', `array flags of ${flags.bytes.length} bytes, expected 8`);
  const fdv = new DataView(flags.bytes.buffer, flags.bytes.byteOffset, flags.bytes.byteLength);
  const word = fdv.getUint32(0, le);
  const classId = word & 0xff;
  const complex = (word & 0x800) !== 0;
  const logical = (word & 0x200) !== 0;
  const dimsEl = next('dimensions');
  let dims: number[];
  try {
    dims = Array.from(decodeNumbers(path, 'dims', dimsEl.type, dimsEl.bytes, le));
  } catch (e) {
    if (e instanceof InexactInt64) throw bad('dimensions', `array dimension ${e.value} is not valid (at most 2^31 − 1)`);
    throw e;
  }
  if (dims.length < 2 || dims.some((d) => !Number.isInteger(d) || d < 0 || d > 2 ** 31 - 1)) {
    throw bad('dimensions', `array dimensions ${dims.join('×')} are not valid (at least two non-negative integers)`);
  }
  const nameEl = next('name');
  const name = Buffer.from(nameEl.bytes).toString('latin1');
  const className = logical ? 'logical' : CLASS_IDS[classId] ?? `class ${classId}`;
  if (!NUMERIC_CLASSES.has(className) || complex) return { name, className: complex ? `complex ${className}` : className, skipped: true };
  const count = dims.reduce((a, b) => a * b, 1);
  const real = next('real part');
  const size = MI_SIZES[real.type];
  // The element's byte length bounds what is allocated: checked against the dims before decoding.
  if (size && real.bytes.length !== count * size) {
    throw bad('real part', `variable ${name} holds ${real.bytes.length} bytes of ${MI_NAMES[real.type]}, its dims ${dims.join('×')} need ${count * size}`);
  }
  let data: Float64Array;
  try {
    data = decodeNumbers(path, name, real.type, real.bytes, le);
  } catch (e) {
    // a value float64 would round leaves this variable unread, not the whole file
    if (e instanceof InexactInt64) return { name, className, skipped: true, reason: `it holds the value ${e.value} at index ${e.index}, ${INEXACT_INT64}` };
    throw e;
  }
  if (data.length !== count) {
    throw bad('real part', `variable ${name} holds ${data.length} values, its dims ${dims.join('×')} need ${count}`);
  }
  return { name, className: className as MatClass, dims, data };
}

/** Decodes a numeric data element of any miTYPE into float64 (MATLAB may store doubles as smaller ints). */
function decodeNumbers(path: string, what: string, type: number, bytes: Uint8Array, le: boolean): Float64Array {
  const size = MI_SIZES[type];
  if (!size) {
    throw new FormatError(
      `${path}: variable ${what} uses MAT data element type ${MI_NAMES[type] ?? type}, which is not read; ` +
        `expected a numeric type (miINT8 ... miUINT64, miSINGLE, miDOUBLE)`,
      { path, field: what },
    );
  }
  if (bytes.length % size !== 0) {
    throw new FormatError(`${path}: ${what}: ${bytes.length} bytes is not a whole number of ${MI_NAMES[type]} values`, { path, field: what });
  }
  const n = bytes.length / size;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float64Array(n);
  for (let i = 0, o = 0; i < n; i++, o += size) {
    switch (type) {
      case MI.INT8: out[i] = dv.getInt8(o); break;
      case MI.UINT8: out[i] = dv.getUint8(o); break;
      case MI.INT16: out[i] = dv.getInt16(o, le); break;
      case MI.UINT16: out[i] = dv.getUint16(o, le); break;
      case MI.INT32: out[i] = dv.getInt32(o, le); break;
      case MI.UINT32: out[i] = dv.getUint32(o, le); break;
      case MI.SINGLE: out[i] = dv.getFloat32(o, le); break;
      case MI.DOUBLE: out[i] = dv.getFloat64(o, le); break;
      case MI.INT64: out[i] = exactInt64(dv.getBigInt64(o, le), i); break;
      case MI.UINT64: out[i] = exactInt64(dv.getBigUint64(o, le), i); break;
    }
  }
  return out;
}

class InexactInt64 extends Error {
  constructor(readonly index: number, readonly value: bigint) {
    super(`int64 value ${value} at index ${index} ${INEXACT_INT64}`);
  }
}

/** An int64/uint64 element as float64, exact (as every other integer class reads): a value it would round throws. */
function exactInt64(x: bigint, index: number): number {
  if (!isExactInt64(x)) throw new InexactInt64(index, x);
  return Number(x);
}

/**
 * v7.3 files are HDF5: each root dataset carries a MATLAB_class attribute; row-major shapes are MATLAB's reversed.
 * Only the variables asked for are read (all when none are named): a variable nobody needs (complex, int64 beyond
 * 2^53, bigger than the limit) does not refuse the file.
 */
async function readMat73(path: string, opts: MatReadOptions): Promise<MatFile> {
  const variables = new Map<string, MatArray | MatSkipped>();
  const wanted = opts.variables ? new Set(opts.variables) : null;
  const budget = { left: byteLimit('BRAINLATENT_MAX_MAT_BYTES', 2 ** 31 - 1) };
  const r = await Hdf5Reader.open(path);
  try {
    for (const d of r.datasets()) {
      const name = d.path.replace(/^\//, '');
      if (name.includes('/') || name.startsWith('#')) continue; // #refs# and struct members
      const attrs = r.attrs(name);
      const cls = String(attrs.MATLAB_class ?? '');
      const skip = (className: string, reason?: string) => variables.set(name, { name, className, skipped: true, ...(reason ? { reason } : {}) });
      // (a variable not asked for is not looked at further: its type may be one this reader cannot tell)
      if (wanted && !wanted.has(name)) {
        skip(cls || 'unknown', `not asked for (readMat read only ${[...wanted].join(', ')})`);
      } else if (!NUMERIC_CLASSES.has(cls) || attrs.MATLAB_empty) {
        skip(cls || 'unknown');
      } else if (r.valueClass(name) === 'compound') {
        skip(`complex ${cls}`); // MATLAB stores complex numbers as {real, imag} pairs
      } else {
        // MATLAB dims have at least two entries, as the v5 reader requires
        const dims = [...d.shape].reverse();
        while (dims.length < 2) dims.push(1);
        const before = budget.left;
        try {
          variables.set(name, { name, className: cls as MatClass, dims, data: readVariable73(r, name, d.shape, budget, opts.slabBytes) });
        } catch (e) {
          if (wanted || !(e instanceof BrainlatentError)) throw e;
          budget.left = before; // (a variable skipped holds none of the budget)
          skip(cls, e.message.startsWith(`${path}: `) ? e.message.slice(path.length + 2) : e.message);
        }
      }
    }
  } finally {
    r.close();
  }
  return { path, version: '7.3', variables };
}

/** A whole v7.3 variable as float64, read in hyperslabs that each fit `slabBytes` (h5wasm's heap is capped). */
function readVariable73(r: Hdf5Reader, name: string, shape: number[], budget: { left: number }, slabBytes = DEFAULT_MAX_SLAB_BYTES): Float64Array {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n * 8 > budget.left) {
    throw new LimitError(
      `${r.path}: variable ${name} (${[...shape].reverse().join('×')}) takes ${n * 8} bytes as float64, past the ${budget.left}-byte limit left ` +
        `(raise it with BRAINLATENT_MAX_MAT_BYTES)`,
      { path: r.path, field: name },
    );
  }
  budget.left -= n * 8;
  const out = new Float64Array(n);
  if (n === 0) return out;
  if (shape.length === 0) {
    out.set(r.readSlab(name, [], slabBytes));
    return out;
  }
  const item = r.itemSize(name);
  // the first axis whose inner block (the axes after it, whole) fits a slab: slabs step along it, one index of
  // each axis before it at a time, so that every slab is a contiguous run of the row-major output
  const inner = (k: number) => shape.slice(k + 1).reduce((a, b) => a * b, 1);
  let k = 0;
  while (k < shape.length - 1 && inner(k) * item > slabBytes) k++;
  const step = Math.max(1, Math.floor(slabBytes / (inner(k) * item)));
  const outer = shape.slice(0, k).reduce((a, b) => a * b, 1);
  for (let o = 0; o < outer; o++) {
    const lead: Range[] = [];
    for (let ax = k - 1, rest = o; ax >= 0; ax--) {
      lead.unshift([rest % shape[ax], (rest % shape[ax]) + 1]);
      rest = Math.floor(rest / shape[ax]);
    }
    for (let a = 0; a < shape[k]; a += step) {
      const b = Math.min(shape[k], a + step);
      out.set(r.readSlab(name, [...lead, [a, b]], slabBytes), (o * shape[k] + a) * inner(k));
    }
  }
  return out;
}

export interface MatWriteVariable {
  /** MATLAB dims (column-major); data in column-major order. */
  dims: number[];
  data: Float64Array | Float32Array | Int32Array | Uint32Array | Int16Array | Uint16Array | Int8Array | Uint8Array;
}

const WRITE_TYPES: [new (n: number) => MatWriteVariable['data'], MatClass, number, number][] = [
  [Float64Array, 'double', 6, MI.DOUBLE], [Float32Array, 'single', 7, MI.SINGLE],
  [Int32Array, 'int32', 12, MI.INT32], [Uint32Array, 'uint32', 13, MI.UINT32],
  [Int16Array, 'int16', 10, MI.INT16], [Uint16Array, 'uint16', 11, MI.UINT16],
  [Int8Array, 'int8', 8, MI.INT8], [Uint8Array, 'uint8', 9, MI.UINT8],
];

/** Writes a little-endian MAT v5 file of numeric arrays; `compress` wraps each in a zlib miCOMPRESSED element (v7). */
export async function writeMat(path: string, vars: Record<string, MatWriteVariable>, opts: { compress?: boolean } = {}): Promise<void> {
  const header = Buffer.alloc(128, 0x20);
  header.write(`MATLAB 5.0 MAT-file, Platform: brainlatent, Created on: ${new Date().toUTCString()}`, 0, 116, 'latin1');
  header.fill(0, 116, 124);
  header.writeUInt16LE(0x0100, 124);
  header.write('IM', 126, 'latin1');
  const parts: Buffer[] = [header];
  for (const [name, v] of Object.entries(vars)) {
    if (!/^[A-Za-z][A-Za-z0-9_]{0,62}$/.test(name)) throw new InvalidArgumentError(`${path}: "${name}" is not a MATLAB variable name`);
    const t = WRITE_TYPES.find(([c]) => v.data instanceof c);
    if (!t) {
      throw new InvalidArgumentError(`${path}: ${name} data is ${arrayKind(v.data)}; expected one of ${WRITE_TYPES.map(([c]) => c.name).join(', ')}`);
    }
    // readMat refuses fewer than two dims and dims that are not int32 integers >= 0 (Int32Array.from would truncate them)
    if (!Array.isArray(v.dims) || v.dims.length < 2 || !v.dims.every((d) => Number.isInteger(d) && d >= 0 && d <= 2 ** 31 - 1)) {
      const shown = Array.isArray(v.dims) ? `[${v.dims.map(describeNumber).join(', ')}]` : arrayKind(v.dims);
      throw new ShapeError(`${path}: ${name} dims ${shown} must be at least two integers >= 0 (MATLAB dims, e.g. [1, n] for a row)`);
    }
    const count = v.dims.reduce((a, b) => a * b, 1);
    if (count !== v.data.length) throw new ShapeError(`${path}: ${name} has ${v.data.length} values, dims ${v.dims.join('×')} need ${count}`);
    const flags = new Uint32Array([t[2], 0]);
    const body = Buffer.concat([
      element(MI.UINT32, new Uint8Array(flags.buffer)),
      element(MI.INT32, new Uint8Array(Int32Array.from(v.dims).buffer)),
      element(MI.INT8, Buffer.from(name, 'latin1')),
      element(t[3], new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength)),
    ]);
    const matrix = element(MI.MATRIX, body);
    if (opts.compress) {
      const z = deflateSync(matrix);
      const tag = Buffer.alloc(8);
      tag.writeUInt32LE(MI.COMPRESSED, 0);
      tag.writeUInt32LE(z.length, 4);
      parts.push(tag, z);
    } else parts.push(matrix);
  }
  await writeFileAtomic(path, Buffer.concat(parts));
}

function element(type: number, data: Uint8Array): Buffer {
  const out = Buffer.alloc(8 + pad8(data.length));
  out.writeUInt32LE(type, 0);
  out.writeUInt32LE(data.length, 4);
  out.set(data, 8);
  return out;
}
