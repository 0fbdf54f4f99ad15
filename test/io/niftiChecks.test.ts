/** NIfTI headers are checked against the file before any image buffer is allocated (issue #11). */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { afterAll, describe, expect, it } from 'vitest';

import { FormatError, InvalidArgumentError, LimitError, NonFiniteError } from '../../ts/errors.js';
import { writeHdf5 } from '../../ts/io/hdf5.js';
import { readNifti, readNiftiHeader, readNiftiMasked, writeNifti } from '../../ts/io/nifti.js';
import { maskFromVolume } from '../../ts/io/voxelMask.js';
import { availableSessions, readSessionBetas } from '../../ts/nsd/betas.js';
import { bgzf, gzipMembers, gzipZeroPadded } from './gzipMembers.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-niicheck-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string) => join(dir, name);

async function fail(p: Promise<unknown>): Promise<FormatError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(FormatError);
    return e as FormatError;
  }
  throw new Error('expected a FormatError');
}

async function valid(version: 1 | 2 = 1): Promise<Buffer> {
  const p = file(`valid${version}.nii`);
  await writeNifti(p, { dims: [4, 3, 2, 5], datatype: 'int16', version }, Int16Array.from({ length: 120 }, (_, i) => i));
  return readFileSync(p);
}

describe('NIfTI header checks', () => {
  it('a huge shape in a small file (plain or gzip) is refused before allocating', async () => {
    for (const version of [1, 2] as const) {
      const b = Buffer.from(await valid(version));
      if (version === 1) [3000, 3000, 3000, 750].forEach((d, i) => b.writeInt16LE(Math.min(d, 32767), 42 + 2 * i));
      else [3000, 3000, 3000, 750].forEach((d, i) => b.writeBigInt64LE(BigInt(d), 24 + 8 * i));
      writeFileSync(file('huge.nii'), b);
      const e = await fail(readNifti(file('huge.nii')));
      expect(e.message).toMatch(/huge\.nii: truncated NIfTI file: dims 3000×3000×3000×750 of int16 from vox_offset \d+ need \d+ bytes, the file holds \d+/);
      expect(e.field).toBe('dim');
      writeFileSync(file('huge.nii.gz'), gzipSync(b));
      const g = await fail(readNiftiHeader(file('huge.nii.gz')));
      expect(g.message).toMatch(
        /huge\.nii\.gz: truncated NIfTI file: dims 3000×3000×3000×750 of int16 from vox_offset \d+ need \d+ bytes, more than its \d+ gzip bytes can decompress to \(at most 1032 times as many\)/,
      );
    }
  });

  it('trailing bytes, truncation inside the gzip stream, and a damaged gzip trailer are refused', async () => {
    const b = await valid();
    writeFileSync(file('trail.nii'), Buffer.concat([b, Buffer.from('xx')]));
    expect((await fail(readNifti(file('trail.nii')))).message).toMatch(/2 trailing bytes after the image/);
    // bytes after the gzip data are not the image's: ignored, as gzip and nibabel ignore them
    writeFileSync(file('trail.nii.gz'), Buffer.concat([gzipSync(b), Buffer.from('garbage!')]));
    expect((await readNifti(file('trail.nii.gz'))).data).toEqual((await readNifti(file('valid1.nii'))).data);
    // a second gzip member after the whole image: its bytes follow the image once decompressed
    writeFileSync(file('two.nii.gz'), Buffer.concat([gzipSync(b), gzipSync(Buffer.from('more'))]));
    expect((await fail(readNifti(file('two.nii.gz')))).message).toMatch(/two\.nii\.gz: trailing bytes after the 592 bytes the header describes \(decompressed\)/);
    const gz = gzipSync(b);
    const cut = Buffer.concat([gz.subarray(0, gz.length - 30), gz.subarray(gz.length - 4)]);
    writeFileSync(file('cut.nii.gz'), cut);
    expect((await fail(readNifti(file('cut.nii.gz')))).message).toMatch(/cut\.nii\.gz: (corrupt or truncated gzip data|data ends after)/);
  });

  it('several gzip members (pigz, bgzip, cat a.gz b.gz) and zero padding after the last are read, with the right values', async () => {
    const b = await valid();
    const want = (await readNifti(file('valid1.nii'))).data;
    expect(want[119]).toBe(119);
    const files: [string, Buffer][] = [
      ['members2.nii.gz', gzipMembers(b, [b.length >> 1])], // the trailer describes only the second half
      ['members3.nii.gz', gzipMembers(b, [400, b.length - 10])],
      ['header-apart.nii.gz', gzipMembers(b, [348])], // the header alone in the first member
      ['bgzf.nii.gz', bgzf(b, 100)], // 6 blocks and bgzip's empty end-of-file block
      ['padded.nii.gz', gzipZeroPadded(b, 3)], // the trailer reads ISIZE 0
      ['padded-big.nii.gz', gzipZeroPadded(b, 3 << 20)], // zeros over several reads of the file
    ];
    for (const [name, bytes] of files) {
      writeFileSync(file(name), bytes);
      expect((await readNiftiHeader(file(name))).dims).toEqual([4, 3, 2, 5]);
      expect((await readNifti(file(name))).data).toEqual(want);
      const mask = maskFromVolume(new Float32Array(24).fill(1), [4, 3, 2], (v) => v > 0, 'all');
      expect((await readNiftiMasked(file(name), mask)).betas.data).toEqual(want);
    }
  });

  it('a complete gzip stream shorter than the header says, in one member or several, is refused as truncated', async () => {
    const b = await valid();
    const short = b.subarray(0, b.length - 10);
    const need = 'the header\'s dims 4×3×2×5 of int16 from vox_offset 352 need 592 bytes, the file decompresses to only 582 bytes';
    for (const [name, bytes] of [['short.nii.gz', gzipSync(short)], ['short-members.nii.gz', gzipMembers(short, [200, 500])], ['short-bgzf.nii.gz', bgzf(short, 128)]] as const) {
      writeFileSync(file(name), bytes);
      const e = await fail(readNifti(file(name)));
      expect(e.message).toBe(`${file(name)}: truncated file: ${need}`);
      expect(e.field).toBe('dim');
    }
    // a member cut off inside its deflate data is still corrupt or truncated gzip data
    const whole = gzipMembers(b, [300]);
    writeFileSync(file('cut-member.nii.gz'), whole.subarray(0, whole.length - 40));
    expect((await fail(readNifti(file('cut-member.nii.gz')))).message).toMatch(/cut-member\.nii\.gz: corrupt or truncated gzip data after \d+ decompressed bytes/);
  });

  it('a bitpix of 0 or one that disagrees with the datatype is ignored, as nibabel ignores it, when the datatype\'s size fits the file', async () => {
    const b = await valid();
    const want = (await readNifti(file('valid1.nii'))).data;
    for (const bitpix of [0, 8, 32]) {
      const x = Buffer.from(b);
      x.writeInt16LE(bitpix, 72);
      for (const [name, bytes] of [[`bitpix${bitpix}.nii`, x], [`bitpix${bitpix}.nii.gz`, gzipSync(x)]] as const) {
        writeFileSync(file(name), bytes);
        const { header, data } = await readNifti(file(name));
        expect([header.datatype, header.bitpix]).toEqual(['int16', bitpix]);
        expect(data).toEqual(want);
      }
    }
    // int16 data whose bitpix says 8 and whose file holds one byte a voxel: the datatype's size does not fit it
    const u8 = Buffer.concat([b.subarray(0, 352), Buffer.alloc(120)]);
    u8.writeInt16LE(8, 72);
    writeFileSync(file('bitpix8-short.nii'), u8);
    expect((await fail(readNifti(file('bitpix8-short.nii')))).message).toBe(
      `${file('bitpix8-short.nii')}: truncated NIfTI file: dims 4×3×2×5 of int16 (the datatype decides; bitpix says 8) from vox_offset 352 need 592 bytes, the file holds 472`,
    );
  });

  it('a valid scl_slope with a NaN or infinite scl_inter is refused, naming both fields (nibabel refuses it too)', async () => {
    const b = await valid();
    for (const [inter, shown] of [[NaN, 'NaN'], [Infinity, 'Infinity']] as const) {
      const x = Buffer.from(b);
      x.writeFloatLE(2, 112);
      x.writeFloatLE(inter, 116);
      writeFileSync(file('nan-inter.nii'), x);
      for (const read of [() => readNifti(file('nan-inter.nii')), () => readNiftiMasked(file('nan-inter.nii'), maskFromVolume(new Float32Array(24).fill(1), [4, 3, 2], (v) => v > 0, 'all'))]) {
        const e = await fail(read());
        expect(e.message).toBe(`${file('nan-inter.nii')}: scl_slope 2 with scl_inter ${shown}: a valid slope needs a finite intercept`);
        expect(e.field).toBe('scl_inter');
      }
    }
    // slope 0 or NaN means no scaling, whatever the intercept
    const x = Buffer.from(b);
    x.writeFloatLE(NaN, 112);
    x.writeFloatLE(NaN, 116);
    writeFileSync(file('nan-both.nii'), x);
    expect((await readNifti(file('nan-both.nii'))).data[119]).toBe(119);
  });

  it('the extension bytes before vox_offset are limited (64 MiB), and BRAINLATENT_MAX_NIFTI_EXTENSION_BYTES raises the limit', async () => {
    const b = await valid();
    const x = Buffer.concat([b.subarray(0, 352), Buffer.alloc(3000), b.subarray(352)]);
    x.writeFloatLE(352 + 3000, 108);
    writeFileSync(file('ext.nii.gz'), gzipSync(x));
    const want = (await readNifti(file('valid1.nii'))).data;
    expect((await readNifti(file('ext.nii.gz'))).data).toEqual(want);
    const saved = process.env.BRAINLATENT_MAX_NIFTI_EXTENSION_BYTES;
    try {
      process.env.BRAINLATENT_MAX_NIFTI_EXTENSION_BYTES = '2048';
      const e = await readNifti(file('ext.nii.gz')).then(() => null, (err: Error) => err);
      expect(e).toBeInstanceOf(LimitError);
      expect(e!.message).toBe(
        `${file('ext.nii.gz')}: vox_offset 3352 leaves 3004 bytes of extensions, over the 2048-byte limit: a damaged header or a truncated file, most likely (raise the limit with BRAINLATENT_MAX_NIFTI_EXTENSION_BYTES if the file is genuine)`,
      );
      process.env.BRAINLATENT_MAX_NIFTI_EXTENSION_BYTES = '4096';
      expect((await readNifti(file('ext.nii.gz'))).data).toEqual(want);
    } finally {
      if (saved === undefined) delete process.env.BRAINLATENT_MAX_NIFTI_EXTENSION_BYTES;
      else process.env.BRAINLATENT_MAX_NIFTI_EXTENSION_BYTES = saved;
    }
  });

  it('corrupt gzip data say how much decompressed before them, also within the first MiB of output (no read had finished)', async () => {
    // 1.4 MB of betas, stored uncompressed in the gzip stream, so that the block where the data go wrong is known
    const p = file('stored.nii');
    await writeNifti(p, { dims: [40, 40, 30, 15], datatype: 'int16' }, Int16Array.from({ length: 40 * 40 * 30 * 15 }, (_, i) => (i * 7919) % 2001));
    const gz = gzipSync(readFileSync(p), { level: 0 });
    // walk the stored blocks (header byte, LEN, NLEN, data) to the one that starts past 900 kB, and break its NLEN
    let at = 10;
    let before = 0;
    while (before < 900_000) {
      const len = gz.readUInt16LE(at + 1);
      expect(gz[at] & 0b110).toBe(0); // a stored block
      at += 5 + len;
      before += len;
    }
    gz.writeUInt16LE(gz.readUInt16LE(at + 1), at + 3);
    writeFileSync(file('broken.nii.gz'), gz);
    const e = await fail(readNifti(file('broken.nii.gz')));
    expect(e.message).toMatch(/broken\.nii\.gz: corrupt or truncated gzip data after \d+ decompressed bytes \(invalid stored block lengths\)/);
    // counted exactly (it said 0 once, the bytes handed out by reads that had finished, then a count to 4 KiB)
    expect(Number(/after (\d+) decompressed/.exec(e.message)![1])).toBe(before);
  });

  it('bytes after the last gzip member are ignored, as gzip and nibabel ignore them (review s30-r2)', async () => {
    // over 1 MiB decompressed: gunzip's failure on the bytes after the data dropped the last MiB it had inflated
    const p = file('long.nii');
    await writeNifti(p, { dims: [40, 40, 30, 15], datatype: 'int16' }, Int16Array.from({ length: 40 * 40 * 30 * 15 }, (_, i) => (i * 7919) % 2001));
    const want = (await readNifti(p)).data;
    const raw = readFileSync(p);
    for (const [name, gz] of [['one', gzipSync(raw)], ['members', gzipMembers(raw, [1000, 700_000])], ['bgzf', bgzf(raw)]] as const) {
      for (const [tail, after] of [['garbage', 'GARBAGE!'], ['magic', '\x1f\x8bxx'], ['text', 'x'.repeat(3000)]] as const) {
        writeFileSync(file(`${name}-${tail}.nii.gz`), Buffer.concat([gz, Buffer.from(after, 'latin1')]));
        const got = (await readNifti(file(`${name}-${tail}.nii.gz`))).data;
        // (bytes compared: toEqual on 720,000 values takes seconds)
        expect(got.length).toBe(want.length);
        expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength)), `${name}-${tail}`).toBe(true);
      }
    }
    // a member whose deflate data fail at their start: the count is the earlier members' bytes, exactly
    const bad = gzipSync(Buffer.from('abc'));
    bad[10] = 0x07; // BFINAL 1, BTYPE 3 (reserved)
    writeFileSync(file('bad-member.nii.gz'), Buffer.concat([gzipMembers(raw, [1000]), bad]));
    const e = await fail(readNifti(file('bad-member.nii.gz')));
    expect(e.message).toBe(`${file('bad-member.nii.gz')}: corrupt or truncated gzip data after ${raw.length} decompressed bytes (invalid block type)`);
  });

  it('magic, dim[0], datatype and vox_offset are each checked', async () => {
    const b = await valid();
    const mutate = async (name: string, edit: (x: Buffer) => void) => {
      const x = Buffer.from(b);
      edit(x);
      writeFileSync(file(name), x);
      return fail(readNiftiHeader(file(name)));
    };
    expect((await mutate('ni1.nii', (x) => x.write('ni1\0', 344, 'latin1'))).message).toMatch(/separate \.hdr\/\.img pair \(magic 'ni1'\)/);
    expect((await mutate('magic.nii', (x) => x.write('abc\0', 344, 'latin1'))).field).toBe('magic');
    expect((await mutate('dim0.nii', (x) => x.writeInt16LE(9, 40))).message).toMatch(/dim\[0\] = 9, expected 1 to 7/);
    expect((await mutate('dtype.nii', (x) => x.writeInt16LE(1234, 70))).field).toBe('datatype');
    expect((await mutate('vox.nii', (x) => x.writeFloatLE(100, 108))).message).toMatch(/vox_offset 100 is inside the header/);
    expect((await mutate('voxfrac.nii', (x) => x.writeFloatLE(352.5, 108))).message).toMatch(/vox_offset 352.5 is not a non-negative integer/);
    // past the file's end: truncated, not "raise the extension limit if the file is genuine" (review s44)
    const past = await mutate('voxpast.nii', (x) => x.writeFloatLE(1e9, 108));
    expect(past).toBeInstanceOf(FormatError);
    expect(past.message).toBe(`${file('voxpast.nii')}: truncated NIfTI file: vox_offset 1000000000 lies past its end (the file holds ${b.length} bytes)`);
    // NIfTI-2's int64 vox_offset, negative: printed as it is (it read -18446744073709552000)
    const two = Buffer.from(await valid(2));
    two.writeBigInt64LE(-5n, 168);
    writeFileSync(file('voxneg2.nii'), two);
    expect((await fail(readNiftiHeader(file('voxneg2.nii')))).message).toBe(`${file('voxneg2.nii')}: vox_offset -5 is not a non-negative integer`);
  });

  it('NaN betas are refused where they enter extraction, naming the trial and the voxel as the file has it (NIfTI and HDF5 alike)', async () => {
    const data = new Float32Array(4 * 3 * 2 * 5).fill(1);
    data[2 * 24 + 7] = NaN;
    await writeNifti(file('betas.nii.gz'), { dims: [4, 3, 2, 5], datatype: 'float32' }, data);
    await writeHdf5(file('betas.hdf5'), [{ name: 'betas', data, shape: [5, 2, 3, 4] }]);
    const mask = maskFromVolume(new Float32Array(24).fill(1), [4, 3, 2], (v) => v > 0, 'all');
    expect((await readNiftiMasked(file('betas.nii.gz'), mask)).betas.rows).toBe(5);
    const refusal = (path: string, format: 'nifti' | 'hdf5', m = mask) =>
      readSessionBetas({ path, format }, m, 300).then(() => { throw new Error('expected a rejection'); }, (x: unknown) => x as Error);
    const e = await refusal(file('betas.nii.gz'), 'nifti');
    expect(e).toBeInstanceOf(NonFiniteError);
    // voxel 7 of the 4×3×2 grid is (3, 1, 0); 55 (= 2·24 + 7) is only its place in the trials × voxels matrix
    expect(e.message).toBe(`betas (${file('betas.nii.gz')}): element [trial 2, voxel (i, j, k) = (3, 1, 0)] (NIfTI flat index 7; mask voxel 7) is NaN; finite numbers are required`);
    // a mask of the voxels from 5 on: the NaN is the mask's third voxel, still at (3, 1, 0) in the file
    const part = maskFromVolume(Float32Array.from({ length: 24 }, (_, i) => i), [4, 3, 2], (v) => v >= 5, 'from 5');
    for (const [name, format] of [['betas.nii.gz', 'nifti'], ['betas.hdf5', 'hdf5']] as const) {
      const p = await refusal(file(name), format, part);
      expect(p).toBeInstanceOf(NonFiniteError);
      expect(p.message).toBe(`betas (${file(name)}): element [trial 2, voxel (i, j, k) = (3, 1, 0)] (NIfTI flat index 7; mask voxel 2) is NaN; finite numbers are required`);
    }
  });
});

