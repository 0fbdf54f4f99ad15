import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Dataset, File as H5File } from 'h5wasm/node';
import { FormatError, InvalidArgumentError, ShapeError } from '../errors.js';
import type { Matrix } from '../matrix.js';
import { withAtomicPath } from './atomicWrite.js';
import { runHdf5 } from './hdf5Diagnostics.js';
import { fileOpenError, openForReading } from './byteStream.js';
import { divisorOption } from './finite.js';
import { checkShape } from './typedArrays.js';
import { describeNumber } from '../ridge/alphas.js';
import { checkInteger } from '../ridge/options.js';
import { INEXACT_INT64, int64ToFloat64 } from './int64.js';
import { assertVoxelMask, type VoxelMask } from './voxelMask.js';

export type Hdf5TypedArray =
  | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | Float64Array;

/** A [start, stop) range along one axis. */
export type Range = [number, number];

/** h5wasm's wasm heap is capped at 2 GiB and a read past it returns zeros silently: stay well under. */
export const DEFAULT_MAX_SLAB_BYTES = 256 * 2 ** 20;

/** Reads above this size that come back all zero are re-checked with small probe reads. */
const PROBE_ABOVE_BYTES = 64 * 1024;

const HDF5_MAGIC = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

type H5wasm = typeof import('h5wasm/node').default;

let loading: Promise<H5wasm> | undefined;
/** The loaded library, once h5() has resolved (every reader and writer awaits it first). */
let h5wasm: H5wasm;

/**
 * h5wasm, loaded on the first HDF5 read or write: importing it instantiates its WebAssembly module, which reserves
 * its memory then (a command that reads no HDF5 file does not pay for it, nor fail under a low `ulimit -v`). A
 * module that cannot be instantiated is one line naming the cause, not Emscripten's abort with its minified source.
 */
function h5(): Promise<H5wasm> {
  loading ??= loadH5wasm();
  return loading;
}

async function loadH5wasm(): Promise<H5wasm> {
  // Emscripten reports a failed instantiation on console.error as well as in its abort: keep it for the error
  const said: string[] = [];
  const consoleError = console.error;
  console.error = (...args: unknown[]) => void said.push(args.map(String).join(' '));
  try {
    const lib = (await import('h5wasm/node')).default;
    await lib.ready;
    h5wasm = lib;
    for (const line of said) consoleError(line);
    return lib;
  } catch (e) {
    loading = undefined;
    const cause = [...said, (e as Error)?.message ?? String(e)].find((m) => /memory/i.test(m)) ?? (e as Error)?.message ?? String(e);
    // (measured: node + h5wasm started under ulimit -v 12000000 (KiB), not under 11000000)
    const limit = /memory/i.test(cause) ? ' (WebAssembly could not reserve its memory: is a virtual-memory limit set, ulimit -v? reading HDF5 needs about 12 GB of address space)' : '';
    throw new Error(`the HDF5 reader (h5wasm) could not start${limit}: ${oneLineOf(cause)}`);
  } finally {
    console.error = consoleError;
  }
}

const oneLineOf = (s: string) => s.replace(/^failed to asynchronously prepare wasm: /, '').split('\n')[0].trim();

export interface Hdf5DatasetInfo {
  path: string;
  shape: number[];
  dtype: string;
  chunks: number[] | null;
}

/** An open HDF5 file (read-only); close it, or use `using`. */
export class Hdf5Reader {
  readonly path: string;
  private file: H5File | null;

  private constructor(path: string, file: H5File) {
    this.path = path;
    this.file = file;
  }

  /** Opens a file after checking it exists and carries the HDF5 signature (h5wasm would only print noise). */
  static async open(path: string): Promise<Hdf5Reader> {
    await assertHdf5File(path);
    const lib = await h5();
    const file = runHdf5(path, 'open it', () => new lib.File(resolve(path), 'r'), (f) => !(Number(f.file_id) > 0));
    return new Hdf5Reader(path, file);
  }

  /** Dataset paths (recursively) with shapes, dtypes and chunk shapes. */
  datasets(): Hdf5DatasetInfo[] {
    const f = this.handle();
    return runHdf5(this.path, 'list its datasets', () => {
      const out: Hdf5DatasetInfo[] = [];
      for (const p of f.paths()) {
        const e = f.get(p);
        if (e instanceof h5wasm.Dataset) out.push({ path: p, shape: e.shape ?? [], dtype: String(e.dtype), chunks: e.metadata.chunks ?? null });
      }
      return out;
    });
  }

