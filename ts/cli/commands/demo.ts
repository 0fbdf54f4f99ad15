/** `brainlatent demo`: builds the seeded demo world and runs the whole pipeline on it (no download). */
import type { Command } from 'commander';

import { InvalidArgumentError } from '../../errors.js';
import { runDemo } from '../../demo/runDemo.js';
import { printResult, stageProgress } from './reconstruct.js';
import { onnxruntimeNodeInstalled } from '../../native/onnxruntimeNode.js';

const int = (v: string | undefined, name: string): number | undefined => {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isInteger(x) || x < 1) throw new InvalidArgumentError(`--${name} must be a positive integer, got '${v}'`);
  return x;
};

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('build a small seeded world (miniature NSD subject, closed-form SD-layout models) and reconstruct its test images end to end')
    .option('--out <dir>', 'folder for the world and the run', 'brainlatent-demo')
    .option('--seed <n>', 'world seed', '1')
    .option('--image-size <n>', 'stimulus side in pixels (multiple of 8)')
    .option('--test-images <n>', 'test images')
    .option('--seeds <n>', 'samples per image')
    .option('--steps <n>', 'DDIM steps')
    .option('--prior <kind>', "the diffusion model's data: 'world' (the scene catalogue: stimuli + unseen scenes) or 'training' (non-test stimuli only, the ablation)", 'world')
    .addHelpText(
      'after',
      `
The world: a miniature NSD subject (early voxels see the image, ventral voxels the caption words),
procedurally drawn scenes with captions, and an SD-layout model folder whose U-Net is the exact
denoiser of a text-weighted Gaussian mixture — run by the same pipeline as 'reconstruct' on real data.
Writes <out>/world/ and <out>/run/ (open <out>/run/report.html). About 25 s on 2 cores.`,
    )
    .action(async (f: { out: string; seed: string; imageSize?: string; testImages?: string; seeds?: string; steps?: string; prior: string }) => {
      if (f.prior !== 'world' && f.prior !== 'training') throw new InvalidArgumentError(`--prior must be 'world' or 'training', got '${f.prior}'`);
      const t0 = performance.now();
      const r = await runDemo(
        {
          out: f.out,
          seed: int(f.seed, 'seed'),
          imageSize: int(f.imageSize, 'image-size'),
          testImages: int(f.testImages, 'test-images'),
          seeds: int(f.seeds, 'seeds'),
          steps: int(f.steps, 'steps'),
          prior: f.prior,
        },
        { onProgress: stageProgress() },
      );
      if (!onnxruntimeNodeInstalled()) {
        process.stderr.write('feature-network identification skipped: it needs onnxruntime-node (npm install onnxruntime-node@1.30.0)\n');
      }
      process.stderr.write(`world built in ${r.worldSeconds.toFixed(1)} s (${r.world.components} mixture components, ${r.world.prior} prior)\n`);
      printResult(r.run);
      process.stdout.write(`total ${((performance.now() - t0) / 1000).toFixed(1)} s; open ${r.run.out}/report.html\n`);
    });
}
