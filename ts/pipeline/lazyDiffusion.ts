/** The reconstruction's diffusion model, loaded when a stage first asks for it. */
import { noteEngineOrt } from '../native/ortUse.js';
import { Diffusion, type DiffusionLoadOptions } from '../sd/Diffusion.js';
import type { ReconstructConfig } from './config.js';

export interface LazyDiffusion {
  /**
   * The model, loaded at the first call with the config's provider, library, threads, memory and scheduler; each call
   * records its ONNX Runtime as used by the work that asked (ts/native/ortUse.ts).
   */
  get(): Promise<Diffusion>;
  dispose(): void;
}

/**
 * Diffusion.load's options for a reconstruction (the run's stages and the dry run's probes load alike). The config's
 * img2img.scheduler is the load's scheduler too: it is what every sampler call runs, so the folder's
 * scheduler_config.json `_class_name` is never used, and a folder whose class the engine does not know loads.
 */
export function diffusionLoadOptions(c: Pick<ReconstructConfig, 'model' | 'img2img'>): DiffusionLoadOptions {
  return {
    provider: c.model.provider,
    ortLibrary: c.model.ortLibrary ?? undefined,
    intraOpThreads: c.model.threads || undefined,
    memory: c.model.memory,
    scheduler: c.img2img.scheduler,
  };
}

export function lazyDiffusion(c: Pick<ReconstructConfig, 'model' | 'img2img'>): LazyDiffusion {
  let sd: Diffusion | undefined;
  return {
    get: async () => {
      sd ??= await Diffusion.load(c.model.dir, diffusionLoadOptions(c));
      // (each stage that asks for the model ran it, not only the one that loaded it: the record of what ran it)
      noteEngineOrt(sd.runtime);
      return sd;
    },
    dispose: () => sd?.dispose(),
  };
}
