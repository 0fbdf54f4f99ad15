/**
 * The bounds of img2img's guidance and seeds, one place for every entry (the API, the command line, the config
 * files, the service), so each refuses the same values with the same words ("expected a number from 0 to 100").
 * No imports: the config schemas read these too.
 */

/**
 * The largest classifier-free guidance scale taken. SD 1.x runs at 5–7.5 (diffusers' default 7.5, Takagi &
 * Nishimoto's 5) and guidance above ~20–30 already saturates the images; far above, guidance × (cond − uncond)
 * overflows float32 and the run fails at its end with non-finite latents. 100 is the service's bound, kept for all.
 * Guidance runs when > 1 (diffusers' rule): every value in [0, 1] runs c alone (no unconditional pass) and gives
 * the same result; a negative one is refused (it would run as 1 in silence).
 */
export const MAX_GUIDANCE = 100;

/** What the config files and the service say of guidance. */
export const GUIDANCE_DESCRIPTION = `classifier-free guidance scale, 0 to ${MAX_GUIDANCE} (SD 1.x: 5–7.5); guidance runs when > 1: every value from 0 to 1 runs c alone and gives the same result`;

/** Guidance as a schema (the config files', and the flag's through numberFlag): "a number from 0 to 100". */
export const GUIDANCE_RANGE = { type: 'number', minimum: 0, maximum: MAX_GUIDANCE } as const;

/**
 * The largest noise seed: 2⁵³ − 1, the largest integer a JavaScript number holds exactly (a larger one would be
 * rounded to another seed in silence; the engine's Philox key is 64-bit, but seeds reach it as numbers).
 */
export const MAX_SEED = Number.MAX_SAFE_INTEGER;

/** A seed as a schema: "an integer from 0 to 9007199254740991". */
export const SEED_RANGE = { type: 'integer', minimum: 0, maximum: MAX_SEED } as const;

/** The words of a range, as the config's errors and the flags say them. */
export const GUIDANCE_EXPECTED = `a number from 0 to ${MAX_GUIDANCE}`;
export const SEED_EXPECTED = `an integer from 0 to ${MAX_SEED}`;

/**
 * The most ONNX Runtime threads (intra-op, inter-op) taken: the service's bound, kept for all. ONNX Runtime makes
 * each session's threads up front and spins them; `--threads 99999999` grew to 24 GB and was killed, 4096 on 2 cores
 * had not loaded the tiny fixture after 6 minutes.
 */
export const MAX_ORT_THREADS = 1024;

/**
 * The most images per VAE / text-encoder call a config file takes (encode's featureBatch, reconstruct's
 * features.batchSize; the default is 8). A call holds its batch's activations at once: at 512 px the VAE encoder's
 * first layers output 128 × 512² float32, 128 MiB an image, so 4,096 images ask about 512 GiB, past any machine,
 * while at the smallest side (8 px) 4,096 images are a few MiB. Larger values could only fail, late: 2^31 passed the
 * encode config and computeFeatures (bounded by sd/native's INT32_MAX) refused it at the features stage, after the
 * extraction; one batch of every image ran out of memory there. (eval's FeatureNetwork batchSize has the same cap.)
 */
export const MAX_IMAGE_BATCH = 4096;
