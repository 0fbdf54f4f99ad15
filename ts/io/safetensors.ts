/**
 * safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header
 * length, a JSON header naming each tensor's dtype, shape and byte range, then the raw data, little-endian (the
 * format's rule). The data are written and read as the typed arrays hold them, in the host's byte order: this code
 * assumes a little-endian host (x86-64, arm64; docs/data.md "Files kept for years"), between which the files move
 * unchanged. Readable from Python with `safetensors.numpy.load_file`; written atomically; read only after the whole
 * header has been checked against the file (see readSafetensors).
 *
 * Each file written here records the CRC-32 of every tensor's data in its metadata (TENSOR_CRC32_KEY), and a read
 * checks each tensor that has one: a bit flipped on a disk or in a copy is an error naming the tensor, where it
 * loaded as other numbers. Other readers ignore the key (metadata is free text to them), and a file without it (one
 * written before it was kept, or elsewhere) is read unchecked, as before: the layout itself did not change.
 */
import type { FileHandle } from 'node:fs/promises';
import { FormatError, InvalidArgumentError, LimitError } from '../errors.js';
import { type PreparedFile, withAtomicFile, writeChunks } from './atomicWrite.js';
import { openRegularFile } from './byteStream.js';
import { crc32Hex, crc32Text, crc32Update, isCrc32Text } from './crc32.js';
import { FILE_KIND_BYTES, fileKindOf } from './fileKind.js';
import { parseJson } from './json.js';
import { allocate, arrayKind, BYTES, bytesOf, checkShape, dtypeOf, product, type DType, type NumericArray } from './typedArrays.js';

/** One array of a safetensors file: its data (any supported numeric type) and shape, row-major. */
export interface SafetensorsTensor {
  data: NumericArray;
  shape: number[];
}

/** What readSafetensors gives: each tensor by name, with its dtype, and the header's `__metadata__` strings. */
export interface SafetensorsFile {
  tensors: Record<string, SafetensorsTensor & { dtype: DType }>;
  metadata: Record<string, string>;
}

const CODE: Record<DType, string> = { float32: 'F32', float64: 'F64', int16: 'I16', int32: 'I32', uint8: 'U8' };
const FROM_CODE: Record<string, DType> = { F32: 'float32', F64: 'float64', I16: 'int16', I32: 'int32', U8: 'uint8' };
const CHUNK = 64 << 20;

/**
 * The metadata key of the tensors' checksums: a JSON object of each tensor's name and the CRC-32 (zlib's, as gzip
 * and PNG use) of its data bytes, 8 lowercase hex digits. writeSafetensors sets it (a value passed in is replaced);
 * readSafetensors checks the tensors it names and leaves the key out of the metadata it returns, which are then
 * those written.
 */
export const TENSOR_CRC32_KEY = 'tensor_crc32';

/**
 * Writes `tensors` and string `metadata`, with each tensor's CRC-32 in metadata TENSOR_CRC32_KEY. What
 * readSafetensors would refuse is refused here instead, naming the tensor or key: data other than the five typed
 * arrays of DType, shapes that are not integers >= 0 matching the data, a tensor named __metadata__, metadata values
 * that are not strings.
 */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, SafetensorsTensor>,
  metadata: Record<string, string> = {},
): Promise<void> {
  // (checked before the output is touched: a refused tensor leaves no temporary behind)
  const layout = safetensorsLayout(path, tensors, metadata);
  await withAtomicFile(path, (fh) => writeLayout(fh, layout));
}

/** writeSafetensors to an output opened ahead (prepareAtomicFile); the file is discarded if a tensor is refused. */
export async function writeSafetensorsTo(file: PreparedFile, tensors: Record<string, SafetensorsTensor>, metadata: Record<string, string> = {}): Promise<void> {
  let layout: Layout;
  try {
    layout = safetensorsLayout(file.path, tensors, metadata);
  } catch (e) {
    await file.discard();
    throw e;
  }
  await file.commit((fh) => writeLayout(fh, layout));
}

/** A file's header entries (every tensor's CRC-32 still to fill in) and its tensors' bytes, in order. */
interface Layout {
  header: Record<string, unknown>;
  metadata: Record<string, string>;
  names: string[];
  data: Uint8Array[];
}

