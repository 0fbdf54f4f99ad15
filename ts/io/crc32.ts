/**
 * CRC-32 (zlib's, as gzip and PNG use: Python's zlib.crc32 gives the same) of data as 8 lowercase hex digits: the
 * checksum files brainlatent keeps record of their data (a model's tensors, an extraction's arrays), so that a copy
 * damaged on a disk or in transit is refused instead of read as other numbers. About 0.3 s per GB.
 */
import { crc32 } from 'node:zlib';

/** zlib takes at most 4 GiB at once. */
const CHUNK = 1 << 30;

/** The CRC-32 of `bytes` continued from `crc` (0 to start), as a number. */
export function crc32Update(bytes: Uint8Array, crc = 0): number {
  let c = crc;
  for (let off = 0; off < bytes.length; off += CHUNK) c = crc32(bytes.subarray(off, Math.min(off + CHUNK, bytes.length)), c);
  return c >>> 0;
}

/** A CRC-32 as it is recorded: 8 lowercase hex digits. */
export const crc32Text = (crc: number): string => (crc >>> 0).toString(16).padStart(8, '0');

/** The CRC-32 of `bytes`, as recorded. */
export const crc32Hex = (bytes: Uint8Array): string => crc32Text(crc32Update(bytes));

/** Whether `v` is a recorded CRC-32 (8 lowercase hex digits). */
export const isCrc32Text = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{8}$/.test(v);
