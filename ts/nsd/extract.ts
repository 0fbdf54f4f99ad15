import { createHash } from 'node:crypto';
import { readFile, stat, utimes } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { checkCallback, checkSignalOption } from '../callbackOptions.js';
import { allocFloat32 } from '../allocate.js';
import { BrainlatentError, CancelledError, EnvironmentError, InvalidArgumentError, MissingFileError, ShapeError } from '../errors.js';
import { recoverInterruptedDir } from '../io/atomicWrite.js';
import { fileIdentity } from '../io/fileIdentity.js';
import { describeNumber } from '../ridge/alphas.js';
import { cannotEnter, folderNotEntered, outputPathProblem, readOnlyFolder } from '../io/outputProblem.js';
import { checkInteger, checkKnownKeys } from '../ridge/options.js';
import { maskCoordinates } from '../io/voxelMask.js';
import type { Matrix } from '../matrix.js';
import { allInOrder } from '../allInOrder.js';
import { MAX_SESSION, parseSessionSpec } from '../config/sessions.js';
import { assertHdf5Layout, availableSessions, betasGridAffine, formatSessionList, readSessionBetas, sessionBetasFile, sessionsBetasShape, sessionTrialCount, type BetasFormatChoice } from './betas.js';
import { nsdTrialTable, readNsdDesign } from './expdesign.js';
import { deletionBlocker, entryReadProblem, entryUnreadableError, folderBytes, holdForLoad, inspectEntry, permissionRefusal, removeReplacedEntries } from './cache.js';
import { assertCacheFolderApart, extractionInputs } from './cacheApart.js';
import { describeFiles, readNsdExtraction, writeExtractionFolder, type NsdExtraction, type NsdManifest, type RemovedCacheEntry } from './output.js';
import { maskGridMismatch } from './grid.js';
import { betasPath, expdesignPath, subjectDir, type BetasFormat } from './paths.js';
import { columnStats, standardize } from './preprocess.js';
import { otherFormatBetas, otherFormatNote } from './otherFormat.js';
import { loadRegionMask } from './roi.js';

export type ZscoreMode = 'session' | 'train' | 'none';
/** Delta degrees of freedom of a z-score's SD: 1 = sample SD (divides by n − 1), 0 = population SD (by n). */
export type ZscoreDdof = 0 | 1;

export interface NsdExtractOptions {
  root: string;
  subject: number;
  /** Region spec: nsdgeneral, streams:early, prf-visualrois:V1, a mask .nii.gz path, ... */
  roi: string;
  /** Sessions to use: numbers or a spec such as "1-37" or "1-10,12". Default: those present among 1–37. */
  sessions?: number[] | string;
  /** Which betas files to read. Default 'auto' (.hdf5 if present, else .nii.gz). */
  format?: BetasFormatChoice;
  /**
   * 'session': z-score each voxel across the trials of each session (MindEye, with scipy.stats.zscore:
   * ddof 0); 'train': standardise train and test with the training rows' mean and SD (Brain-Diffuser:
   * np.std with ddof 1; Takagi & Nishimoto: scikit-learn's StandardScaler, ddof 0); 'none' (default).
   */
  zscore?: ZscoreMode;
  /**
   * The SD's delta degrees of freedom for `zscore`: 1 (Brain-Diffuser) or 0 (scikit-learn's StandardScaler,
   * Takagi & Nishimoto; scipy.stats.zscore, MindEye). Default 1 for 'train', 0 for 'session'.
   */
  ddof?: ZscoreDdof;
  /** Average repetitions of each training image (Brain-Diffuser). Default false (Takagi trains on single trials). */
  averageTrain?: boolean;
  /** Average repetitions of each test image. Default true. */
  averageTest?: boolean;
  /** Divide raw betas by this: NSD stores percent signal change × 300. Default 300. */
  divisor?: number;
  /**
   * Cache folder: a completed extraction is stored there and reloaded when inputs and files are unchanged. It must lie
   * apart from the inputs (not the root, the subject's betas folder or a mask file, inside none, holding none; links
   * resolved): refused with InvalidArgumentError before anything is read or written. An existing folder this user
   * may read but not write in (a shared cache on a read-only mount) serves its entries; an extraction it lacks is
   * returned uncached, with `notCached` saying why. So is one whose entry there is damaged and cannot be replaced
   * (another user's, which this user may not delete: in a sticky shared folder, mode 1777, or a folder of theirs).
   */
  cacheDir?: string;
  /**
   * How the cache's messages name the option that sets `cacheDir`, where they say to point it elsewhere (`notCached`):
   * `nsd extract` gives '--cache', encode's and reconstruct's extract stages 'nsd.cacheDir'. Default 'cacheDir'.
   */
  cacheLabel?: string;
  /** Sessions decoded at once (gunzip runs off the main thread, so this uses more cores): 1..64. Default 2. */
  concurrency?: number;
  onProgress?: (event: { session: number; done: number; total: number; path: string }) => void;
  /**
   * Stops the extraction (between sessions, or while one is being read): rejects with CancelledError, and nothing
   * is written to the cache (a completed extraction only is stored there).
   */
  signal?: AbortSignal;
}

