/** `brainlatent demo`: builds (or reuses) the seeded demo world and runs the whole pipeline on it (no download). */
import { join } from 'node:path';

import type { Command } from 'commander';

import type { FieldFlags } from '../../config/fieldNames.js';

import { runDemo, type DemoOptions } from '../../demo/runDemo.js';
import { onnxruntimeNodeInstalled } from '../../native/onnxruntimeNode.js';
import { onnxruntimeNodeInstallLine } from '../../optionalDependencies.js';
import { shellWord } from '../format.js';
import { checkOutputPath } from '../outputPath.js';
import { progressBar, type ProgressBar } from '../progress.js';
import { printResult, printWarnings, stageProgress } from './reconstruct.js';
import { checkDemoOptions, DEMO_DEFAULTS, DEMO_OUT_WHAT, DEMO_MAX_IMAGE_SIZE, DEMO_MIN_IMAGE_SIZE, DEMO_MIN_TRAIN_IMAGES } from '../../demo/options.js';
import { DECIMAL } from '../../ridge/alphas.js';
import { stopOnSignals } from '../stopSignals.js';

/**
 * A numeric flag as a number when it is written as one, else as typed: checkDemoOptions then reports every bad
 * flag at once, each with its range ('--seeds (seeds): expected an integer from 1 to 1000, got 0').
 */
const value = (v: string | undefined): unknown => (v === undefined ? undefined : DECIMAL.test(v.trim()) ? Number(v) : v);

interface Flags {
  out: string;
  seed: string;
  imageSize?: string;
  testImages?: string;
  seeds?: string;
  steps?: string;
  rule?: string;
  prior: string;
  force?: boolean;
  dryRun?: boolean;
}

/** The config fields the demo's flags set, for the run's messages (fieldNames.ts); the demo has no config file. */
const FIELD_FLAGS = [
  ['testImages', '--test-images', 'nsd.testImages'],
  ['seeds', '--seeds', 'img2img.seeds'],
  ['steps', '--steps', 'img2img.steps'],
  ['rule', '--rule', 'img2img.rule'],
] as const satisfies readonly (readonly [keyof Flags, string, string])[];

function demoFieldFlags(f: Flags): FieldFlags {
  return {
    flags: Object.fromEntries(FIELD_FLAGS.map(([, flag, field]) => [field, flag])),
    given: FIELD_FLAGS.filter(([key]) => f[key] !== undefined).map(([, , field]) => field),
  };
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('build a small seeded world (miniature NSD subject, closed-form SD-layout models) and reconstruct its test images end to end')
    .option('--out <dir>', 'folder for the world and the run', 'brainlatent-demo')
    .option('--seed <n>', 'world seed', '1')
    .option('--image-size <n>', `stimulus side in pixels: a multiple of 8 from ${DEMO_MIN_IMAGE_SIZE} to ${DEMO_MAX_IMAGE_SIZE} (default ${DEMO_DEFAULTS.imageSize})`)
    .option('--test-images <n>', `test images: at least 2, and ${DEMO_MIN_TRAIN_IMAGES} fewer than the subject's images at most (the rest train the decoders; default ${DEMO_DEFAULTS.testImages})`)
    .option('--seeds <n>', `samples per image (default ${DEMO_DEFAULTS.seeds})`)
    .option('--steps <n>', `DDIM steps (default ${DEMO_DEFAULTS.steps}). With the default --rule compvis fewer than about 8 steps give poor images: use --rule diffusers for few steps`)
    .option('--rule <rule>', "img2img noise rule, as reconstruct's: 'compvis' (the default: one DDIM step above the first step that runs, as CompVis and TN) or 'diffusers' (noise at the first step that runs; use it for few steps)")
    .option('--prior <kind>', "the diffusion model's data: 'world' (the scene catalogue: stimuli + unseen scenes) or 'training' (non-test stimuli only, the ablation)", 'world')
    .option('--force', 'rebuild the world and redo every stage, even when nothing changed')
    .option('--dry-run', 'build the world if none is current (reuse it otherwise, even with --force), then print the plan and an estimate of each stage from a short measured probe')
    .addHelpText(
      'after',
      `
The world: a miniature NSD subject (early voxels see the image, ventral voxels the caption words),
procedurally drawn scenes with captions, and an SD-layout model folder whose U-Net is the exact
denoiser of a text-weighted Gaussian mixture — run by the same pipeline as 'reconstruct' on real data.
Writes <out>/world/ and <out>/run/, and ends with 'total … s; open <out>/run/report.html'. A first run
builds the world, then runs the seven stages: 28 s on 2 idle cores (19 s of it the world), 47 s on 2
busy shared cores (28 s the world, 10 s img2img, 6 s evaluate), 78 s on a more loaded machine.

The world is reused when <out>/world/world.json records the same parameters and the same code
(brainlatent and ONNX Runtime versions, the package's modules); then the run resumes, so a second
'demo' with nothing changed only checks its outputs. Anything else rebuilds it.

Example:
  brainlatent demo --out demo --steps 10 --seeds 2 --dry-run   # the plan and an estimate of each stage

See docs/pipeline.md (the demo world, the stages, the report).`,
    )
    .action(async (f: Flags) => {
      const values = {
        out: f.out,
        seed: value(f.seed),
        imageSize: value(f.imageSize),
        testImages: value(f.testImages),
        seeds: value(f.seeds),
        steps: value(f.steps),
        rule: f.rule,
        prior: f.prior,
      };
      checkDemoOptions(values); // every bad flag at once, before anything is built or written
      const options = values as DemoOptions;
      await checkOutputPath('--out', f.out, 'folder', DEMO_OUT_WHAT);
      const t0 = performance.now();
      let worldBar: ProgressBar | null = null;
      // Ctrl-C or SIGTERM stops the world build or the run at its next step, with nothing half-written left behind
      const ac = stopOnSignals();
      const r = await runDemo(
        options,
        {
          signal: ac.signal,
          force: f.force,
          dryRun: f.dryRun,
          onWorldProgress: (p) => {
            if (p.phase === 'reused') return;
            worldBar ??= progressBar('world');
            worldBar.update(p.fraction, p.phase, p.count);
          },
          onProgress: f.dryRun ? undefined : stageProgress(),
          onWarning: printWarnings,
          // (the run's messages name these fields by the demo's flags: "use --rule diffusers", not img2img.rule)
          fieldFlags: demoFieldFlags(f),
        },
      ).finally(() => ac.dispose());
      (worldBar as ProgressBar | null)?.done();
      process.stderr.write(
        r.world.reused
          ? `world reused (${r.world.components} mixture components, ${r.world.prior} prior; unchanged parameters and code)` +
              (f.dryRun && f.force ? '; the run (--force) would rebuild it first, which a dry run does not\n' : '\n')
          : `world built in ${r.worldSeconds.toFixed(1)} s (${r.world.components} mixture components, ${r.world.prior} prior)\n`,
      );
      if (!onnxruntimeNodeInstalled()) {
        process.stderr.write(`feature-network identification skipped: it needs onnxruntime-node (${onnxruntimeNodeInstallLine()})\n`);
      }
      printResult(r.run);
      if (!f.dryRun) process.stdout.write(`total ${((performance.now() - t0) / 1000).toFixed(1)} s; open ${shellWord(join(r.run.out, 'report.html'))}\n`);
    });
}