  has(name: string): boolean {
    const f = this.handle();
    return runHdf5(this.path, `look for ${name}`, () => f.get(name) instanceof h5wasm.Dataset);
  }

  /** Shape of a dataset; `expect` entries of -1 accept any size, other mismatches are a ShapeError. */
  shape(name: string, expect?: number[]): number[] {
    const ds = this.dataset(name);
    const shape = runHdf5(this.path, `read the shape of ${name}`, () => ds.shape ?? []);
    if (expect) {
      const ok = shape.length === expect.length && expect.every((e, i) => e < 0 || e === shape[i]);
      if (!ok) {
        throw new ShapeError(
          `${this.path}: dataset ${name} has shape (${shape.join(', ')}), expected (${expect.map((e) => (e < 0 ? '*' : e)).join(', ')})`,
        );
      }
    }
    return shape;
  }

  /** Bytes of one element of a dataset (2 for NSD's int16 betas, 8 for float64). */
  itemSize(name: string): number {
    const ds = this.dataset(name);
    return runHdf5(this.path, `read the item size of ${name}`, () => ds.metadata.size);
  }

  chunks(name: string): number[] | null {
    const ds = this.dataset(name);
    return runHdf5(this.path, `read the chunk shape of ${name}`, () => ds.metadata.chunks ?? null);
  }

  attrs(name: string): Record<string, unknown> {
    const f = this.handle();
    return runHdf5(this.path, `read the attributes of ${name}`, () => {
      const e = name === '/' ? f : f.get(name);
      if (!e || !('attrs' in e)) return {};
      const out: Record<string, unknown> = {};
      for (const [k, a] of Object.entries(e.attrs)) out[k] = a.value;
      return out;
    });
  }

  /**
   * Reads the hyperslab `ranges` (one [start, stop) per axis; omitted axes are whole) as a typed array.
   * Refuses slabs over `maxBytes`, and turns h5wasm's silent all-zero failure into a FormatError.
   */
  readSlab(name: string, ranges: Range[] = [], maxBytes = DEFAULT_MAX_SLAB_BYTES): Hdf5TypedArray {
    checkInteger(maxBytes, 'maxBytes', 'Hdf5Reader.readSlab');
    const ds = this.dataset(name);
    const { shape, itemSize } = runHdf5(this.path, `read the layout of ${name}`, () => ({ shape: ds.shape ?? [], itemSize: ds.metadata.size }));
    const full: Range[] = shape.map((n, i) => ranges[i] ?? [0, n]);
    full.forEach(([a, b], i) => {
      if (!(Number.isInteger(a) && Number.isInteger(b) && 0 <= a && a < b && b <= shape[i])) {
        throw new InvalidArgumentError(`${this.path}: range [${a}, ${b}) on axis ${i} of ${name} (shape ${shape.join('×')}) is out of bounds`);
      }
    });
    const count = full.reduce((p, [a, b]) => p * (b - a), 1);
    const bytes = count * itemSize;
    if (bytes > maxBytes) {
      throw new InvalidArgumentError(
        `${this.path}: a ${mb(bytes)} read of ${name} exceeds the ${mb(maxBytes)} slab cap ` +
          `(h5wasm's 2 GiB heap fails silently past it); read smaller slabs`,
      );
    }
    const out = this.rawSlice(ds, name, full);
    if (out.length !== count) {
      throw new FormatError(`${this.path}: read of ${name} returned ${out.length} values, expected ${count}`);
    }
    if (bytes >= PROBE_ABOVE_BYTES && allZero(out)) this.probeZeros(ds, name, full, bytes);
    return out;
  }

