/**
 * A walk over a gzip file's members (error path only: it decompresses the file again). Node's gunzip cannot say
 * where its data failed: bytes after the last member that are not zeros fail as a new member ("incorrect header
 * check") and the output of the failing input piece is dropped, so neither "trailing bytes" nor the decompressed
 * count can be told from its error. The walk inflates member by member, and a failing member once more a byte at a
 * time from the last piece that inflated, so its counts are exact.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { createInflateRaw, type InflateRaw } from 'node:zlib';

const PIECE = 1 << 16;

export interface GzipScan {
  /** File offset where the gzip data end: after the last whole member (the file size when nothing follows). */
  end: number;
  /** Bytes the members before the failure decompress to, plus what the failing one gave before its bad byte. */
  decompressed: number;
  /** Why the data failed (corrupt deflate data, a truncated member or header); absent when every member was whole. */
  failure?: string;
  /** The failure is zlib's, on a member's deflate data (its words then name the fault as zlib's gunzip names it). */
  inDeflate?: boolean;
}

export async function scanGzip(path: string): Promise<GzipScan> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    let p = 0;
    let decompressed = 0;
    while (p < size) {
      const head = await memberHeader(fh, p, size);
      // not a gzip member: the end of the gzip data (what follows is zeros or other bytes; the caller says which)
      if (head === 'not gzip' && p > 0) return { end: p, decompressed };
      if (typeof head === 'string') return { end: p, decompressed, failure: head === 'not gzip' ? 'not gzip data' : head };
      let m = await inflateMember(fh, p + head, size, Infinity);
      if (m.failure) m = await inflateMember(fh, p + head, size, m.goodInput);
      if (m.failure) return { end: p, decompressed: decompressed + m.produced, failure: m.failure, inDeflate: m.inDeflate };
      decompressed += m.produced;
      p += head + m.consumed + 8; // CRC32 and ISIZE
      if (p > size) return { end: size, decompressed, failure: 'a member ends without its 8-byte trailer (truncated file?)' };
    }
    return { end: p, decompressed };
  } finally {
    await fh.close();
  }
}

/** The gzip member header's length at `p` (RFC 1952 2.3), 'not gzip', or why it cannot be read. */
async function memberHeader(fh: FileHandle, p: number, size: number): Promise<number | string> {
  const b = Buffer.alloc(Math.min(PIECE, size - p));
  await fh.read(b, 0, b.length, p);
  if (b.length < 3 || b[0] !== 0x1f || b[1] !== 0x8b || b[2] !== 8) return 'not gzip';
  if (b.length < 10) return 'a gzip member header is cut short (truncated file?)';
  const flags = b[3];
  let o = 10;
  if (flags & 4) o += 2 + (o + 2 <= b.length ? b.readUInt16LE(o) : 0); // FEXTRA
  for (const bit of [8, 16]) {
    if (flags & bit) { // FNAME, FCOMMENT: zero-terminated
      const z = b.indexOf(0, o);
      if (z < 0) return 'a gzip member header name or comment does not end within 64 KiB';
      o = z + 1;
    }
  }
  if (flags & 2) o += 2; // FHCRC
  return o <= b.length ? o : 'a gzip member header is cut short (truncated file?)';
}

interface Member {
  /** Deflate bytes the member's data took. */
  consumed: number;
  produced: number;
  failure?: string;
  /** The failure is zlib's error on the deflate data (not the file ending inside them). */
  inDeflate?: boolean;
  /** File offset up to which input inflated without failing (a piece boundary). */
  goodInput: number;
}

/** Inflates the deflate data at `start`, in pieces of PIECE bytes before `fineFrom` and of one byte from there. */
async function inflateMember(fh: FileHandle, start: number, size: number, fineFrom: number): Promise<Member> {
  const z = createInflateRaw({ chunkSize: PIECE });
  try {
    return await inflateInto(z, fh, start, size, fineFrom);
  } finally {
    z.destroy();
  }
}

async function inflateInto(z: InflateRaw, fh: FileHandle, start: number, size: number, fineFrom: number): Promise<Member> {
  let produced = 0;
  let ended = false;
  let failure: string | undefined;
  z.on('data', (c: Buffer) => void (produced += c.length));
  z.on('end', () => void (ended = true));
  let inDeflate = false;
  z.on('error', (e) => {
    failure ??= e.message;
    inDeflate = true;
  });
  const buf = Buffer.alloc(PIECE);
  let pos = start;
  let good = { input: start, output: 0 };
  // (a write that fails never calls back: its 'error' ends the wait; setImmediate lets 'data' and 'end' arrive)
  const feed = (bytes: Buffer) =>
    new Promise<void>((resolve) => {
      const done = () => {
        z.off('error', done);
        setImmediate(resolve);
      };
      z.on('error', done);
      z.write(bytes, done);
    });
  const going = () => !ended && !failure && z.bytesWritten === pos - start;
  while (going() && pos < size) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(PIECE, size - pos, pos < fineFrom ? fineFrom - pos : PIECE), pos);
    if (pos < fineFrom) {
      await feed(Buffer.from(buf.subarray(0, bytesRead)));
      pos += bytesRead;
      if (!failure) good = { input: pos, output: produced };
    } else {
      for (let i = 0; i < bytesRead && going(); i++) {
        await feed(Buffer.from(buf.subarray(i, i + 1)));
        pos++;
        if (!failure) good = { input: pos, output: produced };
      }
    }
  }
  if (failure) return { consumed: 0, produced: good.output, failure, inDeflate, goodInput: good.input };
  // zlib took fewer bytes than it was given: the deflate data ended; else the file ended first
  if (!ended && z.bytesWritten === pos - start) {
    return { consumed: z.bytesWritten, produced, failure: 'the file ends inside a gzip member (truncated file?)', goodInput: pos };
  }
  return { consumed: z.bytesWritten, produced, goodInput: pos };
}