/** Every key of NsdExtractOptions: a misspelt one (averageTrian) is refused, not ignored with its default used. */
const EXTRACT_OPTION_KEYS = [
  'root', 'subject', 'roi', 'sessions', 'format', 'zscore', 'ddof', 'averageTrain', 'averageTest', 'divisor', 'cacheDir', 'cacheLabel', 'concurrency', 'onProgress', 'signal',
] as const satisfies readonly (keyof NsdExtractOptions)[];

/**
 * The most sessions decoded at once: each holds a decoded session (about a gigabyte for NSD's) until it is folded in,
 * so 64 is already far past any machine's memory and libuv's gunzip threads; an unbounded count spun the start loop.
 */
export const MAX_EXTRACT_CONCURRENCY = 64;

/** Public NSD sessions: the reference code uses 1–37. */
export const DEFAULT_MAX_SESSION = 37;

/**
 * Turns NSD betas into trials × voxels float32 matrices for a region, with the 73k id of every row and the
 * standard split (the shared images are the test set). Sessions are streamed one at a time and folded
 * straight into the outputs, so memory holds one session plus the results.
 */
export async function extractNsd(opts: NsdExtractOptions): Promise<NsdExtraction> {
  const o = normalize(opts);
  if (o.cacheDir) {
    await assertCacheFolder(o.cacheDir);
    // a cache folder still to be made where none can be (a read-only parent) failed after the whole extraction; an
    // existing one that cannot be written is read-only, and serves what it has (below)
    const exists = await stat(o.cacheDir).then(() => true, () => false);
    const unmakeable = exists ? null : await outputPathProblem(o.cacheDir, 'folder');
    if (unmakeable) throw new InvalidArgumentError(`extractNsd cacheDir: ${o.cacheDir}: ${unmakeable}; expected a folder for completed extractions`);
    // entries are written there and stale ones removed: never into or out of what the extraction reads
    await assertCacheFolderApart('cacheDir', o.cacheDir, extractionInputs(o));
  }
  const sessions = await resolveSessions(o);
  const files = await sessionFiles(o, sessions);
  const region = await loadRegionMask(o.root, o.subject, o.roi);
  // a mask off the subject's grid (other dimensions, or the same ones placed elsewhere) is refused before the
  // cache is consulted: its header is the geometry the outputs' voxels (and encode's maps) are given
  // (every session's header: one of other trials, grid or placement would be read as if it were the first's)
  const { grid, trials } = await sessionsBetasShape(files);
  await assertHdf5Layout(o.root, o.subject, files[0], { grid, trials });
  const offGrid = maskGridMismatch(region, { grid, betasFile: files[0].path, affine: await betasGridAffine(o.root, o.subject, files[0], grid), trialsPerSession: trials }, 'roi', o.subject);
  if (offGrid) throw new ShapeError(offGrid);
  const designFile = expdesignPath(o.root);
  const sourcePaths = [designFile, region.path, ...files.map((f) => f.path)];
  const sources = await allInOrder(sourcePaths.map((p) => fileIdentity(p)));
  const keyInput = {
    root: resolve(o.root), subject: o.subject, roi: o.roi, sessions, format: files.map((f) => f.format),
    zscore: o.zscore, ...(o.zscore === 'none' ? {} : { ddof: o.ddof }), averageTrain: o.averageTrain, averageTest: o.averageTest,
    divisor: o.divisor, sources,
    // (the label values a named region stands for: an atlas's .ctab renumbered picks other voxels from the same volume)
    roiValues: region.values,
  };
  const key = createHash('sha256').update(JSON.stringify(keyInput)).digest('hex').slice(0, 20);
  const cacheEntry = o.cacheDir ? join(o.cacheDir, `${subjectDir(o.subject)}_${slug(o.roi)}_${key}`) : null;
  if (cacheEntry) await recoverInterruptedDir(cacheEntry);
  // a cache folder this user may read but not write in (a lab's shared cache on a read-only mount): its entries are
  // served, and an extraction it misses is returned without being cached, which the result says
  const readOnly = o.cacheDir ? await readOnlyFolder(o.cacheDir) : null;
  // (why this extraction is not to be written to the cache: the result's notCached)
  let notCached: string | undefined = readOnly !== null ? `${readOnly}, so this extraction was not cached there` : undefined;
  let damaged: (RemovedCacheEntry & { damage: string }) | null = null;
  if (cacheEntry && o.cacheDir) {
    const cached = await loadCacheEntry(cacheEntry, key);
    if (cached && 'damage' in cached && readOnly !== null) {
      notCached = await readOnlyDamaged(o.cacheDir, cacheEntry, cached.damage, readOnly, o.cacheLabel);
    } else if (cached && 'damage' in cached) {
      // (one this user cannot delete, another user's: known now, before the work, and left as it is, as in a
      // read-only cache folder; the extraction is still used)
      const blocker = await deletionBlocker(cacheEntry);
      if (blocker !== null) notCached = await unreplaceable(cacheEntry, cached.damage, blocker, o.cacheLabel);
      else damaged = { path: cacheEntry, bytes: await folderBytes(cacheEntry), why: `damaged (${cached.damage}); extracted again and written in its place`, damage: cached.damage };
    } else if (cached) return cached;
  }

  const design = await readNsdDesign(o.root, designFile);
  const T = await sessionTrialCount(files[0]);
  const table = nsdTrialTable(design, o.subject, sessions, T, files[0].path);
  const mask = region.mask;
  const V = mask.indices.length;

  // Row of every trial in the outputs: averaged sets get one row per image, in first-appearance order.
  const trainPlan = plan(table.imageId, table.test, 0, o.averageTrain);
  const testPlan = plan(table.imageId, table.test, 1, o.averageTest);
  const train = allocFloat32(trainPlan.rows * V, `extractNsd: the training betas (${trainPlan.rows} rows × ${V} voxels)`);
  const test = allocFloat32(testPlan.rows * V, `extractNsd: the test betas (${testPlan.rows} rows × ${V} voxels)`);
  let flatVoxels = 0;

  // Sessions are read a few at a time but folded in session order, so sums are bit-for-bit reproducible.
  const window: Promise<Matrix>[] = [];
  const start = (k: number) => {
    if (k >= files.length) return;
    const p = readSessionBetas(files[k], mask, o.divisor);
    p.catch(() => undefined); // surfaced when awaited in order; never an unhandled rejection meanwhile
    window.push(p);
  };
  for (let k = 0; k < Math.min(o.concurrency, files.length); k++) start(k);
  const cancelled = (k: number) => new CancelledError(`extractNsd: cancelled after ${k} of ${sessions.length} session${sessions.length > 1 ? 's' : ''}; nothing written to the cache`, { cause: o.signal?.reason });
  for (let k = 0; k < sessions.length; k++) {
    const file = files[k];
    // a real session is a gigabyte to decode: an abort does not wait for the read in progress
    const betas = await untilAborted(window[k], o.signal, () => cancelled(k));
    delete window[k];
    start(k + o.concurrency);
    if (betas.rows !== T) {
      throw new ShapeError(`${file.path}: ${betas.rows} trials, expected ${T} like ${files[0].path}`);
    }
    if (o.zscore === 'session') {
      const { mean, std } = columnStats(betas, o.ddof);
      flatVoxels = Math.max(flatVoxels, standardize(betas, mean, std));
    }
    for (let p = 0; p < T; p++) {
      const t = k * T + p;
      const isTest = table.test[t] === 1;
      const row = (isTest ? testPlan : trainPlan).rowOf[t];
      accumulate(isTest ? test : train, row, betas, p, V);
    }
    o.onProgress?.({ session: sessions[k], done: k + 1, total: sessions.length, path: file.path });
  }
  if (o.signal?.aborted) throw cancelled(sessions.length);
  const trainM: Matrix = { data: train, rows: trainPlan.rows, cols: V };
  const testM: Matrix = { data: test, rows: testPlan.rows, cols: V };
  divideByCounts(trainM, trainPlan.counts);
  divideByCounts(testM, testPlan.counts);
  if (o.zscore === 'train') {
    if (trainM.rows < 2) throw new InvalidArgumentError(`zscore 'train' needs at least 2 training rows, got ${trainM.rows}`);
    const { mean, std } = columnStats(trainM, o.ddof);
    flatVoxels = standardize(trainM, mean, std);
    standardize(testM, mean, std);
  }

  const reps: Record<string, number> = {};
  for (const c of countsPerImage(table.imageId, table.test, 1).values()) reps[c] = (reps[c] ?? 0) + 1;
  const base = {
    train: trainM,
    test: testM,
    trainImageIds: trainPlan.ids,
    testImageIds: testPlan.ids,
    voxels: maskCoordinates(mask),
  };
  const manifest: NsdManifest = {
    format: 'brainlatent-nsd-extraction',
    version: 1,
    key,
    createdAt: new Date().toISOString(),
    software: await software(),
    inputs: {
      root: resolve(o.root),
      subject: o.subject,
      roi: o.roi,
      roiFile: resolve(region.path),
      roiValues: region.values,
      sessions,
      betasFormat: [...new Set(files.map((f) => f.format))].join(','),
      trialsPerSession: T,
    },
    options: { zscore: o.zscore, ...(o.zscore === 'none' ? {} : { ddof: o.ddof }), averageTrain: o.averageTrain, averageTest: o.averageTest, divisor: o.divisor },
    sources,
    grid: mask.grid,
    counts: {
      trainTrials: trainPlan.trials,
      testTrials: testPlan.trials,
      trainRows: trainPlan.rows,
      testRows: testPlan.rows,
      trainImages: countsPerImage(table.imageId, table.test, 0).size,
      testImages: countsPerImage(table.imageId, table.test, 1).size,
      voxels: V,
      testRepetitions: reps,
      flatVoxels,
    },
    files: describeFiles(base),
  };
  const result: NsdExtraction = { ...base, manifest, fromCache: false };
  if (cacheEntry && notCached !== undefined) result.notCached = notCached;
  // Only a completed extraction reaches the cache, and it appears there whole (renamed into place).
  else if (cacheEntry && o.cacheDir) {
    try {
      await writeExtractionFolder(cacheEntry, result);
    } catch (e) {
      // (a damaged entry that the checks said could go, but whose move aside was refused: the extraction's work is
      // not thrown away for it; the entry, still there and still damaged, is left as it is)
      const refused = damaged ? await refusedReplacement(cacheEntry, key, e) : null;
      if (refused === null || damaged === null) throw e;
      result.notCached = await unreplaceable(cacheEntry, damaged.damage, { why: refused, readOnlyFs: false }, o.cacheLabel);
      return result;
    }
    // the entries it replaces (of an earlier version of a file it has just read) can never be loaded again: they go,
    // and a damaged one of this key has just been replaced: each is said (the caller prints them), and so is each
    // replaced one that had to stay (held by a load; this user cannot delete it)
    const replaced = await removeReplacedEntries(o.cacheDir, key, sources);
    result.removedFromCache = [...(damaged ? [{ path: damaged.path, bytes: damaged.bytes, why: damaged.why }] : []), ...replaced.removed];
    result.keptInCache = replaced.kept;
  }
  return result;
}

