/** `brainlatent encode --config enc.json`: reads the config, calls encode(), prints the region summary. */
import { resolve } from 'node:path';

import type { Command } from 'commander';

import { EncodeConfigSchema, resolveEncodeConfig } from '../../config/encode.js';
import { schemaHelpText } from '../../config/help.js';
import { encode } from '../../encoding/encode.js';
import { readConfigFile } from '../configFile.js';
import { runFolderInputs } from '../../pipeline/runFolderInputs.js';
import { checkCacheFolderApart, checkOutputPath, checkRunFolderApart } from '../outputPath.js';
import { printCacheRemovals, printWarnings, stageProgress } from './reconstruct.js';
import { stopOnSignals } from '../stopSignals.js';

export function registerEncodeCommand(program: Command): void {
  program
    .command('encode')
    .description('voxel-wise encoding models: diffusion-model features → voxels, maps, region table and report')
    .requiredOption('--config <file>', 'the encoding config, a JSON file: see docs/encoding.md')
    .option('--out <dir>', 'run folder (overrides the config)')
    .option('--force', 'redo every stage, replacing another run in --out (only the files a run writes go; yours stay)')
    .option('--dry-run', 'print the stages that would run, each timed by a short measured probe; writes nothing')
    .addHelpText(
      'after',
      `
Each feature set is fitted to every voxel of the mask (per-voxel alpha by CV grouped by image) and
scored by held-out Pearson r; the run writes maps/<set>.nii.gz on the subject's grid, regions.csv
(mean accuracy per streams / prf-visualrois region), mosaics/<set>.png and report.html.
'brainlatent sd layers --model DIR' lists the U-Net tensors a "unet" set can use. See docs/encoding.md.

The run is resumable: each stage (extract, ceiling, embed, features.<set>, fit.<table>, banded.<name>,
maps, report) writes stages/<stage>.json once its outputs are complete, and a second run with the same
config skips the stages that are done; a file a stage read that has changed since (a feature file, the
model folder) reruns it and what follows, and --dry-run says why. Examples:
  brainlatent encode --config enc.json --dry-run    # the stages to run, each timed by a short probe
  brainlatent encode --config enc.json              # resumes where an interrupted run stopped
  brainlatent encode --config enc.json --force      # redoes everything

${schemaHelpText(EncodeConfigSchema, 'enc.json')}`,
    )
    .action(async (f: { config: string; out?: string; force?: boolean; dryRun?: boolean }) => {
      // the run folder is checked before any work: the flag's value as typed, else the config file's
      if (f.out !== undefined) await checkOutputPath('--out', f.out, 'folder', 'the run');
      const file = await readConfigFile(f.config, EncodeConfigSchema, 'encode');
      // every problem of the file is listed, naming it; a file that holds no object is reported as such
      const config = resolveEncodeConfig(f.out !== undefined && typeof file === 'object' && file !== null && !Array.isArray(file) ? { ...file, out: resolve(f.out) } : file, f.config);
      const outLabel = f.out !== undefined ? '--out' : `${f.config}: out`;
      if (f.out === undefined) await checkOutputPath(outLabel, config.out, 'folder', 'the run');
      // nor one that overlaps what the run reads (the NSD root, the model folder, a feature file): dry runs too
      const inputs = runFolderInputs(EncodeConfigSchema, config);
      await checkRunFolderApart(outLabel, f.out ?? config.out, inputs);
      // and an extraction cache the config names (it writes entries there and removes stale ones)
      if (config.nsd.cacheDir !== null) await checkCacheFolderApart(`${f.config}: nsd.cacheDir`, config.nsd.cacheDir, inputs);
      // Ctrl-C or SIGTERM stops the run at its next step; finished stages stay, and the same command resumes
      const ctl = stopOnSignals();
      const r = await encode(config, { source: f.config, signal: ctl.signal, force: f.force, dryRun: f.dryRun, onProgress: f.dryRun ? undefined : stageProgress(), onWarning: printWarnings, onNote: (n) => process.stderr.write(`note: ${n}\n`) }).finally(() => ctl.dispose());
      if (r.plan) {
        process.stdout.write(`${r.plan.join('\n')}\n`);
        return;
      }
      printCacheRemovals(r.stages);
      // an atlas the region table left out is said, not only in report.html
      if (r.atlasesMissing.length) process.stderr.write(`warning: regions: left out of regions.csv: ${r.atlasesMissing.join('; ')}\n`);
      const regions = [...new Set(r.featureSets.flatMap((s) => s.regions.filter((x) => x.atlas !== 'prf-visualrois').map((x) => x.region)))];
      const w = Math.max(12, ...r.featureSets.map((s) => s.name.length));
      // (one table: prf-visualrois' regions are in regions.csv and the report)
      // ('all', the whole mask, needs no atlas name)
      const shown = [...new Set(r.featureSets.flatMap((s) => s.regions.filter((x) => x.atlas !== 'prf-visualrois' && x.atlas !== 'mask').map((x) => x.atlas)))];
      const left = [...new Set(r.featureSets.flatMap((s) => s.regions.map((x) => x.atlas)))].filter((a) => a !== 'mask' && !shown.includes(a));
      process.stdout.write(
        // (with averageTrain false the training rows are trials, an image's repetitions each a row)
        `${r.voxels} voxels, ${r.config.nsd.averageTrain ? `${r.trainImages} training images` : `${r.trainRows} training trials (of ${r.trainImages} images)`} / ${r.testImages} test images; mean held-out r (${shown.length ? shown.join(', ') : 'whole mask'}${left.length ? `; ${left.join(', ')} in regions.csv` : ''}):\n`,
      );
      process.stdout.write(`${'feature set'.padEnd(w)} ${regions.map((x) => x.padStart(11)).join(' ')}\n`);
      for (const s of r.featureSets) {
        const cell = (region: string) => {
          const v = s.regions.find((x) => x.region === region && x.atlas !== 'prf-visualrois')?.meanR;
          return (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(3)).padStart(11);
        };
        process.stdout.write(`${s.name.padEnd(w)} ${regions.map(cell).join(' ')}\n`);
      }
      const ran = r.stages.filter((s) => s.status === 'ran').length;
      const how = ran === r.stages.length ? `all ${ran} stages ran` : `${ran} of ${r.stages.length} stages ran, the others' outputs were already there`;
      process.stdout.write(`${how}; ${r.out} holds report.html, regions.csv, maps/ and mosaics/\n`);
    });
}
