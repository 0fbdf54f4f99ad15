/**
 * Writes the tiny SD model folders once (build/sd-fixtures/<variant>), safely across parallel test files,
 * and loads the one the sampler tests share.
 */
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import * as ort from 'onnxruntime-node';

import { Diffusion } from '../../ts/sd/Diffusion.js';
import { SD_FIXTURE_VARIANTS, writeSdFixture } from '../../ts/sd/fixture.js';
import { onnx } from '../helpers/onnx.js';
import type { RgbImages, Tensor } from '../../ts/sd/tensor.js';

export const FIXTURE_ROOT = resolve(process.env.BRAINLATENT_SD_FIXTURES ?? join(import.meta.dirname, '..', '..', 'build', 'sd-fixtures'));

export async function ensureFixtures(): Promise<string> {
  for (const [name, options] of Object.entries(SD_FIXTURE_VARIANTS)) {
    const dest = join(FIXTURE_ROOT, name);
    if (existsSync(join(dest, 'model_index.json'))) continue;
    const tmp = await mkdtemp(join(FIXTURE_ROOT, `.tmp-${name}-`).replace(/\/\.tmp/, '/.tmp')).catch(async () => {
      const { mkdir } = await import('node:fs/promises');
      await mkdir(FIXTURE_ROOT, { recursive: true });
      return mkdtemp(join(FIXTURE_ROOT, `.tmp-${name}-`));
    });
    await writeSdFixture(tmp, options);
    try {
      await rename(tmp, dest);
    } catch {
      await rm(tmp, { recursive: true, force: true }); // another test file won the race
    }
  }
  return FIXTURE_ROOT;
}

/** count images h × w of a fixed pattern (every byte value, no flat regions). */
export function patternImages(count: number, h: number, w: number): RgbImages {
  const data = new Uint8Array(count * h * w * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + ((i / 97) | 0) * 11) % 256;
  return { data, count, height: h, width: w };
}

/**
 * The optimum-1.24 fixture loaded twice — the engine's pipeline and onnxruntime-node's U-Net (the
 * reference loops run on it) — with the latents of three pattern images (64 × 48), the embeddings of
 * three prompts and of the empty prompt.
 */
export interface TinySd {
  root: string;
  sd: Diffusion;
  unet: ort.InferenceSession;
  z: Tensor;
  c: Tensor;
  uncond: Tensor;
}

export async function loadTinySd(): Promise<TinySd> {
  const root = await ensureFixtures();
  const sd = await Diffusion.load(join(root, 'optimum-1.24'), { intraOpThreads: 1 });
  const unet = await ort.InferenceSession.create(join(root, 'optimum-1.24', 'unet', 'model.onnx'), { intraOpNumThreads: 1 });
  const z = await sd.encodeImages(patternImages(3, 64, 48));
  const c = await sd.encodeText(['hello cat', 'a photo of the dog', 'an image of the brain']);
  const uncond = await sd.encodeText(['']);
  return { root, sd, unet, z, c, uncond };
}

export async function disposeTinySd(t: TinySd | undefined): Promise<void> {
  t?.sd.dispose();
  await t?.unet.release();
}

/**
 * A copy at `dest` of the fixture folder `src` whose U-Net declares fixed latent sides and sequence length (as the
 * demo world's U-Net, exported at one size), where the fixture's leave them open: ORT then runs it at those only.
 */
export async function fixedSizeUnetCopy(src: string, dest: string, fixed: { side: number; sequence: number }): Promise<string> {
  await rm(dest, { recursive: true, force: true });
  await cp(src, dest, { recursive: true });
  const path = join(dest, 'unet', 'model.onnx');
  const m = onnx.ModelProto.decode(await readFile(path));
  for (const v of [...(m.graph?.input ?? []), ...(m.graph?.output ?? [])]) {
    const dims = v.type?.tensorType?.shape?.dim ?? [];
    if (v.name === 'sample' || v.name === 'out_sample') dims.splice(2, 2, { dimValue: fixed.side }, { dimValue: fixed.side });
    if (v.name === 'encoder_hidden_states') dims.splice(1, 1, { dimValue: fixed.sequence });
  }
  await writeFile(path, onnx.ModelProto.encode(m).finish());
  return dest;
}

/**
 * A copy at `dest` of the fixture folder `src` whose VAE declares fixed sizes (as a VAE exported at one image size):
 * the decoder's latent_sample [batch, 4, side, side] and the encoder's sample [batch, 3, 8·side, 8·side], with their
 * outputs, where the fixture's leave them open.
 */
export async function fixedSizeVaeCopy(src: string, dest: string, side: number): Promise<string> {
  await rm(dest, { recursive: true, force: true });
  await cp(src, dest, { recursive: true });
  const sides: Record<string, Record<string, number>> = {
    vae_decoder: { latent_sample: side, sample: 8 * side },
    vae_encoder: { sample: 8 * side, latent_parameters: side, latent_sample: side },
  };
  for (const [part, io] of Object.entries(sides)) {
    const path = join(dest, part, 'model.onnx');
    const m = onnx.ModelProto.decode(await readFile(path));
    for (const v of [...(m.graph?.input ?? []), ...(m.graph?.output ?? [])]) {
      const n = io[v.name ?? ''];
      if (n !== undefined) v.type?.tensorType?.shape?.dim?.splice(2, 2, { dimValue: n }, { dimValue: n });
    }
    await writeFile(path, onnx.ModelProto.encode(m).finish());
  }
  return dest;
}