/** A problem extractNsd would refuse its inputs for, and the option it is about. */
export interface ExtractionProblem {
  option: 'root' | 'subject' | 'roi' | 'sessions' | 'format';
  error: BrainlatentError;
}

/**
 * What extractNsd would refuse before reading any betas, every problem at once (a command line lists them together
 * instead of one per try): the root, the region, the sessions (those without betas named with those that have them),
 * the design and the sessions it covers, and a mask on another grid than the betas. Headers and small files only;
 * each refusal is extractNsd's own. Errors other than refusals (a bug) are thrown.
 */
export async function extractionProblems(opts: Pick<NsdExtractOptions, 'root' | 'subject' | 'roi' | 'sessions' | 'format'>): Promise<ExtractionProblem[]> {
  const o = normalize(opts);
  const rootStat = await stat(o.root).catch(() => null);
  if (!rootStat?.isDirectory()) {
    // (a file there was said not to exist)
    const expected = '(expected the folder holding nsddata/ and nsddata_betas/)';
    const error = rootStat
      ? new InvalidArgumentError(`NSD root ${o.root} is a file, not a folder ${expected}`)
      : new MissingFileError(`NSD root ${o.root} does not exist ${expected}`);
    return [{ option: 'root', error }];
  }
  const problems: ExtractionProblem[] = [];
  const attempt = async <T>(option: ExtractionProblem['option'], check: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await check();
    } catch (e) {
      // (an environment variable's problem is the process's, not an option's: BRAINLATENT_GUNZIP)
      if (!(e instanceof BrainlatentError) || e instanceof EnvironmentError) throw e;
      // (a subject without any betas is the subject's problem, whichever check found it; betas only in the other
      // format, the format's)
      problems.push({ option: e instanceof BetasInOtherFormatError ? 'format' : e instanceof SubjectWithoutBetasError ? 'subject' : option, error: e });
      return undefined;
    }
  };
  const region = await attempt('roi', () => loadRegionMask(o.root, o.subject, o.roi));
  const sessions = await attempt('sessions', () => resolveSessions(o));
  const files = sessions && (await attempt('sessions', () => sessionFiles(o, sessions)));
  const design = await attempt('root', () => readNsdDesign(o.root));
  const shape = files && (await attempt('sessions', () => sessionsBetasShape(files)));
  const first =
    shape &&
    files &&
    (await attempt('sessions', async () => {
      await assertHdf5Layout(o.root, o.subject, files[0], shape);
      return shape;
    }));
  if (sessions && design && first) await attempt('sessions', async () => nsdTrialTable(design, o.subject, sessions, first.trials, files[0].path));
  // (the check extractNsd makes: dimensions, and the affine where the subject's is known)
  if (region && files && first) {
    await attempt('roi', async () => {
      const affine = await betasGridAffine(o.root, o.subject, files[0], first.grid);
      const offGrid = maskGridMismatch(region, { grid: first.grid, betasFile: files[0].path, affine, trialsPerSession: first.trials }, null, o.subject);
      if (offGrid) throw new ShapeError(offGrid);
    });
  }
  return problems;
}