/** The file's header and each tensor's data in place, checked; `path` names the file in errors. */
function safetensorsLayout(path: string, tensors: Record<string, SafetensorsTensor>, metadata: Record<string, string>): Layout {
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
    throw new InvalidArgumentError(`${path}: metadata must be an object of strings, got ${arrayKind(metadata)}`);
  }
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') throw new InvalidArgumentError(`${path}: metadata '${key}' is ${typeof value}; metadata values must be strings`);
  }
  // (without a prototype: a tensor named __proto__ is then a key like any other, written and read back)
  const header: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  let offset = 0;
  const names = Object.keys(tensors);
  for (const name of names) {
    // the header's own key: a tensor of that name would be read back as (bad) metadata
    if (name === '__metadata__') throw new InvalidArgumentError(`${path}: no tensor may be named __metadata__ (the header's metadata key)`);
    const t = tensors[name];
    if (t === null || typeof t !== 'object') throw new InvalidArgumentError(`${path}: tensor '${name}' must be {data, shape}, got ${arrayKind(t)}`);
    const dtype = dtypeOf(t.data, `${path}: tensor '${name}' data`);
    checkShape(t.shape, t.data.length, `${path}: tensor '${name}'`);
    header[name] = { dtype: CODE[dtype], shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  return { header, metadata, names, data: names.map((name) => bytesOf(tensors[name].data)) };
}

/**
 * The header with each tensor's CRC-32 (`crcs`, by name), padded with spaces to a multiple of 8 bytes (UTF-8 bytes:
 * metadata may hold any text), after its length. Its length does not depend on the sums' values (8 hex digits each).
 */
function headerBytes(layout: Layout, crcs: Record<string, string>): Buffer {
  const sums: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const name of layout.names) sums[name] = crcs[name];
  // (without a prototype, as the entries: a tensor named __proto__ is a key like any other)
  const header = Object.assign(Object.create(null) as Record<string, unknown>, { __metadata__: { ...layout.metadata, [TENSOR_CRC32_KEY]: JSON.stringify(sums) } });
  for (const name of layout.names) header[name] = layout.header[name];
  const json = JSON.stringify(header);
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  const head = Buffer.alloc(8 + Math.ceil(jsonBytes / 8) * 8, ' ');
  head.writeBigUInt64LE(BigInt(head.length - 8));
  head.write(json, 8, 'utf8');
  return head;
}

/**
 * Writes the file in one pass: a header of the final length (zeros for the sums) and every tensor's bytes in one
 * writev or through the large-file writer, which copies them out on the engine's thread while this one computes
 * the tensors' CRC-32s (~0.3 s per GB: 20 ms of the medium ridge model's write, which waited for them); then the
 * header with the sums over the first one.
 */
async function writeLayout(fh: FileHandle, layout: Layout): Promise<void> {
  const zeros: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const name of layout.names) zeros[name] = crc32Text(0);
  const draft = headerBytes(layout, zeros);
  const written = writeChunks(fh, [draft, ...layout.data]);
  const crcs: Record<string, string> = Object.create(null) as Record<string, string>;
  try {
    layout.names.forEach((name, i) => (crcs[name] = crc32Hex(layout.data[i])));
  } catch (e) {
    await written.catch(() => undefined);
    throw e;
  }
  await written;
  const head = headerBytes(layout, crcs);
  if (head.length !== draft.length) throw new Error(`safetensors: the header with its sums is ${head.length} bytes, its draft ${draft.length}`);
  let off = 0;
  while (off < head.length) off += (await fh.write(head, off, head.length - off, off)).bytesWritten;
}

/** safetensors' own limit on the JSON header (MAX_HEADER_SIZE in the reference implementation). */
const MAX_HEADER_BYTES = 100_000_000;

