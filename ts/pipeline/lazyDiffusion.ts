/** The reconstruction's diffusion model, loaded when a stage first asks for it. */
import { Diffusion } from '../sd/Diffusion.js';
import type { ReconstructConfig } from './config.js';

export interface LazyDiffusion {
  /** The model, loaded at the first call with the config's provider, library, threads and memory. */
  get(): Promise<Diffusion>;
  /** The model if a stage loaded it (a run whose sampling stages are all done never does). */
  loaded(): Diffusion | undefined;
  dispose(): void;
}

export function lazyDiffusion(model: ReconstructConfig['model']): LazyDiffusion {
  let sd: Diffusion | undefined;
  return {
    get: async () =>
      (sd ??= await Diffusion.load(model.dir, {
        provider: model.provider,
        ortLibrary: model.ortLibrary ?? undefined,
        intraOpThreads: model.threads || undefined,
        memory: model.memory,
      })),
    loaded: () => sd,
    dispose: () => sd?.dispose(),
  };
}
