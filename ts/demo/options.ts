/**
 * The demo's options, checked once before anything is built or written: every problem at once, each naming
 * the CLI flag where there is one (--test-images, --image-size, …) and the option, and the range allowed.
 */
import { InvalidArgumentError } from '../errors.js';
import { checkImg2imgRule } from '../sd/samplingOptions.js';

/** The options checked here (DemoOptions and DemoWorldOptions share them). */
export interface DemoOptionValues {
  out?: unknown;
  seed?: unknown;
  imageSize?: unknown;
  sessions?: unknown;
  trialsPerSession?: unknown;
  testImages?: unknown;
  noiseSd?: unknown;
  textDim?: unknown;
  componentSd?: unknown;
  beta?: unknown;
  prior?: unknown;
  distractors?: unknown;
  subjects?: unknown;
  seeds?: unknown;
  steps?: unknown;
  rule?: unknown;
}

/** What the demo writes in its folder, as the refusal of an out that cannot be one says it (`demo --out`, a demo job's `out`). */
export const DEMO_OUT_WHAT = 'the world and the run';

/** Defaults of the world's size, as resolveWorldOptions fills them. */
/** The world's and the run's defaults (--help shows them). */
export const DEMO_DEFAULTS = { sessions: 16, trialsPerSession: 75, imageSize: 128, testImages: 24, seeds: 5, steps: 50 } as const;

/** The demo run's img2img strength (its world's config; a library caller may override it in `config.img2img`). */
export const DEMO_STRENGTH = 0.8;

/** Smallest stimulus side: SSIM's Gaussian window is 11 pixels wide. */
export const DEMO_MIN_IMAGE_SIZE = 16;
/** Largest stimulus side: the world holds every scene's latent in the U-Net and every stimulus in one HDF5 file. */
export const DEMO_MAX_IMAGE_SIZE = 256;
/** Training images the decoders need at least: two per cross-validation fold (the demo uses 5 folds). */
export const DEMO_MIN_TRAIN_IMAGES = 10;
/** The stimulus file is written whole through h5wasm's 2 GiB heap: its pixels are kept to 1 GiB. */
const MAX_STIMULUS_BYTES = 2 ** 30;

const FLAGS: Record<string, string> = {
  out: '--out',
  seed: '--seed',
  imageSize: '--image-size',
  testImages: '--test-images',
  seeds: '--seeds',
  steps: '--steps',
  prior: '--prior',
  rule: '--rule',
};

const label = (name: string) => (FLAGS[name] ? `${FLAGS[name]} (${name})` : name);
const got = (v: unknown) => (typeof v === 'string' ? `'${v}'` : Array.isArray(v) ? `[${v.join(', ')}]` : String(v));
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

