/** `brainlatent demo`: builds the seeded demo world and runs the whole pipeline on it (no download). */
import type { Command } from 'commander';

import { InvalidArgumentError } from '../../errors.js';
import { runDemo } from '../../demo/runDemo.js';
import { printResult, stageProgress } from './reconstruct.js';

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
    .action(async (f: { out: string; seed: string; imageSize?: string; testImages?: string; seeds?: string; steps?: string }) => {
      const t0 = performance.now();
      const r = await runDemo(
        {
          out: f.out,
          seed: int(f.seed, 'seed'),
          imageSize: int(f.imageSize, 'image-size'),
          testImages: int(f.testImages, 'test-images'),
          seeds: int(f.seeds, 'seeds'),
          steps: int(f.steps, 'steps'),
        },
        { onProgress: stageProgress() },
      );
      process.stderr.write(`world built in ${r.worldSeconds.toFixed(1)} s (${r.world.components} mixture components)\n`);
      printResult(r.run);
      process.stdout.write(`total ${((performance.now() - t0) / 1000).toFixed(1)} s; open ${r.run.out}/report.html\n`);
    });
}