/**
 * Parses "1-37", "1,3,5-7" into sorted unique session numbers; a spec it refuses is an InvalidArgumentError naming
 * `label` and every problem, in the words a config's nsd.sessions gets (ts/config/sessions.ts: one grammar).
 */
export function parseSessions(spec: string, label = 'sessions'): number[] {
  const { sessions, problems } = parseSessionSpec(spec);
  if (problems.length) throw new InvalidArgumentError(`${label}: ${problems.join('; ')}`);
  return sessions;
}

/**
 * The extraction in cache entry `entry` (named for `key`), or null when there is none, or, when the entry is damaged
 * (inspectEntry: its manifest broken or missing, a file missing or truncated; or its data not finite), what is wrong
 * with it: a miss, which the caller extracts afresh and writes in its place (or, when this user cannot delete the
 * entry, returns uncached, leaving it). An entry this process cannot read (a
 * file of another user's, an I/O error, a newer brainlatent's manifest, memory) is no miss: that is thrown
 * (entryUnreadableError), naming the entry, which is left as it is. The entry is held while it is read
 * (`brainlatent cache prune` leaves it alone meanwhile), and its folder's modification time is set to now: the
 * entry's last use, which `cache list` shows and `cache prune --older-than` goes by. An entry a removal has marked is
 * not read (null, and the extraction runs again): a remover that looked for holds before this one was taken is about
 * to rename it (cache.ts's removal marks). An entry that another process swapped in while it was read is read again.
 */
