import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import h5wasm from 'h5wasm/node';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { FormatError, InvalidArgumentError, MissingFileError, ShapeError } from '../../ts/errors.js';
import { Hdf5Reader, readHdf5Masked, writeHdf5 } from '../../ts/io/hdf5.js';
import { readMat } from '../../ts/io/mat.js';
import { maskFromVolume, type Grid } from '../../ts/io/voxelMask.js';
import { hasPython, runPython } from './python.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-hdf5-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const grid: Grid = [6, 5, 4];
const [X, Y, Z] = grid;
const T = 9;

/** Value at (t, z, y, x), the same formula the python fixture uses. */
const value = (t: number, z: number, y: number, x: number) => ((t * 131 + z * 37 + y * 11 + x * 3) % 5001) - 2500;

function betas(): Int16Array {
  const a = new Int16Array(T * Z * Y * X);
  for (let t = 0; t < T; t++)
    for (let z = 0; z < Z; z++)
      for (let y = 0; y < Y; y++) for (let x = 0; x < X; x++) a[((t * Z + z) * Y + y) * X + x] = value(t, z, y, x);
  return a;
}

const maskVol = new Float32Array(X * Y * Z).map((_, i) => ((i * 7) % 5 < 2 ? 1 : 0));
const mask = maskFromVolume(maskVol, grid, (v) => v > 0, 'test mask');

function expectMasked(m: { data: Float32Array; rows: number; cols: number }) {
  expect(m.rows).toBe(T);
  expect(m.cols).toBe(mask.indices.length);
  for (let j = 0; j < m.cols; j++) {
    const i = mask.indices[j];
    const [x, y, z] = [i % X, Math.floor(i / X) % Y, Math.floor(i / (X * Y))];
    for (let t = 0; t < T; t++) expect(m.data[t * m.cols + j]).toBe(Math.fround(value(t, z, y, x) / 300));
  }
}

