import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { checkCallback, checkSignalOption } from '../callbackOptions.js';
import { CancelledError, InvalidArgumentError } from '../errors.js';
import { describeNumber } from '../ridge/alphas.js';
import { checkIntegerAt } from '../ridge/options.js';
import { withAtomicDir, writeFileAtomic } from '../io/atomicWrite.js';
import { writeHdf5 } from '../io/hdf5.js';
import { writeMat } from '../io/mat.js';
import { geometryFromAffine, writeNifti } from '../io/nifti.js';
import type { Grid } from '../io/voxelMask.js';
import * as P from '../nsd/paths.js';
import { buildAnatomy, buildT1, ctabText, NSDGENERAL_LABELS, PRF_VISUALROIS_LABELS, STREAMS_LABELS, type Anatomy } from './anatomy.js';
import { LATENT_DIM, latentFeatures, SEMANTIC_DIM, SEMANTIC_NAMES, semanticFeatures } from './features.js';
import { Rng } from './rng.js';
import { generateScenes, renderScene, type Scene } from './scenes.js';

export interface SynthNsdOptions {
  /** Root folder of the tree to write. */
  out: string;
  /** Random seed, an integer 0..2^31−1 (the demo's range). Default 1. */
  seed?: number;
  /** Subjects to write betas and ROIs for (the design always covers 8). Default [1]. */
  subjects?: number[];
  /** Volume grid X×Y×Z. Default 20×24×16. */
  grid?: Grid;
  /** Sessions in the design (NSD: 40). Default 4. */
  designSessions?: number;
  /** Sessions whose betas are written, 1..n (NSD's public release: 37). Default 3. */
  sessions?: number;
  /** Trials per session (NSD: 750); designSessions × trialsPerSession must be a multiple of 3. Default 60. */
  trialsPerSession?: number;
  /** Images shown to every subject, the test set (NSD: 1000). Default 10. */
  sharedImages?: number;
  /** Stimulus side in pixels (NSD: 425). Default 64. */
  imageSize?: number;
  /** Trial noise SD, percent signal change. Default 0.7. */
  noiseSd?: number;
  /** Which betas files to write. Default both. */
  formats?: P.BetasFormat[];
  /** Write nsd_expdesign.mat with zlib-compressed elements (v7) or plain (v5). Default true. */
  compressMat?: boolean;
  /** Called as the stimuli are drawn and each session's betas are written. */
  onProgress?: (p: SynthNsdProgress) => void;
  /** Aborting it stops the writing at its next progress step: CancelledError, and nothing is left at `out` or beside it. */
  signal?: AbortSignal;
}

export interface SynthNsdProgress {
  /** Drawing the stimuli; writing the stimulus file (done 0 then 1); each session's betas. */
  phase: 'stimuli' | 'stimulus file' | 'betas';
  done: number;
  total: number;
}

export interface SynthNsdResult {
  root: string;
  subjects: number[];
  sessions: number;
  trialsPerSession: number;
  imagesPerSubject: number;
  sharedImages: number;
  /** Number of images in the stimulus file (73k ids 1..n). */
  stimuli: number;
  truthPath: string;
}

/** One voxel's planted response: amplitude · zscore(weights · features[space]) + session offset + noise. */
export interface PlantedVoxel {
  x: number;
  y: number;
  z: number;
  stream: string;
  space: 'latent' | 'semantic';
  features: number[];
  weights: number[];
  /** Mean and SD of weights · features over the whole stimulus set, used to z-score the drive. */
  mean: number;
  sd: number;
  amplitude: number;
}

const AFFINE_VOXEL_MM = 1.8;
/** Largest session of betas written (int16): one session is built in memory at a time. */
const MAX_SESSION_BYTES = 2 ** 30;

/**
 * Writes a miniature NSD from a planted model: betas (.nii.gz and .hdf5, int16 ×300), brainmask, nsdgeneral,
 * streams and prf-visualrois ROIs, nsd_expdesign.mat, stimuli .hdf5 with COCO-style captions and stim info, and
 * synth_truth.json. Early voxels respond to local image ("latent") features at a receptive field that follows
 * their position, ventral voxels to caption ("semantic") features; the rest of the brain is noise.
 */
