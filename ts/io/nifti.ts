import { endianness } from 'node:os';
import { createGzip } from 'node:zlib';
import { FormatError, InvalidArgumentError, ShapeError } from '../errors.js';
import type { Matrix } from '../matrix.js';
import { describeNumber } from '../ridge/alphas.js';
import { writeStreamAtomic } from './atomicWrite.js';
import { ByteStream, MAX_GZIP_RATIO } from './byteStream.js';
import {
  datatypeBytes,
  effectiveScaling,
  NIFTI_WRITTEN_DATATYPES,
  niftiGeometry,
  parseNiftiHeader,
  serializeNiftiHeader,
  sniffHeaderSize,
  type NiftiDatatype,
  type NiftiGeometry,
  type NiftiHeader,
} from './niftiHeader.js';
import { divisorOption } from './finite.js';
import { INEXACT_INT64, int64ToFloat64 } from './int64.js';
import { assertSameGrid, assertVoxelMask, type Grid, type VoxelMask } from './voxelMask.js';

export type { NiftiDatatype, NiftiGeometry, NiftiHeader } from './niftiHeader.js';
export { geometryFromAffine, niftiGeometry } from './niftiHeader.js';

export type NiftiTypedArray = Uint8Array | Int8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | Float64Array;

const HOST_LE = endianness() === 'LE';

export interface NiftiReadOptions {
  /** Divide every scaled value by this (NSD betas: 300). Default 1. */
  divisor?: number;
}

/** The (X, Y, Z) grid of a header. */
export function niftiGrid(h: NiftiHeader): Grid {
  return [h.dims[0], h.dims[1], h.dims[2]];
}

/** Number of 3-D volumes (product of dims beyond Z; 1 for a 3-D file). */
export function niftiVolumeCount(h: NiftiHeader): number {
  return h.dims.slice(3).reduce((a, b) => a * b, 1);
}

/** Reads only the header (and skips nothing else): a .nii.gz is decompressed just past its first bytes. */
export async function readNiftiHeader(path: string): Promise<NiftiHeader> {
  const s = await ByteStream.open(path);
  try {
    return await readHeaderFrom(s);
  } finally {
    s.close();
  }
}

async function readHeaderFrom(s: ByteStream): Promise<NiftiHeader> {
  const first = await s.read(4);
  const { size } = sniffHeaderSize(first, s.path);
  const bytes = new Uint8Array(size);
  bytes.set(first);
  await s.read(size - 4, bytes.subarray(4));
  const header = await parseNiftiHeader(bytes, s.path, { holds: s.compressed ? s.maxSize : s.fileSize, compressed: s.compressed });
  checkDataSize(s, header);
  return header;
}

/**
 * The bytes the header announces (vox_offset + voxels × bytes per voxel) against what the file can hold, before any
 * image buffer is allocated: a plain file's size exactly; for .nii.gz, what its compressed size can decompress to at
 * most (the decompressed size itself is known only once read: several gzip members, or zero padding after the last,
 * leave the trailer's ISIZE describing something else). A .nii.gz whose data end early is refused when they end.
 */
function checkDataSize(s: ByteStream, h: NiftiHeader): void {
  const expected = h.voxOffset + h.dims.reduce((a, b) => a * b, 1) * datatypeBytes(h.datatype);
  const what = `dims ${h.dims.join('×')} of ${h.datatype}${bitpixNote(h)} from vox_offset ${h.voxOffset} need ${expected} bytes`;
  s.expect(expected, `the header's ${what}`);
  if (!s.compressed) {
    if (s.fileSize < expected) throw new FormatError(`${s.path}: truncated NIfTI file: ${what}, the file holds ${s.fileSize}`, { path: s.path, field: 'dim' });
    if (s.fileSize > expected) {
      throw new FormatError(`${s.path}: ${s.fileSize - expected} trailing bytes after the image (${what})`, { path: s.path, field: 'dim' });
    }
  } else if (expected > s.maxSize) {
    throw new FormatError(
      `${s.path}: truncated NIfTI file: ${what}, more than its ${s.fileSize} gzip bytes can decompress to ` +
        `(at most ${MAX_GZIP_RATIO} times as many)`,
      { path: s.path, field: 'dim' },
    );
  }
}

