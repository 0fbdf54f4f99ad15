/**
 * bench:sampler — the fused native img2img loop on generated models of two sizes (a tiny U-Net
 * where per-step overhead shows, and a larger one of a few hundred MFLOPs per call): steps per
 * second, the loop's overhead (engine loop time ÷ summed U-Net time) and the call's (wall time ÷
 * the same, the TypeScript loop's definition), and the speed-up over the TypeScript loop on
 * onnxruntime-node, the two loops alternated round by round (samplerTiming's rule: ≥ 5 runs and
 * ≥ 0.2 s each) and every figure a median with its interquartile range; one fused step and one
 * scheduler plan are timed with benchmark.js. Prints a table and appends JSON to
 * bench/results/sampler.jsonl.
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
import { spinningFromEnv } from '../sd/spinningEnv.js';
import type { Tensor } from '../sd/tensor.js';
import { appendBenchRecord } from './benchRecord.js';
import { microBench } from './microBench.js';
import { loopTableLines, microTableLines, type SamplerSetup } from './samplerConsole.js';
import { loopFigures, type LoopFigures, type NativeRun, type TsRun } from './samplerLoopFigures.js';
import { timeInterleaved, TIMING_RULE, type RepeatRule } from './samplerTiming.js';

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

/** Untimed full runs of each loop first: ONNX Runtime's first runs allocate and plan, and the JIT warms the TS loop. */
const WARMUP_RUNS = 2;

export async function runSamplerBench(options: { threads?: number; scheduler?: SchedulerName; rule?: RepeatRule } = {}): Promise<unknown> {
  const setup: SamplerSetup = {
    scheduler: options.scheduler ?? 'ddim',
    guidance: 5,
    strength: 1,
    seed: 1,
    imagesPerRun: 1,
    batchSize: 1,
    threads: options.threads ?? 1,
    // (resolved here and given to load, so the record says what ran: unset, ONNX Runtime's default is on)
    spinning: spinningFromEnv() ?? true,
    warmupRuns: WARMUP_RUNS,
    rule: options.rule ?? TIMING_RULE,
  };
  const { scheduler, guidance, threads } = setup;
  const tmp = await mkdtemp(join(os.tmpdir(), 'brainlatent-bench-'));
  const results: (LoopFigures & { scheduler: string; guidance: number; threads: number })[] = [];
  try {
    for (const size of SIZES) {
      const dir = join(tmp, size.name);
      await writeSdFixture(dir, { unetChannels: size.unetChannels, unetLayers: size.unetLayers, textDim: 64 });
      const sd = await Diffusion.load(dir, { intraOpThreads: threads, interOpThreads: 1, spinning: setup.spinning, components: ['text_encoder', 'unet'] });
      const ort = await onnxruntimeNode('the TypeScript loop of the sampler bench');
      const unet = await ort.InferenceSession.create(join(dir, 'unet', 'model.onnx'), { intraOpNumThreads: threads, interOpNumThreads: 1 });
      const n = 4 * size.latent * size.latent;
      const z: Tensor = { data: new Float32Array(n).map((_, i) => Math.sin(i)), shape: [setup.imagesPerRun, 4, size.latent, size.latent] };
      const c = await sd.encodeText(['a photo of the cat']);
      const uncond = await sd.encodeText(['']);
      const job = { z, c, uncond, steps: size.steps, strength: setup.strength, guidance, scheduler, seeds: setup.seed, batchSize: setup.batchSize };
      const runNative = async (): Promise<NativeRun> => {
        const t0 = performance.now();
        const { stats } = await sd.img2img(job);
        return { seconds: (performance.now() - t0) / 1000, loopSeconds: stats.loopSeconds, unetSeconds: stats.unetSeconds, updateSeconds: stats.updateSeconds };
      };
      const runTs = async (): Promise<TsRun> => {
        const timings = { unetSeconds: 0, loopSeconds: 0 };
        const t0 = performance.now();
        await referenceImg2Img(unet, { ...job, timings });
        return { seconds: (performance.now() - t0) / 1000, unetSeconds: timings.unetSeconds };
      };
      let counts = { steps: 0, unetCalls: 0 };
      for (let w = 0; w < WARMUP_RUNS; w++) {
        counts = loopCounts(sd.plan(job), (await sd.img2img(job)).stats);
        await runTs();
      }
      // In lockstep: both loops run in every round (which goes first alternates), so run i of each saw the same
      // stretch of the machine's load and their ratio pairs up.
      const runs = await timeInterleaved<'native' | 'ts', NativeRun | TsRun>(['native', 'ts'], (k) => (k === 'native' ? runNative() : runTs()), setup.rule, true);
      const shape = { model: size.name, latent: `${size.latent}×${size.latent}`, unetMflopsPerCall: Number(unetMflopsPerCall(size, 2).toFixed(2)), ...counts };
      results.push({ ...loopFigures(shape, runs.get('native') as NativeRun[], runs.get('ts') as TsRun[]), scheduler, guidance, threads });
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
    // `ratio` is best ÷ best over the rounds (as in the earlier records); `roundRatios`, each round's own, say how far
    // it moves within one run.
    const interleaved = (a: () => void, r: () => void) => {
      let fa = Infinity, fr = Infinity;
      const roundRatios: number[] = [];
      for (let round = 0; round < 4; round++) {
        const ra = bestMicros(a);
        const rr = bestMicros(r);
        roundRatios.push(ra / rr);
        fa = Math.min(fa, ra);
        fr = Math.min(fr, rr);
      }
      return { fusedMicros: fa, referenceMicros: fr, ratio: fa / fr, roundRatios };
    };
    const stepVsReference = { ddim: interleaved(() => probe.step(), () => probe.reference!()), dpmpp2m: interleaved(() => dpm.step(), () => dpm.reference!()) };
    const figures = { setup, loops: results, micro, stepVsReference, ortVersion: b.ortLoad('').version };
    for (const line of [...loopTableLines(setup, results), '', ...microTableLines(micro)]) console.log(line);
    const vs = (x: (typeof stepVsReference)['ddim']) =>
      `${x.ratio.toFixed(2)} (${x.fusedMicros.toFixed(2)} vs ${x.referenceMicros.toFixed(2)} µs; rounds ${Math.min(...x.roundRatios).toFixed(2)}–${Math.max(...x.roundRatios).toFixed(2)})`;
    console.log(`fused step ÷ hand-specialised loop (same run, 4 interleaved rounds, best burst): ddim ${vs(stepVsReference.ddim)}, dpmpp2m ${vs(stepVsReference.dpmpp2m)}`);
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
