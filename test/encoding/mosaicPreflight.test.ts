/**
 * encode's preflight refuses a `mosaic` whose figures would pass 2^28 pixels, before any fit (the report stage
 * refused them after every fit). A miniature NSD whose betas and nsdgeneral are put on a 160×160×40 grid (zeros:
 * the preflight reads their headers and the mask only): at scale 16, 40 slices in 3 columns make a figure over the
 * cap, in 4 columns one just under it.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { registerEncodeCommand } from '../../ts/cli/commands/encode.js';
import { resolveEncodeConfig, type EncodeConfigInput } from '../../ts/config/encode.js';
import { encode } from '../../ts/encoding/encode.js';
import { renderMosaic } from '../../ts/encoding/mosaic.js';
import { MAX_MOSAIC_PIXELS } from '../../ts/encoding/mosaicBounds.js';
import { mosaicLayout, mosaicSize } from '../../ts/encoding/mosaicLayout.js';
import { preflightEncode } from '../../ts/encoding/preflight.js';
import { textWidth } from '../../ts/encoding/text.js';
import { geometryFromAffine, writeNifti } from '../../ts/io/nifti.js';
import { writeNpy } from '../../ts/io/npy.js';
import { readNsdDesign } from '../../ts/nsd/expdesign.js';
import { betasPath, roiPath } from '../../ts/nsd/paths.js';
import { planNsdSessions } from '../../ts/nsd/sessionPlan.js';
import { synthNsd, type SynthNsdResult } from '../../ts/synth/nsd.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-mosaic-preflight-'));
const GRID = [160, 160, 40] as const;
const TRIALS = 30;
let nsd: SynthNsdResult;
let features: string;
let runs = 0;

beforeAll(async () => {
  nsd = await synthNsd({ out: join(tmp, 'nsd'), grid: [8, 8, 8], designSessions: 2, sessions: 1, trialsPerSession: TRIALS, sharedImages: 4, imageSize: 16, formats: ['nifti'], seed: 11 });
  const geometry = geometryFromAffine([[1.8, 0, 0, -143], [0, 1.8, 0, -143], [0, 0, 1.8, -35], [0, 0, 0, 1]]);
  const n = GRID[0] * GRID[1] * GRID[2];
  // the betas on the large grid, streamed in zero slabs (only the header is read before the extract stage)
  const slabs = function* () {
    for (let t = 0; t < TRIALS; t++) yield new Int16Array(n);
  };
  await writeNifti(betasPath(nsd.root, 1, 1, 'nifti'), { dims: [...GRID, TRIALS], datatype: 'int16', ...geometry }, slabs());
  // nsdgeneral: a 4×4 patch in every slice, so the figures show all 40
  const roi = new Int16Array(n);
  for (let z = 0; z < GRID[2]; z++) for (let y = 78; y < 82; y++) for (let x = 78; x < 82; x++) roi[x + GRID[0] * (y + GRID[1] * z)] = 1;
  await writeNifti(roiPath(nsd.root, 1, 'nsdgeneral'), { dims: [...GRID], datatype: 'int16', ...geometry }, roi);
  const { plan } = await planNsdSessions({ root: nsd.root, subject: 1, sessions: null, format: 'auto' }, await readNsdDesign(nsd.root));
  const seen = plan!.imageIds;
  features = join(tmp, 'f.npy');
  const ids = join(tmp, 'f-ids.npy');
  await writeNpy(features, Float32Array.from({ length: seen.length * 3 }, (_, i) => Math.sin(i)), [seen.length, 3]);
  await writeNpy(ids, seen, [seen.length]);
  features = JSON.stringify({ path: features, ids });
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const config = (mosaic: Record<string, number>): EncodeConfigInput =>
  ({
    out: join(tmp, `run-${++runs}`),
    nsd: { root: nsd.root, subject: 1 },
    featureSets: [{ name: 'f', kind: 'file', ...JSON.parse(features) }],
    noiseCeiling: 'none',
    regions: [],
    mosaic,
  }) as EncodeConfigInput;

/** The least figure the preflight reckons for 40 slices of 160×160 at scale 16 in `columns` columns. */
const least = (columns: number) => {
  const { width, height } = mosaicSize(mosaicLayout({ across: 160, down: 160, slices: 40, scale: 16, columns }), textWidth('0', 12), 1);
  return { width, height, pixels: width * height };
};

describe("encode's preflight of the mosaics' size", () => {
  it('the geometry straddles the cap: 3 columns over it, 4 just under', () => {
    expect(least(3).pixels).toBeGreaterThan(MAX_MOSAIC_PIXELS);
    expect(least(4).pixels).toBeLessThanOrEqual(MAX_MOSAIC_PIXELS);
    expect(least(4).pixels).toBeGreaterThan(0.999 * MAX_MOSAIC_PIXELS);
  });

  it('refuses a figure over 2^28 pixels in the dry run and the real run, naming the config, the fields and the limit, with nothing written', async () => {
    const { width, height, pixels } = least(3);
    const cfg = config({ scale: 16, slices: 40, columns: 3 });
    for (const dryRun of [true, false]) {
      const err = await encode(cfg, { dryRun, source: 'enc.json' }).then(
        () => null,
        (e: Error) => e,
      );
      expect(err?.name, `dryRun ${dryRun}`).toBe('PreflightError');
      expect(err!.message).toContain(
        `enc.json: mosaic.scale 16, mosaic.slices 40, mosaic.columns 3: each map's figure would be at least ${width}×${height} = ${pixels} pixels ` +
          "(40 slices of 160×160 voxels, of the 40 that hold voxels of nsd.roi 'nsdgeneral', 3 per row), over the limit of 268435456 pixels (2^28, 1 GiB of RGBA)",
      );
      expect(existsSync(cfg.out), 'nothing written').toBe(false);
    }
  });

  it('`brainlatent encode --dry-run` names the config file', async () => {
    const file = join(tmp, 'enc.json');
    writeFileSync(file, JSON.stringify(config({ scale: 16, slices: 40, columns: 3 })));
    const program = new Command().exitOverride();
    registerEncodeCommand(program);
    const err = await program.parseAsync(['node', 'brainlatent', 'encode', '--config', file, '--dry-run']).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.name).toBe('PreflightError');
    expect(err!.message).toContain(`${file}: mosaic.scale 16, mosaic.slices 40, mosaic.columns 3: each map's figure would be at least`);
  });

  it('passes a figure just under the cap', async () => {
    const pre = await preflightEncode(resolveEncodeConfig(config({ scale: 16, slices: 40, columns: 4 })));
    expect(pre.voxels).toBe(16 * 40);
  });
});

describe("the preflight's size is the least a figure has", () => {
  it('renderMosaic draws a figure at least as large, with its own ticks and note', () => {
    const grid: [number, number, number] = [10, 12, 6];
    const affine = [[2, 0, 0, -9], [0, 2, 0, -11], [0, 0, 2, -5]];
    const volume = new Float32Array(10 * 12 * 6).map((_, i) => Math.sin(i));
    for (const columns of [1, 2, 4]) {
      const { result } = renderMosaic({ grid, affine, volume, underlay: null, title: 't', quantity: 'r', colormap: 'diverging', note: 'p < 0.05', scale: 3, columns });
      const least = mosaicSize(mosaicLayout({ across: 10, down: 12, slices: 6, scale: 3, columns }), textWidth('0', 12), 1);
      expect(result.width).toBeGreaterThanOrEqual(least.width);
      expect(result.height).toBe(least.height);
    }
  });
});
