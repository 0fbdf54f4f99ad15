/**
 * Builds the demo world from nothing (seeded): a miniature NSD with a synthetic subject whose early voxels
 * see a colour grid of the image (small receptive fields, i.e. on z) and whose ventral voxels are tuned to
 * caption words (i.e. to c); a Stable-Diffusion-layout model folder whose VAE, text encoder and U-Net are
 * the closed-form models of ./models.ts, the U-Net's mixture being placed on the latents of every stimulus
 * that is not a test image; and a small feature network for identification. Returns a pipeline config.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import { checkControl } from '../callbackOptions.js';
import { readNsdDesign } from '../nsd/expdesign.js';
import { loadNsdCaptions } from '../nsd/captions.js';
import { NsdStimuli } from '../nsd/stimuli.js';
import { Diffusion } from '../sd/Diffusion.js';
import { sdFolderFiles, sdModelIndex, writeFolderFiles } from '../sd/fixture.js';
import { synthNsd } from '../synth/nsd.js';
import { generateScenes, renderScene } from '../synth/scenes.js';
import type { ReconstructConfigInput } from '../pipeline/config.js';
import { demoVocabulary, wordEmbeddings } from './vocabulary.js';
import { codeVersion, readWorldManifest, worldDamage, worldFiles, worldKey, worldManifestPath, writeWorldManifest } from './worldManifest.js';
import { featureNetworkModel, mixtureUnetModel, SCALING_FACTOR, textEncoderModel, vaeDecoderModel, vaeEncoderModel } from './models.js';
import { onnxruntimeNodeInstalled } from '../native/onnxruntimeNode.js';
import { removeStaleTemporaries, writeFileAtomic } from '../io/atomicWrite.js';
import { CancelledError } from '../errors.js';
import { checkDemoOptions, DEMO_DEFAULTS, DEMO_STRENGTH } from './options.js';

export interface DemoWorldOptions {
  /** Folder the world is written to (nsd/, model/, features.onnx). */
  out: string;
  seed?: number;
  /** Stimulus side in pixels (and the z / img2img size). Default 128 (latents 4×16×16). */
  imageSize?: number;
  /** Sessions of the miniature NSD (all written). Default 16. */
  sessions?: number;
  trialsPerSession?: number;
  /** Test images (NSD's shared images). Default 24. */
  testImages?: number;
  /** Trial noise SD of the synthetic subject. Default 0.7. */
  noiseSd?: number;
  /** Width D of the text embedding. Default 64. */
  textDim?: number;
  /** Mixture component SD per latent dimension. Default 0.05. */
  componentSd?: number;
  /** Sharpness of the text weighting of the mixture. Default 120. */
  beta?: number;
  /**
   * What the diffusion model's data distribution is. 'world' (default): the world's scene catalogue —
   * every image of the stimulus set (as SD's training data hold photographs like NSD's COCO images)
   * plus `distractors` scenes no subject saw. 'training': only the stimuli that are not test images,
   * the ablation that shows what a prior which never saw such scenes gives.
   */
  prior?: 'world' | 'training';
  /** Scenes of the catalogue that are not in the stimulus set ('world' prior). Default: as many as the stimuli. */
  distractors?: number;
  /** Synthetic subjects of the miniature NSD (the config names the first). Default [1]. */
  subjects?: number[];
}

/** Progress of the demo world's build (DemoWorldControl.onProgress). */
export interface DemoWorldProgress {
  /** Of the whole build, 0..1. */
  fraction: number;
  phase: string;
  count?: { done: number; total: number; unit: string };
}

/** buildDemoWorld's second argument: progress, force, signal. */
export interface DemoWorldControl {
  onProgress?: (p: DemoWorldProgress) => void;
  /** Rebuild even when world.json says an identical world is there. */
  force?: boolean;
  /** Stops the build (a CancelledError) at its next progress point; what was built is rebuilt next time. */
  signal?: AbortSignal;
}

