import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { FileAccessError, FormatError, MissingFileError } from '../errors.js';
import { gunzipOf, readableSource, type ChunkSource } from './gunzip.js';
import { scanGzip, type GzipScan } from './gzipScan.js';

const CHUNK = 1 << 20;
/** Deflate's largest expansion: one compressed byte never yields more than 1032 (zlib's documented bound). */
export const MAX_GZIP_RATIO = 1032;

/**
 * Exact-size sequential reads from a file, gunzipped on the fly when it starts with the gzip magic, so a
 * multi-gigabyte .nii.gz is never held in memory whole. Every gzip member is decompressed in turn (bgzip, pigz and
 * `cat a.gz b.gz` write several), and bytes after the last member are ignored, as gzip ("trailing garbage
 * ignored") and nibabel ignore them: zeros padding the file, or anything else once every member has been read.
 */
export class ByteStream {
  readonly path: string;
  readonly compressed: boolean;
  /** Size of the file on disk. */
  readonly fileSize: number;
  /**
   * The most bytes the file can hold once decompressed, known before decompressing anything: its size for a plain
   * file, MAX_GZIP_RATIO times it for gzip. (The gzip trailer's ISIZE is no bound: it describes only the last
   * member, and zero padding after it is read as ISIZE 0.) Readers compare it with what their header announces
   * before allocating.
   */
  readonly maxSize: number;
  /** What the reader expects in all (set by `expect`), for the message when the data end before it. */
  private expected: { bytes: number; what: string } | null = null;
  private source: ChunkSource;
  /** Its chunks are lent (ChunkSource): `chunk` is read up before the next is asked for, and copied out of. */
  private iter: AsyncIterator<Buffer>;
  private chunk: Buffer = Buffer.alloc(0);
  private pos = 0;
  private consumed = 0;
  /** Decompressed bytes the source has given (handed out or in `chunk`). */
  private received = 0;
  /** Set once the source was reopened to stop before bytes that follow the gzip data. */
  private stopsAtGzipEnd = false;

  private constructor(path: string, compressed: boolean, source: ChunkSource, fileSize: number) {
    this.path = path;
    this.compressed = compressed;
    this.source = source;
    this.fileSize = fileSize;
    this.maxSize = compressed ? fileSize * MAX_GZIP_RATIO : fileSize;
    this.iter = source[Symbol.asyncIterator]();
  }

  static async open(path: string): Promise<ByteStream> {
    const { compressed, size } = await probeFile(path);
    if (!compressed) return new ByteStream(path, false, readableSource(createReadStream(path, { highWaterMark: CHUNK })), size);
    return new ByteStream(path, true, gunzipOf(path), size);
  }

  /**
   * Declares the bytes the reader's header announces in all (`what` says how, e.g. "dims 4×3×2 of int16 … need 400
   * bytes"), so that data ending before them are named a truncated file with that reason.
   */
  expect(bytes: number, what: string): void {
    this.expected = { bytes, what };
  }

  /** Checks that nothing follows what was read (a gzip member's CRC is verified on the way); else a FormatError. */
  async expectEnd(): Promise<void> {
    let extra = this.chunk.length - this.pos;
    while (extra === 0 && (await this.nextChunk())) extra = this.chunk.length;
    if (extra > 0) {
      throw new FormatError(
        `${this.path}: trailing bytes after the ${this.consumed} bytes the header describes${this.compressed ? ' (decompressed)' : ''}`,
        { path: this.path, field: 'dim' },
      );
    }
  }

  /** Bytes handed out so far (decompressed offset). */
  get offset(): number {
    return this.consumed;
  }

  /** Reads exactly `n` bytes into `into` (or a new buffer); a short file is a FormatError naming both counts. */
  async read(n: number, into?: Uint8Array): Promise<Uint8Array> {
    const out = into ?? new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      if (this.pos >= this.chunk.length && !(await this.nextChunk())) throw this.shortData(this.consumed + filled, this.consumed + n);
      const take = Math.min(n - filled, this.chunk.length - this.pos);
      out.set(this.chunk.subarray(this.pos, this.pos + take), filled);
      this.pos += take;
      filled += take;
    }
    this.consumed += n;
    return out;
  }

  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.pos >= this.chunk.length && !(await this.nextChunk())) throw this.shortData(this.consumed + n - left, this.consumed + n);
      const take = Math.min(left, this.chunk.length - this.pos);
      this.pos += take;
      left -= take;
    }
    this.consumed += n;
  }

  close(): void {
    this.source.close();
  }

  /** The data (every gzip member, CRCs verified) ended after `got` bytes where `need` were asked for. */
  private shortData(got: number, need: number): FormatError {
    const ends = this.compressed ? `the file decompresses to only ${got} bytes` : `the file holds only ${got} bytes`;
    const why = this.expected ? `${this.expected.what}, ${ends}` : `expected at least ${need} bytes, ${ends}`;
    return new FormatError(`${this.path}: truncated file: ${why}`, { path: this.path, field: 'dim' });
  }

  private async nextChunk(): Promise<boolean> {
    let r: IteratorResult<Buffer>;
    try {
      r = await this.iter.next();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException)?.code;
      const scan = this.compressed && typeof code === 'string' && code.startsWith('Z_') ? await scanGzip(this.path) : undefined;
      if (scan && !scan.failure && scan.end < this.fileSize && !this.stopsAtGzipEnd) return this.reopenBefore(scan.end);
      // (the bytes handed out so far say little: a reader asks for a whole volume in one read)
      throw await streamError(this.path, this.compressed, e, scan);
    }
    if (r.done) return false;
    this.chunk = r.value;
    this.pos = 0;
    this.received += r.value.length;
    return true;
  }

  /**
   * Bytes that are not gzip data follow whole members, and gunzip failed on them as a new member, dropping the
   * output of its last input: decompress again up to `end` alone and go on from what was received.
   */
  private async reopenBefore(end: number): Promise<boolean> {
    this.source.close();
    this.stopsAtGzipEnd = true;
    this.source = gunzipOf(this.path, end);
    this.iter = this.source[Symbol.asyncIterator]();
    const got = this.received;
    this.received = 0;
    while (this.received <= got) {
      if (!(await this.nextChunk())) return false;
      if (this.received > got) this.pos = this.chunk.length - (this.received - got);
    }
    return true;
  }
}

