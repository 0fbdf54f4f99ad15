/** The HDF5 wrapper turns the library's printed error stacks into one FormatError line (issue #11). */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { FormatError, InvalidArgumentError } from '../../ts/errors.js';
import { Hdf5Reader, readHdf5Masked, writeHdf5 } from '../../ts/io/hdf5.js';
import { summarizeHdf5Diagnostics } from '../../ts/io/hdf5Diagnostics.js';
import { maskFromVolume } from '../../ts/io/voxelMask.js';
import { distModule } from '../helpers/dist.js';
import { runCommand } from '../helpers/nodeChild.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-h5check-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string) => join(dir, name);

describe('writeHdf5 takes typed arrays it can give a dtype', () => {
  it('refuses a BigInt64Array or a plain array, naming the dataset, and writes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bl-h5w-'));
    for (const data of [new BigInt64Array(4), [1, 2, 3, 4]]) {
      const p = writeHdf5(join(dir, 'x.h5'), [{ name: 'betas', data: data as unknown as Float32Array, shape: [2, 2] }]);
      await expect(p).rejects.toThrow(InvalidArgumentError);
      await expect(p).rejects.toThrow(/x\.h5: dataset betas: expected an Int8\/Uint8\/Int16\/Uint16\/Int32\/Uint32\/Float32\/Float64Array, got (BigInt64Array|Array)$/);
      expect(existsSync(join(dir, 'x.h5'))).toBe(false);
    }
  });
});

describe('HDF5 failures are one line', () => {
  it('a truncated file: one FormatError naming the file and the library\'s cause, nothing printed', async () => {
    await writeHdf5(file('ok.h5'), [{ name: 'betas', data: new Int16Array(1000).fill(3), shape: [10, 10, 10], chunks: [10, 1, 1] }]);
    const b = readFileSync(file('ok.h5'));
    writeFileSync(file('cut.h5'), b.subarray(0, b.length >> 1));
    const e = await Hdf5Reader.open(file('cut.h5')).then(() => { throw new Error('expected a rejection'); }, (x: unknown) => x as FormatError);
    expect(e).toBeInstanceOf(FormatError);
    expect(e.message).toMatch(new RegExp(`^${file('cut.h5')}: HDF5 could not open it: truncated file: eof = \\d+, sblock->base_addr = 0, stored_eof = ${b.length} \\(File has been truncated\\) \\[\\d+ lines of HDF5 diagnostics; BRAINLATENT_DEBUG=1 prints them\\]$`));
    expect(e.message.split('\n')).toHaveLength(1);
    expect(e.field).toBe('hdf5');
    const mask = maskFromVolume(new Float32Array(1000).fill(1), [10, 10, 10], (v) => v > 0, 'all');
    await expect(readHdf5Masked(file('cut.h5'), mask)).rejects.toThrow(/HDF5 could not open it: truncated file/);
  });

  it('the CLI prints one line for it, not the library\'s 50 (checked in a child process, where stderr is real)', async () => {
    const r = await runCommand(process.execPath, ['--input-type=module', '-e', `
      const { Hdf5Reader } = await import(${JSON.stringify(distModule('io/hdf5'))});
      try { await Hdf5Reader.open(${JSON.stringify(file('cut.h5'))}); } catch (e) { console.log(e.name + ': ' + e.message); }
    `]);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toMatch(/^FormatError: .*cut\.h5: HDF5 could not open it: truncated file/);
  });

  it('summarises a stack by its deepest frame', () => {
    const diag = [
      'HDF5-DIAG: Error detected in HDF5 (2.0.0):',
      '  #000: H5F.c line 821 in H5Fopen(): unable to synchronously open file',
      '    major: File accessibility',
      '    minor: Unable to open file',
      '  #001: H5Fsuper.c line 577 in H5F__super_read(): truncated file: eof = 10',
      '    major: File accessibility',
      '    minor: Read failed',
    ].join('\n');
    expect(summarizeHdf5Diagnostics(diag)).toBe('truncated file: eof = 10 (Read failed) [7 lines of HDF5 diagnostics; BRAINLATENT_DEBUG=1 prints them]');
  });

  it("names a compression filter h5wasm lacks, not the plugin folder it then failed to open (review s35-r2)", () => {
    const diag = [
      'HDF5-DIAG: Error detected in HDF5 (2.0.0):',
      "  #008: H5Z.c line 1435 in H5Z_pipeline(): required filter 'lzf' is not registered",
      '    major: Data filters',
      '    minor: Read failed',
      '  #011: H5PLpath.c line 858 in H5PL__find_plugin_in_path(): can\'t open directory (/usr/local/hdf5/lib/plugin). Please verify its existence',
      '    major: Plugin for dynamically loaded library',
      "    minor: Can't open directory or file",
    ].join('\n');
    expect(summarizeHdf5Diagnostics(diag)).toBe(
      "the dataset is compressed with the 'lzf' filter, which this HDF5 library (h5wasm) does not have; save it again with gzip or no compression (h5py: compression='gzip')",
    );
  });
});
