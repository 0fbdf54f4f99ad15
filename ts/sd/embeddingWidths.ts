/**
 * Columns per image of z (VAE latents) and c (the text encoder's hidden states) as an SD 1.x folder will give them,
 * read from the folder's declarations without loading a model: what the preflights plan the ridge fits on them with.
 */
import { ClipTokenizer } from './clipTokenizer.js';
import { unetDeclaredSizes } from './onnxSignature.js';

/**
 * z: latent channels × (imageSize / 8)², the channels the U-Net declares (the latents feed it; SD 1.x's 4 where it
 * leaves them open). c: the tokenizer's length × the text width the U-Net (or the text encoder) declares; null when
 * neither declares it.
 */
export async function embeddingWidths(modelDir: string, imageSize: number): Promise<{ z: number; c: number | null }> {
  const side = imageSize / 8;
  let channels: number | null = null;
  let dim: number | null = null;
  try {
    const s = await unetDeclaredSizes(modelDir);
    channels = s.channels;
    dim = s.condDim;
  } catch {
    // no readable U-Net: SD 1.x's latent channels, and no text width known (the preflights name the missing file)
  }
  let tokens = 77;
  try {
    tokens = (await ClipTokenizer.fromFolder(modelDir)).maxLength;
  } catch {
    // no readable tokenizer: the preflights name it (captions, model parts); SD 1.x's 77
  }
  return { z: (channels ?? 4) * side * side, c: dim === null ? null : tokens * dim };
}