export interface DemoWorld {
  /** True when an identical world (same parameters, same code) was found and reused. */
  reused: boolean;
  nsdRoot: string;
  modelDir: string;
  featureNetwork: string;
  /** Mixture components of the U-Net (the catalogue's latents). */
  components: number;
  prior: 'world' | 'training';
  imageSize: number;
  testImages: number;
  /** A pipeline config for this world (out left to the caller). */
  config: Omit<ReconstructConfigInput, 'out'>;
}

/** ᾱ_t of SD 1.x's scaled_linear schedule, float64. */
export function sdAlphasCumprod(): Float64Array {
  const out = new Float64Array(1000);
  let prod = 1;
  const b0 = Math.sqrt(0.00085);
  const b1 = Math.sqrt(0.012);
  for (let t = 0; t < 1000; t++) {
    const beta = (b0 + ((b1 - b0) * t) / 999) ** 2;
    prod *= 1 - beta;
    out[t] = prod;
  }
  return out;
}

/** Every parameter with its default: what a world is, and the key of its manifest. Invalid options are refused (all at once). */
function resolveWorldOptions(o: DemoWorldOptions): Required<Omit<DemoWorldOptions, 'out'>> {
  checkDemoOptions(o, 1); // (steps against the run's strength: runDemo checks them, with config.img2img.strength)
  return {
    seed: o.seed ?? 1,
    subjects: o.subjects ?? [1],
    imageSize: o.imageSize ?? DEMO_DEFAULTS.imageSize,
    sessions: o.sessions ?? DEMO_DEFAULTS.sessions,
    trialsPerSession: o.trialsPerSession ?? DEMO_DEFAULTS.trialsPerSession,
    testImages: o.testImages ?? DEMO_DEFAULTS.testImages,
    noiseSd: o.noiseSd ?? 0.7,
    textDim: o.textDim ?? 64,
    componentSd: o.componentSd ?? 0.05,
    beta: o.beta ?? 120,
    prior: o.prior ?? 'world',
    distractors: o.distractors ?? -1, // -1: as many as the stimuli
  };
}

// Shares of the build's time per phase, measured on the default world (2 cores), for one bar with an honest ETA.
const PHASES = { stimuli: 0.25, 'stimulus file': 0.2, betas: 0.2, catalogue: 0.3, models: 0.05 } as const;

/**
 * Builds the world, or reuses the one in `out` when its manifest (world.json) has the same parameters and code
 * version and every file it lists is intact.
 */
