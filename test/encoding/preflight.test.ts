/**
 * encode's checks before any work, on a small synthetic NSD: a 'file' feature set the fit stage would refuse
 * (too few rows, ids that match no image, NaN) and sessions the extract stage would not find are reported by
 * the dry run and by the real run alike, naming the feature set, the file or the field, with nothing written.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { registerEncodeCommand } from '../../ts/cli/commands/encode.js';

import { resolveEncodeConfig, type EncodeConfigInput } from '../../ts/config/encode.js';
import { encode } from '../../ts/encoding/encode.js';
import { readFeatureFile } from '../../ts/encoding/features.js';
import { featureFileProblems, preflightEncode } from '../../ts/encoding/preflight.js';
import { geometryFromAffine, readNifti, writeNifti } from '../../ts/io/nifti.js';
import { voxelToWorld } from '../../ts/io/niftiHeader.js';
import { readNpyHeader, writeNpy } from '../../ts/io/npy.js';
import { scanNpyNonFinite } from '../../ts/io/npyScan.js';
import { readNsdDesign } from '../../ts/nsd/expdesign.js';
import { planNsdSessions } from '../../ts/nsd/sessionPlan.js';
import { resolveConfig } from '../../ts/pipeline/config.js';
import { listUnetLayers } from '../../ts/encoding/unetLayers.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import { synthNsd, type SynthNsdResult } from '../../ts/synth/nsd.js';
import { addSideBranches } from './unetSideBranches.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-encode-preflight-'));
let nsd: SynthNsdResult;
/** 73k ids of the images subject 1 saw in the sessions with betas (what the run needs features for). */
let seen: Int32Array;
let runs = 0;
const esc = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

