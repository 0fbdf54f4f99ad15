/**
 * The HDF5 library (h5wasm) reports failures by printing its error stack ("HDF5-DIAG: ...", dozens of lines) to
 * the process's stderr and often returning an invalid handle instead of throwing. `runHdf5` runs one synchronous
 * h5wasm call with that output captured and turns any failure into one FormatError line naming the file, what was
 * being done, and the library's own deepest message (`BRAINLATENT_DEBUG=1` prints the whole stack as well).
 *
 * h5wasm's Node build writes through `fs.writeSync(2, …)` (and Emscripten's own messages through
 * `process.stderr.write`); both are redirected only for the duration of the synchronous call, during which no
 * other JavaScript can run, and restored before returning.
 */
import fs from 'node:fs';
import { BrainlatentError, FormatError } from '../errors.js';

let abortedOn: string | null = null;

/** The deepest frame's message of an HDF5 error stack, with its minor error class: the cause, in one line. */
export function summarizeHdf5Diagnostics(text: string): string {
  const lines = text.split('\n');
  let message = '';
  let minor = '';
  for (let i = 0; i < lines.length; i++) {
    const m = /#\d+: .* in [\w$]+\(\): (.*)$/.exec(lines[i]);
    if (m) {
      message = m[1].trim();
      minor = '';
      for (let k = i + 1; k < Math.min(lines.length, i + 3); k++) {
        const mm = /^\s*minor: (.*)$/.exec(lines[k]);
        if (mm) minor = mm[1].trim();
      }
    }
  }
  // A compression filter h5wasm lacks fails deeper, at loading its plugin ("can't open directory (…/lib/plugin)"), which
  // reads as an install problem: the frame that names the filter says what is wrong with the file.
  const filter = lines.map((l) => /required filter '([^']+)' is not registered/.exec(l)).find((m) => m);
  if (filter) {
    return `the dataset is compressed with the '${filter[1]}' filter, which this HDF5 library (h5wasm) does not have; save it again with gzip or no compression (h5py: compression='gzip')`;
  }
  const other = lines.find((l) => /Cannot enlarge memory|memory allocation failed|Aborted/.test(l));
  if (!message) return other?.trim() ?? lines.find((l) => l.trim())?.trim() ?? 'no message';
  const count = lines.filter((l) => l.trim()).length;
  return `${message}${minor && !message.toLowerCase().includes(minor.toLowerCase()) ? ` (${minor})` : ''} [${count} lines of HDF5 diagnostics; BRAINLATENT_DEBUG=1 prints them]`;
}

/**
 * Runs `fn` (a synchronous h5wasm call on `path`) with the library's diagnostics captured. Diagnostics, a thrown
 * error, or `failed(result)` returning true make it a FormatError "path: HDF5 could not <what>: <cause>".
 */
export function runHdf5<T>(path: string, what: string, fn: () => T, failed: (v: T) => boolean = () => false): T {
  if (abortedOn) {
    throw new FormatError(`${path}: HDF5 could not ${what}: the HDF5 library aborted earlier in this process (on ${abortedOn}) and cannot be used again until it restarts`, { path, field: 'hdf5' });
  }
  const chunks: string[] = [];
  const writeSync = fs.writeSync;
  const stderrWrite = process.stderr.write;
  fs.writeSync = function (fd: number, buffer: unknown, ...rest: unknown[]): number {
    if (fd !== 2) return (writeSync as (...a: unknown[]) => number).call(fs, fd, buffer, ...rest);
    if (typeof buffer === 'string') {
      chunks.push(buffer);
      return Buffer.byteLength(buffer);
    }
    const view = buffer as Uint8Array;
    const off = typeof rest[0] === 'number' ? rest[0] : 0;
    const len = typeof rest[1] === 'number' ? rest[1] : view.byteLength - off;
    chunks.push(Buffer.from(view.buffer, view.byteOffset + off, len).toString('utf8'));
    return len;
  } as typeof fs.writeSync;
  process.stderr.write = ((chunk: unknown) => {
    chunks.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  let value: T | undefined;
  let error: unknown;
  try {
    value = fn();
  } catch (e) {
    error = e;
  } finally {
    fs.writeSync = writeSync;
    process.stderr.write = stderrWrite;
  }
  const diagnostics = chunks.join('');
  if (diagnostics && process.env.BRAINLATENT_DEBUG) process.stderr.write(diagnostics);
  if (error !== undefined && /Aborted|RuntimeError|unreachable/.test(String((error as Error)?.message ?? error)) && (error as Error)?.name === 'RuntimeError') {
    abortedOn = path;
  }
  const hasDiag = /HDF5-DIAG|Cannot enlarge memory|memory allocation failed/.test(diagnostics);
  if (error instanceof BrainlatentError) throw error;
  if (error !== undefined || hasDiag || failed(value as T)) {
    const cause = hasDiag ? summarizeHdf5Diagnostics(diagnostics) : error !== undefined ? String((error as Error)?.message ?? error) : 'the library returned an invalid handle';
    throw new FormatError(`${path}: HDF5 could not ${what}: ${cause}`, { path, field: 'hdf5' });
  }
  return value as T;
}