/** A NIfTI image opened for streaming: the header is parsed and the stream sits at the first voxel. */
async function openImage(path: string): Promise<{ header: NiftiHeader; stream: ByteStream }> {
  const stream = await ByteStream.open(path);
  try {
    const header = await readHeaderFrom(stream);
    await stream.skip(header.voxOffset - header.headerSize);
    return { header, stream };
  } catch (e) {
    stream.close();
    throw e;
  }
}

/**
 * Calls `onVolume` with each 3-D volume's values in turn (native byte order, aligned for a typed-array
 * view); the buffer is reused, so copy out what you keep. int64/uint64 volumes come as float64, every value
 * checked exact (the whole volume, masked reads too: a file holding values float64 would round is refused).
 */
async function forEachVolume(
  header: NiftiHeader,
  stream: ByteStream,
  onVolume: (raw: NiftiTypedArray, t: number) => void,
): Promise<void> {
  const nVox = header.dims[0] * header.dims[1] * header.dims[2];
  const bpe = datatypeBytes(header.datatype);
  const buf = new Uint8Array(nVox * bpe);
  const swap = header.littleEndian !== HOST_LE && bpe > 1;
  const nVol = niftiVolumeCount(header);
  const type = header.datatype;
  const view64 = type === 'int64' ? new BigInt64Array(buf.buffer, 0, nVox) : type === 'uint64' ? new BigUint64Array(buf.buffer, 0, nVox) : null;
  const view = view64 ? null : typedView(type as WrittenDatatype, buf.buffer, nVox);
  for (let t = 0; t < nVol; t++) {
    await stream.read(buf.byteLength, buf);
    if (swap) swapBytes(buf, bpe);
    onVolume(view64 ? int64ToFloat64(view64, (i) => inexactVoxel(stream.path, header, t, i, view64[i])) : view!, t);
  }
}

/** The refusal of an int64/uint64 voxel float64 cannot hold, named by its (i, j, k[, t, …]) as nibabel indexes it. */
function inexactVoxel(path: string, h: NiftiHeader, volume: number, index: number, value: bigint): FormatError {
  const [X, Y] = h.dims;
  const at = [index % X, Math.floor(index / X) % Y, Math.floor(index / (X * Y))];
  // the volume index unravelled over dims 4 and beyond (first fastest, as the file stores them)
  for (let v = volume, d = 3; d < h.dims.length; d++) {
    at.push(v % h.dims[d]);
    v = Math.floor(v / h.dims[d]);
  }
  return new FormatError(`${path}: ${h.datatype} voxel (${at.join(', ')}) holds the value ${value}, ${INEXACT_INT64}`, { path, field: 'datatype' });
}

/** Reads a whole image as float32 with scl_slope/scl_inter (and `divisor`) applied: for masks and maps. */
export async function readNifti(path: string, opts: NiftiReadOptions = {}): Promise<{ header: NiftiHeader; data: Float32Array }> {
  const div = divisorOption(opts.divisor, path);
  const { header, stream } = await openImage(path);
  try {
    const nVox = header.dims[0] * header.dims[1] * header.dims[2];
    const data = new Float32Array(nVox * niftiVolumeCount(header));
    const { slope, inter } = effectiveScaling(header, path);
    await forEachVolume(header, stream, (raw, t) => {
      const off = t * nVox;
      for (let i = 0; i < nVox; i++) data[off + i] = (raw[i] * slope + inter) / div;
    });
    await stream.expectEnd();
    return { header, data };
  } finally {
    stream.close();
  }
}

/**
 * Streams a 3-D or 4-D image and keeps only the mask's voxels, volume by volume: rows are volumes (trials),
 * columns the mask's voxels in mask order. Peak memory is one volume plus the result.
 */
