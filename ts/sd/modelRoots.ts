/**
 * Where a model's files may lie once symbolic links are followed. From the CLI or the library a model folder is
 * the user's own, and a link in it is followed wherever it leads (a Hugging Face cache's snapshot links each file to
 * ../../blobs/<hash>, a `--local-dir` download links its large files into the cache). A service (`serve --root`)
 * loads folders a client names under its root, which anyone who can write there may have filled with links to
 * /etc/… or to another user's files: there a model file (model.onnx, its external data, a tokenizer's or a
 * scheduler's file) must lie, links followed, inside the service's root, or inside the blobs/ of the Hugging Face
 * cache folder of its model (the nearest `models--*` folder above it as named, when no link leads to it and it lies
 * inside the root or holds it: the blobs of a snapshot served as the root). Links are followed one at a time, and a
 * link leading outside is refused before what it leads to is looked at (no answer tells whether a file exists there).
 *
 * Two sets of roots apply, each only when it is set, and a file must pass both:
 * - the service's: its root, carried by each of its jobs (a queued job's nodes, BatchNode.modelRoots) and applied
 *   to that job only (withModelRoots: a worker serving the queues of several services, or a batch of the CLI
 *   beside them, holds each job to its own service's root). Outside any job, the serving process's own roots
 *   (confineModelsTo, passed on to its threads and job processes as SERVICE_MODEL_ROOTS_ENV).
 * - the operator's: BRAINLATENT_MODEL_ROOTS (folders separated by the platform's path delimiter), a restriction of
 *   the machine's whatever the job says (a `brainlatent worker` given its shared model storage).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { BigIntStats } from 'node:fs';
import { constants, existsSync } from 'node:fs';
import { lstat, open, readlink, realpath, type FileHandle } from 'node:fs/promises';
import { basename, delimiter, dirname, isAbsolute, join, parse, relative, resolve, sep } from 'node:path';

import { FormatError } from '../errors.js';

/** The operator's model roots (set by hand, never by brainlatent). */
export const MODEL_ROOTS_ENV = 'BRAINLATENT_MODEL_ROOTS';
/** The serving process's roots, as its preflight threads and forked job processes inherit them (set by confineModelsTo). */
export const SERVICE_MODEL_ROOTS_ENV = 'BRAINLATENT_SERVICE_MODEL_ROOTS';

const listed = (v: string | undefined) => [...new Set((v ?? '').split(delimiter).filter((p) => p.length > 0).map((p) => resolve(p)))];

/** The operator's model roots (absolute), from BRAINLATENT_MODEL_ROOTS; empty: no restriction of the operator's. */
export function operatorModelRoots(): string[] {
  return listed(process.env[MODEL_ROOTS_ENV]);
}

// the roots of the job whose code runs now (withModelRoots), across its awaits; other jobs of the process have their own
const jobRoots = new AsyncLocalStorage<readonly string[]>();

/**
 * The service's model roots (absolute) for the code running now: its job's (withModelRoots), else the process's
 * (confineModelsTo, or inherited from the service that forked it); empty: no service's restriction.
 */
export function serviceModelRoots(): string[] {
  const job = jobRoots.getStore();
  return job ? [...job] : listed(process.env[SERVICE_MODEL_ROOTS_ENV]);
}

/** Whether model files are held to any roots here (a service's or the operator's). */
export function modelsConfined(): boolean {
  return serviceModelRoots().length > 0 || operatorModelRoots().length > 0;
}

/**
 * Runs `fn` as a job of the service whose roots are `roots`: its model files (and those of everything it awaits)
 * are held to them, whatever the process's own (an empty list: the job has none, only the operator's apply).
 */
export function withModelRoots<T>(roots: readonly string[], fn: () => T): T {
  return jobRoots.run(roots.map((r) => resolve(r)), fn);
}

/** `env` without the serving process's roots: the environment of job processes that take other services' jobs too. */
export function withoutServiceRoots(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (env[SERVICE_MODEL_ROOTS_ENV] === undefined) return env;
  const { [SERVICE_MODEL_ROOTS_ENV]: _, ...rest } = env;
  return rest;
}

// roots added by confineModelsTo in this process, with how many services added each (one root, many test servers)
const added = new Map<string, number>();