export async function synthNsd(opts: SynthNsdOptions): Promise<SynthNsdResult> {
  const o = resolveSynthNsdOptions(opts);
  // (checked at each progress step: between the stimuli's batches and the sessions' files)
  const report = o.onProgress;
  o.onProgress = (p) => {
    if (o.signal.aborted) throw new CancelledError('synthNsd: cancelled', { cause: o.signal.reason });
    report(p);
  };
  await assertReplaceable(o.out);
  // Built under a temporary name and swapped in whole: a failure or a kill never leaves a partial dataset.
  return withAtomicDir(o.out, (tmp) => writeDataset({ ...o, out: tmp }, o.out));
}

/** `out` is replaced whole, so it must be new, empty, or an earlier synthetic dataset (with its synth_truth.json). */
async function assertReplaceable(out: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(out);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR') throw new InvalidArgumentError(`synthNsd: ${out} is a file, expected a folder`);
    throw e;
  }
  if (entries.length > 0 && !existsSync(P.synthTruthPath(out))) {
    throw new InvalidArgumentError(
      `synthNsd: ${out} exists and is not a synthetic NSD (no ${basename(P.synthTruthPath(out))}); it would be replaced whole, so choose a new or empty folder`,
    );
  }
}

async function writeDataset(o: Resolved, finalRoot: string): Promise<SynthNsdResult> {
  const rng = new Rng(o.seed);
  const total = o.designSessions * o.trialsPerSession;
  const perSubject = total / 3;
  const nUnique = perSubject - o.sharedImages;
  const nStimuli = o.sharedImages + 8 * nUnique;

  // Design: 73k ids drawn from a shuffled pool; shared images first in every subject's row.
  const pool = rng.shuffle(Array.from({ length: nStimuli }, (_, i) => i + 1));
  const shared = pool.slice(0, o.sharedImages).sort((a, b) => a - b);
  const subjectim: number[][] = Array.from({ length: 8 }, (_, s) => [
    ...shared,
    ...pool.slice(o.sharedImages + s * nUnique, o.sharedImages + (s + 1) * nUnique),
  ]);
  const masterordering = rng.shuffle(Array.from({ length: total }, (_, t) => (t % perSubject) + 1));
  const expdesign = P.expdesignPath(o.out);
  await mkdir(dirname(expdesign), { recursive: true });
  const subjectimCM = new Float64Array(8 * perSubject);
  for (let s = 0; s < 8; s++) for (let c = 0; c < perSubject; c++) subjectimCM[c * 8 + s] = subjectim[s][c];
  await writeMat(
    expdesign,
    {
      masterordering: { dims: [1, total], data: Float64Array.from(masterordering) },
      subjectim: { dims: [8, perSubject], data: subjectimCM },
      sharedix: { dims: [1, o.sharedImages], data: Float64Array.from(shared) },
    },
    { compress: o.compressMat },
  );

  // Stimuli, captions and features.
  const scenes = generateScenes(nStimuli, o.seed + 1);
  // (the event loop gets a turn between blocks of images: a job's process hears its cancel there, not
  // seconds later after the whole render — on a loaded machine past the job's kill deadline)
  const images: ReturnType<typeof renderScene>[] = [];
  const latent: ReturnType<typeof latentFeatures>[] = [];
  for (let i = 0; i < nStimuli; i++) {
    if (i % 64 === 0) {
      if (i % 256 === 0) o.onProgress({ phase: 'stimuli', done: i, total: nStimuli });
      await new Promise<void>((resolveTurn) => setImmediate(resolveTurn));
    }
    images.push(renderScene(scenes[i], o.imageSize));
    latent.push(latentFeatures(images[i]));
  }
  o.onProgress({ phase: 'stimuli', done: nStimuli, total: nStimuli });
  const semantic = scenes.map(semanticFeatures);
  o.onProgress({ phase: 'stimulus file', done: 0, total: 1 });
  await writeStimuli(o.out, scenes, images.map((i) => i.data), o.imageSize);
  o.onProgress({ phase: 'stimulus file', done: 1, total: 1 });

  const anatomy = buildAnatomy(o.grid);
  const geometry = geometryFromAffine(affineFor(o.grid));
  for (const [atlas, labels] of [['streams', STREAMS_LABELS], ['prf-visualrois', PRF_VISUALROIS_LABELS], ['nsdgeneral', NSDGENERAL_LABELS]] as const) {
    const p = P.ctabPath(o.out, atlas);
    await mkdir(dirname(p), { recursive: true });
    await writeFileAtomic(p, ctabText(labels));
  }

  const truthSubjects: Record<string, { voxels: PlantedVoxel[]; sessionOffsetSd: number }> = {};
  for (const subject of o.subjects) {
    const srng = new Rng(o.seed * 1000 + subject);
    const roiDir = dirname(P.roiPath(o.out, subject, 'x'));
    await mkdir(roiDir, { recursive: true });
    const vol = (name: string, data: Int16Array) => writeNifti(name, { dims: o.grid, datatype: 'int16', ...geometry }, data);
    await vol(P.brainmaskPath(o.out, subject), anatomy.brainmask);
    await vol(P.t1Path(o.out, subject), buildT1(anatomy, o.seed * 100 + subject));
    await vol(P.roiPath(o.out, subject, 'nsdgeneral'), anatomy.nsdgeneral);
    await vol(P.roiPath(o.out, subject, 'streams'), anatomy.streams);
    await vol(P.roiPath(o.out, subject, 'prf-visualrois'), anatomy.prfVisualrois);

    const voxels = plantVoxels(anatomy, srng, latent, semantic);
    truthSubjects[String(subject)] = { voxels, sessionOffsetSd: 0.3 };
    const drive = voxels.map((v) => drives(v, v.space === 'latent' ? latent : semantic));
    const planted = new Map(voxels.map((v, k) => [v.x + o.grid[0] * (v.y + o.grid[1] * v.z), k]));
    const nVox = o.grid[0] * o.grid[1] * o.grid[2];
    await mkdir(P.betasDir(o.out, subject), { recursive: true });
    const responses: string[] = ['SUBJECT\tSESSION\tRUN\tTRIAL\t73KID\tISOLD'];
    for (let session = 1; session <= o.sessions; session++) {
      o.onProgress({ phase: 'betas', done: o.subjects.indexOf(subject) * o.sessions + session - 1, total: o.subjects.length * o.sessions });
      const T = o.trialsPerSession;
      const betas = new Int16Array(nVox * T);
      const offsets = new Float32Array(nVox).map(() => 0.3 * srng.normal());
      const seen = new Set<number>();
      for (let t = 0; t < T; t++) {
        const trial = (session - 1) * T + t;
        const id = subjectim[subject - 1][masterordering[trial] - 1];
        responses.push(`${subject}\t${session}\t${Math.floor(t / Math.ceil(T / 12)) + 1}\t${t + 1}\t${id}\t${seen.has(id) ? 1 : 0}`);
        seen.add(id);
        for (let i = 0; i < nVox; i++) {
          if (!anatomy.brainmask[i]) continue;
          const k = planted.get(i);
          const signal = k === undefined ? 0 : voxels[k].amplitude * drive[k][id - 1];
          const v = signal + offsets[i] + o.noiseSd * srng.normal();
          betas[t * nVox + i] = Math.max(-32767, Math.min(32767, Math.round(v * 300)));
        }
      }
      // (T, Z, Y, X) row-major is the same memory as NIfTI's X×Y×Z×T with x fastest.
      if (o.formats.includes('nifti')) {
        await writeNifti(P.betasPath(o.out, subject, session, 'nifti'), { dims: [...o.grid, T], datatype: 'int16', ...geometry }, betas);
      }
      if (o.formats.includes('hdf5')) {
        await writeHdf5(P.betasPath(o.out, subject, session, 'hdf5'), [
          { name: 'betas', data: betas, shape: [T, o.grid[2], o.grid[1], o.grid[0]], chunks: [T, 1, 1, 1] },
        ]);
      }
    }
    o.onProgress({ phase: 'betas', done: (o.subjects.indexOf(subject) + 1) * o.sessions, total: o.subjects.length * o.sessions });
    await mkdir(dirname(P.responsesPath(o.out, subject)), { recursive: true });
    await writeFileAtomic(P.responsesPath(o.out, subject), responses.join('\n') + '\n');
  }

  const truthPath = P.synthTruthPath(o.out);
  const round = (a: Float32Array) => Array.from(a, (x) => Math.round(x * 1e6) / 1e6);
  await writeFileAtomic(
    truthPath,
    JSON.stringify({
      description:
        'Planted model of the miniature NSD. beta = amplitude * (weights·features[space] - mean) / sd + session offset ' +
        '+ noise, in percent signal change (stored ×300 as int16). Features are per 73k id (index id-1).',
      options: { ...o, out: undefined, onProgress: undefined, signal: undefined },
      grid: o.grid,
      noiseSd: o.noiseSd,
      featureSpaces: {
        latent: { dim: LATENT_DIM, layout: '8×8×3 (row, column, RGB), image area-averaged to 8×8, scaled to [-1, 1]' },
        semantic: { dim: SEMANTIC_DIM, names: SEMANTIC_NAMES },
      },
      subjects: truthSubjects,
      images: scenes.map((s, i) => ({ id73k: i + 1, caption: s.caption, scene: { objects: s.objects, background: s.background } })),
      features: { latent: latent.map(round), semantic: semantic.map(round) },
    }),
  );
  return {
    root: finalRoot,
    subjects: o.subjects,
    sessions: o.sessions,
    trialsPerSession: o.trialsPerSession,
    imagesPerSubject: perSubject,
    sharedImages: o.sharedImages,
    stimuli: nStimuli,
    truthPath: P.synthTruthPath(finalRoot),
  };
}