  close(): void {
    const f = this.file;
    this.file = null;
    if (f) {
      try {
        runHdf5(this.path, 'close it', () => f.close());
      } catch {
        // closing a file the library could not read is not a second error
      }
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private handle(): H5File {
    if (!this.file) throw new InvalidArgumentError(`${this.path}: HDF5 file is closed`);
    return this.file;
  }

  private dataset(name: string): Dataset {
    const f = this.handle();
    const e = runHdf5(this.path, `open dataset ${name}`, () => f.get(name));
    if (!(e instanceof h5wasm.Dataset)) {
      throw new FormatError(`${this.path}: no dataset ${name}; found ${this.datasets().map((d) => d.path).join(', ') || 'none'}`);
    }
    return e;
  }

  /** HDF5's class of a dataset's values: 'integer', 'float', 'compound' (MATLAB's complex numbers), 'string', .... */
  valueClass(name: string): string {
    const ds = this.dataset(name);
    return runHdf5(this.path, `read the type of ${name}`, () => typeClassName(ds.metadata.type));
  }

  private rawSlice(ds: Dataset, name: string, ranges: Range[]): Hdf5TypedArray {
    const v = runHdf5(this.path, `read ${name}`, () => ds.slice(ranges.map(([a, b]) => [a, b])));
    if (v instanceof BigInt64Array || v instanceof BigUint64Array) {
      // int64 (nibabel, MATLAB and h5py write it) as float64, exact where float64 is: a rounded value is refused
      return int64ToFloat64(v, (i) => {
        const at = unravel(i, ranges);
        return new FormatError(`${this.path}: dataset ${name} holds the value ${v[i]} at [${at.join(', ')}], ${INEXACT_INT64}`, { path: this.path, field: name });
      });
    }
    if (!isNumericArray(v)) {
      const kind = runHdf5(this.path, `read the type of ${name}`, () => typeClassName(ds.metadata.type));
      throw new FormatError(
        `${this.path}: dataset ${name} holds ${kind} values (dtype ${String(ds.dtype)}), which are not read; expected integers (8 to 64 bits) or floats (32 or 64 bits)`,
        { path: this.path, field: name },
      );
    }
    return v;
  }

  /** An all-zero big read is genuine only if small reads spread over the same region are zero too. */
  private probeZeros(ds: Dataset, name: string, ranges: Range[], bytes: number): void {
    const probes = 8;
    for (let k = 0; k < probes; k++) {
      const sub: Range[] = ranges.map(([a, b]) => [a, b]);
      let count = sub.reduce((p, [a, b]) => p * (b - a), 1);
      for (let ax = 0; ax < sub.length && count > 4096; ax++) {
        const [a, b] = sub[ax];
        const at = a + Math.floor(((b - a) * (2 * k + 1)) / (2 * probes));
        count /= b - a;
        sub[ax] = [at, at + 1];
      }
      if (!allZero(this.rawSlice(ds, name, sub))) {
        throw new FormatError(
          `${this.path}: h5wasm returned all zeros for a ${mb(bytes)} read of ${name} ` +
            `[${ranges.map(([a, b]) => `${a}:${b}`).join(', ')}] although the region holds non-zero values ` +
            `(its wasm heap ran out); read smaller slabs`,
        );
      }
    }
  }
}

/**
 * Masked betas from an NSD-style dataset of shape (T, Z, Y, X) (row-major view of MATLAB's X×Y×Z×T):
 * rows = T trials, columns = mask voxels, each value ÷ `divisor`. Runs of voxels along x are read together;
 * per-voxel-chunked files (NSD's (T,1,1,1) chunks) are read voxel-run by voxel-run, others plane by plane.
 */
export async function readHdf5Masked(
  path: string,
  mask: VoxelMask,
  opts: { dataset?: string; divisor?: number; maxSlabBytes?: number } = {},
): Promise<{ betas: Matrix; shape: number[] }> {
  const name = opts.dataset ?? 'betas';
  assertVoxelMask(mask, path);
  const div = divisorOption(opts.divisor, path);
  // (NaN read as out-of-bounds ranges, 0 and -1 as a '-1 bytes' cap, 2.5 and '3' were taken)
  const maxBytes = opts.maxSlabBytes === undefined ? DEFAULT_MAX_SLAB_BYTES : checkInteger(opts.maxSlabBytes, 'maxSlabBytes', 'readHdf5Masked');
  const [X, Y, Z] = mask.grid;
  const r = await Hdf5Reader.open(path);
  try {
    const shape = r.shape(name);
    if (shape.length !== 4 || shape[1] !== Z || shape[2] !== Y || shape[3] !== X) {
      throw new ShapeError(
        `${path}: dataset ${name} has shape (${shape.join(', ')}), expected (trials, ${Z}, ${Y}, ${X}) = (T, Z, Y, X) ` +
          `to match the mask grid ${X}×${Y}×${Z} (${mask.source})`,
      );
    }
    const T = shape[0];
    const cols = mask.indices.length;
    const out = new Float32Array(T * cols);
    // the dataset's own item size (float64 betas take twice float32's), so that every read stays within the cap
    const item = r.itemSize(name);
    const chunks = r.chunks(name);
    const perVoxel = chunks !== null && chunks[1] === 1 && chunks[2] === 1;
    const runs = xRuns(mask);
    /** Trials per read of `values` values a trial, within the cap (at least 1: readSlab names a cap below one). */
    const trialBlock = (values: number) => Math.max(1, Math.min(T, Math.floor(maxBytes / (values * item))));
    /** One run of voxels along x, in trial blocks, and in pieces along x when even one trial of it exceeds the cap. */
    const readRun = (run: XRun) => {
      const step = Math.max(1, Math.floor(maxBytes / item));
      for (let a = run.x0; a < run.x1; a += step) {
        const b = Math.min(run.x1, a + step);
        const w = b - a;
        const tBlock = trialBlock(w);
        for (let t0 = 0; t0 < T; t0 += tBlock) {
          const t1 = Math.min(T, t0 + tBlock);
          const v = r.readSlab(name, [[t0, t1], [run.z, run.z + 1], [run.y, run.y + 1], [a, b]], maxBytes);
          for (let t = t0; t < t1; t++) {
            const o = t * cols + run.col + (a - run.x0);
            for (let k = 0; k < w; k++) out[o + k] = v[(t - t0) * w + k] / div;
          }
        }
      }
    };
    if (perVoxel) {
      for (const run of runs) readRun(run);
    } else {
      // Plane by plane over the mask's y/x bounding box, in trial blocks that fit the slab cap (run by run where
      // one trial of the box alone exceeds it).
      for (let z = 0; z < Z; z++) {
        const inPlane = runs.filter((q) => q.z === z);
        if (inPlane.length === 0) continue;
        const y0 = Math.min(...inPlane.map((q) => q.y));
        const y1 = Math.max(...inPlane.map((q) => q.y)) + 1;
        const x0 = Math.min(...inPlane.map((q) => q.x0));
        const x1 = Math.max(...inPlane.map((q) => q.x1));
        const w = x1 - x0;
        const h = y1 - y0;
        if (w * h * item > maxBytes) {
          for (const q of inPlane) readRun(q);
          continue;
        }
        const tBlock = trialBlock(w * h);
        for (let t0 = 0; t0 < T; t0 += tBlock) {
          const t1 = Math.min(T, t0 + tBlock);
          const v = r.readSlab(name, [[t0, t1], [z, z + 1], [y0, y1], [x0, x1]], maxBytes);
          for (const q of inPlane) {
            for (let t = t0; t < t1; t++) {
              const base = ((t - t0) * h + (q.y - y0)) * w - x0;
              const o = t * cols + q.col;
              for (let x = q.x0; x < q.x1; x++) out[o + x - q.x0] = v[base + x] / div;
            }
          }
        }
      }
    }
    return { betas: { data: out, rows: T, cols }, shape };
  } finally {
    r.close();
  }
}

export interface Hdf5DatasetSpec {
  name: string;
  data: Hdf5TypedArray;
  shape: number[];
  /** Chunk shape: one integer >= 1 per axis, none above the shape's. */
  chunks?: number[];
  /** gzip level 0..9, on a chunked dataset; NSD's betas are stored uncompressed. */
  compression?: number;
  attrs?: Record<string, string | number>;
}

const DTYPES: [new (n: number) => Hdf5TypedArray, string][] = [
  [Int8Array, '<b'], [Uint8Array, '<B'], [Int16Array, '<h'], [Uint16Array, '<H'],
  [Int32Array, '<i'], [Uint32Array, '<I'], [Float32Array, '<f'], [Float64Array, '<d'],
];

/** Datasets above this are written in slabs: h5wasm copies what it writes into its 2 GiB heap. */
const WRITE_SLAB_BYTES = 64 << 20;

/**
 * The axis a chunked dataset is written along, slab by slab: the first whose chunks do not span it (so that
 * slabs start on chunk boundaries and no chunk is written twice), with the slab's thickness in elements.
 */
function slabAxis(shape: number[], chunks: number[], itemBytes: number, slabBytes: number): { axis: number; step: number } | null {
  const axis = shape.findIndex((n, i) => chunks[i] < n);
  if (axis < 0) return null;
  const perIndex = (itemBytes * shape.reduce((a, b) => a * b, 1)) / shape[axis];
  const step = Math.max(1, Math.floor(slabBytes / perIndex / chunks[axis])) * chunks[axis];
  return step >= shape[axis] ? null : { axis, step };
}

/** Elements [s, e) along `axis` of a row-major array of `shape`, copied out contiguously. */
function slabOf<T extends Hdf5TypedArray>(data: T, shape: number[], axis: number, s: number, e: number): T {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1), inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const out = new (data.constructor as new (n: number) => T)(outer * (e - s) * inner);
  for (let o = 0; o < outer; o++) out.set(data.subarray((o * shape[axis] + s) * inner, (o * shape[axis] + e) * inner), o * (e - s) * inner);
  return out;
}

/** The h5wasm dtype of a dataset's data (without one h5wasm guesses: a BigInt64Array was written without one, a plain array as float64). */
function dtypeOfData(d: Hdf5DatasetSpec, path: string): string {
  const dtype = DTYPES.find(([c]) => d.data instanceof c)?.[1];
  if (dtype === undefined) {
    throw new InvalidArgumentError(
      `${path}: dataset ${d.name}: expected an Int8/Uint8/Int16/Uint16/Int32/Uint32/Float32/Float64Array, got ${(d.data as object)?.constructor?.name ?? typeof d.data}`,
    );
  }
  return dtype;
}

/**
 * A dataset's data, shape, chunks and compression: chunks one positive integer per axis, none past the shape's
 * (HDF5's rule for fixed-size datasets; a 0-length axis takes any), and compression a gzip level 0..9 on a
 * chunked dataset (h5wasm has no default chunking; level 10 failed inside the gzip filter).
 */
function checkDatasetSpec(d: Hdf5DatasetSpec, path: string): void {
  const what = `${path}: dataset ${d.name}`;
  dtypeOfData(d, path);
  checkShape(d.shape, d.data.length, what);
  if (d.chunks !== undefined) {
    const c: unknown = d.chunks;
    const ok = Array.isArray(c) && c.length === d.shape.length && c.length > 0 && c.every((k, i) => Number.isInteger(k) && k >= 1 && (k <= d.shape[i] || d.shape[i] === 0));
    if (!ok) {
      const shown = Array.isArray(c) ? `[${c.map(describeNumber).join(', ')}]` : describeNumber(c);
      throw new InvalidArgumentError(`${what} chunks: expected ${d.shape.length} integers >= 1, none above the shape [${d.shape.join(', ')}], got ${shown}`);
    }
  }
  if (d.compression !== undefined) {
    checkInteger(d.compression, 'compression', what, 0, 9);
    // (level 0 is no compression: h5wasm writes it unchunked)
    if (d.compression > 0 && d.chunks === undefined) throw new InvalidArgumentError(`${what} compression: a compressed dataset needs chunks (give chunks with it)`);
  }
}

/**
 * Writes datasets into a new HDF5 file (replacing any old one only once the new file is complete). A chunked
 * dataset above 64 MB is written a slab at a time (an NSD session's 1 GB of betas in one piece ran h5wasm out
 * of heap: "memory allocation failed for chunk"); `slabBytes` lowers that size (for tests).
 */
export async function writeHdf5(
  path: string,
  datasets: Hdf5DatasetSpec[],
  fileAttrs: Record<string, string | number> = {},
  slabBytes = WRITE_SLAB_BYTES,
): Promise<void> {
  // every argument before the file is made: h5wasm reported bad ones as FormatErrors in emscripten's words
  checkInteger(slabBytes, 'slabBytes', 'writeHdf5');
  for (const d of datasets) checkDatasetSpec(d, path);
  const lib = await h5();
  await withAtomicPath(path, (tmpPath) => runHdf5(path, 'write it', () => {
    const f = new lib.File(resolve(tmpPath), 'w');
    try {
      for (const [k, v] of Object.entries(fileAttrs)) f.create_attribute(k, v);
      for (const d of datasets) {
        const dtype = dtypeOfData(d, path);
        const parts = d.name.split('/').filter(Boolean);
        let g = f as H5File | ReturnType<H5File['create_group']>;
        for (const p of parts.slice(0, -1)) g = (g.get(p) as typeof g | null) ?? g.create_group(p);
        const slabs = d.chunks && d.data.byteLength > slabBytes ? slabAxis(d.shape, d.chunks, d.data.BYTES_PER_ELEMENT, slabBytes) : null;
        const first = slabs ? d.shape.map((n, i) => (i === slabs.axis ? slabs.step : n)) : d.shape;
        const ds = g.create_dataset({
          name: parts[parts.length - 1],
          data: slabs ? slabOf(d.data, d.shape, slabs.axis, 0, slabs.step) : d.data,
          shape: first,
          ...(slabs ? { maxshape: d.shape } : {}),
          dtype,
          chunks: d.chunks ?? null,
          ...(d.compression !== undefined ? { compression: d.compression } : {}),
        });
        if (slabs) {
          for (let s0 = slabs.step; s0 < d.shape[slabs.axis]; s0 += slabs.step) {
            const s1 = Math.min(d.shape[slabs.axis], s0 + slabs.step);
            ds.resize(d.shape.map((n, i) => (i === slabs.axis ? s1 : n)));
            ds.write_slice(d.shape.map((n, i) => (i === slabs.axis ? [s0, s1] : [0, n])), slabOf(d.data, d.shape, slabs.axis, s0, s1));
          }
        }
        for (const [k, v] of Object.entries(d.attrs ?? {})) ds.create_attribute(k, v);
      }
    } finally {
      f.close();
    }
  }));
}

/** Byte offset of the HDF5 superblock (0, 512, 1024, ...; MAT v7.3 files use 512), or -1. */
export async function hdf5SignatureOffset(path: string): Promise<number> {
  const fh = await openForReading(path);
  try {
    const size = (await fh.stat()).size;
    const b = Buffer.alloc(8);
    for (let off = 0; off + 8 <= size && off <= 1 << 20; off = off === 0 ? 512 : off * 2) {
      await fh.read(b, 0, 8, off);
      if (HDF5_MAGIC.every((m, i) => b[i] === m)) return off;
    }
    return -1;
  } finally {
    await fh.close();
  }
}

async function assertHdf5File(path: string): Promise<void> {
  try {
    if (!(await stat(path)).isFile()) throw new FormatError(`${path}: not a file`);
  } catch (e) {
    throw e instanceof FormatError ? e : fileOpenError(path, e);
  }
  if ((await hdf5SignatureOffset(path)) < 0) throw new FormatError(`${path}: not an HDF5 file (no HDF5 signature)`);
}

interface XRun {
  z: number;
  y: number;
  x0: number;
  x1: number;
  /** Column of the run's first voxel in the output. */
  col: number;
}

/** Consecutive mask voxels along x (same y, z): one hyperslab each. */
function xRuns(mask: VoxelMask): XRun[] {
  const [X, Y] = mask.grid;
  const runs: XRun[] = [];
  const idx = mask.indices;
  for (let j = 0; j < idx.length; ) {
    const start = idx[j];
    let k = j + 1;
    while (k < idx.length && idx[k] === idx[k - 1] + 1 && idx[k] % X !== 0) k++;
    const x0 = start % X;
    runs.push({ z: Math.floor(start / (X * Y)), y: Math.floor(start / X) % Y, x0, x1: x0 + (k - j), col: j });
    j = k;
  }
  return runs;
}

// H5T_class_t
const TYPE_CLASSES = ['integer', 'float', 'time', 'string', 'bitfield', 'opaque', 'compound', 'reference', 'enum', 'variable-length', 'array'];

function typeClassName(type: number): string {
  return TYPE_CLASSES[type] ?? `type class ${type}`;
}

/** The dataset coordinates of element `i` of a row-major hyperslab. */
function unravel(i: number, ranges: Range[]): number[] {
  const at = ranges.map(([a]) => a);
  for (let ax = ranges.length - 1; ax >= 0; ax--) {
    const n = ranges[ax][1] - ranges[ax][0];
    at[ax] += i % n;
    i = Math.floor(i / n);
  }
  return at;
}

function isNumericArray(v: unknown): v is Hdf5TypedArray {
  return DTYPES.some(([c]) => v instanceof c);
}

function allZero(a: Hdf5TypedArray): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) return false;
  return true;
}

/** A size for a message: MB from 0.1 MB, bytes below (a small cap printed as '0.0 MB' said nothing). */
function mb(bytes: number): string {
  return bytes >= 0.05 * 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(1)} MB` : `${bytes.toLocaleString('en')} bytes`;
}