export async function buildDemoWorld(options: DemoWorldOptions, control: DemoWorldControl = {}): Promise<DemoWorld> {
  checkControl(control, 'buildDemoWorld', ['onProgress']);
  const out = resolve(options.out);
  const o = resolveWorldOptions(options);
  const key = worldKey(o);
  const nsdRoot = join(out, 'nsd');
  const modelDir = join(out, 'model');
  const cancelled = () => {
    if (control.signal?.aborted) throw new CancelledError('demo: cancelled (the world build stopped; the next demo rebuilds it)', { cause: control.signal.reason });
  };
  cancelled();
  // What a killed build left (a half-written session file, a dataset folder under its temporary name) goes first.
  await removeStaleTemporaries(out, { recursive: true });
  if (!control.force) {
    const m = await readWorldManifest(out);
    if (m && m.key === key && worldDamage(out, m) === null) {
      control.onProgress?.({ fraction: 1, phase: 'reused' });
      return describeWorld(out, o, m.components, m.testImages, true);
    }
  }
  const t0 = performance.now();
  let base = 0;
  const phase = (name: keyof typeof PHASES, done: number, total: number, unit: string) => {
    // a cancel stops the build here (inside synthNsd too: its temporary dataset is removed as it unwinds)
    cancelled();
    control.onProgress?.({ fraction: Math.min(1, base + (PHASES[name] * done) / Math.max(1, total)), phase: name, count: { done, total, unit } });
  };
  const next = (name: keyof typeof PHASES) => (base += PHASES[name]);
  // The world folder is entirely generated: start it afresh so no file of an earlier, differently
  // sized world (extra sessions, say) is mistaken for part of this one. The manifest goes first.
  await rm(worldManifestPath(out), { force: true });
  await rm(nsdRoot, { recursive: true, force: true });
  await rm(modelDir, { recursive: true, force: true });
  const { seed, imageSize, sessions, prior, textDim } = o;

  await synthNsd({
    out: nsdRoot,
    seed,
    subjects: o.subjects,
    designSessions: sessions,
    sessions,
    trialsPerSession: o.trialsPerSession,
    sharedImages: o.testImages,
    imageSize,
    noiseSd: o.noiseSd,
    formats: ['hdf5'],
    onProgress: (p) => {
      phase(p.phase, p.done, p.total, p.phase === 'stimuli' ? 'images' : p.phase === 'betas' ? 'sessions' : 'files');
      if (p.done === p.total) next(p.phase);
    },
  });

  cancelled();
  // model folder: VAE, text encoder, tokenizer, schedule (the U-Net follows once the latents are known)
  const vocab = demoVocabulary();
  const table = wordEmbeddings(vocab, textDim, seed + 17);
  const files: [string, Uint8Array | string][] = [
    ['vae_encoder/model.onnx', vaeEncoderModel()],
    ['vae_decoder/model.onnx', vaeDecoderModel()],
    ['vae_decoder/config.json', JSON.stringify({ scaling_factor: SCALING_FACTOR })],
    ['text_encoder/model.onnx', textEncoderModel(table, vocab.size, textDim)],
    ...sdFolderFiles(vocab),
  ];
  await writeFolderFiles(modelDir, files);

  // The U-Net's mixture: latents and caption vectors of the catalogue's scenes.
  const design = await readNsdDesign(nsdRoot);
  const test = new Set(Array.from(design.sharedix));
  const captions = await loadNsdCaptions(nsdRoot);
  const stimuli = await NsdStimuli.open(nsdRoot);
  const px = imageSize * imageSize * 3;
  interface Entry { rgb: () => Uint8Array; captions: string[] }
  const entries: Entry[] = [];
  for (let id = 1; id <= stimuli.count; id++) {
    if (prior === 'training' && test.has(id)) continue;
    entries.push({ rgb: () => stimuli.image(id, imageSize).data, captions: captions.get(id) });
  }
  if (prior === 'world') {
    // Distractors from the same scene generator with its own seed, captioned as the stimuli are.
    for (const scene of generateScenes(o.distractors < 0 ? stimuli.count : o.distractors, seed + 1_000_003)) {
      entries.push({ rgb: () => renderScene(scene, imageSize).data, captions: [scene.caption, `A picture of ${scene.caption}.`] });
    }
  }
  const sd = await Diffusion.load(modelDir, { components: ['vae_encoder', 'text_encoder'], intraOpThreads: 1 });
  const means = new Float32Array(entries.length * 4 * (imageSize / 8) ** 2);
  const text = new Float32Array(entries.length * textDim);
  const chunk = 256;
  try {
    for (let i0 = 0; i0 < entries.length; i0 += chunk) {
      const part = entries.slice(i0, i0 + chunk);
      const rgb = new Uint8Array(part.length * px);
      part.forEach((e, k) => rgb.set(e.rgb(), k * px));
      const z = await sd.encodeImages({ data: rgb, count: part.length, height: imageSize, width: imageSize }, { mode: 'mean', chunk: 64 });
      means.set(z.data, i0 * (z.data.length / part.length));
      const caps = part.map((e) => e.captions);
      const c = await sd.encodeText(caps.flat());
      let row = 0;
      caps.forEach((list, k) => {
        const v = text.subarray((i0 + k) * textDim, (i0 + k + 1) * textDim);
        for (let q = 0; q < list.length; q++, row++) {
          for (let s = 0; s < 77; s++) for (let j = 0; j < textDim; j++) v[j] += c.data[(row * 77 + s) * textDim + j] / list.length;
        }
      });
      phase('catalogue', i0 + part.length, entries.length, 'scenes');
    }
    next('catalogue');
  } finally {
    sd.dispose();
    stimuli.close();
  }
  const ids = entries; // one mixture component per catalogue entry
  cancelled();
  const h = imageSize / 8;
  await mkdir(join(modelDir, 'unet'), { recursive: true });
  await writeFileAtomic(
    join(modelDir, 'unet', 'model.onnx'),
    mixtureUnetModel({
      means,
      components: ids.length,
      latentShape: [4, h, h],
      text,
      textDim,
      componentSd: o.componentSd,
      beta: o.beta,
      alphasCumprod: sdAlphasCumprod(),
    }),
  );
  await writeFileAtomic(
    join(modelDir, 'model_index.json'),
    sdModelIndex({
      _brainlatent_demo: {
        note: 'the brainlatent demo world: closed-form VAE, bag-of-words text encoder, exact denoiser of a text-weighted Gaussian mixture on the scene catalogue',
        seed,
        components: ids.length,
        componentSd: o.componentSd,
        beta: o.beta,
      },
    }),
  );
  await writeFileAtomic(join(out, 'features.onnx'), featureNetworkModel());
  phase('models', 1, 1, 'files');
  await writeWorldManifest(out, {
    format: 'brainlatent-demo-world',
    version: 1,
    key,
    codeVersion: codeVersion(),
    options: o,
    components: ids.length,
    testImages: test.size,
    files: worldFiles(out),
    seconds: (performance.now() - t0) / 1000,
    createdAt: new Date().toISOString(),
  });
  return describeWorld(out, o, ids.length, test.size, false);
}

