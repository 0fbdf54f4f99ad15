/**
 * `bench samplers --arch sd1`: the fused loop on SD 1.x's real U-Net graph (859.5M random parameters,
 * `sd fixture --arch sd1`, built once into a cache): time per U-Net call at 64×64 latents with guidance,
 * the loop's overhead ratio at that size, and peak memory against the weights' size for ONNX Runtime's
 * default memory behaviour and the lean one, at batch 1 and 4. Each configuration runs in its own child
 * process, so each peak RSS is that configuration's alone.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Diffusion } from '../sd/Diffusion.js';
import { writeSd1Fixture } from '../sd/sd1Fixture.js';
import { appendBenchRecord } from './benchRecord.js';

export interface Sd1Run {
  memory: 'default' | 'lean';
  batch: number;
  steps: number;
  secondsPerUnetCall: number;
  overhead: number;
  loadSeconds: number;
  peakRssGiB: number;
  peakOverWeights: number;
}

/** One configuration, in this process (the child's entry point). */
export async function sd1Child(dir: string, memory: 'default' | 'lean', batch: number, steps: number, threads: number): Promise<Omit<Sd1Run, 'peakOverWeights'>> {
  const t0 = performance.now();
  const sd = await Diffusion.load(dir, { components: ['unet'], memory, intraOpThreads: threads });
  const loadSeconds = (performance.now() - t0) / 1000;
  try {
    const n = batch * 4 * 64 * 64;
    const z = { data: new Float32Array(n).map((_, i) => Math.sin(i * 0.37)), shape: [batch, 4, 64, 64] };
    const cn = 77 * 768;
    const c = { data: new Float32Array(batch * cn).map((_, i) => Math.cos(i * 0.013) * 0.5), shape: [batch, 77, 768] };
    const uncond = { data: new Float32Array(cn).map((_, i) => Math.sin(i * 0.007) * 0.5), shape: [1, 77, 768] };
    const r = await sd.img2img({ z, c, uncond, guidance: 7.5, scheduler: 'ddim', steps, strength: 1, batchSize: batch });
    return {
      memory,
      batch,
      steps,
      secondsPerUnetCall: r.stats.unetSeconds / r.stats.unetCalls,
      overhead: r.stats.loopSeconds / r.stats.unetSeconds,
      loadSeconds,
      peakRssGiB: process.resourceUsage().maxRSS / 2 ** 20,
    };
  } finally {
    sd.dispose();
  }
}

export async function runSd1Bench(o: { cacheDir?: string; batches?: number[]; modes?: ('default' | 'lean')[]; steps?: number; threads?: number; log?: (l: string) => void } = {}): Promise<Sd1Run[]> {
  const log = o.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const dir = resolve(o.cacheDir ?? join(os.homedir(), '.cache', 'brainlatent', 'sd1-fixture'));
  if (!existsSync(join(dir, 'unet', 'model.onnx'))) {
    log(`writing the SD 1.x fixture (3.4 GB) into ${dir} once…`);
    await writeSd1Fixture(dir);
  }
  const weights = statSync(join(dir, 'unet', 'weights.pb')).size;
  const runs: Sd1Run[] = [];
  const here = fileURLToPath(import.meta.url);
  for (const memory of o.modes ?? ['lean', 'default']) {
    for (const batch of o.batches ?? [1, 4]) {
      log(`sd1: memory ${memory}, batch ${batch}: load average ${os.loadavg().map((v) => v.toFixed(1)).join(' ')}, free ${(os.freemem() / 2 ** 30).toFixed(1)} GiB`);
      const r = spawnSync(process.execPath, [here, dir, memory, String(batch), String(o.steps ?? 2), String(o.threads ?? 0)], { encoding: 'utf8', maxBuffer: 1 << 24 });
      if (r.status !== 0) {
        log(`  failed (exit ${r.status ?? r.signal}): ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
        continue;
      }
      const run = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as Omit<Sd1Run, 'peakOverWeights'>;
      const full: Sd1Run = { ...run, peakOverWeights: (run.peakRssGiB * 2 ** 30) / weights };
      runs.push(full);
      log(
        `  ${full.secondsPerUnetCall.toFixed(1)} s per U-Net call (${2 * batch} rows with guidance), overhead ×${full.overhead.toFixed(4)}, ` +
          `load ${full.loadSeconds.toFixed(1)} s, peak RSS ${full.peakRssGiB.toFixed(2)} GiB = ${full.peakOverWeights.toFixed(2)}× the weights`,
      );
    }
  }
  appendBenchRecord('samplers-sd1', { weightsBytes: weights, runs });
  return runs;
}

// child process entry: node samplersSd1.js DIR MEMORY BATCH STEPS THREADS
if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.length >= 6) {
  const [dir, memory, batch, steps, threads] = process.argv.slice(2);
  sd1Child(dir, memory as 'default' | 'lean', Number(batch), Number(steps), Number(threads)).then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
    (e: unknown) => {
      process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
      process.exit(1);
    },
  );
}