describe('HDF5 round trips', () => {
  it('per-voxel chunks (NSD layout): masked extraction ÷300 exact', async () => {
    const p = join(dir, 'chunked.hdf5');
    await writeHdf5(p, [{ name: 'betas', data: betas(), shape: [T, Z, Y, X], chunks: [T, 1, 1, 1] }]);
    const r = await Hdf5Reader.open(p);
    expect(r.chunks('betas')).toEqual([T, 1, 1, 1]);
    expect(r.datasets()).toEqual([{ path: 'betas', shape: [T, Z, Y, X], dtype: '<h', chunks: [T, 1, 1, 1] }]);
    r.close();
    expectMasked((await readHdf5Masked(p, mask, { divisor: 300 })).betas);
  });

  it('a chunked dataset above the slab size is written a slab at a time, the same file to every reader', async () => {
    // (an NSD session's 1 GB at once ran h5wasm out of heap; here slabs of 200 bytes: one z-plane each)
    const p = join(dir, 'slabbed.hdf5');
    await writeHdf5(p, [{ name: 'betas', data: betas(), shape: [T, Z, Y, X], chunks: [T, 1, 1, 1] }], {}, 200);
    const r = await Hdf5Reader.open(p);
    expect(r.datasets()).toEqual([{ path: 'betas', shape: [T, Z, Y, X], dtype: '<h', chunks: [T, 1, 1, 1] }]);
    expect(Array.from(r.readSlab('betas', []) as Int16Array)).toEqual(Array.from(betas()));
    r.close();
    expectMasked((await readHdf5Masked(p, mask, { divisor: 300 })).betas);
    // chunks over the first axis (the stimuli's imgBrick), compressed, 3 slabs of 2 images and 1 of 1
    const img = new Uint8Array(7 * 4 * 4 * 3).map((_, i) => (i * 13) % 251);
    const q = join(dir, 'slabbed-img.hdf5');
    await writeHdf5(q, [{ name: 'imgBrick', data: img, shape: [7, 4, 4, 3], chunks: [1, 4, 4, 3], compression: 4 }], {}, 100);
    const ri = await Hdf5Reader.open(q);
    expect(ri.shape('imgBrick')).toEqual([7, 4, 4, 3]);
    expect(Array.from(ri.readSlab('imgBrick', []) as Uint8Array)).toEqual(Array.from(img));
    ri.close();
    if (hasPython('h5py', 'numpy')) {
      const sums = await runPython(
        `import sys, h5py, numpy as np\nb = h5py.File(sys.argv[1])['betas'][()]\ni = h5py.File(sys.argv[2])['imgBrick'][()]\nprint(b.shape, int(b.astype(np.int64).sum()), i.shape, int(i.astype(np.int64).sum()))`,
        p, q,
      );
      expect(sums.trim()).toBe(`(${T}, ${Z}, ${Y}, ${X}) ${betas().reduce((a, v) => a + v, 0)} (7, 4, 4, 3) ${img.reduce((a, v) => a + v, 0)}`);
    }
  });

  it('contiguous layout, read plane by plane in small trial blocks', async () => {
    const p = join(dir, 'contig.hdf5');
    await writeHdf5(p, [{ name: 'grp/betas', data: betas(), shape: [T, Z, Y, X] }]);
    expectMasked((await readHdf5Masked(p, mask, { dataset: 'grp/betas', divisor: 300, maxSlabBytes: 200 })).betas);
  });

  it('float64 betas are read within a small slab cap, in every layout (the item size, not 4 bytes, sizes the reads)', async () => {
    const f64 = Float64Array.from(betas(), (v) => v / 7);
    for (const [name, chunks] of [['f64-voxel', [T, 1, 1, 1]], ['f64-odd', [5, 2, 3, 3]], ['f64-contig', undefined]] as const) {
      const p = join(dir, `${name}.hdf5`);
      await writeHdf5(p, [{ name: 'betas', data: f64, shape: [T, Z, Y, X], ...(chunks ? { chunks: [...chunks] } : {}) }]);
      // 600 bytes: a few trials of a plane's box; 40: one trial of a run of 5 voxels, less than one trial of a box; 8: one value
      for (const maxSlabBytes of [600, 40, 8]) {
        const m = (await readHdf5Masked(p, mask, { divisor: 300, maxSlabBytes })).betas;
        expect([m.rows, m.cols]).toEqual([T, mask.indices.length]);
        for (let j = 0; j < m.cols; j++) {
          const i = mask.indices[j];
          const [x, y, z] = [i % X, Math.floor(i / X) % Y, Math.floor(i / (X * Y))];
          for (let t = 0; t < T; t++) expect(m.data[t * m.cols + j]).toBe(Math.fround(value(t, z, y, x) / 7 / 300));
        }
      }
    }
  });

  it('slabs and attributes', async () => {
    const p = join(dir, 'img.hdf5');
    const img = new Uint8Array(3 * 4 * 4 * 3).map((_, i) => i % 251);
    await writeHdf5(p, [{ name: 'imgBrick', data: img, shape: [3, 4, 4, 3], attrs: { note: 'hi' } }], { version: 2 });
    using r = await Hdf5Reader.open(p);
    const one = r.readSlab('imgBrick', [[1, 2]]);
    expect(one).toBeInstanceOf(Uint8Array);
    expect(Array.from(one)).toEqual(Array.from(img.subarray(48, 96)));
    expect(r.attrs('imgBrick')).toEqual({ note: 'hi' });
    expect(r.attrs('/')).toEqual({ version: 2 });
  });
});

