/**
 * `npm run bench:data`: masked extraction of one full-size synthetic NSD session (81×104×83×750 int16,
 * .nii.gz) against the targets (under 3 s and 400 MB peak RSS) and against the floor measured in the same run,
 * a plain gunzip of the same file (the reader's own stream, ts/io/gunzip.ts gunzipOf, the bytes counted and
 * dropped: the extraction cannot be faster than its one inflate stream), then the adapter's first extraction into its cache and the cached reload. Each measurement runs in its own child process so peak RSS is its own.
 * With ISA-L as the readers' inflater (ts/io/gunzip.ts), the extraction and the floor run once more on Node's zlib.
 * Inputs are generated once under bench/out/data/ in a checkout, else under the results folder's data/
 * (./brainlatent-bench/data/ or --results' data/; never in the installed package): about 1 GB to write, a few hundred
 * MB on disk.
 */
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { gunzipChoice, gunzipOf } from '../io/gunzip.js';
import { readNifti, readNiftiMasked, geometryFromAffine, writeNifti } from '../io/nifti.js';
import { writeMat } from '../io/mat.js';
import { maskFromVolume, type Grid } from '../io/voxelMask.js';
import { extractNsd } from '../nsd/extract.js';
import * as P from '../nsd/paths.js';
import { buildAnatomy } from '../synth/anatomy.js';
import { Rng } from '../synth/rng.js';
import { BrainlatentError } from '../errors.js';
import { appendBenchRecord, assertBenchFolder, benchInputsDir, benchResultsDir } from './benchRecord.js';

const GRID: Grid = [81, 104, 83];
const TRIALS = 750;
const NSDGENERAL_VOXELS = 15724; // subject 1 (MindEye's count)
const TARGET_SECONDS = 3;
const TARGET_RSS_MB = 400;

const inputsDir = benchInputsDir('data');
const root = path.join(inputsDir, 'nsd');
const sessionFile = P.betasPath(root, 1, 1, 'nifti');
const roiFile = P.roiPath(root, 1, 'nsdgeneral');
const cacheDir = path.join(inputsDir, 'cache');

/** Writes the full-size session, an nsdgeneral-sized ROI and a 40-session design, once. */
async function prepare(log: (s: string) => void): Promise<void> {
  if (existsSync(sessionFile) && existsSync(roiFile) && existsSync(P.expdesignPath(root))) return;
  log(`generating ${GRID.join('×')}×${TRIALS} int16 session (1.05 GB raw) in ${path.relative(process.cwd(), root)} ...`);
  const t0 = performance.now();
  const anatomy = buildAnatomy(GRID);
  const [X, Y, Z] = GRID;
  // The most posterior brain voxels, as many as subject 1's nsdgeneral; the rest of the brain is 0, outside −1.
  const roi = Int16Array.from(anatomy.brainmask, (b) => (b ? 0 : -1));
  let taken = 0;
  for (let y = 0; y < Y && taken < NSDGENERAL_VOXELS; y++) {
    for (let z = 0; z < Z && taken < NSDGENERAL_VOXELS; z++) {
      for (let x = 0; x < X && taken < NSDGENERAL_VOXELS; x++) {
        const i = x + X * (y + Y * z);
        if (anatomy.brainmask[i]) {
          roi[i] = 1;
          taken++;
        }
      }
    }
  }
  const geometry = geometryFromAffine([[1.8, 0, 0, -72], [0, 1.8, 0, -93], [0, 0, 1.8, -74], [0, 0, 0, 1]]);
  await mkdir(path.dirname(roiFile), { recursive: true });
  await writeNifti(roiFile, { dims: GRID, datatype: 'int16', ...geometry }, roi);
  // Betas: in-brain voxels ~ N(0, 1.5 %) × 300 as int16, zero outside, like NSD.
  const rng = new Rng(7);
  const table = Int16Array.from({ length: 1 << 16 }, () => Math.max(-32767, Math.min(32767, Math.round(rng.normal() * 450))));
  const brain = maskFromVolume(anatomy.brainmask, GRID, (b) => b > 0, 'brain').indices;
  let state = 0x1234567;
  function* volumes() {
    const vol = new Int16Array(X * Y * Z);
    for (let t = 0; t < TRIALS; t++) {
      for (let k = 0; k < brain.length; k++) {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        vol[brain[k]] = table[state & 0xffff];
      }
      yield vol;
    }
  }
  await mkdir(path.dirname(sessionFile), { recursive: true });
  await writeNifti(sessionFile, { dims: [...GRID, TRIALS], datatype: 'int16', ...geometry }, volumes());
  // NSD's design shape: 40 sessions × 750 trials, 10,000 images per subject, 1,000 shared.
  const designRng = new Rng(3);
  const perSubject = 10000;
  const order = designRng.shuffle(Array.from({ length: 30000 }, (_, t) => (t % perSubject) + 1));
  const subjectim = new Float64Array(8 * perSubject);
  for (let c = 0; c < perSubject; c++) for (let s = 0; s < 8; s++) subjectim[c * 8 + s] = c < 1000 ? c + 1 : 1000 + s * 9000 + (c - 1000) + 1;
  await mkdir(path.dirname(P.expdesignPath(root)), { recursive: true });
  await writeMat(P.expdesignPath(root), {
    masterordering: { dims: [1, 30000], data: Float64Array.from(order) },
    subjectim: { dims: [8, perSubject], data: subjectim },
    sharedix: { dims: [1, 1000], data: Float64Array.from({ length: 1000 }, (_, i) => i + 1) },
  }, { compress: true });
  log(`  done in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${(statSync(sessionFile).size / 2 ** 20).toFixed(0)} MB compressed`);
}

