/** Reading a whole (small) file into memory with its size checked first: a typed error for a missing or oversized file. */
import { FormatError, LimitError } from '../errors.js';
import { fileOpenError, openRegularFile } from './byteStream.js';

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