describe('an MGH/MGZ file given for a NIfTI (review s30-r2)', () => {
  it('is named FreeSurfer\'s format, with what to do, plain or gzipped', async () => {
    // MGH: int32 version 1, big-endian, then the dims
    const mgh = Buffer.alloc(400);
    mgh.writeInt32BE(1, 0);
    [2, 3, 4, 1, 3].forEach((v, i) => mgh.writeInt32BE(v, 4 + 4 * i));
    for (const [name, bytes] of [['a.mgh', mgh], ['a.mgz', gzipSync(mgh)]] as const) {
      writeFileSync(file(name), bytes);
      expect((await fail(readNifti(file(name)))).message).toBe(`${file(name)}: an MGH/MGZ file (FreeSurfer), not NIfTI: convert it with mri_convert or nibabel`);
    }
  });
});

describe('writeNifti options', () => {
  it('an unknown datatype or version is an InvalidArgumentError naming the option (a TypeError for float16; version 3 wrote NIfTI-2)', async () => {
    const write = (spec: object) => writeNifti(file('opt.nii'), { dims: [2, 1, 1], datatype: 'int16', ...spec } as Parameters<typeof writeNifti>[1], new Int16Array([1, 2]));
    const cases: [object, string][] = [
      [{ datatype: 'float16' }, "datatype 'float16' is not written; expected one of uint8, int16, int32, float32, float64, int8, uint16, uint32"],
      [{ datatype: 16 }, 'datatype 16 is not written; expected one of uint8, int16, int32, float32, float64, int8, uint16, uint32'],
      [{ version: 3 }, 'version 3 is not written; expected 1 (NIfTI-1) or 2 (NIfTI-2)'],
      [{ version: '2' }, 'version string "2" is not written; expected 1 (NIfTI-1) or 2 (NIfTI-2)'],
    ];
    for (const [spec, msg] of cases) {
      const e = await write(spec).then(() => { throw new Error('expected a rejection'); }, (x: unknown) => x as Error);
      expect(e).toBeInstanceOf(InvalidArgumentError);
      expect(e.message).toBe(`${file('opt.nii')}: ${msg}`);
    }
    expect(existsSync(file('opt.nii'))).toBe(false);
    await write({ version: 2 });
    expect((await readNiftiHeader(file('opt.nii'))).version).toBe(2);
  });
});

describe('availableSessions', () => {
  it('refuses a subject or a session count that is not a whole number (2.5 looked for subj2.5 and found nothing)', async () => {
    await expect(availableSessions('/nonexistent', 2.5, 'auto')).rejects.toThrow(new InvalidArgumentError('availableSessions subject: expected an integer >= 1, got 2.5'));
    await expect(availableSessions('/nonexistent', 1, 'auto', NaN)).rejects.toThrow(/^availableSessions max: expected an integer >= 0, got NaN$/);
    expect(await availableSessions('/nonexistent', 1, 'auto', 3)).toEqual([]);
  });
});
