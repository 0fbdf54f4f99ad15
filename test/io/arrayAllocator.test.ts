/**
 * The engine's large-array allocator (huge pages) behind the .npy readers: arrays above its 2 MiB threshold come from
 * it unfilled, so the read is their first touch; what the readers return must still be exactly the file's values,
 * and the engine's own allocLargeBuffer stays zero-filled by default.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { setLargeArrayAllocator } from '../../ts/io/arrayAllocator.js';
import { decodeNpy, encodeNpy, readMatrixNpy, readNpy, writeNpy } from '../../ts/io/npy.js';
import { nativeSync, useEngineArrayAllocator } from '../../ts/native/call.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-alloc-'));
afterAll(() => {
  setLargeArrayAllocator(undefined);
  rmSync(dir, { recursive: true, force: true });
});

/** The page choice of a fresh process with `BRAINLATENT_HUGE_PAGES` set to `value` (or unset). */
function hugePagesWith(value?: string): boolean {
  const env = { ...process.env };
  if (value === undefined) delete env.BRAINLATENT_HUGE_PAGES;
  else env.BRAINLATENT_HUGE_PAGES = value;
  // (the built engine module, as the CLI tests run the built CLI)
  const call = new URL('../../dist/native/call.js', import.meta.url).pathname;
  const out = execFileSync(process.execPath, ['-e', `import(${JSON.stringify(call)}).then((m) => console.log(m.nativeSync((b) => b.buildInfo()).hugePages))`], { env }).toString();
  return JSON.parse(out.trim()) as boolean;
}

describe('large arrays in engine memory', () => {
  it('puts them in huge pages as BRAINLATENT_HUGE_PAGES says, else as measured (Linux; elsewhere never)', () => {
    const linux = existsSync('/sys/kernel/mm/transparent_hugepage/enabled');
    expect(hugePagesWith('1')).toBe(linux);
    expect(hugePagesWith('0')).toBe(false);
    expect(typeof hugePagesWith()).toBe('boolean');
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