/** Makes `root` a service model root of this process and the processes it starts from now on; returns the undo. */
export function confineModelsTo(root: string): () => void {
  const r = resolve(root);
  const own = () => listed(process.env[SERVICE_MODEL_ROOTS_ENV]);
  const n = added.get(r) ?? 0;
  added.set(r, n + 1);
  if (n === 0 && !own().includes(r)) process.env[SERVICE_MODEL_ROOTS_ENV] = [...own(), r].join(delimiter);
  let undone = false;
  return () => {
    if (undone) return;
    undone = true;
    const left = (added.get(r) ?? 1) - 1;
    if (left > 0) {
      added.set(r, left);
      return;
    }
    added.delete(r);
    const rest = own().filter((p) => p !== r);
    if (rest.length) process.env[SERVICE_MODEL_ROOTS_ENV] = rest.join(delimiter);
    else delete process.env[SERVICE_MODEL_ROOTS_ENV];
  };
}

/**
 * `p` is `folder` or inside it (both absolute). A name that merely starts with '..' ('..x', a file directly in the
 * folder) is inside: only '..' itself or a '../' prefix climbs out.
 */
export function isInside(folder: string, p: string): boolean {
  const rel = relative(folder, p);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

const realOr = (p: string) => realpath(p).catch(() => resolve(p));

/** The folders of one set of roots: as named and with links followed (the same folder twice when it has no link). */
interface RootSet {
  named: string[];
  real: string[];
}

const rootSet = async (roots: readonly string[]): Promise<RootSet> => ({ named: roots.map((r) => resolve(r)), real: await Promise.all(roots.map(realOr)) });

/**
 * The Hugging Face cache folder (models--*) of the model file named `model`, as it counts for `roots`: the nearest
 * models--* folder above the file as named, when it lies inside one of the roots or holds one (a snapshot served as
 * the root) and no link leads to it (its real path is the path as named: a link above it, `a` → another user's
 * ~/.cache/huggingface/hub, would make any cache count). Else null. Only its blobs/ count (see within).
 */
async function hfCacheFolder(model: string, roots: RootSet): Promise<string | null> {
  for (let d = dirname(resolve(model)); d !== dirname(d); d = dirname(d)) {
    if (!basename(d).startsWith('models--')) continue;
    // (checked as named before it is looked at: a folder unrelated to the roots is not touched)
    if (!roots.real.some((r) => isInside(r, d) || isInside(d, r))) return null;
    return (await realpath(d).catch(() => null)) === d ? d : null;
  }
  return null;
}

/** How a file named under one set of roots resolves, links followed one by one. */
type Resolved =
  /** the file, links followed, with its identity (`lstat` of the real path: a file, not a link) */
  | { kind: 'file'; real: string; dev: bigint; ino: bigint }
  /** no such file (a component is missing, or a link loops) where the roots allow looking */
  | { kind: 'missing' }
  /** a link leads outside the folders that may be looked at (the file there was not looked at) */
  | { kind: 'outside' };

const MAX_LINKS = 40;

const components = (p: string) => p.split(/[\\/]+/).filter((c) => c.length > 0);

/**
 * Follows the links of `named` one component at a time (as the kernel does: '..' after a link climbs from where the
 * link led), looking at a path only when `mayLook` allows it: a link that leads elsewhere is 'outside' before
 * whatever it leads to is looked at, so the answer is the same whether or not that file exists or can be read (a
 * client that can leave links under the root learns nothing of the machine's other files).
 */
async function resolveLinks(named: string, mayLook: (p: string) => boolean): Promise<Resolved> {
  const abs = isAbsolute(named) ? named : `${process.cwd()}${sep}${named}`;
  let at = parse(abs).root;
  const todo = components(abs.slice(at.length));
  let links = 0;
  let last: BigIntStats | null = null;
  while (todo.length > 0) {
    const c = todo.shift()!;
    if (c === '.') continue;
    if (c === '..') {
      at = dirname(at);
      continue;
    }
    const p = join(at, c);
    if (!mayLook(p)) return { kind: 'outside' };
    const st = await lstat(p, { bigint: true }).catch(() => null);
    if (st === null) return { kind: 'missing' };
    if (st.isSymbolicLink()) {
      if (++links > MAX_LINKS) return { kind: 'missing' };
      const target = await readlink(p);
      if (isAbsolute(target)) at = parse(target).root;
      todo.unshift(...components(isAbsolute(target) ? target.slice(parse(target).root.length) : target));
      last = null;
      continue;
    }
    if (todo.length > 0 && !st.isDirectory()) return { kind: 'missing' };
    at = p;
    last = st;
  }
  if (last === null) return { kind: 'missing' };
  return { kind: 'file', real: at, dev: last.dev, ino: last.ino };
}

/**
 * Where `named` leads under one set of roots: looked at only where they allow (an ancestor of a root, as named or
 * real, a path inside a root's real folder, or inside the counted cache folder's blobs/), and 'outside' when the file
 * it leads to is in none of the roots' real folders nor in that blobs/ folder.
 */
async function resolveUnder(named: string, roots: RootSet, cache: string | null): Promise<Resolved> {
  const blobs = cache === null ? null : join(cache, 'blobs');
  const allowed = (p: string) => roots.real.some((r) => isInside(r, p)) || (blobs !== null && isInside(blobs, p));
  const mayLook = (p: string) => allowed(p) || roots.named.some((r) => isInside(p, r)) || roots.real.some((r) => isInside(p, r)) || (cache !== null && isInside(p, cache));
  const r = await resolveLinks(named, mayLook);
  return r.kind === 'file' && !allowed(r.real) ? { kind: 'outside' } : r;
}

/** A checked model file: its real path, and its device and inode (what an opened file is compared with). */
export interface CheckedModelFile {
  real: string;
  dev: bigint;
  ino: bigint;
}

/**
 * Throws a FormatError when the file `named` (a model file, or the file an external data location names) lies,
 * links followed, outside the service's roots or outside the operator's (each where set; the model's Hugging Face
 * cache folder's blobs count as inside either when that folder lies inside or around one of them, see
 * hfCacheFolder): `what` says which file ('vocab.json', "tensor 'w''s external data 'weights.pb'"), `model` the
 * file named in the message. A link that leads outside is refused without looking at what it leads to: the same
 * error whether or not that file exists. A missing file inside the roots passes (its reader names it).
 */
export async function checkModelFile(named: string, what: string, model: string = named): Promise<void> {
  await checkedModelFile(named, what, model);
}

/** checkModelFile, returning the file it checked (null: no roots apply; 'missing': no such file inside them). */
export async function checkedModelFile(named: string, what: string, model: string = named): Promise<CheckedModelFile | 'missing' | null> {
  const service = serviceModelRoots();
  const operator = operatorModelRoots();
  if (service.length === 0 && operator.length === 0) return null;
  let found: Resolved | null = null;
  for (const [roots, refusal] of [
    [service, outsideService],
    [operator, outsideOperator],
  ] as const) {
    if (roots.length === 0) continue;
    const set = await rootSet(roots);
    const r = await resolveUnder(named, set, await hfCacheFolder(model, set));
    if (r.kind === 'outside') throw refusal(model, what);
    found = r;
  }
  return found?.kind === 'file' ? { real: found.real, dev: found.dev, ino: found.ino } : 'missing';
}

const outsideService = (model: string, what: string) =>
  new FormatError(
    `${model}: ${what} leads, through a symbolic link, outside the service's root folder (and outside the model's Hugging Face cache ` +
      `folder): a service reads model files only inside its root. Copy the file into the model's folder (\`cp -L\`)`,
    { path: model, field: what },
  );

const outsideOperator = (model: string, what: string) =>
  new FormatError(
    `${model}: ${what} lies, links followed, outside the folders ${MODEL_ROOTS_ENV} allows on this machine (and outside the model's ` +
      `Hugging Face cache folder). Copy the model into one of them, or ask the operator to add its folder`,
    { path: model, field: what },
  );

/**
 * Whether the model file (or folder) `named` exists, held to the roots where they apply: a link leading outside them
 * is the FormatError of checkModelFile whether or not anything is there (existsSync would tell a client who left the
 * link whether /etc/… exists). Without roots, existsSync.
 */
export async function modelPathExists(named: string, what: string, model: string = named): Promise<boolean> {
  const checked = await checkedModelFile(named, what, model);
  return checked === null ? existsSync(named) : checked !== 'missing';
}

// (tests only: run between a file's check and its opening, where a link could be flipped)
let betweenCheckAndOpen: ((named: string) => Promise<void> | void) | null = null;

/** Tests only: `hook` runs after each model file is checked and before it is opened (null: none). */
export function setModelFileOpenHook(hook: ((named: string) => Promise<void> | void) | null): void {
  betweenCheckAndOpen = hook;
}

const enoent = (named: string) => Object.assign(new Error(`ENOENT: no such file or directory, open '${named}'`), { code: 'ENOENT', path: named });

/**
 * The model file `named` opened for reading, held to the roots where they apply: checked (checkModelFile), opened,
 * and refused unless the file opened is the very file checked (its device and inode), so a link flipped between the
 * check and the opening is not read. A file missing at the check is ENOENT (never opened: it could be a link
 * outside by then). `real` is the file's real path (as checked; without roots, as found now), `checked` the file
 * as checked (null: no roots apply).
 */
export async function openModelFile(
  named: string,
  what: string,
  model: string = named,
): Promise<{ handle: FileHandle; real: string; checked: CheckedModelFile | null }> {
  const checked = await checkedModelFile(named, what, model);
  if (betweenCheckAndOpen) await betweenCheckAndOpen(named);
  if (checked === 'missing') throw enoent(named);
  const handle = await open(named, 'r');
  try {
    if (checked === null) return { handle, real: await realpath(named), checked };
    const st = await handle.stat({ bigint: true });
    if (st.dev !== checked.dev || st.ino !== checked.ino) throw changedFile(model, what);
    return { handle, real: checked.real, checked };
  } catch (e) {
    await handle.close();
    throw e;
  }
}

/** The bytes of the model file `named`, read from the file checked (openModelFile). */
export async function readModelFile(named: string, what: string, model: string = named): Promise<Buffer> {
  const { handle } = await openModelFile(named, what, model);
  try {
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

const changedFile = (model: string, what: string) =>
  new FormatError(
    `${model}: ${what} changed between its check and its reading (a link in its path was replaced): a service reads model files only ` +
      `inside its root, and a file that changes while it is read is refused. Retry once the folder no longer changes`,
    { path: model, field: what },
  );

/**
 * The bytes of the file at `real` (a path checkedModelFile returned) when it is still the file checked (`dev`,
 * `ino`, compared on the descriptor read): for onnxruntime-node, which is handed a model's external data as bytes
 * (the engine opens and compares such files itself, native/core checked_file.h). Else changedFile's FormatError.
 */
export async function readCheckedFile(real: string, checked: { dev: bigint; ino: bigint }, what: string, model: string): Promise<Buffer> {
  // (O_NONBLOCK: a FIFO put in its place is refused below, not waited on)
  const handle = await open(real, constants.O_RDONLY | constants.O_NONBLOCK).catch((e: NodeJS.ErrnoException) => {
    throw e.code === 'ENOENT' || e.code === 'ENOTDIR' || e.code === 'ELOOP' ? changedFile(model, what) : e;
  });
  try {
    const st = await handle.stat({ bigint: true });
    if (st.dev !== checked.dev || st.ino !== checked.ino || !st.isFile()) throw changedFile(model, what);
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

/** The files a model was checked as (checkedModelFile), to verify after ONNX Runtime, which opens them by path, read them. */
/**
 * An external data file as checked, for the engine (ts/native: onnxLoad's and sdLoad's `files`). Declared here, not in
 * onnxWeightRefs.ts: the public typings reach it (modelSource.ts), and onnxWeightRefs' .d.ts names onnx-proto, whose
 * typings need a global `Long` that a consumer with `"types": ["node"]` lacks.
 */
export interface CheckedDataFile {
  /** The name the graph gives it (a location of its external data). */
  location: string;
  /** Its real path when it was checked, and its device and inode then. */
  path: string;
  dev: bigint;
  ino: bigint;
  /** The file in messages ("tensor 'w' (…) keeps its data in 'w.bin', which"). */
  what: string;
  /** The tensor that needs its furthest bytes: the engine refuses the file it opens when it is shorter. */
  furthest?: TensorBytes;
}

/** The bytes of an external data file a tensor needs (its external data entries' offset and length). */
export interface TensorBytes {
  /** Its name; '' for an unnamed one, which `where` then places ("the 'value' attribute of Constant node 'c'"). */
  tensor: string;
  where?: string;
  offset: number;
  length: number;
}

export interface CheckedFiles {
  files: { named: string; what: string; model: string; checked: CheckedModelFile | 'missing' }[];
}

/**
 * Throws the FormatError of a file that is not, now, the file it was checked as (another real file, or another
 * device/inode, or outside the roots): for files read by path after their check (ONNX Runtime's model and external
 * data, when it opened them by path), whose load is refused then. Under roots ONNX Runtime now opens no path (the
 * engine hands it the bytes of the files checked: modelSource.ts), so this recheck is a second line only.
 */
export async function verifyUnchanged(files: CheckedFiles['files']): Promise<void> {
  for (const f of files) {
    const now = await checkedModelFile(f.named, f.what, f.model);
    const was = f.checked;
    const same = now === null || (now === 'missing' ? was === 'missing' : was !== 'missing' && now.real === was.real && now.dev === was.dev && now.ino === was.ino);
    if (!same) throw changedFile(f.model, f.what);
  }
}

/**
 * A preflight's problem with the model file `named`: `missing` when it is absent, the refusal when it leads outside
 * the roots (whether or not anything is there), null when it is there.
 */
export async function modelFileProblem(named: string, missing: string): Promise<string | null> {
  try {
    return (await modelPathExists(named, 'the model file')) ? null : missing;
  } catch (e) {
    if (e instanceof FormatError) return e.message;
    throw e;
  }
}
