/**
 * The smallest model folder `bench samplers` treats as a demo world: the sd test fixture (text encoder, VAE,
 * tokenizer, SD 1.5's scheduler config) with its U-Net replaced by the exact denoiser of a small Gaussian mixture
 * (mixtureUnetModel, as the demo world writes it) on 4×2×2 latents. The bench then computes its exact ODE,
 * common noise level and distribution scores in seconds.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { mixtureUnetModel } from '../../ts/demo/models.js';
import { sdAlphasCumprod } from '../../ts/demo/world.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';

/** Components, latent shape and component SD of the tiny mixture (text dimension: the fixture's 32). */
export const TINY_MIXTURE = { components: 6, latentShape: [4, 2, 2] as [number, number, number], componentSd: 0.05, textDim: 32 };

export async function writeTinyMixtureModel(dir: string): Promise<void> {
  await writeSdFixture(dir, { textDim: TINY_MIXTURE.textDim });
  const { components: K, latentShape, textDim } = TINY_MIXTURE;
  const d = latentShape.reduce((a, b) => a * b, 1);
  await writeFile(
    join(dir, 'unet', 'model.onnx'),
    mixtureUnetModel({
      means: Float32Array.from({ length: K * d }, (_, i) => Math.sin(i * 1.3) * 0.8),
      components: K,
      latentShape,
      text: Float32Array.from({ length: K * textDim }, (_, i) => Math.cos(i * 0.7)),
      textDim,
      componentSd: TINY_MIXTURE.componentSd,
      beta: 0,
      alphasCumprod: sdAlphasCumprod(),
    }),
  );
}
