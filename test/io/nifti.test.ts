import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormatError, MissingFileError, ShapeError } from '../../ts/errors.js';
import {
  geometryFromAffine,
  readNifti,
  readNiftiHeader,
  readNiftiMasked,
  writeNifti,
  writeNiftiMap,
} from '../../ts/io/nifti.js';
import { maskFromVolume, type Grid } from '../../ts/io/voxelMask.js';
import { hasPython, runPython } from './python.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-nifti-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const grid: Grid = [5, 4, 3];
const nVox = 60;
const T = 7;
const affine = [
  [-1.8, 0, 0, 72],
  [0, 1.8, 0, -90],
  [0, 0, 1.8, -60],
  [0, 0, 0, 1],
];

function ramp(n: number): Int16Array {
  const a = new Int16Array(n);
  for (let i = 0; i < n; i++) a[i] = ((i * 7919) % 6001) - 3000;
  return a;
}

describe('NIfTI round trips', () => {
  it('int16 4-D .nii.gz: masked extraction ÷300 is exact to the float32', async () => {
    const raw = ramp(nVox * T);
    const p = join(dir, 'betas.nii.gz');
    await writeNifti(p, { dims: [...grid, T], datatype: 'int16', ...geometryFromAffine(affine) }, raw);
    const h = await readNiftiHeader(p);
    expect(h.dims).toEqual([5, 4, 3, 7]);
    expect(h.datatype).toBe('int16');
    expect(h.version).toBe(1);
    expect(h.srow[0][0]).toBeCloseTo(-1.8, 6);
    const maskVol = new Float32Array(nVox).map((_, i) => (i % 3 === 0 ? 1 : i % 3 === 1 ? 0 : -1));
    const mask = maskFromVolume(maskVol, grid, (v) => v > 0, 'test mask');
    const { betas } = await readNiftiMasked(p, mask, { divisor: 300 });
    expect(betas.rows).toBe(T);
    expect(betas.cols).toBe(20);
    for (let t = 0; t < T; t++) {
      for (let j = 0; j < betas.cols; j++) {
        expect(betas.data[t * betas.cols + j]).toBe(Math.fround(raw[t * nVox + mask.indices[j]] / 300));
      }
    }
  });

  it('scl_slope and scl_inter are applied, slope 0 means none', async () => {
    const raw = ramp(nVox);
    const p = join(dir, 'scaled.nii');
    await writeNifti(p, { dims: grid, datatype: 'int16', sclSlope: 0.5, sclInter: 2 }, raw);
    const { data } = await readNifti(p);
    for (let i = 0; i < nVox; i++) expect(data[i]).toBe(raw[i] * 0.5 + 2);
    const p0 = join(dir, 'unscaled.nii');
    await writeNifti(p0, { dims: grid, datatype: 'int16', sclSlope: 0, sclInter: 5 }, raw);
    expect(Array.from((await readNifti(p0)).data)).toEqual(Array.from(raw));
  });

  it.each(['uint8', 'int32', 'float32', 'float64'] as const)('%s NIfTI-2 .nii.gz round trip', async (dt) => {
    const ctor = { uint8: Uint8Array, int32: Int32Array, float32: Float32Array, float64: Float64Array }[dt];
    const vals = new ctor(nVox * 2).map((_, i) => (dt === 'uint8' ? i % 256 : (i - 50) * (dt.startsWith('float') ? 0.25 : 1000)));
    const p = join(dir, `v2-${dt}.nii.gz`);
    await writeNifti(p, { dims: [...grid, 2], datatype: dt, version: 2, ...geometryFromAffine(affine) }, vals);
    const { header, data } = await readNifti(p);
    expect(header.version).toBe(2);
    expect(header.dims).toEqual([5, 4, 3, 2]);
    expect(Array.from(data)).toEqual(Array.from(vals).map(Math.fround));
  });

  it('writes a 4-D file streamed from volumes', async () => {
    const p = join(dir, 'streamed.nii.gz');
    function* vols() {
      for (let t = 0; t < 3; t++) yield new Int16Array(nVox).fill(t + 1);
    }
    await writeNifti(p, { dims: [...grid, 3], datatype: 'int16' }, vols());
    const { data } = await readNifti(p);
    expect(data[0]).toBe(1);
    expect(data[2 * nVox + 5]).toBe(3);
  });

  it('float32 map: geometry copied from the reference, NaN outside the mask', async () => {
    const ref = join(dir, 'ref.nii.gz');
    const maskVol = new Int16Array(nVox).map((_, i) => (i % 4 === 0 ? 1 : 0));
    await writeNifti(ref, { dims: grid, datatype: 'int16', description: 'reference', ...geometryFromAffine(affine, 2) }, maskVol);
    const refHeader = await readNiftiHeader(ref);
    const mask = maskFromVolume((await readNifti(ref)).data, grid, (v) => v > 0, ref);
    const values = new Float32Array(mask.indices.length).map((_, j) => j / 10);
    const out = join(dir, 'map.nii.gz');
    await writeNiftiMap(out, refHeader, mask, values, 'encoding r');
    const { header, data } = await readNifti(out);
    expect(header.datatype).toBe('float32');
    expect(header.description).toBe('encoding r');
    expect(header.srow).toEqual(refHeader.srow);
    expect(header.quatern).toEqual(refHeader.quatern);
    expect(header.qoffset).toEqual(refHeader.qoffset);
    expect(header.pixdim.slice(0, 4)).toEqual(refHeader.pixdim.slice(0, 4));
    expect([header.qformCode, header.sformCode]).toEqual([2, 2]);
    for (let i = 0; i < nVox; i++) {
      if (i % 4 === 0) expect(data[i]).toBe(Math.fround(i / 4 / 10));
      else expect(data[i]).toBeNaN();
    }
  });
});