async function loadCacheEntry(entry: string, key: string): Promise<NsdExtraction | { damage: string } | null> {
  for (let attempt = 1; ; attempt++) {
    const release = await holdForLoad(entry);
    if (!release) return null;
    try {
      const before = await stat(entry).catch(() => null);
      if (!before) return null;
      const { damage, unreadable } = await inspectEntry(entry, key);
      let problem: ReturnType<typeof entryReadProblem> | null = unreadable ? { unreadable } : damage !== null ? { damage } : null;
      if (problem === null) {
        try {
          const cached = await readNsdExtraction(entry);
          const now = new Date();
          await utimes(entry, now, now).catch(() => undefined); // a read-only cache keeps its times
          return cached;
        } catch (e) {
          problem = entryReadProblem(entry, e);
        }
      }
      // (gone, or another folder now: written again by another process while this one read it)
      const after = await stat(entry).catch(() => null);
      if (!after) return null;
      if ((after.ino !== before.ino || after.dev !== before.dev) && attempt < 3) continue;
      if ('unreadable' in problem) throw entryUnreadableError(entry, problem.unreadable);
      return problem;
    } finally {
      await release();
    }
  }
}

/**
 * The notCached line for the damaged entry `entry` (`damage`), which this user cannot delete (`blocker`): what is
 * wrong with it, why it stays, and what to do. Replacing it is for its owner or the cache's admin; on a read-only
 * file system, nobody's.
 */
async function unreplaceable(entry: string, damage: string, blocker: { why: string; readOnlyFs: boolean }, label: string): Promise<string> {
  const owner = blocker.readOnlyFs ? undefined : (await stat(entry).catch(() => null))?.uid;
  const remedy = blocker.readOnlyFs
    ? `point ${label} at a writable folder to cache it`
    : `ask its owner${owner === undefined ? '' : ` (uid ${owner})`} or the cache's admin to remove it, or point ${label} at another cache folder`;
  return `its damaged entry ${entry} (${damage}) could not be replaced: ${blocker.why}, so this extraction was not cached; ${remedy}`;
}