describe('HDF5 bad input and the zero guard', () => {
  it('refuses slabs over the cap', async () => {
    const p = join(dir, 'cap.hdf5');
    await writeHdf5(p, [{ name: 'betas', data: betas(), shape: [T, Z, Y, X] }]);
    using r = await Hdf5Reader.open(p);
    expect(() => r.readSlab('betas', [], 1000)).toThrow(InvalidArgumentError);
    expect(() => r.readSlab('betas', [], 1000)).toThrow(/a [\d,]+ bytes read of betas exceeds the 1,000 bytes slab cap/);
    expect(() => r.readSlab('betas', [[0, T + 1]])).toThrow(/out of bounds/);
  });

  it('slab caps are integers >= 1, named by their option (NaN read as out-of-bounds ranges, 0 as a "-1 bytes" cap)', async () => {
    const p = join(dir, 'capopt.hdf5');
    await writeHdf5(p, [{ name: 'betas', data: betas(), shape: [T, Z, Y, X], chunks: [T, 1, 1, 1] }]);
    for (const [v, got] of [[NaN, 'NaN'], [0, '0'], [-1, '-1'], [2.5, '2.5'], ['3', 'string "3"']] as const) {
      await expect(readHdf5Masked(p, mask, { maxSlabBytes: v as number })).rejects.toThrow(new InvalidArgumentError(`readHdf5Masked maxSlabBytes: expected an integer >= 1, got ${got}`));
      using r = await Hdf5Reader.open(p);
      expect(() => r.readSlab('betas', [], v as number)).toThrow(new InvalidArgumentError(`Hdf5Reader.readSlab maxBytes: expected an integer >= 1, got ${got}`));
      await expect(readMat(join(dir, 'never-opened.mat'), { slabBytes: v as number })).rejects.toThrow(new InvalidArgumentError(`readMat slabBytes: expected an integer >= 1, got ${got}`));
    }
  });

  it("writeHdf5 refuses bad shapes, chunks, compression and slabBytes, naming each, before the file is made", async () => {
    const p = join(dir, 'badspec.hdf5');
    const data = new Int16Array(10);
    const write = (spec: object, slabBytes?: number) => writeHdf5(p, [{ name: 'b', data, shape: [5, 2], ...spec }], {}, slabBytes);
    await expect(write({ shape: [2.5, 2] })).rejects.toThrow(new ShapeError(`${p}: dataset b: shape [2.5, 2] must be a list of integers >= 0`));
    for (const chunks of [[-1, 2], [2.5, 2], [5], [6, 2], [0, 1]]) {
      await expect(write({ chunks })).rejects.toThrow(
        new InvalidArgumentError(`${p}: dataset b chunks: expected 2 integers >= 1, none above the shape [5, 2], got [${chunks.join(', ')}]`),
      );
    }
    for (const [compression, got] of [[10, '10'], [NaN, 'NaN'], [2.5, '2.5'], [-1, '-1']] as const) {
      await expect(write({ chunks: [5, 2], compression })).rejects.toThrow(new InvalidArgumentError(`${p}: dataset b compression: expected an integer in 0..9, got ${got}`));
    }
    await expect(write({ compression: 4 })).rejects.toThrow(new InvalidArgumentError(`${p}: dataset b compression: a compressed dataset needs chunks (give chunks with it)`));
    for (const slabBytes of [0, -1, NaN]) {
      await expect(write({}, slabBytes)).rejects.toThrow(new InvalidArgumentError(`writeHdf5 slabBytes: expected an integer >= 1, got ${slabBytes}`));
    }
    expect(existsSync(p)).toBe(false);
    // the bounds themselves are taken: chunks equal to the shape, level 0 and 9, a 0-length axis
    await write({ chunks: [5, 2], compression: 9 }, 1);
    // (level 0 is no compression: unchunked, as h5wasm writes it)
    await write({ compression: 0 });
    await writeHdf5(p, [{ name: 'e', data: new Int16Array(0), shape: [0, 3], chunks: [1, 3], compression: 0 }]);
  });

  it('turns a silent all-zero read into an error', async () => {
    const p = join(dir, 'zeros.hdf5');
    const big = new Int16Array(64 * 32 * 32).fill(5);
    await writeHdf5(p, [{ name: 'betas', data: big, shape: [64, 32, 32] }]);
    const real = h5wasm.Dataset.prototype.slice;
    // Emulate h5wasm's heap failure: big reads come back zero, small ones are right.
    const spy = vi.spyOn(h5wasm.Dataset.prototype, 'slice').mockImplementation(function (this: InstanceType<typeof h5wasm.Dataset>, ranges) {
      const v = real.call(this, ranges) as Int16Array;
      return v.length > 10000 ? new Int16Array(v.length) : v;
    });
    try {
      using r = await Hdf5Reader.open(p);
      expect(() => r.readSlab('betas')).toThrow(/returned all zeros for a 0\.1 MB read of betas .*wasm heap ran out/);
    } finally {
      spy.mockRestore();
    }
    const zeros = join(dir, 'truezeros.hdf5');
    await writeHdf5(zeros, [{ name: 'betas', data: new Int16Array(64 * 32 * 32), shape: [64, 32, 32] }]);
    using r2 = await Hdf5Reader.open(zeros);
    expect(r2.readSlab('betas').length).toBe(65536);
  });

  it('unexpected dataset shape, missing dataset, missing file, not HDF5', async () => {
    const p = join(dir, 'shape.hdf5');
    await writeHdf5(p, [{ name: 'betas', data: new Int16Array(T * 3 * Y * X), shape: [T, 3, Y, X] }]);
    await expect(readHdf5Masked(p, mask)).rejects.toThrow(ShapeError);
    await expect(readHdf5Masked(p, mask)).rejects.toThrow(/shape\.hdf5: dataset betas has shape \(9, 3, 5, 6\), expected \(trials, 4, 5, 6\)/);
    await expect(readHdf5Masked(p, mask, { dataset: 'other' })).rejects.toThrow(/shape\.hdf5: no dataset other; found betas/);
    await expect(Hdf5Reader.open(join(dir, 'missing.hdf5'))).rejects.toThrow(MissingFileError);
    writeFileSync(join(dir, 'junk.hdf5'), 'not hdf5 at all');
    await expect(Hdf5Reader.open(join(dir, 'junk.hdf5'))).rejects.toThrow(FormatError);
  });
});