type Resolved = Required<SynthNsdOptions>;

/** The largest seed: the demo's (its --seed reaches synthNsd as is). */
const MAX_SYNTH_SEED = 2 ** 31 - 1;

/** How the checks name each option: the library's field names, or (the CLI) its flags. */
export type SynthNsdOptionNames = Record<'out' | 'seed' | 'subjects' | 'grid' | 'sessions' | 'designSessions' | 'trialsPerSession' | 'sharedImages' | 'imageSize' | 'noiseSd' | 'formats', string>;
const FIELD_NAMES: SynthNsdOptionNames = {
  out: 'out', seed: 'seed', subjects: 'subjects', grid: 'grid', sessions: 'sessions', designSessions: 'designSessions', trialsPerSession: 'trialsPerSession',
  sharedImages: 'sharedImages', imageSize: 'imageSize', noiseSd: 'noiseSd', formats: 'formats',
};

/**
 * The options with their defaults, checked before anything is written; `names` words the errors (the CLI passes
 * its flags, so that `--trials 61` is not reported as trialsPerSession), after `call` when it is not ''
 * ('synthNsd seed: expected …', '--seed: expected …'). Only a missing (undefined) option takes its default: an
 * explicit null is refused like any other wrong value, as the types say.
 */
export function resolveSynthNsdOptions(opts: SynthNsdOptions, names: SynthNsdOptionNames = FIELD_NAMES, call = 'synthNsd'): Resolved {
  const n = names;
  const at = (k: keyof SynthNsdOptionNames): string => (call ? `${call} ${n[k]}` : n[k]);
  checkCallback(opts.onProgress, call || 'synthNsd', 'onProgress');
  checkSignalOption(opts.signal, call || 'synthNsd');
  const or = <T>(v: T | undefined, fallback: T): T => (v === undefined ? fallback : v);
  const o: Resolved = {
    out: opts.out,
    onProgress: or(opts.onProgress, () => {}),
    signal: or(opts.signal, new AbortController().signal),
    seed: or(opts.seed, 1),
    subjects: or(opts.subjects, [1]),
    grid: or(opts.grid, [20, 24, 16]),
    designSessions: or(opts.designSessions, 4),
    sessions: or(opts.sessions, 3),
    trialsPerSession: or(opts.trialsPerSession, 60),
    sharedImages: or(opts.sharedImages, 10),
    imageSize: or(opts.imageSize, 64),
    noiseSd: or(opts.noiseSd, 0.7),
    formats: or(opts.formats, ['nifti', 'hdf5']),
    compressMat: or(opts.compressMat, true),
  };
  const bad = (msg: string) => {
    throw new InvalidArgumentError(msg);
  };
  const list = (v: unknown): string => (Array.isArray(v) ? v.join(',') : describeNumber(v));
  if (typeof o.out !== 'string' || o.out === '') bad(`${at('out')}: expected the folder to write, got ${describeNumber(o.out)}`);
  // the Rng keeps seed >>> 0 (2.5 ran as 2, 2^32 as 0, NaN as 0) and the scenes' seed + 1 concatenated a string '3'
  checkIntegerAt(o.seed, at('seed'), 0, MAX_SYNTH_SEED);
  if (!Array.isArray(o.subjects) || !o.subjects.length || o.subjects.some((s) => !Number.isInteger(s) || s < 1 || s > 8)) {
    bad(`${at('subjects')}: expected subjects from 1 to 8, got ${list(o.subjects)}`);
  }
  if (new Set(o.subjects).size !== o.subjects.length) bad(`${at('subjects')}: expected distinct subjects, got ${o.subjects}`);
  if (!Array.isArray(o.grid) || o.grid.length !== 3 || o.grid.some((g) => !Number.isInteger(g) || g < 8 || g > 32767)) {
    bad(`${at('grid')}: expected three integers from 8 to 32767, got ${Array.isArray(o.grid) ? o.grid.join('×') : describeNumber(o.grid)}`);
  }
  // checked before the betas' size, which it bounds (a null one made 0 bytes)
  checkIntegerAt(o.trialsPerSession, at('trialsPerSession'), 3);
  // Each session's betas are held in memory (and in h5wasm's 2 GiB heap for .hdf5): bound them before writing anything.
  const sessionBytes = o.grid[0] * o.grid[1] * o.grid[2] * o.trialsPerSession * 2;
  if (sessionBytes > MAX_SESSION_BYTES) {
    bad(
      `${at('grid')} ${o.grid.join('×')} with ${o.trialsPerSession} trials per session makes ${(sessionBytes / 2 ** 30).toPrecision(3)} GiB of int16 betas per session, ` +
        `over the ${MAX_SESSION_BYTES / 2 ** 30} GiB limit; use a smaller grid (NSD's is 81×104×83) or fewer trials (${n.trialsPerSession})`,
    );
  }
  // checked before sessions, whose bound it is (a bad one was reported as a bad sessions)
  checkIntegerAt(o.designSessions, at('designSessions'), 1);
  if (!(Number.isInteger(o.sessions) && o.sessions >= 1 && o.sessions <= o.designSessions)) {
    bad(`${at('sessions')}: expected an integer in 1..${n.designSessions} (${o.designSessions}), got ${describeNumber(o.sessions)}`);
  }
  if ((o.designSessions * o.trialsPerSession) % 3 !== 0) {
    bad(`${call ? `${call} ` : ''}${n.designSessions} × ${n.trialsPerSession}: expected a multiple of 3 (each image is shown 3 times), got ${o.designSessions} × ${o.trialsPerSession}`);
  }
  const perSubject = (o.designSessions * o.trialsPerSession) / 3;
  if (!(Number.isInteger(o.sharedImages) && o.sharedImages >= 1 && o.sharedImages < perSubject)) {
    bad(`${at('sharedImages')}: expected an integer in 1..${perSubject - 1} (fewer than the ${perSubject} images per subject), got ${describeNumber(o.sharedImages)}`);
  }
  checkIntegerAt(o.imageSize, at('imageSize'), 8);
  // Every stimulus image is held in memory together (and in h5wasm's heap): bounded as a session's betas are.
  const stimulusBytes = (o.sharedImages + 8 * (perSubject - o.sharedImages)) * o.imageSize * o.imageSize * 3;
  if (stimulusBytes > MAX_SESSION_BYTES) {
    bad(
      `${at('imageSize')} ${o.imageSize} makes ${(stimulusBytes / 2 ** 30).toPrecision(3)} GiB of stimulus images (${o.sharedImages + 8 * (perSubject - o.sharedImages)} of ` +
        `${o.imageSize}×${o.imageSize}), over the ${MAX_SESSION_BYTES / 2 ** 30} GiB limit; use smaller images (NSD's are 425) or fewer trials`,
    );
  }
  if (!(typeof o.noiseSd === 'number' && Number.isFinite(o.noiseSd) && o.noiseSd >= 0)) bad(`${at('noiseSd')}: expected a finite number >= 0, got ${describeNumber(o.noiseSd)}`);
  if (!Array.isArray(o.formats) || !o.formats.length) bad(`${at('formats')}: expected at least one of nifti, hdf5, got ${list(o.formats) || 'none'}`);
  if (typeof o.compressMat !== 'boolean') bad(`${call || 'synthNsd'} compressMat: expected true or false, got ${describeNumber(o.compressMat)}`);
  return o;
}