/**
 * The notCached line for the damaged entry `entry` (`damage`) of a cache folder `dir` this user may not write in
 * (`readOnly`: notWritable's words): that the folder is read-only, and what to do — have the folder's owner remove
 * the entry (the next extraction there then caches it), or point `label` at a folder this user can write in.
 */
async function readOnlyDamaged(dir: string, entry: string, damage: string, readOnly: string, label: string): Promise<string> {
  const owner = (await stat(dir).catch(() => null))?.uid;
  return (
    `the cache folder is read-only to this user (${readOnly}): its damaged entry ${entry} (${damage}) could not be replaced, so this extraction was not cached; ` +
    `ask whoever owns ${dir}${owner === undefined ? '' : ` (uid ${owner})`} to remove that entry, or point ${label} at a writable folder`
  );
}

/**
 * Why writing the extraction over the damaged entry `entry` failed, when it was refused permission (EACCES, EPERM:
 * moving another user's entry aside, where the checks before the work foresaw nothing) and left the entry there,
 * still damaged; null for any other failure (thrown as it was).
 */
async function refusedReplacement(entry: string, key: string, e: unknown): Promise<string | null> {
  const err = permissionRefusal(e);
  if (err === null) return null;
  if ((await inspectEntry(entry, key).catch(() => null))?.damage == null) return null;
  return `this user may not replace it (${err.syscall ?? 'write'}: ${err.code})`;
}

/**
 * The cache entry is written after the extraction: a cacheDir that is a file, or lies below one, is refused before
 * any work, naming the path given (the writer's own error named the entry inside it).
 */
async function assertCacheFolder(dir: string): Promise<void> {
  for (let p = dir; ; p = dirname(p)) {
    try {
      if ((await stat(p)).isDirectory()) return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // (a folder above it this user cannot enter, named: "EACCES … stat '<dir>'" named the path given)
      const notEntered = code === 'EACCES' ? await folderNotEntered(dir) : null;
      if (notEntered !== null) throw new InvalidArgumentError(`extractNsd cacheDir: expected a folder for completed extractions, got ${dir}, where ${cannotEnter(notEntered)}`);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
      if (dirname(p) === p) return;
      continue;
    }
    const where = p === dir ? 'a file' : `which lies below ${p}, a file`;
    throw new InvalidArgumentError(`extractNsd cacheDir: expected a folder for completed extractions, got ${dir}, ${where}`);
  }
}

type Normalized = Required<Omit<NsdExtractOptions, 'sessions' | 'cacheDir' | 'onProgress' | 'signal'>> &
  Pick<NsdExtractOptions, 'sessions' | 'cacheDir' | 'onProgress' | 'signal'>;

/** `p`, or a rejection with `cancelled()` as soon as `signal` aborts (at once if it already has). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined, cancelled: () => Error): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(cancelled());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(cancelled());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

const ZSCORE_MODES: readonly ZscoreMode[] = ['session', 'train', 'none'];
const BETAS_FORMATS: readonly BetasFormatChoice[] = ['auto', 'nifti', 'hdf5'];

/** A choice as typed (quoted), anything else as describeNumber shows it. */
const describeChoice = (v: unknown): string => (typeof v === 'string' ? `'${v}'` : describeNumber(v));

/**
 * The options checked, each error in one form ('extractNsd subject: expected an integer in 1..8, got 9'), and the
 * defaults filled in. Only a missing (undefined) option takes its default: an explicit null is refused like any other
 * wrong value, as the types say.
 */
