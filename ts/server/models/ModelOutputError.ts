/**
 * A loaded model that answered finite inputs with NaN or ±Inf (a U-Net or VAE that diverges, a ridge model whose
 * predictions overflow float32): a fault of the service's model, not of the request, so it is answered 500 and
 * counted, naming the model and the output. The message is built here from names and indices only, so it never
 * carries a path or anything read from a file; the engine's own message goes to the server's log.
 */
import { BrainlatentError } from '../../errors.js';

/** Which output of a model was not finite. */
export type ModelOutput = 'predictions' | 'unet' | 'vae_decoder' | 'text_encoder';

const WHAT: Record<ModelOutput, string> = {
  predictions: 'its predictions',
  unet: 'its U-Net (the denoised latents)',
  vae_decoder: 'its VAE decoder (the images)',
  text_encoder: "its text encoder (the unconditional embedding of '')",
};

export class ModelOutputError extends BrainlatentError {
  /** The engine's or the check's own error, for the server's log. */
  override readonly cause?: unknown;
  constructor(
    readonly model: string,
    readonly output: ModelOutput,
    where: string,
    cause?: unknown,
  ) {
    super(
      `model '${model}' produced non-finite values (NaN or Inf) in ${WHAT[output]}${where ? ` at ${where}` : ''} from finite inputs: ` +
        'a fault of the loaded model, not of the request (details in the server log)',
      'ModelOutput',
    );
    this.cause = cause;
  }
}

/** "image I, element E" from the engine's NonFinite message (it names the image and the element), else ''. */
export function engineWhere(e: unknown): string {
  const m = e instanceof Error ? e.message : '';
  const image = /image (\d+)/.exec(m)?.[1];
  const element = /element (\d+)/.exec(m)?.[1];
  return [image && `image ${image}`, element && `element ${element}`].filter(Boolean).join(', ');
}
