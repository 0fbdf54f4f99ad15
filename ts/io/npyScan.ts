/**
 * Checks a float .npy file's values without loading it: the data are read in slabs of a few MB into one
 * reusable buffer, so a table of many GB is checked in the memory of a slab (a preflight's check of a feature
 * file that the run will load later).
 */
import { fortranToCIndex, type NpyHeader } from './npy.js';
import { FormatError } from '../errors.js';
import { openRegularFile } from './byteStream.js';

/** The first value a float32 matrix could not hold: NaN, ±Inf, or (float64 files) a finite value beyond float32's range. */
export interface NonFiniteFound {
  /** Flat index (C order, as readers return the array) of the first bad element. */
  index: number;
  value: number;
  /** Bad elements in the whole file. */
  count: number;
  /** True when the first one is finite in the file but beyond float32's range (±3.4e38). */
  beyondFloat32: boolean;
}

const SLAB = 8 << 20;

/**
 * Scans the data of a float32 or float64 .npy (`header` from readNpyHeader) for values a float32 matrix cannot
 * hold; null when every value is finite. Other dtypes are not scanned (null).
 */
export async function scanNpyNonFinite(path: string, header: NpyHeader): Promise<NonFiniteFound | null> {
  const item = header.dtype === 'float32' ? 4 : header.dtype === 'float64' ? 8 : 0;
  if (item === 0) return null;
  const { fh } = await openRegularFile(path);
  try {
    const buf = new Uint8Array(new ArrayBuffer(Math.min(SLAB, Math.max(item, header.dataBytes))));
    const values = item === 4 ? new Float32Array(buf.buffer) : new Float64Array(buf.buffer);
    let found: NonFiniteFound | null = null;
    for (let done = 0; done < header.dataBytes; ) {
      const len = Math.min(buf.length, header.dataBytes - done);
      let got = 0;
      while (got < len) {
        const { bytesRead } = await fh.read(buf, got, len - got, header.dataOffset + done + got);
        if (bytesRead === 0) throw new FormatError(`${path}: file shrank while being read (${done + got} of ${header.dataBytes} data bytes)`, { path });
        got += bytesRead;
      }
      if (!header.littleEndian) swapBytes(buf, len, item);
      const n = len / item;
      const base = done / item;
      for (let k = 0; k < n; k++) {
        const x = values[k];
        // x - x is 0 for every finite x; a float64 value must also stay finite as a float32 (as readMatrixNpy converts it)
        if (x - x === 0 && (item === 4 || Number.isFinite(Math.fround(x)))) continue;
        // (a Fortran-ordered file holds its elements in another order than readers return them: the first is the least)
        const index = header.fortranOrder ? fortranToCIndex(base + k, header.shape) : base + k;
        if (!found) found = { index, value: x, count: 1, beyondFloat32: x - x === 0 };
        else {
          found.count++;
          if (index < found.index) Object.assign(found, { index, value: x, beyondFloat32: x - x === 0 });
        }
      }
      done += len;
    }
    return found;
  } finally {
    await fh.close();
  }
}

function swapBytes(buf: Uint8Array, len: number, n: number): void {
  for (let i = 0; i < len; i += n) {
    for (let a = i, b = i + n - 1; a < b; a++, b--) {
      const x = buf[a];
      buf[a] = buf[b];
      buf[b] = x;
    }
  }
}