/** The world `options` describe, as buildDemoWorld would return it, before anything is built (for checking the run's config). */
export function plannedDemoWorld(options: DemoWorldOptions): DemoWorld {
  const o = resolveWorldOptions(options);
  return describeWorld(resolve(options.out), o, 0, o.testImages, false);
}

function describeWorld(out: string, o: ReturnType<typeof resolveWorldOptions>, components: number, testImages: number, reused: boolean): DemoWorld {
  const nsdRoot = join(out, 'nsd');
  const modelDir = join(out, 'model');
  const featureNetwork = join(out, 'features.onnx');
  const { imageSize } = o;
  return {
    reused,
    nsdRoot,
    modelDir,
    featureNetwork,
    components,
    prior: o.prior,
    imageSize,
    testImages,
    config: {
      nsd: { root: nsdRoot, subject: o.subjects[0], cacheDir: null },
      model: { dir: modelDir, threads: 2 },
      features: { zSize: imageSize, zMode: 'mean' },
      decoders: {
        z: { roi: 'streams:early', alphas: [1, 10, 100, 1e3, 1e4, 1e5], folds: 5 },
        c: { roi: 'streams:ventral', alphas: [1, 10, 100, 1e3, 1e4, 1e5], folds: 5 },
      },
      img2img: { size: imageSize, strength: DEMO_STRENGTH, steps: DEMO_DEFAULTS.steps, guidance: 5, seeds: DEMO_DEFAULTS.seeds, seed: 42, batchSize: 8 },
      evaluation: {
        size: imageSize,
        // Feature networks run on onnxruntime-node's JS API, an optional peer dependency: without it
        // the demo reports the pixel metrics only (the CLI says so).
        networks: onnxruntimeNodeInstalled() ? [{ name: 'DemoNet(2WI)', path: featureNetwork, inputSize: imageSize, metric: 'identification' }] : [],
      },
    },
  };
}