/** True when the file starts with the gzip magic bytes 1f 8b. */
export async function isGzipFile(path: string): Promise<boolean> {
  return (await probeFile(path)).compressed;
}

/** Whether a file is gzip, and its size; a missing file or a folder is a typed error. */
async function probeFile(path: string): Promise<{ compressed: boolean; size: number }> {
  const { fh, size } = await openRegularFile(path);
  try {
    const b = Buffer.alloc(2);
    const { bytesRead } = await fh.read(b, 0, 2, 0);
    const compressed = bytesRead === 2 && b[0] === 0x1f && b[1] === 0x8b;
    if (compressed && size < 18) throw new FormatError(`${path}: truncated gzip file (${size} bytes)`, { path, field: 'gzip' });
    return { compressed, size };
  } catch (e) {
    throw e instanceof FormatError ? e : fileOpenError(path, e);
  } finally {
    await fh.close();
  }
}

/** Opens a file (of any kind) for reading: a missing or unreadable one is a typed error naming the path (fileOpenError). */
export async function openForReading(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (e) {
    throw fileOpenError(path, e);
  }
}

/** Opens a file for reading: a missing file, a folder or an unreadable one is a typed error naming the path. */
export async function openRegularFile(path: string): Promise<{ fh: FileHandle; size: number }> {
  const fh = await openForReading(path);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new FormatError(`${path}: not a regular file`, { path });
    return { fh, size: st.size };
  } catch (e) {
    await fh.close();
    throw e instanceof FormatError ? e : fileOpenError(path, e);
  }
}

/**
 * ENOENT becomes MissingFileError naming the path, a folder a FormatError, a file this user may not read a
 * FileAccessError keeping its errno (EACCES or EPERM: a file that is there, of another user); others pass through.
 */
export function fileOpenError(path: string, e: unknown): Error {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return new MissingFileError(`${path}: file not found`);
  if (code === 'EISDIR') return new FormatError(`${path}: is a directory, expected a file`, { path });
  if (code === 'EACCES' || code === 'EPERM') return new FileAccessError(`${path}: permission denied`, code, { path }, { cause: e });
  return e instanceof Error ? e : new Error(String(e));
}

/** What a reader reports for its stream's error `e`: a read the system failed, corrupt gzip data (counted), or `e`. */
export async function streamError(path: string, compressed: boolean, e: unknown, scan?: GzipScan): Promise<Error> {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT' || code === 'EISDIR') return fileOpenError(path, e);
  // (a read the system failed, EIO and the like, from either gunzip or a plain file's stream: nothing says the data are
  // corrupt, and the gzip walk would only fail the same way)
  if (typeof code === 'string' && !code.startsWith('Z_') && (e as NodeJS.ErrnoException).syscall === 'read') {
    return new FileAccessError(`${path}: cannot read the file (${(e as Error).message})`, code, { path }, { cause: e });
  }
  let msg = e instanceof Error ? e.message : String(e);
  if (compressed || (typeof code === 'string' && code.startsWith('Z_'))) {
    // (the walk counts exactly: gunzip drops the output of the input it failed on)
    const at = scan ?? (await scanGzip(path));
    // ISA-L names three kinds of corrupt deflate data where zlib names more: the walk's zlib, which fails on the same
    // member's deflate data (only CRCs and lengths, which it does not check, fail earlier, and ISA-L names those), says which
    if ((e as { coarse?: boolean }).coarse === true && at.failure && at.inDeflate) msg = at.failure;
    return new FormatError(`${path}: corrupt or truncated gzip data after ${at.decompressed} decompressed bytes (${msg})`);
  }
  return e instanceof Error ? e : new Error(msg);
}