interface Entry {
  name: string;
  dtype: DType;
  code: string;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Reads every tensor. The header is validated whole before anything is allocated, as the reference
 * implementation does: each entry's dtype, shape and byte range agree (shape × item size = range length), the
 * ranges tile the data exactly — from byte 0, without gaps or overlaps, to the end of the file — so a truncated
 * file, trailing bytes or two tensors sharing bytes are FormatErrors naming the file and the tensor. A file of
 * another kind (an .npy, an HDF5 file) is named as such. Each tensor that metadata TENSOR_CRC32_KEY gives a CRC-32
 * is checked against it as it is read.
 */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  // a folder or a device is refused naming the path (reading a folder fails with a bare EISDIR)
  const { fh, size } = await openRegularFile(path);
  try {
    const bad = (field: string, msg: string) => new FormatError(`${path}: ${msg}`, { path, field });
    const pre = Buffer.alloc(Math.min(size, FILE_KIND_BYTES));
    await fh.read(pre, 0, pre.length, 0);
    // a file that is not one: what it is instead, where its first bytes say (else what failed)
    const notSafetensors = (field: string, msg: string) => {
      const kind = fileKindOf(pre);
      return kind && !kind.startsWith('a safetensors') ? bad(field, `${kind}, not a safetensors file`) : bad(field, msg);
    };
    if (size < 8) throw notSafetensors('header_size', `not a safetensors file (${size} bytes, shorter than the 8-byte header length)`);
    const n64 = pre.readBigUInt64LE();
    if (n64 > BigInt(size - 8)) throw notSafetensors('header_size', `header length ${n64} runs past the end of the ${size}-byte file (not a safetensors file, or truncated)`);
    const n = Number(n64);
    if (n < 2) throw notSafetensors('header_size', `header length ${n} is too short for a JSON header`);
    if (n > MAX_HEADER_BYTES) throw new LimitError(`${path}: safetensors header of ${n} bytes is over the ${MAX_HEADER_BYTES}-byte limit`, { path, field: 'header_size' });
    const hb = Buffer.alloc(n);
    await fh.read(hb, 0, n, 8);
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(hb);
    } catch {
      throw notSafetensors('header', 'the header is not valid UTF-8');
    }
    if (!text.startsWith('{')) throw notSafetensors('header', "the header does not start with '{' (not a safetensors file)");
    const header = parseJson(text.trimEnd(), `${path} (safetensors header)`);
    if (header === null || typeof header !== 'object' || Array.isArray(header)) throw bad('header', 'the header is not a JSON object');
    // (tensors without a prototype: one named __proto__ set the object's prototype instead, and was lost in silence)
    const out: SafetensorsFile = { tensors: Object.create(null) as SafetensorsFile['tensors'], metadata: {} };
    const entries: Entry[] = [];
    for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') {
        if (value === null || typeof value !== 'object' || Array.isArray(value) || Object.values(value).some((v) => typeof v !== 'string')) {
          throw bad('__metadata__', '__metadata__ must be an object of strings');
        }
        out.metadata = value as Record<string, string>;
        continue;
      }
      entries.push(checkEntry(name, value, bad));
    }
    entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
    const dataBytes = size - 8 - n;
    let at = 0;
    for (const e of entries) {
      if (e.begin < at) {
        const prev = entries[entries.indexOf(e) - 1];
        throw bad(e.name, `tensor '${e.name}' [${e.begin}, ${e.end}) overlaps tensor '${prev.name}' [${prev.begin}, ${prev.end})`);
      }
      if (e.begin > at) throw bad(e.name, `bytes [${at}, ${e.begin}) before tensor '${e.name}' belong to no tensor`);
      at = e.end;
    }
    if (at > dataBytes) {
      const last = entries[entries.length - 1];
      throw bad(last.name, `truncated file: tensor '${last.name}' ends at data byte ${at}, the file holds ${dataBytes} data bytes`);
    }
    if (at < dataBytes) throw bad('data', `${dataBytes - at} trailing bytes after the last tensor (the header covers ${at} of ${dataBytes} data bytes)`);
    const recorded = recordedCrcs(out.metadata, bad);
    // (the I/O layer's own key: the metadata read back are those written)
    if (recorded) out.metadata = Object.fromEntries(Object.entries(out.metadata).filter(([k]) => k !== TENSOR_CRC32_KEY));
    const base = 8 + n;
    for (const e of entries) {
      const data = allocate(e.dtype, (e.end - e.begin) / BYTES[e.dtype]);
      const bytes = bytesOf(data);
      let crc = 0;
      const read = (off: number) => fh.read(bytes, off, Math.min(CHUNK, bytes.length - off), base + e.begin + off);
      // (each chunk's sum taken while the next one is read: the check costs little more than the read)
      let next = bytes.length > 0 ? read(0) : null;
      for (let off = 0; next !== null; off += CHUNK) {
        const len = Math.min(CHUNK, bytes.length - off);
        const { bytesRead } = await next;
        if (bytesRead < len) throw bad(e.name, `tensor '${e.name}' is truncated (the file shrank while being read)`);
        next = off + CHUNK < bytes.length ? read(off + CHUNK) : null;
        crc = crc32Update(bytes.subarray(off, off + len), crc);
      }
      const expected = recorded?.[e.name];
      if (expected !== undefined && crc32Text(crc) !== expected) {
        throw bad(
          e.name,
          `tensor '${e.name}' fails its checksum (CRC-32 ${crc32Text(crc)}, metadata '${TENSOR_CRC32_KEY}' records ${expected}): its data changed after the file was written ` +
            `(a damaged disk or copy: copy it again from a good one, or write it again), or a tool rewrote the tensor and kept the metadata ` +
            `(then remove '${TENSOR_CRC32_KEY}' from the metadata to read it unchecked)`,
        );
      }
      out.tensors[e.name] = { data, shape: e.shape, dtype: e.dtype };
    }
    return out;
  } finally {
    await fh.close();
  }
}