describe.skipIf(!hasPython('h5py', 'numpy'))('HDF5 files from h5py', () => {
  it.each([
    ['per-voxel chunks', 'chunks=(T,1,1,1)'],
    ['gzip chunks', "chunks=(T,2,Y,X), compression='gzip'"],
    ['contiguous', 'chunks=None'],
  ])('%s', async (_label, opts) => {
    const p = join(dir, `h5py-${_label.replace(/\W/g, '')}.hdf5`);
    await runPython(
      `import sys, numpy as np, h5py
T, Z, Y, X = ${T}, ${Z}, ${Y}, ${X}
t, z, y, x = np.meshgrid(np.arange(T), np.arange(Z), np.arange(Y), np.arange(X), indexing='ij')
a = ((t * 131 + z * 37 + y * 11 + x * 3) % 5001 - 2500).astype(np.int16)
with h5py.File(sys.argv[1], 'w') as f:
    f.create_dataset('betas', data=a, ${opts})`,
      p,
    );
    expectMasked((await readHdf5Masked(p, mask, { divisor: 300 })).betas);
  });

  it('int64 betas are read exactly; a value float64 would round, and a complex dataset, are refused by name', async () => {
    const p = join(dir, 'h5py-int64.hdf5');
    await runPython(
      `import sys, numpy as np, h5py
T, Z, Y, X = ${T}, ${Z}, ${Y}, ${X}
t, z, y, x = np.meshgrid(np.arange(T), np.arange(Z), np.arange(Y), np.arange(X), indexing='ij')
a = ((t * 131 + z * 37 + y * 11 + x * 3) % 5001 - 2500).astype(np.int64)
with h5py.File(sys.argv[1], 'w') as f:
    f.create_dataset('betas', data=a)
    h = np.zeros((2, 3), np.uint64); h[1, 2] = 2**63
    f.create_dataset('huge', data=h)
    f.create_dataset('cpx', data=np.zeros(2, np.complex128))`,
      p,
    );
    expectMasked((await readHdf5Masked(p, mask, { divisor: 300, maxSlabBytes: 200 })).betas);
    const r = await Hdf5Reader.open(p);
    try {
      expect(Array.from(r.readSlab('huge', [[0, 1]]))).toEqual([0, 0, 0]);
      expect(() => r.readSlab('huge', [[1, 2], [1, 3]])).toThrow(
        /h5py-int64\.hdf5: dataset huge holds the value 9223372036854775808 at \[1, 2\], beyond ±\(2\^53 − 1\)/,
      );
      expect(() => r.readSlab('cpx')).toThrow(/dataset cpx holds compound values \(dtype .*\), which are not read; expected integers \(8 to 64 bits\) or floats/);
    } finally {
      r.close();
    }
  });
});

describe('h5wasm that cannot start', () => {
  it('is one line naming the cause (a virtual-memory limit), not the Emscripten abort with its minified source', async () => {
    const { runCommand } = await import('../helpers/nodeChild.js');
    const { distModule } = await import('../helpers/dist.js');
    const script = `import { writeHdf5 } from ${JSON.stringify(distModule('io/hdf5'))};
      try { await writeHdf5(${JSON.stringify(join(dir, 'ulimit.h5'))}, []); console.log('written'); } catch (e) { console.log(e.message); }`;
    // 4 GB of address space: node starts, WebAssembly cannot reserve h5wasm's memory
    const r = await runCommand('bash', ['-c', `ulimit -v 4000000 && exec "${process.execPath}" --input-type=module -e "$0"`, script]);
    const out = `${r.stdout}${r.stderr}`.trim();
    expect(out.split('\n'), out.slice(0, 2000)).toHaveLength(1);
    expect(out).toMatch(/^the HDF5 reader \(h5wasm\) could not start \(WebAssembly could not reserve its memory: is a virtual-memory limit set, ulimit -v\? .*\): RangeError: WebAssembly\.instantiate\(\): Out of memory/);
  });
});
