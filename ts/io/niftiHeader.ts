import type { NIFTI1, NIFTI2 } from 'nifti-reader-js';
import { FormatError, InvalidArgumentError, LimitError } from '../errors.js';
import { niftiReaderPackage } from '../lazyPackages.js';
import { byteLimit } from './readWhole.js';

export type NiftiDatatype = 'uint8' | 'int8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64' | 'int64' | 'uint64';

const CODES: Record<NiftiDatatype, number> = {
  uint8: 2, int16: 4, int32: 8, float32: 16, float64: 64, int8: 256, uint16: 512, uint32: 768, int64: 1024, uint64: 1280,
};
const BYTES: Record<NiftiDatatype, number> = {
  uint8: 1, int8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, float32: 4, float64: 8, int64: 8, uint64: 8,
};

/** The datatypes read, by name. */
export const NIFTI_DATATYPES = Object.keys(CODES) as NiftiDatatype[];

/** The 64-bit integer types: read (nibabel < 4 wrote np.int64 masks as int64), exactly up to ±(2^53 − 1), not written. */
type NiftiInt64Datatype = 'int64' | 'uint64';

function isInt64Datatype(t: NiftiDatatype): t is NiftiInt64Datatype {
  return t === 'int64' || t === 'uint64';
}

/** The datatypes written, by name: those read, less int64/uint64. */
export const NIFTI_WRITTEN_DATATYPES = NIFTI_DATATYPES.filter((t) => !isInt64Datatype(t)) as Exclude<NiftiDatatype, NiftiInt64Datatype>[];

export function datatypeBytes(t: NiftiDatatype): number {
  return BYTES[t];
}

function datatypeFromCode(code: number, path: string): NiftiDatatype {
  for (const [name, c] of Object.entries(CODES)) if (c === code) return name as NiftiDatatype;
  throw new FormatError(
    `${path}: NIfTI datatype code ${code} is not read; expected one of ${Object.values(CODES).join(', ')} ` +
      `(${Object.keys(CODES).join(', ')})`,
    { path, field: 'datatype' },
  );
}

/** Where a volume sits in space: everything a derived map must copy from its reference. */
export interface NiftiGeometry {
  /** pixdim[0] is qfac (±1); pixdim[1..3] voxel sizes; pixdim[4] the repetition time. */
  pixdim: number[];
  qformCode: number;
  sformCode: number;
  quatern: [number, number, number];
  qoffset: [number, number, number];
  /** The three sform rows (srow_x, srow_y, srow_z), 4 numbers each. */
  srow: [number[], number[], number[]];
  xyztUnits: number;
  dimInfo: number;
}

export interface NiftiHeader extends NiftiGeometry {
  version: 1 | 2;
  littleEndian: boolean;
  /** dim[1..dim[0]]: X, Y, Z, then T and beyond when present. */
  dims: number[];
  datatype: NiftiDatatype;
  /** bitpix as the file has it; the datatype decides the item size, whatever this says. */
  bitpix: number;
  voxOffset: number;
  sclSlope: number;
  sclInter: number;
  description: string;
  intentCode: number;
  /** Header size in bytes: 348 (NIfTI-1) or 540 (NIfTI-2). */
  headerSize: number;
}

/** Header size announced by the first four bytes, and the byte order they reveal. */
export function sniffHeaderSize(first4: Uint8Array, path: string): { size: 348 | 540; littleEndian: boolean } {
  const dv = new DataView(first4.buffer, first4.byteOffset, 4);
  for (const le of [true, false]) {
    const n = dv.getInt32(0, le);
    if (n === 348 || n === 540) return { size: n, littleEndian: le };
  }
  // FreeSurfer's MGH header starts with version 1, big-endian (an .mgz is it gzipped)
  if (dv.getInt32(0, false) === 1) {
    throw new FormatError(`${path}: an MGH/MGZ file (FreeSurfer), not NIfTI: convert it with mri_convert or nibabel`, { path, field: 'sizeof_hdr' });
  }
  throw new FormatError(
    `${path}: not a NIfTI file (sizeof_hdr = ${dv.getInt32(0, true)}, expected 348 for NIfTI-1 or 540 for NIfTI-2)`,
  );
}