export async function readNiftiMasked(
  path: string,
  mask: VoxelMask,
  opts: NiftiReadOptions = {},
): Promise<{ header: NiftiHeader; betas: Matrix }> {
  assertVoxelMask(mask, path);
  const div = divisorOption(opts.divisor, path);
  const { header, stream } = await openImage(path);
  try {
    assertSameGrid(header.dims, mask, path);
    const idx = mask.indices;
    const cols = idx.length;
    const rows = niftiVolumeCount(header);
    const out = new Float32Array(rows * cols);
    const { slope, inter } = effectiveScaling(header, path);
    const plain = slope === 1 && inter === 0;
    await forEachVolume(header, stream, (raw, t) => {
      const o = t * cols;
      if (plain) for (let j = 0; j < cols; j++) out[o + j] = raw[idx[j]] / div;
      else for (let j = 0; j < cols; j++) out[o + j] = (raw[idx[j]] * slope + inter) / div;
    });
    await stream.expectEnd();
    return { header, betas: { data: out, rows, cols } };
  } finally {
    stream.close();
  }
}

export interface NiftiWriteSpec extends Partial<NiftiGeometry> {
  /** X, Y, Z and optionally T (and beyond). */
  dims: number[];
  datatype: NiftiDatatype;
  version?: 1 | 2;
  sclSlope?: number;
  sclInter?: number;
  description?: string;
  intentCode?: number;
  calMin?: number;
  calMax?: number;
  /** gzip level for .gz paths (default 6). */
  gzipLevel?: number;
}

/**
 * Writes a single-file NIfTI (gzip when the path ends in .gz) from one typed array or from a sequence of
 * volumes, streamed so a large 4-D image need not exist in memory whole. The file appears only once complete.
 */
export async function writeNifti(
  path: string,
  spec: NiftiWriteSpec,
  data: NiftiTypedArray | Iterable<NiftiTypedArray> | AsyncIterable<NiftiTypedArray>,
): Promise<void> {
  if (!HOST_LE) throw new FormatError('writeNifti: big-endian hosts are not supported');
  const dims = spec.dims.map(Number);
  if (dims.length < 1 || dims.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new InvalidArgumentError(`${path}: NIfTI dims must be positive integers, got ${spec.dims.join('×')}`);
  }
  // checked here, not left to typedCtor (a TypeError for 'float16') or the header (version 3 wrote NIfTI-2)
  if (!(NIFTI_WRITTEN_DATATYPES as NiftiDatatype[]).includes(spec.datatype)) {
    throw new InvalidArgumentError(`${path}: datatype ${typeof spec.datatype === 'string' ? `'${spec.datatype}'` : describeNumber(spec.datatype)} is not written; expected one of ${NIFTI_WRITTEN_DATATYPES.join(', ')}`);
  }
  if (spec.version !== undefined && spec.version !== 1 && spec.version !== 2) {
    throw new InvalidArgumentError(`${path}: version ${describeNumber(spec.version)} is not written; expected 1 (NIfTI-1) or 2 (NIfTI-2)`);
  }
  const expected = dims.reduce((a, b) => a * b, 1);
  const ctor = typedCtor(spec.datatype as WrittenDatatype);
  const def = defaultGeometry();
  const header = serializeNiftiHeader({
    version: spec.version ?? 1,
    dims,
    datatype: spec.datatype,
    sclSlope: spec.sclSlope ?? 0,
    sclInter: spec.sclInter ?? 0,
    description: spec.description ?? '',
    intentCode: spec.intentCode ?? 0,
    calMin: spec.calMin ?? 0,
    calMax: spec.calMax ?? 0,
    pixdim: spec.pixdim ?? def.pixdim,
    qformCode: spec.qformCode ?? def.qformCode,
    sformCode: spec.sformCode ?? def.sformCode,
    quatern: spec.quatern ?? def.quatern,
    qoffset: spec.qoffset ?? def.qoffset,
    srow: spec.srow ?? def.srow,
    xyztUnits: spec.xyztUnits ?? def.xyztUnits,
    dimInfo: spec.dimInfo ?? def.dimInfo,
  });
  const parts = ArrayBuffer.isView(data) ? [data] : data;
  let written = 0;
  async function* bytes() {
    yield Buffer.from(header.buffer, header.byteOffset, header.byteLength);
    for await (const part of parts as AsyncIterable<NiftiTypedArray>) {
      if (!(part instanceof ctor)) {
        throw new InvalidArgumentError(`${path}: datatype ${spec.datatype} needs ${ctor.name} data, got ${part?.constructor?.name}`);
      }
      written += part.length;
      if (written > expected) break;
      yield Buffer.from(part.buffer, part.byteOffset, part.byteLength);
    }
    if (written !== expected) {
      throw new ShapeError(`${path}: got ${written} values for dims ${dims.join('×')}, which need ${expected}`);
    }
  }
  await writeStreamAtomic(path, bytes, path.endsWith('.gz') ? [createGzip({ level: spec.gzipLevel ?? 6 })] : []);
}