beforeAll(async () => {
  // 4 sessions in the design, betas for 3 of them
  nsd = await synthNsd({ out: join(tmp, 'nsd'), grid: [8, 8, 8], designSessions: 4, sessions: 3, trialsPerSession: 60, sharedImages: 10, imageSize: 16, formats: ['nifti'], seed: 5 });
  const { plan } = await planNsdSessions({ root: nsd.root, subject: 1, sessions: null, format: 'auto' }, await readNsdDesign(nsd.root));
  seen = plan!.imageIds;
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const config = (featureSets: unknown[], nsdExtra: Record<string, unknown> = {}): EncodeConfigInput =>
  ({
    out: join(tmp, `run-${++runs}`),
    nsd: { root: nsd.root, subject: 1, ...nsdExtra },
    featureSets,
    noiseCeiling: 'none',
  }) as EncodeConfigInput;

/** The dry run and the real run both refuse `cfg` before anything is written, with every message matching. */
async function refusedUpFront(cfg: EncodeConfigInput, ...patterns: RegExp[]): Promise<string> {
  let message = '';
  for (const dryRun of [true, false]) {
    const err = await encode(cfg, { dryRun }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err, `dryRun ${dryRun}`).not.toBeNull();
    expect(err!.name).toBe('PreflightError');
    for (const p of patterns) expect(err!.message, `dryRun ${dryRun}`).toMatch(p);
    expect(existsSync(cfg.out), 'nothing written').toBe(false);
    message = err!.message;
  }
  return message;
}

describe("encode's preflight of 'file' feature sets", () => {
  it('passes a table with a row for every image the run uses', async () => {
    const path = join(tmp, 'good.npy'), ids = join(tmp, 'good-ids.npy');
    await writeNpy(path, Float32Array.from({ length: seen.length * 3 }, (_, i) => Math.sin(i)), [seen.length, 3]);
    await writeNpy(ids, seen, [seen.length]);
    const pre = await preflightEncode(resolveEncodeConfig(config([{ name: 'f', kind: 'file', path, ids }])));
    expect(pre.voxels).toBeGreaterThan(0);
    // no ids file: rows are 73k ids 1..N, so a table of one row per 73k id up to the largest is complete
    const max = seen[seen.length - 1];
    const all = join(tmp, 'all.npy');
    await writeNpy(all, new Float32Array(max * 2).fill(0.5), [max, 2]);
    await preflightEncode(resolveEncodeConfig(config([{ name: 'f', kind: 'file', path: all }])));
  });

  it('refuses a table with fewer rows than the images when it has no ids file (rows are 73k ids 1..N)', async () => {
    const path = join(tmp, 'short.npy');
    const rows = seen.length - 10;
    await writeNpy(path, new Float32Array(rows * 4).fill(1), [rows, 4]);
    const missing = seen.filter((id) => id > rows).length;
    await refusedUpFront(
      config([{ name: 'short', kind: 'file', path }]),
      new RegExp(`feature set 'short': ${path} lacks features for ${missing} of subject 1's ${seen.length} images in sessions 1-3`),
      new RegExp(`read as 73k ids 1\\.\\.${rows} \\(no ids file\\); give ids .* or one row per 73k id up to ${seen[seen.length - 1]}`),
    );
  });

  it('refuses ids that match no image the subject saw, and ids that do not match the rows', async () => {
    const path = join(tmp, 'f20.npy'), ids = join(tmp, 'f20-ids.npy');
    await writeNpy(path, new Float32Array(20 * 3).fill(1), [20, 3]);
    await writeNpy(ids, Int32Array.from({ length: 20 }, (_, i) => 60_000 + i), [20]);
    await refusedUpFront(config([{ name: 'f', kind: 'file', path, ids }]), new RegExp(`feature set 'f': ${path} has features for images that have no betas: none of its 20 rows \\(73k ids 60000, 60001, .*\\) is among subject 1's ${seen.length} images`));
    await writeNpy(ids, seen.slice(0, 15), [15]);
    await refusedUpFront(config([{ name: 'f', kind: 'file', path, ids }]), new RegExp(`feature set 'f': ids file ${ids} has 15 ids for the 20 rows of ${path}; expected one 73k id per row`));
    await writeNpy(ids, Int32Array.from([...seen.slice(0, 19), seen[0]]), [20]);
    await refusedUpFront(config([{ name: 'f', kind: 'file', path, ids }]), new RegExp(`ids file ${ids} lists 73k id ${seen[0]} twice \\(elements 0 and 19\\)`));
  });

  // 73k ids are 1-based: ids given as 0-based nsdIds (73k id − 1) passed, and every row met the next image's
  // betas (the demo's mean r fell from 0.473 to −0.016, exit 0)
  it('refuses ids that are not 73k ids (1..73000), naming the file and the element, and 0-based nsdIds as such', async () => {
    const path = join(tmp, 'nsdid.npy'), ids = join(tmp, 'nsdid-ids.npy');
    const all = Int32Array.from({ length: seen[seen.length - 1] + 1 }, (_, i) => i); // nsdIds 0..max: covers every image
    await writeNpy(path, new Float32Array(all.length * 2).fill(1), [all.length, 2]);
    await writeNpy(ids, all, [all.length]);
    await refusedUpFront(
      config([{ name: 'f', kind: 'file', path, ids }]),
      new RegExp(`feature set 'f': ids file \\(${ids}\\): element 0 is 0, expected a 73k id \\(a whole number 1\\.\\.73000, 1-based\\); it holds a 0, as 0-based nsdIds do: 73k ids are nsdId \\+ 1`),
    );
    await writeNpy(ids, Int32Array.from(all, (v, i) => (i === 3 ? 73001 : v + 1)), [all.length]);
    const msg = await refusedUpFront(config([{ name: 'f', kind: 'file', path, ids }]), new RegExp(`ids file \\(${ids}\\): element 3 is 73001, expected a 73k id`));
    expect(msg).not.toMatch(/nsdId/);
    await writeNpy(ids, Int32Array.from(all, (v) => v + 1), [all.length]);
    await preflightEncode(resolveEncodeConfig(config([{ name: 'f', kind: 'file', path, ids }])));
    // the fit stage's reader refuses them too
    await writeNpy(ids, all, [all.length]);
    await expect(readFeatureFile({ name: 'f', kind: 'file', path, ids })).rejects.toThrow(`feature set 'f' ids (${ids}): element 0 is 0, expected a 73k id`);
  });

  it('refuses rows past 73,000 when there is no ids file, and says when ids + 1 would cover every image', async () => {
    const path = join(tmp, 'tall.npy');
    await writeNpy(path, new Float32Array(73001), [73001, 1]);
    const plan = { sessions: [1], trialsPerSession: 60, imageIds: Int32Array.from([5, 9, 12]), testImages: 1, grid: [8, 8, 8] as [number, number, number], betasFile: 'b', affine: null };
    expect(await featureFileProblems({ name: 't', kind: 'file', path, ids: null }, plan, 1)).toEqual([
      `feature set 't': ${path} has 73001 rows, read as 73k ids 1..73001 (no ids file), but NSD's 73k ids end at 73000; give ids (an .npy of each row's 73k id)`,
    ]);
    // nsdIds without a 0: in range, but shifted by one; said whether they miss every image or some
    const rows = join(tmp, 'four.npy'), ids = join(tmp, 'four-ids.npy');
    await writeNpy(rows, new Float32Array(4).fill(1), [4, 1]);
    const shifted = '; with every id + 1 all would be covered: are they 0-based nsdIds? (73k id = nsdId + 1)';
    await writeNpy(ids, Int32Array.from([4, 8, 11, 13]), [4]);
    expect(await featureFileProblems({ name: 't', kind: 'file', path: rows, ids }, plan, 1)).toEqual([
      `feature set 't': ${rows} has features for images that have no betas: none of its 4 rows (73k ids 4, 8, 11, 13 in ${ids}) is among subject 1's 3 images in sessions 1 (the images with betas), 73k ids 5, 9, 12${shifted}`,
    ]);
    await writeNpy(ids, Int32Array.from([4, 8, 11, 12]), [4]);
    expect(await featureFileProblems({ name: 't', kind: 'file', path: rows, ids }, plan, 1)).toEqual([
      `feature set 't': ${rows} lacks features for 2 of subject 1's 3 images in sessions 1 (the images with betas) (73k ids 5, 9): its 4 rows (73k ids 4, 8, 11, 12 in ${ids})${shifted}`,
    ]);
    // not shifted: no such hint
    await writeNpy(ids, Int32Array.from([1, 2, 3, 12]), [4]);
    expect((await featureFileProblems({ name: 't', kind: 'file', path: rows, ids }, plan, 1))[0]).not.toMatch(/nsdId/);
  });

  it('refuses NaN, Inf and float64 values beyond float32, naming the first and counting them', async () => {
    const ids = join(tmp, 'nan-ids.npy');
    await writeNpy(ids, seen, [seen.length]);
    const x = Float32Array.from({ length: seen.length * 5 }, (_, i) => Math.cos(i));
    x[7 * 5 + 2] = NaN;
    x[9 * 5] = -Infinity;
    const path = join(tmp, 'nan.npy');
    await writeNpy(path, x, [seen.length, 5]);
    await refusedUpFront(
      config([{ name: 'withnan', kind: 'file', path, ids }]),
      new RegExp(`feature set 'withnan': ${path}: element \\[row 7, column 2\\] is NaN \\(2 of ${seen.length * 5} values are not finite float32 numbers\\); finite numbers are required`),
    );
    const big = Float64Array.from({ length: seen.length * 2 }, () => 1);
    big[3] = 1e39;
    const path64 = join(tmp, 'big.npy');
    await writeNpy(path64, big, [seen.length, 2]);
    await refusedUpFront(config([{ name: 'big', kind: 'file', path: path64, ids }]), /feature set 'big': .*big\.npy: element \[row 1, column 1\] is 1e\+39, beyond float32's range/);
  });

  it('lists every problem of every set at once, shape and type included', async () => {
    const vec = join(tmp, 'vec.npy'), ints = join(tmp, 'ints.npy'), none = join(tmp, 'none.npy');
    await writeNpy(vec, new Float32Array(seen.length), [seen.length]);
    await writeNpy(ints, new Int32Array(seen.length * 2), [seen.length, 2]);
    // (no columns: its fit failed after extraction, naming neither set nor file; review s44)
    await writeNpy(none, new Float32Array(0), [seen.length, 0]);
    const msg = await refusedUpFront(
      config([
        { name: 'a', kind: 'file', path: vec },
        { name: 'b', kind: 'file', path: ints },
        { name: 'c', kind: 'file', path: join(tmp, 'nope.npy'), ids: join(tmp, 'nope-ids.npy') },
        { name: 'd', kind: 'file', path: none },
      ]),
      new RegExp(`feature set 'a': ${vec} has shape \\(${seen.length}\\), expected a 2-D array \\(images × features\\)`),
      new RegExp(`feature set 'b': ${ints} holds int32 values, expected float32 or float64`),
      /feature set 'c': .*nope\.npy does not exist/,
      /feature set 'c': ids file .*nope-ids\.npy does not exist/,
      new RegExp(`feature set 'd': ${none} has shape \\(${seen.length}, 0\\), expected at least one feature column`),
    );
    expect(msg.split('\n  - ')).toHaveLength(6);
  });

  it('scans a table larger than its read buffer in slabs, finding the value in the last one', async () => {
    const n = 3 << 20; // 12 MB of float32: more than one 8 MB slab
    const x = new Float32Array(n).fill(0.25);
    x[n - 5] = Infinity;
    const path = join(tmp, 'large.npy');
    await writeNpy(path, x, [n / 4, 4]);
    expect(await scanNpyNonFinite(path, await readNpyHeader(path))).toEqual({ index: n - 5, value: Infinity, count: 1, beyondFloat32: false });
    // big-endian float64, as numpy writes with dtype '>f8'
    const be = join(tmp, 'be.npy');
    const header = "{'descr': '>f8', 'fortran_order': False, 'shape': (2, 2), }";
    const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
    const dict = Buffer.from(header.padEnd(64 - 10 - 1, ' ') + '\n', 'latin1');
    pre.writeUInt16LE(dict.length, 8);
    const data = Buffer.alloc(32);
    [1, 2, NaN, 4].forEach((v, i) => data.writeDoubleBE(v, i * 8));
    writeFileSync(be, Buffer.concat([pre, dict, data]));
    expect(await scanNpyNonFinite(be, await readNpyHeader(be))).toMatchObject({ index: 2, count: 1 });
  });
});

describe("encode's preflight of 'unet' feature sets", () => {
  let model = '';
  let tanh = '';
  beforeAll(async () => {
    model = join(tmp, 'sd');
    await writeSdFixture(model, { unetChannels: 8, unetLayers: 1 });
    tanh = (await listUnetLayers(model)).find((l) => l.opType === 'Tanh')!.name;
    await addSideBranches(model, tanh);
  });

  it('refuses layers that are not float32 or float16 or have no row per image, naming each, and leaves no copy of the U-Net', async () => {
    // (they were accepted: a Shape or an int64 Cast failed the run at the features stage, [1]- and [1, N]-shaped tensors were fitted as garbage)
    const saved = process.env.TMPDIR;
    const os = join(tmp, 'os-tmp');
    mkdirSync(os, { recursive: true });
    process.env.TMPDIR = os;
    try {
      const unet = (layers: string[]) => ({ ...config([{ name: 'u', kind: 'unet', layers, timesteps: [201, 801], pool: 2 }]), model, imageSize: 32 });
      const msg = await refusedUpFront(
        unet([tanh, 'sample_shape', 'tanh_int', 'tanh_half', 'tanh_one_row', 'tanh_mean']),
        /feature set 'u': layer 'sample_shape' \(Shape\) is int64: features are read from float32 and float16 tensors only/,
        /feature set 'u': layer 'tanh_int' \(Cast\) is int64/,
        /feature set 'u': layer 'tanh_one_row' \(Reshape\) has shape \[1, .*\] whatever the batch .*its first dimension is not the batch/,
        /feature set 'u': layer 'tanh_mean' \(ReduceMean\) has shape \[\] on a batch of 2 images: its first dimension is not the batch/,
      );
      expect(msg.split('\n  - ')).toHaveLength(5);
      expect(msg).not.toContain(`'${tanh}'`);
      // a float16 tensor is read (converted to float32 by the engine)
      expect(msg).not.toContain("'tanh_half'");
      await preflightEncode(resolveEncodeConfig(unet([tanh, 'tanh_half'])));
      // (other readers leave files there: only the U-Net's copies count)
      expect(readdirSync(os).filter((e) => e.startsWith('brainlatent-unet'))).toEqual([]);
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
  });

  it("runs only the layers of the sets whose features stage will run (a resumed run's done sets are not loaded again)", async () => {
    const c = resolveEncodeConfig({
      ...config([
        { name: 'u', kind: 'unet', layers: [tanh], timesteps: [201], pool: 2 },
        { name: 'bad', kind: 'unet', layers: ['tanh_one_row'], timesteps: [201], pool: 2 },
      ]),
      model,
      imageSize: 32,
    });
    await expect(preflightEncode(c)).rejects.toThrow(/feature set 'bad': layer 'tanh_one_row'/);
    await expect(preflightEncode(c, { unetSetsToRun: new Set(['u']) })).resolves.toMatchObject({ voxels: expect.any(Number) });
    // (a name it does not have is still refused: that check reads the graph only)
    const misnamed = resolveEncodeConfig({ ...config([{ name: 'u', kind: 'unet', layers: ['no_such_layer'], timesteps: [201], pool: 2 }]), model, imageSize: 32 });
    await expect(preflightEncode(misnamed, { unetSetsToRun: new Set() })).rejects.toThrow(/feature set 'u': .*no_such_layer/);
  });

  it('announces the model evaluations of the stages that will run only (a dry run of a done run announced them all)', async () => {
    const c = resolveEncodeConfig({
      ...config([
        { name: 'z', kind: 'z' },
        { name: 'zc', kind: 'zc', strength: 0.5, steps: 4, guidance: 1 },
        { name: 'u', kind: 'unet', layers: [tanh], timesteps: [201, 801], pool: 2 },
      ]),
      model,
      imageSize: 32,
    });
    const n = seen.length;
    const all = [`VAE and text encoder: ${n} images`, `'zc': ${n} images × 2 U-Net evaluations (img2img)`, `'u': ${n} images × 2 U-Net evaluations`];
    expect((await preflightEncode(c)).estimates).toEqual(all);
    const estimates = async (stages: string[]) => (await preflightEncode(c, { stagesToRun: new Set(stages), unetSetsToRun: new Set() })).estimates;
    expect(await estimates([])).toEqual([]);
    expect(await estimates(['fit.z', 'maps', 'report'])).toEqual([]);
    expect(await estimates(['features.zc', 'fit.zc'])).toEqual([all[1]]);
    expect(await estimates(['embed', 'features.u'])).toEqual([all[0], all[2]]);
  });

  it("checks a 'zc' set's steps against the model folder's schedule, naming the field and the largest valid value", async () => {
    const zc = (steps: number) => resolveEncodeConfig({ ...config([{ name: 'zc', kind: 'zc', strength: 0.5, steps, guidance: 1 }]), model, imageSize: 32 });
    // (the fixture's SD 1.5 scheduler config: leading spacing, steps_offset 1 → 1000 steps reach timestep 1000)
    await expect(preflightEncode(zc(1000))).rejects.toThrow(/featureSets\[0\]\.steps 1000 is too many for this model's schedule .*featureSets\[0\]\.steps is at most 999 here/);
    await expect(preflightEncode(zc(999))).resolves.toMatchObject({ voxels: expect.any(Number) });
  });

  it('refuses captions that miss an image the sessions show, training ones too (they failed after the extraction and the ceiling)', async () => {
    const captions = join(tmp, 'some-captions.json');
    // every image but the first two the run embeds
    writeFileSync(captions, JSON.stringify(Object.fromEntries(Array.from(seen.slice(2), (id) => [String(id), 'a caption']))));
    const cfg = resolveEncodeConfig({ ...config([{ name: 'z', kind: 'z' }], { captions }), model, imageSize: 32 });
    const ids = Array.from(seen.slice(0, 2)).sort((a, b) => a - b);
    await expect(preflightEncode(cfg)).rejects.toThrow(new RegExp(`2 image\\(s\\) have no captions in .*\\(73k ids ${ids.join(', ')}\\); the model feature sets cannot embed them`));
    writeFileSync(captions, JSON.stringify(Object.fromEntries(Array.from(seen, (id) => [String(id), 'a caption']))));
    await expect(preflightEncode(cfg)).resolves.toMatchObject({ voxels: expect.any(Number) });
  });

  it("refuses a 'zc' set whose strength·steps runs no DDIM step, naming both fields (it passed, to fail at the features stage)", async () => {
    const zc = (strength: number, steps: number) => resolveEncodeConfig({ ...config([{ name: 'z', kind: 'z' }, { name: 'zc', kind: 'zc', strength, steps, guidance: 3 }]), model, imageSize: 32 });
    await expect(preflightEncode(zc(0.1, 5))).rejects.toThrow(/featureSets\[1\]\.strength 0\.1 with featureSets\[1\]\.steps 5 runs no denoising step: .*\(e\.g\. featureSets\[1\]\.strength 0\.2 with featureSets\[1\]\.steps 5\)/);
    // the estimate is the plan's calls (⌊0.3·10⌋ = 3 DDIM steps), × 2 with guidance
    const pre = await preflightEncode(zc(0.3, 10));
    expect(pre.estimates).toContain(`'zc': ${seen.length} images × 6 U-Net evaluations (img2img)`);
  });

  it('encode --dry-run after a finished run lists no model evaluations, and the ones still to run after a partial one', async () => {
    const cfg = { ...config([{ name: 'z', kind: 'z' }]), model, imageSize: 32, ridge: { alphas: [10, 1000], folds: 3 }, regions: [] } as EncodeConfigInput;
    const dry = async () => (await encode(cfg, { dryRun: true })).plan!;
    expect(await dry()).toContain(`VAE and text encoder: ${seen.length} images`);
    await encode(cfg);
    const done = await dry();
    expect(done.filter((l) => /^run  /.test(l))).toEqual([]);
    expect(done.filter((l) => /VAE|U-Net evaluations/.test(l))).toEqual([]);
    // the embed stage's marker gone: it runs again, and says so
    rmSync(join(cfg.out, 'stages', 'embed.json'));
    expect(await dry()).toContain(`VAE and text encoder: ${seen.length} images`);
  });
});

describe('nsd.sessions', () => {
  it('a range must be ascending and made of session numbers: refused when the config is validated', () => {
    const cfg = (sessions: unknown) => ({ ...config([{ name: 'z', kind: 'file', path: 'x.npy' }]), nsd: { root: nsd.root, subject: 1, sessions } });
    expect(() => resolveEncodeConfig(cfg('3-1'), 'enc.json')).toThrow(/enc\.json: nsd\.sessions: range "3-1" runs backwards; a range goes from the lower session to the higher \(1-3\)/);
    expect(() => resolveEncodeConfig(cfg('1-3,x,0'), 'enc.json')).toThrow(/nsd\.sessions: "x" \(in "1-3,x,0"\) is not a session number[\s\S]*nsd\.sessions: "0" \(in "1-3,x,0"\): sessions are numbered from 1/);
    expect(() => resolveEncodeConfig(cfg(' , '), 'enc.json')).toThrow(/nsd\.sessions: " , " names no session/);
    expect(resolveEncodeConfig(cfg('1-3, 5')).nsd.sessions).toBe('1-3, 5');
    // the reconstruction config shares the rule
    expect(() => resolveConfig({ out: 'o', nsd: { root: 'r', subject: 1, sessions: '2-1' }, model: { dir: 'm' } }, 'run.json')).toThrow(/run\.json: nsd\.sessions: range "2-1" runs backwards/);
    // bounded before a range is expanded session by session ("1-300000000" took 10 s and 650 MB, then a bare
    // "Set maximum size exceeded"), in a spec and in a list
    expect(() => resolveEncodeConfig(cfg('1-300000000'), 'enc.json')).toThrow(/enc\.json: nsd\.sessions: "1-300000000": sessions are numbered up to 999 \(NSD's run to 40\)/);
    expect(() => resolveEncodeConfig(cfg([1, 1000]), 'enc.json')).toThrow(/nsd\.sessions/);
    expect(resolveEncodeConfig(cfg('1-999')).nsd.sessions).toBe('1-999');
  });

  it('every session must have betas for the subject: checked before any work, dry run or not', async () => {
    const z = join(tmp, 'z.npy');
    await writeNpy(z, new Float32Array(seen[seen.length - 1] * 2).fill(1), [seen[seen.length - 1], 2]);
    await refusedUpFront(
      config([{ name: 'z', kind: 'file', path: z }], { sessions: '1-3,50' }),
      new RegExp(`nsd\\.sessions: session 50 of subject 1 has no betas \\(\\.hdf5 or \\.nii\\.gz\\) in ${nsd.root} \\(looked for .*betas_session50\\.hdf5\\); sessions with betas: 1-3`),
    );
    // in the design but without betas; a list as well as a string
    await refusedUpFront(config([{ name: 'z', kind: 'file', path: z }], { sessions: [2, 4, 5] }), /nsd\.sessions: sessions 4-5 of subject 1 have no betas .* sessions with betas: 1-3/);
    await preflightEncode(resolveEncodeConfig(config([{ name: 'z', kind: 'file', path: z }], { sessions: '2-3' })));
  });
});

describe('nsd.roi', () => {
  it("a mask file must be on the subject's grid: checked before any work, naming both grids and both files", async () => {
    const other = await synthNsd({ out: join(tmp, 'nsd-other-grid'), grid: [10, 8, 12], designSessions: 1, sessions: 1, trialsPerSession: 60, sharedImages: 10, imageSize: 16, formats: ['nifti'], seed: 3 });
    const mask = join(other.root, 'nsddata', 'ppdata', 'subj01', 'func1pt8mm', 'roi', 'nsdgeneral.nii.gz');
    const betas = join(nsd.root, 'nsddata_betas', 'ppdata', 'subj01', 'func1pt8mm', 'betas_fithrf_GLMdenoise_RR', 'betas_session01.nii.gz');
    const z = join(tmp, 'z-roi.npy');
    await writeNpy(z, new Float32Array(seen[seen.length - 1] * 2).fill(1), [seen[seen.length - 1], 2]);
    await refusedUpFront(
      config([{ name: 'z', kind: 'file', path: z }], { roi: mask }),
      new RegExp(`nsd\\.roi: the mask ${mask} is on a 10×8×12 grid but subject 1's betas \\(${betas}\\) are on 8×8×8; expected a mask on the subject's grid`),
    );
    await preflightEncode(resolveEncodeConfig(config([{ name: 'z', kind: 'file', path: z }], { roi: join(nsd.root, 'nsddata', 'ppdata', 'subj01', 'func1pt8mm', 'roi', 'nsdgeneral.nii.gz') })));
  });

  // a mask of the subject's dimensions but 2 mm voxels passed, and maps/<set>.nii.gz took its 2 mm geometry
  it("a mask with the subject's dimensions but another affine is refused before any work, naming both affines and files", async () => {
    const nsdgeneral = join(nsd.root, 'nsddata', 'ppdata', 'subj01', 'func1pt8mm', 'roi', 'nsdgeneral.nii.gz');
    const { header, data } = await readNifti(nsdgeneral);
    const subject = voxelToWorld(header);
    const mask = join(tmp, 'mask_otheraffine.nii.gz');
    const scaled = subject.map((r) => [r[0] * (2 / 1.8), r[1] * (2 / 1.8), r[2] * (2 / 1.8), r[3]]);
    await writeNifti(mask, { dims: header.dims, datatype: 'int16', ...geometryFromAffine([...scaled, [0, 0, 0, 1]]) }, Int16Array.from(data, (v) => (v > 0 ? 1 : 0)));
    const betas = join(nsd.root, 'nsddata_betas', 'ppdata', 'subj01', 'func1pt8mm', 'betas_fithrf_GLMdenoise_RR', 'betas_session01.nii.gz');
    const z = join(tmp, 'z-affine.npy');
    await writeNpy(z, new Float32Array(seen[seen.length - 1] * 2).fill(1), [seen[seen.length - 1], 2]);
    const t = (r: number) => +subject[r][3].toFixed(4);
    await refusedUpFront(
      config([{ name: 'z', kind: 'file', path: z }], { roi: mask }),
      new RegExp(
        esc(
          `nsd.roi: the mask ${mask} has the 8×8×8 dimensions of subject 1's betas (${betas}) but another voxel-to-world affine: ` +
            `[2 0 0 ${t(0)}; 0 2 0 ${t(1)}; 0 0 2 ${t(2)}] (its sform) against [1.8 0 0 ${t(0)}; 0 1.8 0 ${t(1)}; 0 0 1.8 ${t(2)}] (the betas' sform); ` +
            `its voxels lie up to ${Math.hypot(7 * 0.2, 7 * 0.2, 7 * 0.2).toPrecision(3)} mm from the subject's; expected a mask on the subject's grid`,
        ),
      ),
    );
  });
});

describe('regions', () => {
  const features = async () => {
    const z = join(tmp, 'regions-z.npy');
    await writeNpy(z, Float32Array.from({ length: seen[seen.length - 1] * 2 }, (_, i) => Math.sin(i)), [seen[seen.length - 1], 2]);
    return [{ name: 'z', kind: 'file', path: z }];
  };
  const roiDir = () => join(nsd.root, 'nsddata', 'ppdata', 'subj01', 'func1pt8mm', 'roi');

  it('an atlas without a volume for the subject is refused before any work, naming the field and the atlases available', async () => {
    const available = readdirSync(roiDir()).filter((f) => f.endsWith('.nii.gz')).map((f) => f.replace('.nii.gz', '')).sort().join(', ');
    const msg = await refusedUpFront(
      { ...config(await features()), regions: ['streams', 'bogus', 'floc-faces'] },
      new RegExp(`regions\\[1\\]: no atlas 'bogus' for subject 1 \\(.*roi/bogus\\.nii\\.gz does not exist\\); atlases available: ${available}`),
      /regions\[2\]: no atlas 'floc-faces' for subject 1/,
    );
    expect(msg).not.toMatch(/regions\[0\]/);
  });

  /** An 8×8×8 copy of nsdgeneral with 2 mm voxels instead of 1.8 (same origin), and what the message says of both affines. */
  const shiftedCopy = async (path: string) => {
    const { header, data } = await readNifti(join(roiDir(), 'nsdgeneral.nii.gz'));
    const subject = voxelToWorld(header);
    const scaled = subject.map((r) => [r[0] * (2 / 1.8), r[1] * (2 / 1.8), r[2] * (2 / 1.8), r[3]]);
    await writeNifti(path, { dims: header.dims, datatype: 'float32', ...geometryFromAffine([...scaled, [0, 0, 0, 1]]) }, Float32Array.from(data));
    const t = (r: number) => +subject[r][3].toFixed(4);
    return (
      `[2 0 0 ${t(0)}; 0 2 0 ${t(1)}; 0 0 2 ${t(2)}] (its sform) against [1.8 0 0 ${t(0)}; 0 1.8 0 ${t(1)}; 0 0 1.8 ${t(2)}] (the betas' sform); ` +
      `its voxels lie up to ${Math.hypot(7 * 0.2, 7 * 0.2, 7 * 0.2).toPrecision(3)} mm from the subject's`
    );
  };
  const betas = () => join(nsd.root, 'nsddata_betas', 'ppdata', 'subj01', 'func1pt8mm', 'betas_fithrf_GLMdenoise_RR', 'betas_session01.nii.gz');

  // the region table reads each atlas at the mask's flat indices: one of the same size placed elsewhere gave every
  // voxel another voxel's label in silence, and one of another size was only left out after the fits
  it('an atlas on another grid than the betas (other dimensions, or the same placed elsewhere) is refused before any work, naming regions[i] and the file', async () => {
    const other = join(roiDir(), 'other-grid.nii.gz'), shifted = join(roiDir(), 'shifted.nii.gz');
    await writeNifti(other, { dims: [10, 10, 10], datatype: 'int16' }, new Int16Array(1000).fill(1));
    const affines = await shiftedCopy(shifted);
    try {
      const msg = await refusedUpFront(
        { ...config(await features()), regions: ['streams', 'other-grid', 'shifted'] },
        new RegExp(esc(`regions[1]: the atlas ${other} is on a 10×10×10 grid but subject 1's betas (${betas()}) are on 8×8×8; expected an atlas on the subject's grid`)),
        new RegExp(esc(`regions[2]: the atlas ${shifted} has the 8×8×8 dimensions of subject 1's betas (${betas()}) but another voxel-to-world affine: ${affines}; expected an atlas on the subject's grid`)),
      );
      expect(msg).not.toMatch(/regions\[0\]/);
    } finally {
      rmSync(other);
      rmSync(shifted);
    }
  });

  it("brainlatent encode --dry-run lists an atlas and a noise-ceiling file off the grid with the config's other problems", async () => {
    const other = join(roiDir(), 'other-grid.nii.gz'), ncsnr = join(tmp, 'ncsnr-shifted.nii.gz');
    await writeNifti(other, { dims: [10, 10, 10], datatype: 'int16' }, new Int16Array(1000).fill(1));
    const affines = await shiftedCopy(ncsnr);
    const cfg = join(tmp, 'off-grid.json');
    const input = { ...config(await features()), regions: ['other-grid', 'bogus'], noiseCeiling: ncsnr };
    writeFileSync(cfg, JSON.stringify(input));
    const program = new Command().exitOverride();
    registerEncodeCommand(program);
    try {
      const err = await program.parseAsync(['node', 'brainlatent', 'encode', '--config', cfg, '--dry-run']).then(
        () => null,
        (e: Error) => e,
      );
      expect(err?.name).toBe('PreflightError');
      expect(err!.message).toContain(`regions[0]: the atlas ${other} is on a 10×10×10 grid but subject 1's betas (${betas()}) are on 8×8×8`);
      expect(err!.message).toContain("regions[1]: no atlas 'bogus' for subject 1");
      expect(err!.message).toContain(
        `noiseCeiling: the noise-ceiling file ${ncsnr} has the 8×8×8 dimensions of subject 1's betas (${betas()}) but another voxel-to-world affine: ${affines}; ` +
          `expected a noise-ceiling file on the subject's grid`,
      );
      expect(existsSync(input.out), 'nothing written').toBe(false);
    } finally {
      rmSync(other);
    }
  });

  it("brainlatent encode without atlases: the table is headed 'whole mask', not '()'", async () => {
    const cfg = join(tmp, 'no-atlas.json');
    writeFileSync(cfg, JSON.stringify({ ...config(await features()), regions: [], ridge: { alphas: '1e-1:1e3:3' } }));
    const program = new Command().exitOverride();
    registerEncodeCommand(program);
    const out: string[] = [];
    const err: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    const spyErr = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
    try {
      await program.parseAsync(['node', 'brainlatent', 'encode', '--config', cfg]);
    } finally {
      spy.mockRestore();
      spyErr.mockRestore();
    }
    expect(out.join('')).toMatch(/test images; mean held-out r \(whole mask\):\nfeature set\s+all\nz\s+-?\d\.\d{3}\n/);
    expect(err.join('')).not.toContain('warning');
  });
});

describe('noiseCeiling', () => {
  const z = async () => {
    const path = join(tmp, 'nc-z.npy');
    await writeNpy(path, new Float32Array(seen[seen.length - 1] * 2).fill(1), [seen[seen.length - 1], 2]);
    return [{ name: 'z', kind: 'file', path }];
  };
  const betas = () => join(nsd.root, 'nsddata_betas', 'ppdata', 'subj01', 'func1pt8mm', 'betas_fithrf_GLMdenoise_RR', 'betas_session01.nii.gz');

  // the ceiling stage reads ncsnr at the mask's flat indices: one of the same size placed elsewhere gave each voxel
  // another voxel's ceiling (r / √NC in regions.csv and the report), one of another size failed after the extract
  it('an ncsnr file on another grid than the betas is refused before any work, naming noiseCeiling and the file; one on the grid passes', async () => {
    const nsdgeneral = join(nsd.root, 'nsddata', 'ppdata', 'subj01', 'func1pt8mm', 'roi', 'nsdgeneral.nii.gz');
    const { header } = await readNifti(nsdgeneral);
    const subject = voxelToWorld(header);
    const small = join(tmp, 'ncsnr-10x8x8.nii.gz'), shifted = join(tmp, 'ncsnr-2mm.nii.gz'), good = join(tmp, 'ncsnr-good.nii.gz');
    await writeNifti(small, { dims: [10, 8, 8], datatype: 'float32', ...geometryFromAffine([...subject, [0, 0, 0, 1]]) }, new Float32Array(640).fill(1));
    await writeNifti(shifted, { dims: [8, 8, 8], datatype: 'float32', ...geometryFromAffine([...subject.map((r) => [r[0] * (2 / 1.8), r[1] * (2 / 1.8), r[2] * (2 / 1.8), r[3]]), [0, 0, 0, 1]]) }, new Float32Array(512).fill(1));
    await writeNifti(good, { dims: [8, 8, 8], datatype: 'float32', ...geometryFromAffine([...subject, [0, 0, 0, 1]]) }, new Float32Array(512).fill(1));
    await refusedUpFront(
      { ...config(await z()), noiseCeiling: small },
      new RegExp(esc(`noiseCeiling: the noise-ceiling file ${small} is on a 10×8×8 grid but subject 1's betas (${betas()}) are on 8×8×8; expected a noise-ceiling file on the subject's grid`)),
    );
    await refusedUpFront(
      { ...config(await z()), noiseCeiling: shifted },
      new RegExp(esc(`noiseCeiling: the noise-ceiling file ${shifted} has the 8×8×8 dimensions of subject 1's betas (${betas()}) but another voxel-to-world affine`)),
    );
    await preflightEncode(resolveEncodeConfig({ ...config(await z()), noiseCeiling: good }));
  });

  // the default 'auto' without ncsnr.nii.gz ran without a ceiling and said so only in report.html: regions.csv's
  // ceiling columns were empty and no r/√NC maps written, with nothing printed
  it("'auto' without ncsnr.nii.gz: the dry run's plan and the run say in one line that there is no noise ceiling", async () => {
    const cfg = join(tmp, 'nc-auto.json');
    const input = { ...config(await z()), regions: [], noiseCeiling: 'auto', ridge: { alphas: '1e-1:1e3:3' } };
    writeFileSync(cfg, JSON.stringify(input));
    const note =
      `note: noiseCeiling 'auto': no ${join(dirname(betas()), 'ncsnr.nii.gz')}, so no noise ceiling (regions.csv's ceiling columns empty, no r/√NC maps); ` +
      "noiseCeiling 'estimate' computes one from the test images' repetitions, 'none' says there is none\n";
    const cli = async (...flags: string[]) => {
      const program = new Command().exitOverride();
      registerEncodeCommand(program);
      const out: string[] = [];
      const err: string[] = [];
      const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
      const spyErr = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
      try {
        await program.parseAsync(['node', 'brainlatent', 'encode', '--config', cfg, ...flags]);
      } finally {
        spy.mockRestore();
        spyErr.mockRestore();
      }
      return { out: out.join(''), err: err.join('') };
    };
    const dry = await cli('--dry-run');
    expect(dry.out.split('\n').filter((l) => l.startsWith('note:'))).toEqual([note.trimEnd()]);
    const run = await cli();
    expect(run.err.split(/(?<=\n)/).filter((l) => l.startsWith('note:'))).toEqual([note]);
    expect(existsSync(join(input.out, 'data', 'noise_ceiling.npy'))).toBe(false);
    // 'none' chose that: nothing to say
    const none = await preflightEncode(resolveEncodeConfig({ ...config(await z()), noiseCeiling: 'none' }));
    expect(none.notes).toEqual([]);
  });

  it("'auto': NSD's ncsnr.nii.gz beside the betas of other dimensions is refused before any work", async () => {
    const auto = join(dirname(betas()), 'ncsnr.nii.gz');
    await writeNifti(auto, { dims: [8, 8, 9], datatype: 'float32' }, new Float32Array(576).fill(1));
    try {
      await refusedUpFront(
        { ...config(await z()), noiseCeiling: 'auto' },
        new RegExp(esc(`noiseCeiling: the noise-ceiling file ${auto} is on a 8×8×9 grid but subject 1's betas (${betas()}) are on 8×8×8`)),
      );
    } finally {
      rmSync(auto);
    }
  });
});

describe('ridge.folds', () => {
  it('more folds than the training rows allow is refused before any work, naming ridge.folds (it was a bare RidgeCV message)', async () => {
    const path = join(tmp, 'folds.npy'), ids = join(tmp, 'folds-ids.npy');
    await writeNpy(path, Float32Array.from({ length: seen.length * 3 }, (_, i) => Math.sin(i)), [seen.length, 3]);
    await writeNpy(ids, seen, [seen.length]);
    const cfg = (folds: number) => ({ ...config([{ name: 'f', kind: 'file', path, ids }]), ridge: { folds } }) as EncodeConfigInput;
    const rows = seen.length - 10; // the 10 shared images are the test set
    await refusedUpFront(cfg(1000), new RegExp(`^cannot start encode:\\n  - ridge\\.folds: ${rows} training rows \\(one per image\\): 1000 folds but only ${rows} samples`, 's'));
    // a count the rows hold but that leaves a fold of one sample (the score of one sample is undefined)
    await refusedUpFront(cfg(rows - 1), /ridge\.folds: \d+ training rows \(one per image\) folds \(of whole groups\): fold \d+ holds 1 sample; .*use fewer folds/s);
    expect((await preflightEncode(resolveEncodeConfig(cfg(Math.floor(rows / 2))))).voxels).toBeGreaterThan(0);
  });
});