describe('NIfTI bad input', () => {
  it('truncated gzip names the file', async () => {
    const p = join(dir, 'trunc-src.nii.gz');
    await writeNifti(p, { dims: [...grid, T], datatype: 'int16' }, ramp(nVox * T));
    const bytes = readFileSync(p);
    const bad = join(dir, 'truncated.nii.gz');
    writeFileSync(bad, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    const mask = maskFromVolume(new Float32Array(nVox).fill(1), grid, (v) => v > 0, 'all');
    await expect(readNiftiMasked(bad, mask)).rejects.toThrow(FormatError);
    await expect(readNiftiMasked(bad, mask)).rejects.toThrow(/truncated\.nii\.gz.*(truncated|ends)/);
  });

  it('corrupt gzip names the file', async () => {
    const src = join(dir, 'corrupt-src.nii');
    await writeNifti(src, { dims: [...grid, T], datatype: 'int16' }, ramp(nVox * T));
    const gz = gzipSync(readFileSync(src));
    gz.fill(0xff, 100, 160);
    const bad = join(dir, 'corrupt.nii.gz');
    writeFileSync(bad, gz);
    await expect(readNifti(bad)).rejects.toThrow(/corrupt\.nii\.gz: corrupt or truncated gzip data/);
  });

  it('data shorter than the header says', async () => {
    const p = join(dir, 'short-src.nii');
    await writeNifti(p, { dims: grid, datatype: 'int16' }, ramp(nVox));
    const bad = join(dir, 'short.nii');
    writeFileSync(bad, readFileSync(p).subarray(0, 352 + 50));
    await expect(readNifti(bad)).rejects.toThrow(/short\.nii: truncated NIfTI file: dims 5×4×3 of int16 from vox_offset 352 need 472 bytes, the file holds 402/);
  });

  it('grid differing from the mask is a ShapeError naming both', async () => {
    const p = join(dir, 'grid.nii.gz');
    await writeNifti(p, { dims: [5, 4, 2, 2], datatype: 'int16' }, ramp(80));
    const mask = maskFromVolume(new Float32Array(nVox).fill(1), grid, (v) => v > 0, 'mask.nii.gz');
    await expect(readNiftiMasked(p, mask)).rejects.toThrow(ShapeError);
    await expect(readNiftiMasked(p, mask)).rejects.toThrow(/grid\.nii\.gz: grid 5×4×2 differs from the mask's grid 5×4×3 \(mask\.nii\.gz\)/);
  });

  it('missing file and non-NIfTI file', async () => {
    await expect(readNifti(join(dir, 'nope.nii.gz'))).rejects.toThrow(MissingFileError);
    const junk = join(dir, 'junk.nii');
    writeFileSync(junk, Buffer.alloc(400, 1));
    await expect(readNifti(junk)).rejects.toThrow(/junk\.nii: not a NIfTI file/);
  });

  it('empty mask region', () => {
    expect(() => maskFromVolume(new Float32Array(nVox), grid, (v) => v > 0, 'roi/streams.nii.gz == 5')).toThrow(
      /streams\.nii\.gz == 5: the mask has no voxel in the region/,
    );
  });
});

describe.skipIf(!hasPython('nibabel', 'numpy'))('NIfTI files from nibabel', () => {
  const script = `
import sys, numpy as np, nibabel as nib
out = sys.argv[1]
rng = np.random.default_rng(0)
raw = rng.integers(-3000, 3000, size=(6, 5, 4, 9), dtype=np.int16)
aff = np.array([[-1.8,0,0,70],[0,1.8,0,-90],[0,0,1.8,-60],[0,0,0,1.0]])
img = nib.Nifti1Image(raw, aff)
img.header['descrip'] = b'a long description of well over twenty characters'
img.header.set_slope_inter(0.25, 1.5)
img.set_qform(aff, 1); img.set_sform(aff, 2)
img.header.extensions.append(nib.nifti1.Nifti1Extension(6, b'an extension that vox_offset must skip'))
nib.save(img, out + '/nib1.nii.gz')
# big-endian, uncompressed
be = nib.Nifti1Image(raw.astype('>i2'), aff)
be.header.set_data_dtype('>i2')
nib.save(be, out + '/nib_be.nii')
nib.save(nib.Nifti2Image(raw.astype(np.float32) / 7, aff), out + '/nib2.nii.gz')
(raw.astype(np.float64) * 0.25 + 1.5).astype(np.float32).transpose(3, 2, 1, 0).tofile(out + '/nib1.f32')
raw.astype(np.float32).transpose(3, 2, 1, 0).tofile(out + '/raw.f32')
(raw.astype(np.float32) / 7).transpose(3, 2, 1, 0).tofile(out + '/nib2.f32')
`;
  beforeAll(async () => {
    await runPython(script, dir);
  });
  const expected = (f: string) => new Float32Array(readFileSync(join(dir, f)).buffer.slice(0));

  it('reads scaled int16 NIfTI-1 .nii.gz with a long description and an extension', async () => {
    const h = await readNiftiHeader(join(dir, 'nib1.nii.gz'));
    expect(h.description).toMatch(/^a long description/);
    expect(h.sclSlope).toBe(0.25);
    expect(h.voxOffset).toBeGreaterThan(352);
    expect(h.srow[0][3]).toBeCloseTo(70, 5);
    const { data } = await readNifti(join(dir, 'nib1.nii.gz'));
    expect(Array.from(data)).toEqual(Array.from(expected('nib1.f32')));
  });

  it('reads big-endian NIfTI-1 and NIfTI-2', async () => {
    expect(Array.from((await readNifti(join(dir, 'nib_be.nii'))).data)).toEqual(Array.from(expected('raw.f32')));
    const two = await readNifti(join(dir, 'nib2.nii.gz'));
    expect(two.header.version).toBe(2);
    expect(Array.from(two.data)).toEqual(Array.from(expected('nib2.f32')));
  });

  it('nibabel reads our map with the reference affine', async () => {
    const refHeader = await readNiftiHeader(join(dir, 'nib1.nii.gz'));
    const mask = maskFromVolume(new Float32Array(120).fill(1), [6, 5, 4], (v) => v > 0, 'all');
    const vals = new Float32Array(120).map((_, i) => i);
    await writeNiftiMap(join(dir, 'ourmap.nii.gz'), refHeader, mask, vals);
    const out = await runPython(
      `import sys, numpy as np, nibabel as nib
a = nib.load(sys.argv[1] + '/nib1.nii.gz'); b = nib.load(sys.argv[1] + '/ourmap.nii.gz')
d = b.get_fdata()
print(np.allclose(a.affine, b.affine, atol=1e-5), b.header.get_qform(coded=True)[1], b.header.get_sform(coded=True)[1], d[1,0,0], d[0,1,0], d.dtype, b.get_data_dtype())`,
      dir,
    );
    expect(out.trim()).toBe('True 1 2 1.0 6.0 float64 float32');
  });
});