/**
 * Writes float32 maps on a reference's grid: geometry (pixdim, qform, sform, units) copied from `reference`,
 * `values` (one map: voxels; several: Matrix rows = maps) placed at the mask's voxels, NaN elsewhere.
 */
export async function writeNiftiMap(
  path: string,
  reference: NiftiHeader,
  mask: VoxelMask,
  values: Float32Array | Matrix,
  description = 'brainlatent map',
): Promise<void> {
  assertVoxelMask(mask, path);
  assertSameGrid(reference.dims, mask, `reference for ${path}`);
  const m: Matrix = values instanceof Float32Array ? { data: values, rows: 1, cols: values.length } : values;
  if (m.cols !== mask.indices.length || m.data.length !== m.rows * m.cols) {
    throw new ShapeError(
      `${path}: values are ${m.rows}×${m.cols} (${m.data.length} numbers), the mask ${mask.source} has ${mask.indices.length} voxels`,
    );
  }
  const [X, Y, Z] = mask.grid;
  const nVox = X * Y * Z;
  const geometry = niftiGeometry(reference);
  if (m.rows > 1 && !(geometry.pixdim[4] > 0)) geometry.pixdim[4] = 1;
  function* volumes() {
    const vol = new Float32Array(nVox);
    for (let r = 0; r < m.rows; r++) {
      vol.fill(NaN);
      const row = m.data.subarray(r * m.cols, (r + 1) * m.cols);
      for (let j = 0; j < m.cols; j++) vol[mask.indices[j]] = row[j];
      yield vol;
    }
  }
  await writeNifti(
    path,
    {
      ...geometry,
      xyztUnits: (reference.xyztUnits & 7) === 0 ? (reference.xyztUnits | 2) : reference.xyztUnits,
      dims: m.rows > 1 ? [X, Y, Z, m.rows] : [X, Y, Z],
      datatype: 'float32',
      version: reference.version,
      sclSlope: 1,
      sclInter: 0,
      description,
    },
    volumes(),
  );
}

function defaultGeometry(): NiftiGeometry {
  return {
    pixdim: [1, 1, 1, 1, 1, 0, 0, 0],
    qformCode: 0,
    sformCode: 0,
    quatern: [0, 0, 0],
    qoffset: [0, 0, 0],
    srow: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]],
    xyztUnits: 10,
    dimInfo: 0,
  };
}

type TypedCtor = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): NiftiTypedArray; name: string };

type WrittenDatatype = (typeof NIFTI_WRITTEN_DATATYPES)[number];

function typedCtor(t: WrittenDatatype): TypedCtor {
  switch (t) {
    case 'uint8': return Uint8Array;
    case 'int8': return Int8Array;
    case 'int16': return Int16Array;
    case 'uint16': return Uint16Array;
    case 'int32': return Int32Array;
    case 'uint32': return Uint32Array;
    case 'float32': return Float32Array;
    case 'float64': return Float64Array;
  }
}

function typedView(t: WrittenDatatype, buffer: ArrayBufferLike, length: number): NiftiTypedArray {
  return new (typedCtor(t))(buffer, 0, length);
}

function swapBytes(buf: Uint8Array, bpe: number): void {
  for (let i = 0; i < buf.length; i += bpe) {
    for (let a = i, b = i + bpe - 1; a < b; a++, b--) {
      const x = buf[a];
      buf[a] = buf[b];
      buf[b] = x;
    }
  }
}

/** A bitpix that disagrees with the datatype (0, or 8 for int16: files nibabel reads) is ignored; messages say so. */
function bitpixNote(h: NiftiHeader): string {
  return h.bitpix === datatypeBytes(h.datatype) * 8 ? '' : ` (the datatype decides; bitpix says ${h.bitpix})`;
}
