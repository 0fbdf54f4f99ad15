/**
 * `nsd extract --format nifti` on sessions gzipped by other tools: bgzip (BGZF blocks), several members, zero padding.
 * Each is read as nibabel reads it, to the values the .hdf5 of the same session holds; a truly short session is refused
 * naming the file (not --sessions, whose value is fine).
 */
import { gunzipSync } from 'node:zlib';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerNsdCommand } from '../../ts/cli/commands/nsd.js';
import { FormatError } from '../../ts/errors.js';
import { readNpy } from '../../ts/io/npy.js';
import { betasPath } from '../../ts/nsd/paths.js';
import { synthNsd } from '../../ts/synth/nsd.js';
import { runCommands } from '../helpers/cli.js';
import { bgzf, gzipMembers, gzipZeroPadded } from '../io/gzipMembers.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-gzsessions-'));
const root = join(tmp, 'nsd');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  await synthNsd({ out: root, subjects: [1], sessions: 3, trialsPerSession: 30, designSessions: 3, grid: [10, 12, 8] });
});

const extract = (out: string, ...more: string[]) =>
  runCommands([registerNsdCommand], ['nsd', 'extract', '--root', root, '--subject', '1', '--roi', 'nsdgeneral', '--out', join(tmp, out), '--no-cache', ...more]);

describe('nsd extract --format nifti on sessions other gzip tools wrote', () => {
  it('BGZF, several members and zero padding give the values of the .hdf5 sessions', async () => {
    const raw = [1, 2, 3].map((s) => gunzipSync(readFileSync(betasPath(root, 1, s, 'nifti'))));
    writeFileSync(betasPath(root, 1, 1, 'nifti'), bgzf(raw[0]));
    writeFileSync(betasPath(root, 1, 2, 'nifti'), gzipMembers(raw[1], [1000, raw[1].length >> 1]));
    writeFileSync(betasPath(root, 1, 3, 'nifti'), gzipZeroPadded(raw[2], 4096));
    expect(await extract('nifti', '--format', 'nifti')).toMatch(/sessions 1-3\n/);
    await extract('hdf5', '--format', 'hdf5');
    for (const f of ['train_betas.npy', 'test_betas.npy', 'train_image_ids.npy']) {
      const [a, b] = await Promise.all([readNpy(join(tmp, 'nifti', f)), readNpy(join(tmp, 'hdf5', f))]);
      expect(a.shape).toEqual(b.shape);
      expect(a.data).toEqual(b.data);
    }
  });

  it('a session whose gzip members hold less than its header needs is refused as truncated, naming the file only', async () => {
    const path = betasPath(root, 1, 2, 'nifti');
    const raw = gunzipSync(readFileSync(path));
    writeFileSync(path, bgzf(raw.subarray(0, raw.length - 2 * 960)));
    const e = await extract('short', '--format', 'nifti', '--sessions', '1-3').then(() => null, (x: Error) => x);
    expect(e).toBeInstanceOf(FormatError);
    expect(e!.message).toBe(
      `${path}: truncated file: the header's dims 10×12×8×30 of int16 from vox_offset 352 need ${raw.length} bytes, ` +
        `the file decompresses to only ${raw.length - 1920} bytes`,
    );
    // a header the checks before extraction refuse (they read the first session's) is named by its file too
    const first = betasPath(root, 1, 1, 'nifti');
    writeFileSync(first, gzipMembers(Buffer.concat([Buffer.alloc(344), Buffer.from('ni9\0')]), []));
    const h = await extract('bad-magic', '--format', 'nifti').then(() => null, (x: Error) => x);
    expect(h).toBeInstanceOf(FormatError);
    expect(h!.message).toMatch(new RegExp(`^${first}: not a NIfTI file`));
  });
});