function normalize(opts: NsdExtractOptions): Normalized {
  if (opts === null || typeof opts !== 'object') throw new InvalidArgumentError(`extractNsd: expected an options object ({ root, subject, roi, ... }), got ${opts === null ? 'null' : typeof opts}`);
  checkKnownKeys(opts, EXTRACT_OPTION_KEYS, 'extractNsd');
  checkCallback(opts.onProgress, 'extractNsd', 'onProgress');
  if (typeof opts.root !== 'string' || opts.root === '') throw new InvalidArgumentError(`extractNsd root: expected the NSD folder (a path), got ${describeNumber(opts.root)}`);
  checkInteger(opts.subject, 'subject', 'extractNsd', 1, 8);
  const zscore = opts.zscore === undefined ? 'none' : opts.zscore;
  if (!ZSCORE_MODES.includes(zscore)) throw new InvalidArgumentError(`extractNsd zscore: expected one of ${ZSCORE_MODES.join(', ')}, got ${describeChoice(zscore)}`);
  const ddof = opts.ddof === undefined ? (zscore === 'train' ? 1 : 0) : opts.ddof;
  if (ddof !== 0 && ddof !== 1) throw new InvalidArgumentError(`extractNsd ddof: expected 0 or 1, got ${describeNumber(ddof)}`);
  const format = opts.format === undefined ? 'auto' : opts.format;
  if (!BETAS_FORMATS.includes(format)) throw new InvalidArgumentError(`extractNsd format: expected one of ${BETAS_FORMATS.join(', ')}, got ${describeChoice(format)}`);
  checkSignalOption(opts.signal, 'extractNsd');
  const divisor = opts.divisor === undefined ? 300 : opts.divisor;
  if (typeof divisor !== 'number' || !(Number.isFinite(divisor) && divisor > 0)) {
    throw new InvalidArgumentError(`extractNsd divisor: expected a finite number > 0, got ${describeNumber(divisor)}`);
  }
  const concurrency = opts.concurrency === undefined ? 2 : checkInteger(opts.concurrency, 'concurrency', 'extractNsd', 1, MAX_EXTRACT_CONCURRENCY);
  const cacheLabel = opts.cacheLabel === undefined ? 'cacheDir' : opts.cacheLabel;
  if (typeof cacheLabel !== 'string' || cacheLabel === '') throw new InvalidArgumentError(`extractNsd cacheLabel: expected the name of the cache folder's option (a string), got ${describeNumber(cacheLabel)}`);
  return {
    ...opts,
    cacheLabel,
    zscore,
    ddof,
    format,
    divisor,
    averageTrain: opts.averageTrain ?? false,
    averageTest: opts.averageTest ?? true,
    concurrency,
  };
}

/**
 * The betas file of every session. Sessions named explicitly ("1-37" on a partial download) that have none are
 * listed together with the sessions that do, so one message says what to ask for.
 */
async function sessionFiles(o: Normalized, sessions: number[]): Promise<{ path: string; format: BetasFormat }[]> {
  try {
    return await allInOrder(sessions.map((s) => sessionBetasFile(o.root, o.subject, s, o.format)));
  } catch (e) {
    if (!(e instanceof MissingFileError) || o.sessions === undefined) throw e;
    const present = await availableSessions(o.root, o.subject, o.format, Math.max(DEFAULT_MAX_SESSION, ...sessions));
    if (present.length === 0) throw await subjectWithoutBetas(o);
    const missing = sessions.filter((s) => !present.includes(s));
    const message =
      `${e.message}; of the sessions asked for (${formatSessionList(sessions)}), ${formatSessionList(missing)} ha${missing.length > 1 ? 've' : 's'} no betas ` +
      `(format '${o.format}'); sessions with betas for subject ${o.subject}: ${formatSessionList(present)}`;
    // sessions whose betas are all there in the other format: the format chosen is the problem
    const elsewhere = await otherFormatBetas(o.root, o.format, [o.subject], Math.max(...missing), missing);
    if (elsewhere?.subjects[0].sessions.length === missing.length) throw new BetasInOtherFormatError(`${message}; ${otherFormatNote(elsewhere, 'format')}`);
    throw new MissingFileError(elsewhere ? `${message}; ${otherFormatNote(elsewhere, 'format')}` : message);
  }
}

/** No betas at all for the subject asked for: the subject is the problem (not the sessions), named by its own option. */
class SubjectWithoutBetasError extends MissingFileError {}

/** No betas in the format chosen, but the subject's betas are there in the other one: the format is the problem. */
class BetasInOtherFormatError extends MissingFileError {}

/**
 * The refusal of a subject without betas, naming the subjects the root has betas for, and (a format chosen) those
 * with betas in the other format and how to read them.
 */