/** Largest extension block accepted between the header and vox_offset: 64 MiB, or BRAINLATENT_MAX_NIFTI_EXTENSION_BYTES. */
const MAX_EXTENSION_BYTES = 64 * 2 ** 20;
const EXTENSION_LIMIT_VAR = 'BRAINLATENT_MAX_NIFTI_EXTENSION_BYTES';
/** Largest dimension accepted: NIfTI-1 stores int16; NIfTI-2's int64 is bounded here to what arrays can index. */
const MAX_DIM = 2 ** 31 - 1;

/**
 * Parses a NIfTI-1 or NIfTI-2 header from exactly its own bytes (the image may not follow). Every field the
 * reader relies on is checked for consistency: magic, dim[0] and each dimension, datatype, vox_offset;
 * a failure is a FormatError naming the file and the field.
 */
export async function parseNiftiHeader(bytes: Uint8Array, path: string, file?: { holds: number; compressed: boolean }): Promise<NiftiHeader> {
  const bad = (field: string, msg: string) => new FormatError(`${path}: ${msg}`, { path, field });
  // nifti-reader-js needs an exactly sized ArrayBuffer of its own, not a view into a pooled Buffer.
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const first = new DataView(ab, 0, 4);
  const version = bytes.byteLength >= 540 && (first.getInt32(0, true) === 540 || first.getInt32(0, false) === 540) ? 2 : 1;
  const magic = version === 1 ? String.fromCharCode(...bytes.subarray(344, 348)) : String.fromCharCode(...bytes.subarray(4, 12));
  if (version === 1 && magic === 'ni1\0') {
    throw bad('magic', "a NIfTI-1 header of a separate .hdr/.img pair (magic 'ni1'); expected a single-file .nii(.gz)");
  }
  if ((version === 1 && magic !== 'n+1\0') || (version === 2 && magic !== 'n+2\0\r\n\x1a\n')) {
    throw bad('magic', `bad NIfTI-${version} magic ${JSON.stringify(magic)}, expected ${version === 1 ? "'n+1'" : "'n+2'"}`);
  }
  // (nifti-reader-js is ESM only: imported here, async, so importing the package does not load it)
  const { readHeader } = await niftiReaderPackage();
  let h: NIFTI1 | NIFTI2;
  try {
    h = readHeader(ab);
  } catch (e) {
    throw bad('header', `not a readable NIfTI header (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!h) throw bad('header', 'not a readable NIfTI header');
  const dvAll = new DataView(ab);
  const ndim = Number(h.dims[0]);
  if (!(Number.isInteger(ndim) && ndim >= 1 && ndim <= 7)) throw bad('dim', `dim[0] = ${ndim}, expected 1 to 7`);
  const dims = h.dims.slice(1, 1 + ndim).map(Number);
  if (dims.some((d) => !Number.isInteger(d) || d < 1 || d > MAX_DIM)) {
    throw bad('dim', `dimensions ${dims.join('×')} must be positive integers up to ${MAX_DIM}`);
  }
  while (dims.length < 3) dims.push(1);
  const voxels = dims.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(voxels * 8)) throw bad('dim', `dimensions ${dims.join('×')} hold more voxels than can be counted exactly`);
  // the datatype decides the item size, as in nibabel: a bitpix of 0 or one that disagrees is kept (`bitpix`) but
  // not used; the size the datatype implies is then held against the file like any other (nifti.ts, checkDataSize)
  const datatype = datatypeFromCode(h.datatypeCode, path);
  // (read here: nifti-reader-js's int64 reader puts a negative NIfTI-2 vox_offset 2^64 off: -5 read as -1.8e19)
  const rawOffset = version === 2 ? dvAll.getBigInt64(168, h.littleEndian) : dvAll.getFloat32(108, h.littleEndian);
  const voxOffset = Number(rawOffset);
  if (!Number.isInteger(voxOffset) || voxOffset < 0) throw bad('vox_offset', `vox_offset ${rawOffset} is not a non-negative integer`);
  // past the file's end: a damaged header, said before the extension limit (whose remedy is to raise it)
  if (file && voxOffset > file.holds) {
    throw bad(
      'vox_offset',
      `truncated NIfTI file: vox_offset ${voxOffset} lies past its end (the file holds ${file.holds} bytes${file.compressed ? ' at most, decompressed' : ''})`,
    );
  }
  if (voxOffset < bytes.byteLength) {
    throw bad(
      'vox_offset',
      `vox_offset ${voxOffset} is inside the header; separate .hdr/.img pairs are not read, expected a single .nii(.gz)`,
    );
  }
  const maxExtension = byteLimit(EXTENSION_LIMIT_VAR, MAX_EXTENSION_BYTES);
  if (voxOffset - bytes.byteLength > maxExtension) {
    throw new LimitError(
      `${path}: vox_offset ${voxOffset} leaves ${voxOffset - bytes.byteLength} bytes of extensions, over the ${maxExtension}-byte limit: ` +
        `a damaged header${file?.compressed ? ' or a truncated file' : ''}, most likely (raise the limit with ${EXTENSION_LIMIT_VAR} if the file is genuine)`,
      { path, field: 'vox_offset' },
    );
  }
  const dv = dvAll;
  const le = h.littleEndian;
  const srow = [0, 1, 2].map((r) =>
    [0, 1, 2, 3].map((c) => (version === 1 ? dv.getFloat32(280 + 16 * r + 4 * c, le) : dv.getFloat64(400 + 32 * r + 8 * c, le))),
  ) as [number[], number[], number[]];
  const pixdim = h.pixDims.slice(0, 8).map(Number);
  while (pixdim.length < 8) pixdim.push(0);
  return {
    version,
    littleEndian: le,
    dims,
    datatype,
    bitpix: h.numBitsPerVoxel,
    voxOffset,
    sclSlope: Number(h.scl_slope),
    sclInter: Number(h.scl_inter),
    description: h.description ?? '',
    intentCode: h.intent_code,
    headerSize: version === 1 ? 348 : 540,
    pixdim,
    qformCode: h.qform_code,
    sformCode: h.sform_code,
    quatern: [h.quatern_b, h.quatern_c, h.quatern_d],
    qoffset: [h.qoffset_x, h.qoffset_y, h.qoffset_z],
    srow,
    xyztUnits: h.xyzt_units,
    dimInfo: h.dim_info,
  };
}

/**
 * The slope and intercept to apply: NIfTI says slope 0 (or non-finite) means "no scaling". A valid slope with a NaN or
 * infinite intercept is refused naming `path` and both fields (nibabel refuses it too): read as 0, it shifted nothing
 * where the writer meant some shift.
 */
export function effectiveScaling(h: Pick<NiftiHeader, 'sclSlope' | 'sclInter'>, path: string): { slope: number; inter: number } {
  const slope = h.sclSlope;
  if (!Number.isFinite(slope) || slope === 0) return { slope: 1, inter: 0 };
  if (!Number.isFinite(h.sclInter)) {
    throw new FormatError(`${path}: scl_slope ${slope} with scl_inter ${h.sclInter}: a valid slope needs a finite intercept`, { path, field: 'scl_inter' });
  }
  return { slope, inter: h.sclInter };
}

export function niftiGeometry(h: NiftiGeometry): NiftiGeometry {
  return {
    pixdim: [...h.pixdim],
    qformCode: h.qformCode,
    sformCode: h.sformCode,
    quatern: [...h.quatern],
    qoffset: [...h.qoffset],
    srow: [[...h.srow[0]], [...h.srow[1]], [...h.srow[2]]],
    xyztUnits: h.xyztUnits,
    dimInfo: h.dimInfo,
  };
}

/**
 * Geometry whose sform and qform both encode `affine` (4×4, voxel to mm), as scanner tools write it.
 * The 3×3 part must be a rotation times voxel sizes (no shear).
 */
export function geometryFromAffine(affine: number[][], code = 1, tr = 1): NiftiGeometry {
  const cols = [0, 1, 2].map((c) => [affine[0][c], affine[1][c], affine[2][c]]);
  const sizes = cols.map((v) => Math.hypot(v[0], v[1], v[2]));
  if (sizes.some((s) => !(s > 0))) throw new InvalidArgumentError(`affine has a zero column: ${JSON.stringify(affine)}`);
  const r = cols.map((v, i) => v.map((x) => x / sizes[i]));
  // r[c][row]; nifti1_io's quaternion from the orthonormal matrix R[row][col] = r[col][row].
  const R = (i: number, j: number) => r[j][i];
  const det =
    R(0, 0) * (R(1, 1) * R(2, 2) - R(1, 2) * R(2, 1)) -
    R(0, 1) * (R(1, 0) * R(2, 2) - R(1, 2) * R(2, 0)) +
    R(0, 2) * (R(1, 0) * R(2, 1) - R(1, 1) * R(2, 0));
  const qfac = det > 0 ? 1 : -1;
  if (qfac < 0) r[2] = r[2].map((x) => -x);
  const [r11, r12, r13, r21, r22, r23, r31, r32, r33] = [R(0, 0), R(0, 1), R(0, 2), R(1, 0), R(1, 1), R(1, 2), R(2, 0), R(2, 1), R(2, 2)];
  let a = r11 + r22 + r33 + 1;
  let b: number, c: number, d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = (0.25 * (r32 - r23)) / a;
    c = (0.25 * (r13 - r31)) / a;
    d = (0.25 * (r21 - r12)) / a;
  } else {
    const xd = 1 + r11 - (r22 + r33);
    const yd = 1 + r22 - (r11 + r33);
    const zd = 1 + r33 - (r11 + r22);
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd); c = (0.25 * (r12 + r21)) / b; d = (0.25 * (r13 + r31)) / b; a = (0.25 * (r32 - r23)) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd); b = (0.25 * (r12 + r21)) / c; d = (0.25 * (r23 + r32)) / c; a = (0.25 * (r13 - r31)) / c;
    } else {
      d = 0.5 * Math.sqrt(zd); b = (0.25 * (r13 + r31)) / d; c = (0.25 * (r23 + r32)) / d; a = (0.25 * (r21 - r12)) / d;
    }
    if (a < 0) { b = -b; c = -c; d = -d; }
  }
  return {
    pixdim: [qfac, sizes[0], sizes[1], sizes[2], tr, 0, 0, 0],
    qformCode: code,
    sformCode: code,
    quatern: [b, c, d],
    qoffset: [affine[0][3], affine[1][3], affine[2][3]],
    srow: [[...affine[0].slice(0, 4)], [...affine[1].slice(0, 4)], [...affine[2].slice(0, 4)]],
    xyztUnits: 2 | 8, // mm, seconds
    dimInfo: 0,
  };
}

/** 3×4, voxel (i, j, k, 1) → world (x, y, z) mm, x to the right, y anterior, z superior (NIfTI's RAS+). */
export type Affine = number[][];

/** The sform when set, else the qform, else the voxel sizes alone (NIfTI's method 1). */
export function voxelToWorld(h: NiftiGeometry): Affine {
  if (h.sformCode > 0) return h.srow.map((r) => [...r]);
  const [dx, dy, dz] = [h.pixdim[1] || 1, h.pixdim[2] || 1, h.pixdim[3] || 1];
  if (h.qformCode > 0) {
    const [b, c, d] = h.quatern;
    const a = Math.sqrt(Math.max(0, 1 - b * b - c * c - d * d));
    const qfac = h.pixdim[0] < 0 ? -1 : 1;
    const R = [
      [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
      [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
      [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
    ];
    return R.map((row, i) => [row[0] * dx, row[1] * dy, row[2] * dz * qfac, h.qoffset[i]]);
  }
  return [
    [dx, 0, 0, 0],
    [0, dy, 0, 0],
    [0, 0, dz, 0],
  ];
}

/** Which of a header's transforms voxelToWorld uses, for messages. */
export function affineMethod(h: NiftiGeometry): string {
  return h.sformCode > 0 ? 'sform' : h.qformCode > 0 ? 'qform' : 'voxel sizes (no sform or qform)';
}

export interface HeaderSpec extends NiftiGeometry {
  version: 1 | 2;
  dims: number[];
  datatype: NiftiDatatype;
  sclSlope: number;
  sclInter: number;
  description: string;
  intentCode: number;
  calMin: number;
  calMax: number;
}

/** Serialises a single-file (.nii) little-endian header plus the 4 empty extension bytes. */
export function serializeNiftiHeader(spec: HeaderSpec): Uint8Array {
  const v1 = spec.version === 1;
  const size = v1 ? 348 : 540;
  const buf = new Uint8Array(size + 4);
  const dv = new DataView(buf.buffer);
  const dim = [spec.dims.length, ...spec.dims];
  while (dim.length < 8) dim.push(1);
  if (spec.dims.length > 7) throw new InvalidArgumentError(`NIfTI takes at most 7 dimensions, got ${spec.dims.join('×')}`);
  const pixdim = [...spec.pixdim];
  while (pixdim.length < 8) pixdim.push(0);
  const code = CODES[spec.datatype];
  const bitpix = BYTES[spec.datatype] * 8;
  const ascii = (off: number, len: number, s: string) => {
    for (let i = 0; i < Math.min(len - 1, s.length); i++) buf[off + i] = s.charCodeAt(i) & 0x7f;
  };
  dv.setInt32(0, size, true);
  if (v1) {
    if (spec.dims.some((d) => d > 32767)) throw new InvalidArgumentError(`NIfTI-1 dimensions are int16; ${spec.dims.join('×')} needs NIfTI-2`);
    buf[38] = 'r'.charCodeAt(0);
    buf[39] = spec.dimInfo;
    dim.forEach((d, i) => dv.setInt16(40 + 2 * i, d, true));
    dv.setInt16(68, spec.intentCode, true);
    dv.setInt16(70, code, true);
    dv.setInt16(72, bitpix, true);
    pixdim.forEach((p, i) => dv.setFloat32(76 + 4 * i, p, true));
    dv.setFloat32(108, size + 4, true);
    dv.setFloat32(112, spec.sclSlope, true);
    dv.setFloat32(116, spec.sclInter, true);
    buf[123] = spec.xyztUnits;
    dv.setFloat32(124, spec.calMax, true);
    dv.setFloat32(128, spec.calMin, true);
    ascii(148, 80, spec.description);
    dv.setInt16(252, spec.qformCode, true);
    dv.setInt16(254, spec.sformCode, true);
    [...spec.quatern, ...spec.qoffset].forEach((q, i) => dv.setFloat32(256 + 4 * i, q, true));
    spec.srow.forEach((row, r) => row.forEach((x, c) => dv.setFloat32(280 + 16 * r + 4 * c, x, true)));
    ascii(344, 4, 'n+1');
  } else {
    ascii(4, 8, 'n+2');
    buf.set([0x0d, 0x0a, 0x1a, 0x0a], 8);
    dv.setInt16(12, code, true);
    dv.setInt16(14, bitpix, true);
    dim.forEach((d, i) => dv.setBigInt64(16 + 8 * i, BigInt(d), true));
    pixdim.forEach((p, i) => dv.setFloat64(104 + 8 * i, p, true));
    dv.setBigInt64(168, BigInt(size + 4), true);
    dv.setFloat64(176, spec.sclSlope, true);
    dv.setFloat64(184, spec.sclInter, true);
    dv.setFloat64(192, spec.calMax, true);
    dv.setFloat64(200, spec.calMin, true);
    ascii(240, 80, spec.description);
    dv.setInt32(344, spec.qformCode, true);
    dv.setInt32(348, spec.sformCode, true);
    [...spec.quatern, ...spec.qoffset].forEach((q, i) => dv.setFloat64(352 + 8 * i, q, true));
    spec.srow.forEach((row, r) => row.forEach((x, c) => dv.setFloat64(400 + 32 * r + 8 * c, x, true)));
    dv.setInt32(500, spec.xyztUnits, true);
    dv.setInt32(504, spec.intentCode, true);
    buf[524] = spec.dimInfo;
  }
  return buf;
}
