/**
 * Where a model's files may lie once symbolic links are followed. From the CLI or the library a model folder is
 * the user's own, and a link in it is followed wherever it leads (a Hugging Face cache's snapshot links each file to
 * ../../blobs/<hash>, a `--local-dir` download links its large files into the cache). A service (`serve --root`)
 * loads folders a client names under its root, which anyone who can write there may have filled with links to
 * /etc/… or to another user's files: there a model file (model.onnx, its external data, a tokenizer's or a
 * scheduler's file) must lie, links followed, inside the service's root, or inside the Hugging Face cache folder
 * of its model (the nearest `models--*` folder above it as named, when that is not itself a link: the blobs of a
 * snapshot served as the root).
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
import { lstat, realpath } from 'node:fs/promises';
import { basename, delimiter, dirname, isAbsolute, relative, resolve, sep } from 'node:path';

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
const inside = isInside;

const realOr = (p: string) => realpath(p).catch(() => resolve(p));

/** The Hugging Face cache folder of the model file named `named` (real path), or null. */
async function hfCacheFolder(named: string): Promise<string | null> {
  for (let d = dirname(resolve(named)); d !== dirname(d); d = dirname(d)) {
    if (!basename(d).startsWith('models--')) continue;
    // (a models--* folder that is itself a link could lead anywhere)
    return (await lstat(d).then((s) => s.isSymbolicLink(), () => true)) ? null : realpath(d);
  }
  return null;
}

/** Whether `real` lies in one of `roots` (real paths taken) or in `cache`; true when there are no roots. */
async function within(real: string, roots: readonly string[], cache: string | null): Promise<boolean> {
  if (roots.length === 0) return true;
  const folders = [...(await Promise.all(roots.map(realOr))), ...(cache ? [cache] : [])];
  return folders.some((f) => inside(f, real));
}

/**
 * Throws a FormatError when the file `named` (a model file, or the file an external data location names) lies,
 * links followed, outside the service's roots or outside the operator's (each where set; the model's Hugging Face
 * cache folder counts as inside both): `what` says which file ('vocab.json', "tensor 'w''s external data
 * 'weights.pb'"), `model` the file named in the message. A missing file passes (its reader names it).
 */
export async function checkModelFile(named: string, what: string, model: string = named): Promise<void> {
  const service = serviceModelRoots();
  const operator = operatorModelRoots();
  if (service.length === 0 && operator.length === 0) return;
  const real = await realpath(named).catch(() => null);
  if (real === null) return;
  const cache = await hfCacheFolder(model);
  if (!(await within(real, service, cache))) {
    throw new FormatError(
      `${model}: ${what} leads, through a symbolic link, outside the service's root folder (and outside the model's Hugging Face cache ` +
        `folder): a service reads model files only inside its root. Copy the file into the model's folder (\`cp -L\`)`,
      { path: model, field: what },
    );
  }
  if (!(await within(real, operator, cache))) {
    throw new FormatError(
      `${model}: ${what} lies, links followed, outside the folders ${MODEL_ROOTS_ENV} allows on this machine (and outside the model's ` +
        `Hugging Face cache folder). Copy the model into one of them, or ask the operator to add its folder`,
      { path: model, field: what },
    );
  }
}