function affineFor([X, Y, Z]: Grid): number[][] {
  const s = AFFINE_VOXEL_MM;
  return [
    [s, 0, 0, (-s * (X - 1)) / 2],
    [0, s, 0, (-s * (Y - 1)) / 2],
    [0, 0, s, (-s * (Z - 1)) / 2],
    [0, 0, 0, 1],
  ];
}

/** Early voxels get a receptive field on the latent grid following their (x, z) position; ventral ones a few caption words. */
function plantVoxels(anatomy: Anatomy, rng: Rng, latent: Float32Array[], semantic: Float32Array[]): PlantedVoxel[] {
  const [X, Y, Z] = anatomy.grid;
  const out: PlantedVoxel[] = [];
  for (let z = 0; z < Z; z++) {
    for (let y = 0; y < Y; y++) {
      for (let x = 0; x < X; x++) {
        const s = anatomy.streams[x + X * (y + Y * z)];
        if (s === 1) {
          const gx = Math.min(7, Math.floor((x / X) * 8));
          const gy = Math.min(7, Math.floor(((Z - 1 - z) / Z) * 8));
          const features: number[] = [];
          const weights: number[] = [];
          for (let c = 0; c < 3; c++) {
            features.push((gy * 8 + gx) * 3 + c);
            weights.push(rng.normal());
          }
          const nx = Math.min(7, gx + 1);
          for (let c = 0; c < 3; c++) {
            features.push((gy * 8 + nx) * 3 + c);
            weights.push(0.5 * rng.normal());
          }
          out.push(finish({ x, y, z, stream: 'early', space: 'latent', features, weights }, latent, rng));
        } else if (s === 5) {
          const features = rng.shuffle(Array.from({ length: SEMANTIC_DIM }, (_, i) => i)).slice(0, 3).sort((a, b) => a - b);
          const weights = features.map(() => (rng.next() < 0.5 ? -1 : 1) * (0.5 + rng.next()));
          out.push(finish({ x, y, z, stream: 'ventral', space: 'semantic', features, weights }, semantic, rng));
        }
      }
    }
  }
  return out;
}

