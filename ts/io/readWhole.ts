/** Reading a whole (small) file into memory with its size checked first: a typed error for a missing or oversized file. */

import { FormatError, LimitError } from '../errors.js';
import { fileOpenError, openForReading, openRegularFile } from './byteStream.js';

/**
 * The file's bytes, refusing files over `maxBytes` (named by `limitName`, the setting that raises the limit) before
 * reading them; a missing file is a MissingFileError, a folder a FormatError, each naming the path.
 */
export async function readWholeFile(path: string, maxBytes: number, limitName: string): Promise<Buffer> {
  const { fh, size } = await openRegularFile(path);
  try {
    if (size > maxBytes) {
      throw new LimitError(`${path}: ${size} bytes is more than the ${maxBytes}-byte limit for this kind of file (raise it with ${limitName})`, { path });
    }
    const buf = Buffer.alloc(size);
    let done = 0;
    while (done < size) {
      const { bytesRead } = await fh.read(buf, done, size - done, done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    if (done !== size) throw new FormatError(`${path}: the file shrank while being read (${done} of ${size} bytes)`, { path });
    return buf;
  } catch (e) {
    throw e instanceof FormatError || e instanceof LimitError ? e : fileOpenError(path, e);
  } finally {
    await fh.close();
  }
}

/** A byte limit from an environment variable, else the default. */
export function byteLimit(envName: string, fallback: number): number {
  const v = Number(process.env[envName]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

/**
 * A file's bytes, at most `maxBytes` of them, for text files that may come through a pipe (`--config <(jq …)`):
 * a regular file over the limit is refused by its size before any read; another kind (a FIFO, a character device
 * such as /dev/zero, which has no size and no end) is read until the limit and refused past it, instead of growing
 * until Node's "Invalid string length". `what` names the kind of file ('JSON files'), `limitName` the setting that
 * raises the limit. A missing file is a MissingFileError and a folder a FormatError, each naming the path.
 */
export async function readCappedFile(path: string, maxBytes: number, what: string, limitName: string): Promise<Buffer> {
  const fh = await openForReading(path);
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw new FormatError(`${path}: is a directory, expected a file`, { path });
    const limit = `the ${maxBytes}-byte limit for ${what} (raise it with ${limitName})`;
    if (st.isFile() && st.size > maxBytes) throw new LimitError(`${path}: ${st.size} bytes is more than ${limit}`, { path });
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(1 << 20, maxBytes + 1 - total));
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      chunks.push(buf.subarray(0, bytesRead));
      total += bytesRead;
      if (total > maxBytes) {
        throw new LimitError(`${path}: ${st.isFile() ? 'more' : 'not a regular file, and it holds more'} than ${limit}`, { path });
      }
    }
    return Buffer.concat(chunks, total);
  } catch (e) {
    throw e instanceof FormatError || e instanceof LimitError ? e : fileOpenError(path, e);
  } finally {
    await fh.close();
  }
}