interface Measurement {
  seconds: number;
  peakRssMb: number;
  rows: number;
  cols: number;
  fromCache?: boolean;
  /** The gunzip floor's output bytes. */
  bytes?: number;
  /** The readers' inflater in that child (ts/io/gunzip.ts). */
  inflater?: string;
}

/** Child-process side: one measurement, printed as JSON. */
async function measure(kind: string): Promise<Measurement> {
  const t0 = performance.now();
  let rows = 0;
  let cols = 0;
  let fromCache: boolean | undefined;
  let bytes: number | undefined;
  if (kind === 'gunzip') {
    // (the NIfTI reader's own gunzip stream, its chunks counted and dropped)
    bytes = 0;
    for await (const chunk of gunzipOf(sessionFile)) bytes += (chunk as Buffer).length;
  } else if (kind === 'masked') {
    const roi = await readNifti(roiFile);
    const mask = maskFromVolume(roi.data, GRID, (v) => v > 0, roiFile);
    const { betas } = await readNiftiMasked(sessionFile, mask, { divisor: 300 });
    rows = betas.rows;
    cols = betas.cols;
  } else {
    const ex = await extractNsd({ root, subject: 1, roi: 'nsdgeneral', sessions: [1], format: 'nifti', cacheDir });
    rows = ex.train.rows + ex.test.rows;
    cols = ex.train.cols;
    fromCache = ex.fromCache;
  }
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, peakRssMb: process.resourceUsage().maxRSS / 1024, rows, cols, fromCache, bytes, inflater: gunzipChoice().detail };
}

/** One measurement in a child of its own; `gunzip` sets BRAINLATENT_GUNZIP there ('zlib': Node's zlib against ISA-L). */
function child(kind: string, gunzip?: 'zlib'): Measurement {
  const env = gunzip ? { ...process.env, BRAINLATENT_GUNZIP: gunzip } : process.env;
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--measure', kind], { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`bench child '${kind}' failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Measurement;
}

