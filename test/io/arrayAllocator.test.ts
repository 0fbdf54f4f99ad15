/**
 * The engine's large-array allocator (huge pages) behind the .npy readers: arrays above its 2 MiB threshold come from
 * it unfilled, so the read is their first touch; what the readers return must still be exactly the file's values,
 * and the engine's own allocLargeBuffer stays zero-filled by default.
 */
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { setLargeArrayAllocator, setLargeFileMapper } from '../../ts/io/arrayAllocator.js';
import { decodeNpy, encodeNpy, readMatrixNpy, readNpy, writeNpy } from '../../ts/io/npy.js';
import { nativeSync, useEngineArrayAllocator, useEngineFileMapping } from '../../ts/native/call.js';
import { commandOutput, runCommand } from '../helpers/nodeChild.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-alloc-'));
afterAll(() => {
  setLargeArrayAllocator(undefined);
  setLargeFileMapper(undefined);
  rmSync(dir, { recursive: true, force: true });
});

/** The page choice of a fresh process with `BRAINLATENT_HUGE_PAGES` set to `value` (or unset). */
async function hugePagesWith(value?: string): Promise<boolean> {
  const env = { ...process.env };
  if (value === undefined) delete env.BRAINLATENT_HUGE_PAGES;
  else env.BRAINLATENT_HUGE_PAGES = value;
  // (the built engine module, as the CLI tests run the built CLI)
  const call = new URL('../../dist/native/call.js', import.meta.url).pathname;
  const out = await commandOutput(process.execPath, ['-e', `import(${JSON.stringify(call)}).then((m) => console.log(m.nativeSync((b) => b.buildInfo()).hugePages))`], { env });
  return JSON.parse(out.trim()) as boolean;
}

describe('large arrays in engine memory', () => {
  it('puts them in huge pages as BRAINLATENT_HUGE_PAGES says, else as measured (Linux; elsewhere never)', async () => {
    const linux = existsSync('/sys/kernel/mm/transparent_hugepage/enabled');
    expect(await hugePagesWith('1')).toBe(linux);
    expect(await hugePagesWith('0')).toBe(false);
    expect(typeof (await hugePagesWith())).toBe('boolean');
    expect(typeof nativeSync((b) => b.buildInfo()).hugePages).toBe('boolean');
  });

  it('allocLargeBuffer is zero-filled unless told the caller overwrites it', () => {
    const n = 3 << 20;
    const zeroed = new Uint8Array(nativeSync((b) => b.allocLargeBuffer(n)));
    expect(zeroed.length).toBe(n);
    expect(zeroed.every((v) => v === 0)).toBe(true);
    expect(new Uint8Array(nativeSync((b) => b.allocLargeBuffer(n, false))).length).toBe(n);
    expect(new Uint8Array(nativeSync((b) => b.allocLargeBuffer(0, false))).length).toBe(0);
  });

  it('.npy arrays read into it (file and in-memory) hold exactly the values written', async () => {
    expect(useEngineArrayAllocator()).toBe(true);
    const rows = 700, cols = 1100; // 3.08 MB: above the allocator's threshold
    const a = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i) * 1e3 + (i % 7));
    await writeNpy(join(dir, 'a.npy'), a, [rows, cols]);
    const m = await readMatrixNpy(join(dir, 'a.npy'), 'A', { finite: false });
    expect([m.rows, m.cols]).toEqual([rows, cols]);
    expect(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength).equals(Buffer.from(a.buffer))).toBe(true);
    const d = decodeNpy(encodeNpy(a, [rows, cols]), 'body');
    expect(Buffer.from((d.data as Float32Array).buffer, 0, a.byteLength).equals(Buffer.from(a.buffer))).toBe(true);
    const i32 = Int32Array.from({ length: 1 << 20 }, (_, i) => i * 7 - 5);
    await writeNpy(join(dir, 'i.npy'), i32, [i32.length]);
    expect(Array.from((await readNpy(join(dir, 'i.npy'))).data as Int32Array).every((v, i) => v === i * 7 - 5)).toBe(true);
  });

  it('a file that ends before its data does is refused, not returned half-filled', async () => {
    const a = new Float32Array(1 << 20).fill(1);
    await writeNpy(join(dir, 'b.npy'), a, [1024, 1024]);
    const whole = readFileSync(join(dir, 'b.npy'));
    writeFileSync(join(dir, 'short.npy'), whole.subarray(0, whole.length - 4096));
    await expect(readNpy(join(dir, 'short.npy'))).rejects.toThrow(/truncated|shrank/);
  });
});