/** Every problem of the demo's options (empty when they are all valid); `strength`: the run's img2img strength. */
export function demoOptionProblems(o: DemoOptionValues, strength = DEMO_STRENGTH): string[] {
  const problems: string[] = [];
  const int = (name: keyof DemoOptionValues, min: number, max: number, extra = '') => {
    const v = o[name];
    if (v === undefined) return;
    if (!isInt(v) || v < min || v > max) problems.push(`${label(name)}: expected an integer from ${min} to ${max}${extra}, got ${got(v)}`);
  };
  const positive = (name: keyof DemoOptionValues, allowZero: boolean) => {
    const v = o[name];
    if (v === undefined) return;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
      problems.push(`${label(name)}: expected a finite number ${allowZero ? '>= 0' : '> 0'}, got ${got(v)}`);
    }
  };
  if (typeof o.out !== 'string' || o.out === '') problems.push(`${label('out')}: expected a folder path, got ${got(o.out)}`);
  int('seed', 0, 2 ** 31 - 1);
  const sizeOk = o.imageSize === undefined || (isInt(o.imageSize) && o.imageSize >= DEMO_MIN_IMAGE_SIZE && o.imageSize <= DEMO_MAX_IMAGE_SIZE && o.imageSize % 8 === 0);
  if (!sizeOk) {
    problems.push(`${label('imageSize')}: expected a multiple of 8 from ${DEMO_MIN_IMAGE_SIZE} to ${DEMO_MAX_IMAGE_SIZE} (latents are 1/8 of it), got ${got(o.imageSize)}`);
  }
  int('sessions', 1, 40);
  int('trialsPerSession', 3, 750);
  const sessions = isInt(o.sessions) ? o.sessions : DEMO_DEFAULTS.sessions;
  const trials = isInt(o.trialsPerSession) ? o.trialsPerSession : DEMO_DEFAULTS.trialsPerSession;
  if ((sessions * trials) % 3 !== 0) problems.push(`sessions × trialsPerSession (${sessions} × ${trials}) must be a multiple of 3: each image is shown 3 times`);
  // the subject sees sessions × trials / 3 images; the test images are among them, and the decoders need training images
  const perSubject = Math.floor((sessions * trials) / 3);
  const maxTest = perSubject - DEMO_MIN_TRAIN_IMAGES;
  if (maxTest < 2) problems.push(`sessions × trialsPerSession (${sessions} × ${trials}) gives ${perSubject} images per subject: too few for 2 test and ${DEMO_MIN_TRAIN_IMAGES} training images`);
  else int('testImages', 2, maxTest, ` (two-way identification needs 2; the subject sees ${perSubject} images, of which ${DEMO_MIN_TRAIN_IMAGES} must remain to train the decoders)`);
  const test = isInt(o.testImages) ? o.testImages : DEMO_DEFAULTS.testImages;
  const side = isInt(o.imageSize) ? o.imageSize : DEMO_DEFAULTS.imageSize;
  if (sizeOk && maxTest >= 2 && test >= 1 && test < perSubject) {
    // the stimulus set: the shared images and each subject's own, for 8 subjects (as synthNsd draws it)
    const stimuli = test + 8 * (perSubject - test);
    const bytes = stimuli * side * side * 3;
    if (bytes > MAX_STIMULUS_BYTES) {
      problems.push(
        `${label('imageSize')}: ${stimuli} stimuli of ${side}×${side} make a ${(bytes / 2 ** 30).toFixed(2)} GiB stimulus file, over the ${MAX_STIMULUS_BYTES / 2 ** 30} GiB limit; use a smaller image size or fewer sessions × trials`,
      );
    }
  }
  positive('noiseSd', true);
  int('textDim', 1, 4096);
  positive('componentSd', false);
  positive('beta', false);
  if (o.prior !== undefined && o.prior !== 'world' && o.prior !== 'training') problems.push(`${label('prior')}: expected 'world' or 'training', got ${got(o.prior)}`);
  int('distractors', -1, 100_000, ' (-1: as many as the stimuli)');
  if (o.subjects !== undefined && !(Array.isArray(o.subjects) && o.subjects.length > 0 && o.subjects.every((s) => isInt(s) && s >= 1 && s <= 8))) {
    problems.push(`subjects: expected a non-empty list of subjects from 1 to 8, got ${got(o.subjects)}`);
  }
  int('seeds', 1, 1000);
  // img2img denoises the last ⌊steps·strength⌋ steps: at the demo's 0.8 one step runs none, which the run's preflight
  // refused only after the world was built, naming config keys the demo has no flag for (review s43)
  let fewest = 1;
  while (fewest < 1000 && Math.trunc(fewest * strength) < 1) fewest++;
  int('steps', fewest, 1000, fewest > 1 ? ` (img2img denoises the last ⌊steps·strength⌋ of them, at strength ${strength} none below ${fewest})` : '');
  // (reconstruct's --rule: the same choices and check)
  if (o.rule !== undefined) {
    try {
      checkImg2imgRule(o.rule, label('rule'));
    } catch (e) {
      if (!(e instanceof InvalidArgumentError)) throw e;
      problems.push(e.message);
    }
  }
  return problems;
}

/** Throws an InvalidArgumentError listing every problem of the demo's options. */
export function checkDemoOptions(o: DemoOptionValues, strength = DEMO_STRENGTH): void {
  const problems = demoOptionProblems(o, strength);
  if (problems.length === 1) throw new InvalidArgumentError(`demo: ${problems[0]}`);
  if (problems.length) throw new InvalidArgumentError(`demo: ${problems.length} invalid options:\n  - ${problems.join('\n  - ')}`);
}
