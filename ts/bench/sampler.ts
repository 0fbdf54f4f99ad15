/**
 * bench:sampler — the fused native img2img loop on generated models of two sizes (a tiny U-Net
 * where per-step overhead shows, and a larger one of a few hundred MFLOPs per call): steps per
 * second, the overhead ratio (loop wall time ÷ sum of U-Net run times) and the speed-up over the
 * TypeScript loop on onnxruntime-node, in the same run; one fused step and one scheduler plan are
 * timed with benchmark.js. Prints a table and appends JSON to bench/results/sampler.jsonl.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';

import { onnxruntimeNode } from '../native/onnxruntimeNode.js';

import { Diffusion, type SchedulerName } from '../sd/Diffusion.js';
import type { Img2ImgStats, SamplerPlanInfo } from '../native/samplerTypes.js';
import { writeSdFixture } from '../sd/fixture.js';
import { nativeSync } from '../native/call.js';
import { referenceImg2Img } from '../sd/referenceLoop.js';
import { checkSchedulerName } from '../sd/samplingOptions.js';
import type { Tensor } from '../sd/tensor.js';
import { appendBenchRecord } from './benchRecord.js';
import { microBench } from './microBench.js';
import { loopTableLines, microTableLines, type LoopRow } from './samplerConsole.js';

interface ModelSize {
  name: string;
  unetChannels: number;
  unetLayers: number;
  latent: number;
  steps: number;
}

const SIZES: ModelSize[] = [
  { name: 'tiny', unetChannels: 8, unetLayers: 1, latent: 8, steps: 50 },
  { name: 'large', unetChannels: 64, unetLayers: 3, latent: 32, steps: 20 },
];

function unetMflopsPerCall(s: ModelSize, rows: number): number {
  const px = s.latent * s.latent;
  const C = s.unetChannels;
  return (rows * 2 * 9 * px * (4 * C + s.unetLayers * C * C + C * 4)) / 1e6;
}

/**
 * What one run of a plan counts: its denoising steps (the plan's, from its first) and the U-Net calls the engine made,
 * which are more than the steps for PNDM's warm-up and Heun's two calls a step (the "steps" of this bench were the
 * calls). The calls must be the plan's runs (unetEvaluationsPerImage without guidance's second row): a count of
 * another unit is refused rather than printed.
 */
export function loopCounts(plan: SamplerPlanInfo, stats: Pick<Img2ImgStats, 'unetCalls' | 'batches'>): { steps: number; unetCalls: number } {
  const unetCalls = stats.unetCalls / stats.batches;
  if (unetCalls !== plan.runs.length) {
    throw new Error(`bench sampler: the engine made ${unetCalls} U-Net calls a batch where the ${plan.scheduler} plan runs ${plan.runs.length}`);
  }
  return { steps: plan.steps - plan.tStart, unetCalls };
}

const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