function finish(v: Omit<PlantedVoxel, 'mean' | 'sd' | 'amplitude'>, feats: Float32Array[], rng: Rng): PlantedVoxel {
  const raw = feats.map((f) => v.features.reduce((acc, j, k) => acc + v.weights[k] * f[j], 0));
  const mean = raw.reduce((a, b) => a + b, 0) / raw.length;
  const sd = Math.sqrt(raw.reduce((a, b) => a + (b - mean) ** 2, 0) / raw.length) || 1;
  return { ...v, mean, sd, amplitude: 1 + rng.next() };
}

/** The z-scored drive of a voxel for every stimulus (index = 73k id − 1). */
function drives(v: PlantedVoxel, feats: Float32Array[]): Float64Array {
  return Float64Array.from(feats, (f) => (v.features.reduce((acc, j, k) => acc + v.weights[k] * f[j], 0) - v.mean) / v.sd);
}

async function writeStimuli(root: string, scenes: Scene[], pixels: Uint8Array[], size: number): Promise<void> {
  const n = scenes.length;
  const brick = new Uint8Array(n * size * size * 3);
  pixels.forEach((p, i) => brick.set(p, i * p.length));
  const stimuli = P.stimuliPath(root);
  await mkdir(dirname(stimuli), { recursive: true });
  await writeHdf5(stimuli, [{ name: 'imgBrick', data: brick, shape: [n, size, size, 3], chunks: [1, size, size, 3], compression: 4 }]);
  // nsd_stim_info_merged.csv: pandas-style leading index column, 0-based nsdId, cocoId for caption lookup.
  const cocoId = (i: number) => 100_000 + 7 * i;
  const split = (i: number) => (i % 5 === 4 ? 'val2017' : 'train2017');
  const rows = [',cocoId,cocoSplit,cropBox,nsdId,shared1000'];
  for (let i = 0; i < n; i++) rows.push(`${i},${cocoId(i)},${split(i)},"(0, 0, 0, 0)",${i},False`);
  await writeFileAtomic(P.stimInfoPath(root), rows.join('\n') + '\n');
  for (const s of ['train2017', 'val2017'] as const) {
    const ids = scenes.map((_, i) => i).filter((i) => split(i) === s);
    const coco = {
      info: { description: `miniature NSD captions (${s})` },
      images: ids.map((i) => ({ id: cocoId(i), file_name: `${String(cocoId(i)).padStart(12, '0')}.jpg` })),
      annotations: ids.flatMap((i, k) => [
        { id: 2 * k + 1, image_id: cocoId(i), caption: scenes[i].caption },
        { id: 2 * k + 2, image_id: cocoId(i), caption: `A picture of ${scenes[i].caption}.` },
      ]),
    };
    const p = P.cocoCaptionsPath(root, s);
    await mkdir(dirname(p), { recursive: true });
    await writeFileAtomic(p, JSON.stringify(coco));
  }
}