/** A .npy file of `descr` (e.g. '>f4') holding `body` as its data bytes, written by hand (encodeNpy writes little-endian only). */
function rawNpy(path: string, descr: string, shape: number[], body: Buffer, fortran = false): void {
  const dict = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
  const head = Buffer.alloc(total, 0x20);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(head, 0);
  head.writeUInt16LE(total - 10, 8);
  head.write(dict, 10, 'latin1');
  head[total - 1] = 0x0a;
  writeFileSync(path, Buffer.concat([head, body]));
}

describe('large arrays mapped from their file', () => {
  /** Installs the engine's mapper behind a wrapper that records the ranges it mapped. */
  function countingMapper(): Array<[number, number]> {
    expect(useEngineFileMapping()).toBe(process.platform !== 'win32' && !nativeSync((b) => b.buildInfo()).hugePages);
    const mapFile = nativeSync((b) => b.mapFile);
    if (!mapFile) throw new Error('the engine has no mapFile');
    const calls: Array<[number, number]> = [];
    setLargeFileMapper((fd, offset, bytes) => {
      calls.push([offset, bytes]);
      return nativeSync((b) => b.mapFile!(fd, offset, bytes));
    });
    return calls;
  }

  it('is chosen where the engine does not use huge pages (4 KiB faults cheap), as BRAINLATENT_HUGE_PAGES says or as measured', async () => {
    const choice = async (value: string) => {
      const call = new URL('../../dist/native/call.js', import.meta.url).pathname;
      const out = await commandOutput(process.execPath, ['-e', `import(${JSON.stringify(call)}).then((m) => console.log(m.useEngineFileMapping()))`], {
        env: { ...process.env, BRAINLATENT_HUGE_PAGES: value },
      });
      return JSON.parse(out.trim()) as boolean;
    };
    const linux = existsSync('/sys/kernel/mm/transparent_hugepage/enabled');
    expect(await choice('0')).toBe(process.platform !== 'win32');
    expect(await choice('1')).toBe(!linux && process.platform !== 'win32');
  });

  it('maps large .npy data instead of reading it: the same values, and writes to the array never reach the file', async () => {
    const calls = countingMapper();
    const rows = 700, cols = 1100; // 3.08 MB: above the 2 MiB threshold
    const a = Float32Array.from({ length: rows * cols }, (_, i) => Math.cos(i) * 1e3 - (i % 5));
    const file = join(dir, 'mapped.npy');
    await writeNpy(file, a, [rows, cols]);
    const before = readFileSync(file);
    const m = await readMatrixNpy(file, 'A', { finite: false });
    expect(calls).toEqual([[128, a.byteLength]]);
    expect([m.rows, m.cols]).toEqual([rows, cols]);
    expect(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength).equals(Buffer.from(a.buffer))).toBe(true);
    m.data.fill(7);
    expect(m.data[12345]).toBe(7);
    expect(readFileSync(file).equals(before)).toBe(true);
    // float64 data is mapped too, then converted to float32 as before
    const d = Float64Array.from({ length: 400_000 }, (_, i) => i / 3 - 1e4);
    await writeNpy(join(dir, 'mapped64.npy'), d, [400, 1000]);
    const m64 = await readMatrixNpy(join(dir, 'mapped64.npy'), 'D');
    expect(calls.length).toBe(2);
    expect(Buffer.from(m64.data.buffer, m64.data.byteOffset, m64.data.byteLength).equals(Buffer.from(Float32Array.from(d).buffer))).toBe(true);
  });

  it('reads instead where mapping does not apply: small arrays, a byte swap, a mapper that fails', async () => {
    const calls = countingMapper();
    const small = Float32Array.from({ length: 1000 }, (_, i) => i);
    await writeNpy(join(dir, 'small.npy'), small, [10, 100]);
    expect(Array.from((await readNpy(join(dir, 'small.npy'))).data as Float32Array)).toEqual(Array.from(small));
    // big-endian float32: swapped in place, so read, not mapped
    const n = 1 << 20, big = Buffer.alloc(4 * n);
    for (let i = 0; i < n; i++) big.writeFloatBE(i * 0.5, 4 * i);
    rawNpy(join(dir, 'big.npy'), '>f4', [n], big);
    const b = (await readNpy(join(dir, 'big.npy'))).data as Float32Array;
    expect(b[0]).toBe(0);
    expect(b[n - 1]).toBe((n - 1) * 0.5);
    expect(calls).toEqual([]);
    // a mapper that throws (a file system without mmap): the file is read, with the same values
    setLargeFileMapper(() => {
      throw new Error('mmap: no such device');
    });
    const a = Float32Array.from({ length: 1 << 20 }, (_, i) => i - 7);
    await writeNpy(join(dir, 'nomap.npy'), a, [1024, 1024]);
    const r = (await readNpy(join(dir, 'nomap.npy'))).data as Float32Array;
    expect(Buffer.from(r.buffer, r.byteOffset, r.byteLength).equals(Buffer.from(a.buffer))).toBe(true);
  });

  it('a Fortran-ordered array is read, not mapped, and transposed into C order', async () => {
    const calls = countingMapper();
    const rows = 700, cols = 1100; // 3.08 MB: above the 2 MiB threshold
    const c = Float32Array.from({ length: rows * cols }, (_, i) => i);
    const f = new Float32Array(rows * cols); // the same array, column-major
    for (let r = 0; r < rows; r++) for (let k = 0; k < cols; k++) f[k * rows + r] = c[r * cols + k];
    rawNpy(join(dir, 'fortran.npy'), '<f4', [rows, cols], Buffer.from(f.buffer), true);
    const m = await readMatrixNpy(join(dir, 'fortran.npy'), 'F');
    expect(calls).toEqual([]);
    expect([m.rows, m.cols]).toEqual([rows, cols]);
    expect(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength).equals(Buffer.from(c.buffer))).toBe(true);
  });

  it('a file that ends before its data does is refused with a mapper installed too', async () => {
    countingMapper();
    await expect(readNpy(join(dir, 'short.npy'))).rejects.toThrow(/truncated|shrank|bytes/);
  });

  it('the engine refuses a range past the end of the file and a descriptor that is not a regular file', () => {
    const fd = openSync(join(dir, 'small.npy'), 'r');
    try {
      expect(() => nativeSync((b) => b.mapFile!(fd, 0, 1 << 30))).toThrow(/mapFile: the range 0 \+ 1073741824 is not within the \d+-byte regular file/);
      expect(new Uint8Array(nativeSync((b) => b.mapFile!(fd, 64, 16)))).toEqual(new Uint8Array(readFileSync(join(dir, 'small.npy')).subarray(64, 80)));
    } finally {
      closeSync(fd);
    }
    const folder = openSync(dir, 'r');
    try {
      expect(() => nativeSync((b) => b.mapFile!(folder, 0, 1))).toThrow(/not within/);
    } finally {
      closeSync(folder);
    }
    expect(() => nativeSync((b) => b.mapFile!(1 << 20, 0, 1))).toThrow(/fstat: Bad file descriptor/);
  });

  it('a mapped input that shrinks while in use ends the process saying so, not with a bare bus error (Linux)', async () => {
    if (process.platform !== 'linux') return;
    const dist = (m: string) => JSON.stringify(new URL(`../../dist/${m}`, import.meta.url).pathname);
    const file = join(dir, 'shrinks.npy');
    const script =
      `const { useEngineFileMapping } = await import(${dist('native/call.js')});` +
      `const { readNpy, writeNpy } = await import(${dist('io/npy.js')});` +
      `const { truncateSync } = await import('node:fs');` +
      `if (!useEngineFileMapping()) throw new Error('not mapping');` +
      `await writeNpy(${JSON.stringify(file)}, new Float32Array(1 << 20).fill(3), [1024, 1024]);` +
      `const a = await readNpy(${JSON.stringify(file)});` +
      `truncateSync(${JSON.stringify(file)}, 100);` +
      `console.log(a.data[(1 << 20) - 1]);`;
    const r = await runCommand(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, BRAINLATENT_HUGE_PAGES: '0' } });
    expect(r.stderr).toMatch(/input file read through a memory mapping was truncated or rewritten while the command ran \(SIGBUS\)/);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
  });

  it('maps the file the reader opened, even when its path names another file by then', async () => {
    countingMapper();
    const a = Float32Array.from({ length: 1 << 20 }, (_, i) => i % 1000);
    const file = join(dir, 'swapped.npy');
    await writeNpy(file, a, [1024, 1024]);
    const fd = openSync(file, 'r');
    try {
      // the path now names a new file (written to a temporary name and renamed, as brainlatent writes)
      await writeNpy(file, new Float32Array(1 << 20).fill(-1), [1024, 1024]);
      const mapped = new Float32Array(nativeSync((b) => b.mapFile!(fd, 128, a.byteLength)));
      expect(mapped[999]).toBe(999);
    } finally {
      closeSync(fd);
    }
  });
});
