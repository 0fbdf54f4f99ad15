/** `brainlatent encode --config enc.json`: reads the config, calls encode(), prints the region summary. */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';

import type { Command } from 'commander';

import { encode, type EncodeConfig } from '../../encoding/encode.js';
import { FormatError } from '../../errors.js';
import { progressBar } from '../progress.js';

/** Paths in a config file are relative to the file. */
function resolvePaths(c: EncodeConfig, base: string): EncodeConfig {
  const abs = (p: string | undefined) => (p === undefined || isAbsolute(p) ? p : resolve(base, p));
  const roi = c.nsd?.roi;
  return {
    ...c,
    out: abs(c.out)!,
    model: abs(c.model),
    nsd: {
      ...c.nsd,
      root: abs(c.nsd?.root)!,
      cacheDir: abs(c.nsd?.cacheDir),
      captions: abs(c.nsd?.captions),
      roi: roi && (/\.nii(\.gz)?$/i.test(roi) || roi.includes('/')) ? abs(roi) : roi,
    },
    noiseCeiling: c.noiseCeiling && !['auto', 'none', 'estimate'].includes(c.noiseCeiling) ? abs(c.noiseCeiling) : c.noiseCeiling,
    featureSets: (c.featureSets ?? []).map((s) => (s.kind === 'file' ? { ...s, path: abs(s.path)!, ids: abs(s.ids) } : s)),
  };
}

export function registerEncodeCommand(program: Command): void {
  program
    .command('encode')
    .description('voxel-wise encoding models: diffusion-model features → voxels, maps, region table and report')
    .requiredOption('--config <json>', 'encoding config (see docs/encoding.md)')
    .option('--out <dir>', 'output folder (overrides the config)')
    .addHelpText(
      'after',
      `
A config names the subject's data, the model folder and the feature sets to compare
(paths relative to the config file):

  {
    "out": "encoding-subj01",
    "nsd": { "root": "/data/nsd", "subject": 1, "roi": "nsdgeneral" },
    "model": "./sd-v1-5-onnx",
    "featureSets": [
      { "name": "z", "kind": "z" },
      { "name": "c", "kind": "c" },
      { "name": "zc", "kind": "zc", "strength": 0.5 },
      { "name": "unet", "kind": "unet", "layers": ["/mid_block/attentions.0/Add_output_0"], "timesteps": [201, 801], "pool": 4 }
    ],
    "ridge": { "alphas": "1e1:1e7:10", "folds": 5 },
    "banded": [{ "name": "z+c", "sets": ["z", "c"] }],
    "noiseCeiling": "auto"
  }

Each feature set is fitted to every voxel of the mask (per-voxel alpha by CV grouped by image) and
scored by held-out Pearson r; the run writes maps/<set>.nii.gz on the subject's grid, regions.csv
(mean accuracy per streams / prf-visualrois region), mosaics/<set>.png and report.html.
'brainlatent sd layers --model DIR' lists the U-Net tensors a "unet" set can use. See docs/encoding.md.`,
    )
    .action(async (f: { config: string; out?: string }) => {
      let config: EncodeConfig;
      try {
        config = JSON.parse(await readFile(f.config, 'utf8')) as EncodeConfig;
      } catch (e) {
        throw new FormatError(`${f.config}: not a readable JSON config (${(e as Error).message})`);
      }
      if (f.out) config.out = resolve(f.out);
      config = resolvePaths(config, dirname(resolve(f.config)));
      const bar = progressBar('encode');
      const ctl = new AbortController();
      process.once('SIGINT', () => ctl.abort());
      const r = await encode(config, { signal: ctl.signal, onProgress: (p) => bar.update(p.fraction, `${p.stage} ${p.detail}`) });
      bar.done();
      const regions = [...new Set(r.featureSets.flatMap((s) => s.regions.filter((x) => x.atlas !== 'prf-visualrois').map((x) => x.region)))];
      const w = Math.max(12, ...r.featureSets.map((s) => s.name.length));
      process.stdout.write(`${r.voxels} voxels, ${r.trainImages} training / ${r.testImages} test images; mean held-out r:\n`);
      process.stdout.write(`${'feature set'.padEnd(w)} ${regions.map((x) => x.padStart(11)).join(' ')}\n`);
      for (const s of r.featureSets) {
        const cell = (region: string) => {
          const v = s.regions.find((x) => x.region === region && x.atlas !== 'prf-visualrois')?.meanR;
          return (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(3)).padStart(11);
        };
        process.stdout.write(`${s.name.padEnd(w)} ${regions.map(cell).join(' ')}\n`);
      }
      process.stdout.write(`wrote ${r.out}/report.html, regions.csv, maps/ and mosaics/\n`);
    });
}
