import type { Command } from 'commander';

import { CancelledError, InvalidArgumentError } from '../../errors.js';
import type { Grid } from '../../io/voxelMask.js';
import type { BetasFormat } from '../../nsd/paths.js';
import { resolveSynthNsdOptions, synthNsd, type SynthNsdOptions } from '../../synth/nsd.js';
import { seconds } from '../format.js';
import { checkOutputPath } from '../outputPath.js';
import { numberFlag } from '../flagValue.js';
import { stopOnSignals } from '../stopSignals.js';

interface SynthFlags {
  out: string;
  seed: string;
  subjects: string;
  sessions: string;
  designSessions: string;
  trials: string;
  shared: string;
  grid: string;
  imageSize: string;
  noise: string;
  formats: string;
}

// (parsed here; their ranges are checked by synthNsd's options, which name the flags)
function num(text: string, what: string, integer = true): number {
  return numberFlag(text, what, { type: integer ? 'integer' : 'number' });
}

const FLAG_NAMES = {
  out: '--out', seed: '--seed', subjects: '--subjects', grid: '--grid', sessions: '--sessions', designSessions: '--design-sessions', trialsPerSession: '--trials',
  sharedImages: '--shared', imageSize: '--image-size', noiseSd: '--noise', formats: '--formats',
};

export function registerSynthCommand(program: Command): void {
  const synth = program.command('synth').description('Synthetic data with a known ground truth, for tests and demos');

  synth
    .command('nsd')
    .description('write a miniature NSD-shaped dataset from a planted encoding model')
    .requiredOption('--out <dir>', 'folder to write (laid out like the NSD bucket)')
    .option('--seed <n>', 'random seed', '1')
    .option('--subjects <list>', 'subjects to write, e.g. 1 or 1,2,5,7', '1')
    .option('--sessions <n>', 'sessions of betas written (1..n)', '3')
    .option('--design-sessions <n>', 'sessions in the design (NSD: 40)', '4')
    .option('--trials <n>', 'trials per session (NSD: 750)', '60')
    .option('--shared <n>', 'shared (test) images (NSD: 1000)', '10')
    .option('--grid <XxYxZ>', 'volume grid', '20x24x16')
    .option('--image-size <px>', 'stimulus size (NSD: 425)', '64')
    .option('--noise <sd>', 'trial noise SD in percent signal change', '0.7')
    .option('--formats <list>', "betas files: 'nifti', 'hdf5' or both", 'nifti,hdf5')
    .addHelpText(
      'after',
      `
Early-stream voxels respond to local image features (an 8×8×3 colour grid, standing in for an
image latent) at a receptive field that follows their position; ventral-stream voxels respond to
caption words. synth_truth.json records every planted voxel, its features and weights, and the
features of every image.`,
    )
    .action(async (flags: SynthFlags) => {
      await checkOutputPath('--out', flags.out, 'folder', 'the synthetic NSD tree', { replaced: true });
      const grid = flags.grid.split(/[x×,]/).map((g) => num(g, '--grid'));
      if (grid.length !== 3) throw new InvalidArgumentError(`--grid: expected XxYxZ, got '${flags.grid}'`);
      const formats = flags.formats.split(',').map((f) => f.trim());
      if (formats.some((f) => f !== 'nifti' && f !== 'hdf5')) throw new InvalidArgumentError(`--formats: expected nifti and/or hdf5, got '${flags.formats}'`);
      const options: SynthNsdOptions = {
        out: flags.out,
        seed: num(flags.seed, '--seed'),
        subjects: flags.subjects.split(',').map((s) => num(s, '--subjects')),
        sessions: num(flags.sessions, '--sessions'),
        designSessions: num(flags.designSessions, '--design-sessions'),
        trialsPerSession: num(flags.trials, '--trials'),
        sharedImages: num(flags.shared, '--shared'),
        grid: grid as Grid,
        imageSize: num(flags.imageSize, '--image-size'),
        noiseSd: num(flags.noise, '--noise', false),
        formats: formats as BetasFormat[],
      };
      // (checked here to name the flags; synthNsd checks the same again under the library's names)
      resolveSynthNsdOptions(options, FLAG_NAMES, '');
      const t0 = performance.now();
      // Ctrl-C (or SIGTERM) stops the writing at its next step and removes what it had written (the tree is built
      // under a temporary name): without it the process ended at once, leaving that folder beside --out
      const ac = stopOnSignals();
      const r = await synthNsd({ ...options, signal: ac.signal })
        .catch((e: unknown) => {
          if (e instanceof CancelledError && ac.signal.aborted) {
            throw new CancelledError(`synth nsd: interrupted (${ac.name()}) after ${seconds((performance.now() - t0) / 1000)}; nothing written to ${flags.out}`, { cause: ac.signal.reason });
          }
          throw e;
        })
        .finally(() => ac.dispose());
      console.log(
        `wrote a miniature NSD to ${r.root} in ${seconds((performance.now() - t0) / 1000)}: subjects ${r.subjects.join(',')}, ` +
          `${r.sessions} sessions × ${r.trialsPerSession} trials, ${r.imagesPerSubject} images per subject ` +
          `(${r.sharedImages} shared), ${r.stimuli} stimuli; ground truth in ${r.truthPath}`,
      );
    });
}
