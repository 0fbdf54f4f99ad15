// Compiled by the consumer check with `tsc --noEmit --strict` and no skipLibCheck: the public typings
// must hold up in a strict consumer project (NodeNext, ES2022), through all three entry points. Not run.
// (test/package/typings.test.ts compiles a smaller consumer under the other settings README names.)
import {
  BandedRidgeModel,
  buildInfo,
  CancelledError,
  DEFAULT_ALPHAS,
  Diffusion,
  RidgeCV,
  RidgeModel,
  reconstruct,
  runDemo,
  writeSdFixture,
  InvalidArgumentError,
  readMatrixNpy,
  readSafetensors,
  type BuildInfo,
  type DemoControl,
  type MatrixReadOptions,
  type NpyDType,
  type SafetensorsFile,
  type NativeRidgeInfo,
  type PredictOptions,
  type Matrix,
  type ReconstructConfigInput,
  type RidgeProgress,
  type RidgeProblem,
  type FitManyControl,
} from 'brainlatent';
import { brainlatentPlugin, startServer, type BrainlatentPluginOptions, type JobView, type PublicError, type RunningServer } from 'brainlatent/server';
import { BandedRidgeCV, RidgeCV as RidgeOnlyCV, type BandedRidgeModel as BandedOnly, type FeatureSpaces, type RidgeModel as RidgeOnlyModel } from 'brainlatent/ridge';

export async function fitAndPredict(x: Matrix, y: Matrix, signal?: AbortSignal): Promise<Matrix> {
  const progress: RidgeProgress[] = [];
  try {
    const model: RidgeModel = await new RidgeCV({ alphas: [...DEFAULT_ALPHAS], folds: 5 }).fit(x, y, {
      signal,
      onProgress: (p) => progress.push(p),
    });
    const best: Float32Array = model.bestAlphas;
    void best;
    return model.predict(x);
  } catch (e) {
    if (e instanceof CancelledError) return { data: new Float32Array(0), rows: 0, cols: y.cols };
    throw e;
  }
}

export async function fitMany(problems: RidgeProblem[], signal?: AbortSignal): Promise<number[]> {
  const control: FitManyControl = { concurrency: 2, signal, onProgress: (p) => void p.fraction };
  const models: RidgeModel[] = await RidgeCV.fitMany(problems, control);
  return models.map((m) => m.nTargets);
}

export async function sample(dir: string): Promise<number> {
  await writeSdFixture(dir);
  await using sd = await Diffusion.load(dir, { intraOpThreads: 1 });
  const c = await sd.encodeText(['a photo of the cat']);
  const z = await sd.encodeImages({ data: new Uint8Array(32 * 32 * 3), count: 1, height: 32, width: 32 });
  const r = await sd.img2img({ z, c, steps: 4, strength: 0.5, scheduler: 'ddim', seeds: 1 });
  return r.latents.data.length;
}

export async function pipeline(config: ReconstructConfigInput): Promise<void> {
  await reconstruct(config, { dryRun: true });
  const demo = await runDemo({ out: 'demo', testImages: 4, seeds: 1, steps: 2 });
  console.log(demo.run.metrics?.final.PixCorr);
}

export const engine: BuildInfo = buildInfo();

// Wrappers over the readers name their option and result types.
export async function readX(path: string, options: MatrixReadOptions = { finite: true }): Promise<{ x: Matrix; from: NpyDType }> {
  const { sourceDtype, ...x } = await readMatrixNpy(path, 'x', options);
  return { x, from: sourceDtype };
}
export async function tensorNames(path: string): Promise<string[]> {
  const file: SafetensorsFile = await readSafetensors(path);
  return Object.keys(file.tensors);
}
export const quietDemo = (signal: AbortSignal): DemoControl => ({ signal, onWorldProgress: (p) => void p.fraction });
export type Banded = BandedRidgeModel;

// An embedder's wrappers name the types the ridge models' methods take and give.
export async function predictFor(model: RidgeModel, x: Matrix, options: PredictOptions): Promise<Matrix> {
  return model.predictAsync(x, options);
}
export const peakBytes = (info: NativeRidgeInfo | undefined): number => info?.peakBytes ?? 0;

// The service (the plugin in an app of its own here: a pnpm consumer cannot import fastify without depending on it),
// and the types its jobs are read with.
export const plugin: typeof brainlatentPlugin = brainlatentPlugin;
export async function embed(root: string): Promise<string | undefined> {
  const options: BrainlatentPluginOptions = { root, token: 'consumer-token-0123456789abcdef', predict: { concurrency: 1 } };
  let server: RunningServer;
  try {
    server = await startServer({ ...options, port: 0 });
  } catch (e) {
    if (e instanceof InvalidArgumentError) return e.message;
    throw e;
  }
  const job = (await server.app.inject({ method: 'GET', url: '/v1/jobs', headers: { authorization: 'Bearer consumer-token-0123456789abcdef' } })).json() as { jobs: JobView[] };
  const error: PublicError | undefined = job.jobs[0]?.error;
  await server.close();
  return error?.message;
}

// A service that embeds only the ridge engine (brainlatent/ridge): its models are the main entry's types.
export async function fitRidgeOnly(x: Matrix, y: Matrix, spaces: FeatureSpaces): Promise<[RidgeModel, BandedRidgeModel]> {
  const ridge: RidgeOnlyModel = await new RidgeOnlyCV({ folds: 5 }).fit(x, y);
  const banded: BandedOnly = await new BandedRidgeCV({ nIter: 10 }).fit(spaces, y);
  return [ridge, banded];
}