export async function runDataBench(log: (s: string) => void = console.log): Promise<Record<string, unknown>> {
  // (before: the inputs went into the installed package, and a read-only install died on a raw EACCES)
  await assertBenchFolder(inputsDir, 'its generated inputs (about 1 GB to write)');
  await assertBenchFolder(benchResultsDir(), 'its record');
  await prepare(log);
  const compressedMb = statSync(sessionFile).size / 2 ** 20;
  // (the file read once unmeasured first, so that neither side pays the disk: the floor ran first and could)
  await new Promise<void>((resolve, reject) => createReadStream(sessionFile, { highWaterMark: 8 << 20 }).on('data', () => {}).on('end', resolve).on('error', reject));
  const gunzip = child('gunzip');
  const masked = child('masked');
  // The same two on Node's zlib, when the readers' inflater is ISA-L: what it gains, in the same run.
  const onIsal = masked.inflater?.startsWith('ISA-L') ?? false;
  const gunzipZlib = onIsal ? child('gunzip', 'zlib') : undefined;
  const maskedZlib = onIsal ? child('masked', 'zlib') : undefined;
  log(`gunzip: ${masked.inflater}`);
  log(
    `masked extraction, one session (${GRID.join('×')}×${TRIALS} int16 .nii.gz, ${compressedMb.toFixed(0)} MB): ` +
      `${masked.rows}×${masked.cols} in ${masked.seconds.toFixed(2)} s, peak RSS ${masked.peakRssMb.toFixed(0)} MB ` +
      `(targets < ${TARGET_SECONDS} s, < ${TARGET_RSS_MB} MB)`,
  );
  log(
    `  the floor, same run: a plain gunzip of that file (the reader's own stream, nothing parsed) ${gunzip.seconds.toFixed(2)} s, ` +
      `${((gunzip.bytes ?? 0) / 2 ** 20 / gunzip.seconds).toFixed(0)} MB/s out; the extraction takes ${(masked.seconds / gunzip.seconds).toFixed(2)}× that`,
  );
  if (gunzipZlib && maskedZlib) {
    log(
      `  on Node's zlib instead, same run: the extraction ${maskedZlib.seconds.toFixed(2)} s, the plain gunzip ${gunzipZlib.seconds.toFixed(2)} s: ` +
        `ISA-L makes them ${(maskedZlib.seconds / masked.seconds).toFixed(2)}× and ${(gunzipZlib.seconds / gunzip.seconds).toFixed(2)}× faster`,
    );
  }
  rmSync(cacheDir, { recursive: true, force: true });
  mkdirSync(cacheDir, { recursive: true });
  const first = child('adapter');
  const cached = child('adapter');
  if (first.fromCache || !cached.fromCache) throw new Error('bench: cache did not behave (first run cached or second not)');
  log(`extractNsd nsdgeneral, 1 session, into the cache: ${first.seconds.toFixed(2)} s, peak RSS ${first.peakRssMb.toFixed(0)} MB`);
  log(`cached reload: ${cached.seconds.toFixed(3)} s, peak RSS ${cached.peakRssMb.toFixed(0)} MB`);
  const figures = {
    grid: GRID,
    trials: TRIALS,
    voxels: masked.cols,
    compressedMb,
    maskedExtract: { seconds: masked.seconds, peakRssMb: masked.peakRssMb },
    plainGunzip: { seconds: gunzip.seconds, bytes: gunzip.bytes },
    maskedOverGunzip: masked.seconds / gunzip.seconds,
    inflater: masked.inflater,
    ...(gunzipZlib && maskedZlib
      ? { zlib: { maskedExtract: { seconds: maskedZlib.seconds, peakRssMb: maskedZlib.peakRssMb }, plainGunzip: { seconds: gunzipZlib.seconds } } }
      : {}),
    adapterFirst: { seconds: first.seconds, peakRssMb: first.peakRssMb },
    cachedReload: { seconds: cached.seconds, peakRssMb: cached.peakRssMb },
    targets: { seconds: TARGET_SECONDS, peakRssMb: TARGET_RSS_MB },
    pass: masked.seconds < TARGET_SECONDS && masked.peakRssMb < TARGET_RSS_MB,
  };
  const file = appendBenchRecord('data', figures);
  log(`${figures.pass ? 'PASS' : 'MISS'}; recorded in ${path.relative(process.cwd(), file)}`);
  return figures;
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const i = process.argv.indexOf('--measure');
  const job = i > 0 ? measure(process.argv[i + 1]).then((m) => console.log(JSON.stringify(m))) : runDataBench();
  job.catch((e: unknown) => {
    // (a refusal is a sentence for the user; anything else keeps its stack)
    console.error(e instanceof BrainlatentError ? `bench data: ${e.message}` : e instanceof Error ? e.stack : String(e));
    process.exit(1);
  });
}