async function subjectWithoutBetas(o: Normalized): Promise<SubjectWithoutBetasError> {
  const others: number[] = [];
  for (let s = 1; s <= 8; s++) {
    if (s !== o.subject && (await availableSessions(o.root, s, o.format, DEFAULT_MAX_SESSION)).length > 0) others.push(s);
  }
  const has = others.length === 0 ? 'no subject' : `subject${others.length > 1 ? 's' : ''} ${others.join(', ')}`;
  // (in the words of a config's preflight: ts/nsd/sessionPlan.ts)
  const first = betasPath(o.root, o.subject, 1, o.format === 'nifti' ? 'nifti' : 'hdf5');
  const message = `subject ${o.subject} has no betas in ${o.root} (format '${o.format}': looked for ${first} and the other sessions 1-${DEFAULT_MAX_SESSION})`;
  const elsewhere = await otherFormatBetas(o.root, o.format, [1, 2, 3, 4, 5, 6, 7, 8], DEFAULT_MAX_SESSION);
  if (!elsewhere) return new SubjectWithoutBetasError(`${message}; the root has betas for ${has}`);
  const tail = others.length ? `; the root has '${o.format}' betas for ${has}, and ${otherFormatNote(elsewhere, 'format', '')}` : `; ${otherFormatNote(elsewhere, 'format')}`;
  return elsewhere.subjects.some((s) => s.subject === o.subject) ? new BetasInOtherFormatError(`${message}${tail}`) : new SubjectWithoutBetasError(`${message}${tail}`);
}

async function resolveSessions(o: Normalized): Promise<number[]> {
  if (o.sessions !== undefined) {
    const s = typeof o.sessions === 'string' ? parseSessions(o.sessions, 'extractNsd sessions') : Array.isArray(o.sessions) ? [...new Set(o.sessions)].sort((a, b) => a - b) : [];
    if (s.length === 0 || s.some((x) => !Number.isInteger(x) || x < 1 || x > MAX_SESSION)) {
      const got = Array.isArray(o.sessions) ? `[${o.sessions.map(describeNumber).join(', ')}]` : describeNumber(o.sessions);
      throw new InvalidArgumentError(`extractNsd sessions: expected integers from 1 to ${MAX_SESSION} (NSD's run to 40) or a spec such as "1-37", got ${got}`);
    }
    return s;
  }
  const found = await availableSessions(o.root, o.subject, o.format, DEFAULT_MAX_SESSION);
  // (named with the first file looked for, so the user sees where betas are expected)
  if (found.length === 0) throw await subjectWithoutBetas(o);
  return found;
}

interface RowPlan {
  rowOf: Int32Array;
  rows: number;
  trials: number;
  ids: Int32Array;
  counts: Int32Array;
}

/** Row of each trial of one split (others −1); averaged splits map repeats of an image to one row. */
function plan(imageId: Int32Array, test: Uint8Array, split: 0 | 1, average: boolean): RowPlan {
  const rowOf = new Int32Array(imageId.length).fill(-1);
  const ids: number[] = [];
  const counts: number[] = [];
  const rowOfImage = new Map<number, number>();
  let trials = 0;
  for (let t = 0; t < imageId.length; t++) {
    if (test[t] !== split) continue;
    trials++;
    let row = average ? rowOfImage.get(imageId[t]) : undefined;
    if (row === undefined) {
      row = ids.length;
      ids.push(imageId[t]);
      counts.push(0);
      if (average) rowOfImage.set(imageId[t], row);
    }
    counts[row]++;
    rowOf[t] = row;
  }
  return { rowOf, rows: ids.length, trials, ids: Int32Array.from(ids), counts: Int32Array.from(counts) };
}

/**
 * The 73k image id of each training row the extraction will give for these trials (its row order): one per trial,
 * or with `average` one per image in first-appearance order. Known from the design before any betas are read,
 * as the groups of the fits' folds: the preflights plan the fits' memory with them.
 */
export function trainRowImageIds(table: { imageId: Int32Array; test: Uint8Array }, average: boolean): Int32Array {
  return plan(table.imageId, table.test, 0, average).ids;
}

function accumulate(out: Float32Array, row: number, betas: Matrix, p: number, V: number): void {
  const o = row * V;
  const src = betas.data.subarray(p * V, (p + 1) * V);
  for (let j = 0; j < V; j++) out[o + j] += src[j];
}

function divideByCounts(m: Matrix, counts: Int32Array): void {
  for (let r = 0; r < m.rows; r++) {
    const c = counts[r];
    if (c <= 1) continue;
    const o = r * m.cols;
    for (let j = 0; j < m.cols; j++) m.data[o + j] /= c;
  }
}

function countsPerImage(imageId: Int32Array, test: Uint8Array, split: 0 | 1): Map<number, number> {
  const m = new Map<number, number>();
  for (let t = 0; t < imageId.length; t++) if (test[t] === split) m.set(imageId[t], (m.get(imageId[t]) ?? 0) + 1);
  return m;
}

function slug(s: string): string {
  return s.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40) || 'roi';
}

async function software(): Promise<{ name: string; version: string }> {
  try {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
    return { name: pkg.name, version: pkg.version };
  } catch {
    return { name: 'brainlatent', version: 'unknown' };
  }
}