/**
 * The CRC-32 each tensor's data had when written (metadata TENSOR_CRC32_KEY), by name; null when the file records
 * none. A value that is not an object of 8-hex-digit strings is refused: the header was damaged.
 */
function recordedCrcs(metadata: Record<string, string>, bad: (field: string, msg: string) => FormatError): Record<string, string> | null {
  const text = metadata[TENSOR_CRC32_KEY];
  if (text === undefined) return null;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = null;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((c) => !isCrc32Text(c))) {
    throw bad('__metadata__', `metadata '${TENSOR_CRC32_KEY}' must be a JSON object of each tensor's CRC-32 (8 hex digits), got ${JSON.stringify(text.slice(0, 80))}`);
  }
  return Object.assign(Object.create(null) as Record<string, string>, v);
}

function checkEntry(name: string, value: unknown, bad: (field: string, msg: string) => FormatError): Entry {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw bad(name, `tensor '${name}' is not an object with dtype, shape and data_offsets`);
  const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof v.dtype !== 'string') throw bad(name, `tensor '${name}' has no dtype string`);
  const dtype = FROM_CODE[v.dtype];
  if (!dtype) throw bad(name, `tensor '${name}' has dtype ${v.dtype}, which is not read; expected one of ${Object.keys(FROM_CODE).join(', ')}`);
  if (!Array.isArray(v.shape) || v.shape.some((d) => !Number.isSafeInteger(d) || (d as number) < 0)) {
    throw bad(name, `tensor '${name}' has shape ${JSON.stringify(v.shape)}, expected a list of non-negative integers`);
  }
  const shape = v.shape as number[];
  const o = v.data_offsets;
  if (!Array.isArray(o) || o.length !== 2 || o.some((x) => !Number.isSafeInteger(x) || (x as number) < 0) || (o[0] as number) > (o[1] as number)) {
    throw bad(name, `tensor '${name}' has data_offsets ${JSON.stringify(o)}, expected [begin, end] with 0 <= begin <= end`);
  }
  const [begin, end] = o as [number, number];
  const count = product(shape);
  if (!Number.isSafeInteger(count * BYTES[dtype]) || count * BYTES[dtype] !== end - begin) {
    throw bad(name, `tensor '${name}' (${v.dtype} [${shape.join(', ')}]) needs ${count * BYTES[dtype]} bytes, its data_offsets [${begin}, ${end}) span ${end - begin}`);
  }
  return { name, dtype, code: v.dtype, shape, begin, end };
}

/**
 * A JSON value stored as a metadata string (models keep their settings this way): `fallback` when absent, and a
 * FormatError naming the file and the key when it is not valid JSON.
 */
export function metadataJson(path: string, metadata: Record<string, string>, key: string, fallback: string): unknown {
  return parseJson(metadata[key] ?? fallback, `${path} (metadata '${key}')`);
}