export async function runSamplerBench(options: { threads?: number; repeats?: number; scheduler?: SchedulerName } = {}): Promise<unknown> {
  const threads = options.threads ?? 1;
  const repeats = options.repeats ?? 3;
  const scheduler = options.scheduler ?? 'ddim';
  const guidance = 5;
  const tmp = await mkdtemp(join(os.tmpdir(), 'brainlatent-bench-'));
  const results: LoopRow[] = [];
  try {
    for (const size of SIZES) {
      const dir = join(tmp, size.name);
      await writeSdFixture(dir, { unetChannels: size.unetChannels, unetLayers: size.unetLayers, textDim: 64 });
      const sd = await Diffusion.load(dir, { intraOpThreads: threads, interOpThreads: 1, components: ['text_encoder', 'unet'] });
      const ort = await onnxruntimeNode('the TypeScript loop of the sampler bench');
      const unet = await ort.InferenceSession.create(join(dir, 'unet', 'model.onnx'), { intraOpNumThreads: threads, interOpNumThreads: 1 });
      const n = 4 * size.latent * size.latent;
      const z: Tensor = { data: new Float32Array(n).map((_, i) => Math.sin(i)), shape: [1, 4, size.latent, size.latent] };
      const c = await sd.encodeText(['a photo of the cat']);
      const uncond = await sd.encodeText(['']);
      const job = { z, c, uncond, steps: size.steps, strength: 1, guidance, scheduler, seeds: 1 };
      // warm-up both paths
      await sd.img2img({ ...job, steps: 5 });
      await referenceImg2Img(unet, { ...job, steps: 5 });
      const native: { wall: number; loop: number; unet: number; update: number; unetCalls: number; batches: number }[] = [];
      const ts: { wall: number; unet: number }[] = [];
      for (let r = 0; r < repeats; r++) {
        const t0 = performance.now();
        const out = await sd.img2img(job);
        native.push({
          wall: (performance.now() - t0) / 1000,
          loop: out.stats.loopSeconds,
          unet: out.stats.unetSeconds,
          update: out.stats.updateSeconds,
          unetCalls: out.stats.unetCalls,
          batches: out.stats.batches,
        });
        const timings = { unetSeconds: 0, loopSeconds: 0 };
        const t1 = performance.now();
        await referenceImg2Img(unet, { ...job, timings });
        ts.push({ wall: (performance.now() - t1) / 1000, unet: timings.unetSeconds });
      }
      const { steps, unetCalls } = loopCounts(sd.plan(job), native[0]);
      const nWall = median(native.map((x) => x.wall));
      const tWall = median(ts.map((x) => x.wall));
      const row = {
        model: size.name,
        latent: `${size.latent}×${size.latent}`,
        unetMflopsPerCall: Number(unetMflopsPerCall(size, 2).toFixed(2)),
        nativeUpdateSeconds: median(native.map((x) => x.update)),
        steps,
        unetCalls,
        scheduler,
        guidance,
        threads,
        nativeStepsPerSec: steps / nWall,
        nativeCallsPerSec: unetCalls / nWall,
        nativeLoopSeconds: median(native.map((x) => x.loop)),
        nativeWallSeconds: nWall,
        overheadRatio: median(native.map((x) => x.loop / x.unet)),
        tsStepsPerSec: steps / tWall,
        tsWallSeconds: tWall,
        tsOverheadRatio: median(ts.map((x) => x.wall / x.unet)),
        speedupOverTs: tWall / nWall,
      };
      results.push(row);
      sd.dispose();
      await unet.release();
    }
    const b = nativeSync((n) => n);
    const probe = b.sdFusedStepProbe(4 * 64 * 64, 1, 2, 'ddim');
    const dpm = b.sdFusedStepProbe(4 * 64 * 64, 1, 2, 'dpmpp2m');
    const lms = b.sdFusedStepProbe(4 * 64 * 64, 1, 2, 'lms');
    const unipc = b.sdFusedStepProbe(4 * 64 * 64, 1, 2, 'unipc');
    // The fused step (a compiled step program) against the hand-specialised per-scheduler loop it
    // replaced, on the same buffers, interleaved in this run: the ratio is what "not slower" means.
    const micro = [
      await microBench('fused step ddim, 1 image 4×64×64, guidance', () => probe.step(), 2),
      await microBench('hand-specialised loop ddim (reference), same buffers', () => probe.reference!(), 2),
      await microBench('fused step dpmpp2m, 1 image 4×64×64, guidance', () => dpm.step(), 2),
      await microBench('hand-specialised loop dpmpp2m (reference), same buffers', () => dpm.reference!(), 2),
      await microBench('fused step lms (order 4), 1 image 4×64×64, guidance', () => lms.step(), 2),
      await microBench('fused step unipc, 1 image 4×64×64, guidance', () => unipc.step(), 2),
      await microBench('scheduler plan ddim 50 steps', () => probe.update(), 2),
    ];
    // The ratio from interleaved rounds, each the best per-call time of a burst: a preempted burst
    // (other work on the machine) never wins, and both sides see the same stretch of load.
    const bestMicros = (fn: () => void): number => {
      let best = Infinity;
      for (let burst = 0; burst < 30; burst++) {
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < 50; i++) fn();
        best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e3 / 50);
      }
      return best;
    };
    const interleaved = (a: () => void, r: () => void) => {
      let fa = Infinity, fr = Infinity;
      for (let round = 0; round < 4; round++) {
        fa = Math.min(fa, bestMicros(a));
        fr = Math.min(fr, bestMicros(r));
      }
      return { fusedMicros: fa, referenceMicros: fr, ratio: fa / fr };
    };
    const stepVsReference = { ddim: interleaved(() => probe.step(), () => probe.reference!()), dpmpp2m: interleaved(() => dpm.step(), () => dpm.reference!()) };
    const figures = { loops: results, micro, stepVsReference, ortVersion: b.ortLoad('').version };
    for (const line of [...loopTableLines({ scheduler, guidance, threads, repeats }, results), '', ...microTableLines(micro)]) console.log(line);
    console.log(
      `fused step ÷ hand-specialised loop (same run, interleaved, best burst): ddim ${stepVsReference.ddim.ratio.toFixed(2)} ` +
        `(${stepVsReference.ddim.fusedMicros.toFixed(2)} vs ${stepVsReference.ddim.referenceMicros.toFixed(2)} µs), dpmpp2m ${stepVsReference.dpmpp2m.ratio.toFixed(2)} ` +
        `(${stepVsReference.dpmpp2m.fusedMicros.toFixed(2)} vs ${stepVsReference.dpmpp2m.referenceMicros.toFixed(2)} µs)`,
    );
    const file = appendBenchRecord('sampler', figures);
    console.log(`appended to ${file}`);
    return figures;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

const invoked = process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').slice(-2).join('/'));
if (invoked) {
  const threads = process.env.BENCH_THREADS ? Number(process.env.BENCH_THREADS) : undefined;
  const scheduler = process.env.BENCH_SCHEDULER ? checkSchedulerName(process.env.BENCH_SCHEDULER, 'BENCH_SCHEDULER') : undefined;
  runSamplerBench({ threads, scheduler }).catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
