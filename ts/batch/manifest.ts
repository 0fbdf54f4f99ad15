/**
 * The batch manifest: which subjects, which analyses. Each analysis is a reconstruct or encode config used as
 * a template: `{subject}` (1), `{subj}` ("subj01") and `{name}` (the subject's name in the batch) are
 * substituted in every string, and out, nsd.root and nsd.subject are filled in per subject. The manifest is
 * checked against its JSON Schema (ajv), then every expanded config is validated, and every problem is
 * listed at once.
 */
import { createHash } from 'node:crypto';
import { dirname, isAbsolute, join, resolve } from 'node:path';

import type { ValidateFunction } from 'ajv';

import { BrainlatentError, InvalidArgumentError } from '../errors.js';
import { ajvPackage } from '../lazyPackages.js';
import { readJsonFile } from '../io/json.js';
import { EncodeConfigSchema, resolveEncodeConfig, type EncodeConfig } from '../config/encode.js';
import { resolveConfigPaths } from '../config/paths.js';
import { ReconstructConfigSchema } from '../config/reconstruct.js';
import { fieldLabel, problemsFrom } from '../config/problems.js';
import { resolveConfig, stableJson, type ReconstructConfig } from '../pipeline/config.js';
import { MAX_TIMER_MS } from '../ridge/options.js';
import type { Img2ImgSharding } from '../pipeline/stages.js';

/** A subject: its NSD number, or the number with a name, its own NSD root and per-analysis overrides. */
export type ManifestSubject =
  | number
  | {
      subject: number;
      /** Name in the batch (job ids, output folder). Default subjNN. */
      name?: string;
      /** NSD root of this subject (default: the manifest's nsd.root). */
      root?: string;
      /** Per analysis (by name): keys merged over the analysis template for this subject. */
      overrides?: Record<string, Record<string, unknown>>;
    };

export interface ManifestAnalysis {
  /** Name in the batch: job ids and the output folder <out>/<subject>/<name>. */
  name: string;
  kind: 'reconstruct' | 'encode';
  /** The config template, without out, nsd.root and nsd.subject. */
  config: Record<string, unknown>;
  /** reconstruct: how the img2img stage is split over workers. Default 64 images × 1 seed per shard. */
  shards?: Partial<Img2ImgSharding>;
}

export interface BatchManifest {
  /** The batch id: job ids start with it. Letters, digits, '_' and '-'. */
  name: string;
  /** Output folder: <out>/<subject>/<analysis>/ per run, <out>/<subject>/cache for the shared extraction. */
  out: string;
  nsd?: { root?: string };
  subjects: ManifestSubject[];
  analyses: ManifestAnalysis[];
  /** Transient failures: attempts per job and the first backoff (doubling). Default 3 × 2000 ms. */
  retry?: { attempts?: number; backoffMs?: number };
}

export interface ResolvedAnalysis {
  name: string;
  kind: 'reconstruct' | 'encode';
  /** The subject's validated config: a ReconstructConfig (defaults filled in) or an EncodeConfig. */
  config: ReconstructConfig | EncodeConfig;
  sharding: Img2ImgSharding;
}

export interface ResolvedSubject {
  name: string;
  subject: number;
  root: string;
  analyses: ResolvedAnalysis[];
}

export interface ResolvedBatch {
  id: string;
  out: string;
  subjects: ResolvedSubject[];
  retry: { attempts: number; backoffMs: number };
  /** Hash of the resolved batch, its model roots included (batchHash): what a resubmission is compared with. */
  hash: string;
  /** A service's batch: the folders its jobs' model files must lie in, links followed (BatchNode.modelRoots). */
  modelRoots?: string[];
}

/** A manifest that does not validate: every problem, one per line. */
export class ManifestError extends BrainlatentError {
  readonly problems: string[];
  constructor(source: string, problems: string[]) {
    super(`${source} is not a valid batch manifest (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  - ${problems.join('\n  - ')}`, 'ManifestError');
    this.problems = problems;
  }
}

const NAME = '^[A-Za-z][A-Za-z0-9_-]{0,63}$';
/** NAME in words, for "expected a string …" (expectedOf reads a pattern's title). */
const NAME_TITLE = 'of letters, digits, _ or -, starting with a letter (64 at most)';

/** JSON Schema of the manifest (the analysis configs are checked by their own validators after expansion). */
export const MANIFEST_SCHEMA = {
  $id: 'https://brainlatent/batch-manifest.json',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'out', 'subjects', 'analyses'],
  properties: {
    name: { type: 'string', pattern: NAME, title: NAME_TITLE, description: 'batch id (job ids start with it)' },
    out: { type: 'string', minLength: 1 },
    nsd: { type: 'object', additionalProperties: false, properties: { root: { type: 'string', minLength: 1 } } },
    subjects: {
      type: 'array',
      minItems: 1,
      items: {
        oneOf: [
          { type: 'integer', minimum: 1, maximum: 8 },
          {
            type: 'object',
            additionalProperties: false,
            required: ['subject'],
            properties: {
              subject: { type: 'integer', minimum: 1, maximum: 8 },
              name: { type: 'string', pattern: NAME, title: NAME_TITLE },
              root: { type: 'string', minLength: 1 },
              overrides: { type: 'object', additionalProperties: { type: 'object' } },
            },
          },
        ],
      },
    },
    analyses: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'kind', 'config'],
        properties: {
          name: { type: 'string', pattern: NAME, title: NAME_TITLE },
          kind: { enum: ['reconstruct', 'encode'] },
          config: { type: 'object' },
          shards: {
            type: 'object',
            additionalProperties: false,
            properties: { images: { type: 'integer', minimum: 1 }, seeds: { type: 'integer', minimum: 1 } },
          },
        },
      },
    },
    retry: {
      type: 'object',
      additionalProperties: false,
      // (backoffMs within setTimeout's range: the local runner waits it, doubled per attempt, with a timer)
      properties: { attempts: { type: 'integer', minimum: 1, maximum: 20 }, backoffMs: { type: 'integer', minimum: 0, maximum: MAX_TIMER_MS } },
    },
  },
} as const;

// (verbose: errors carry their schema and value, so problemsFrom says what was expected and names the closest
// known key of an unknown one, as every config's messages do)
// (compiled on first use: at import it cost every `import 'brainlatent'` ~130 ms; review s45)
let compiled: ValidateFunction | undefined;
const manifestValidator = (): ValidateFunction => (compiled ??= new (ajvPackage().Ajv)({ allErrors: true, strict: true, verbose: true }).compile(MANIFEST_SCHEMA));

function substitute(v: unknown, vars: Record<string, string>): unknown {
  if (typeof v === 'string') return v.replace(/\{(subject|subj|name)\}/g, (_, k: string) => vars[k]);
  if (Array.isArray(v)) return v.map((x) => substitute(x, vars));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substitute(x, vars)]));
  return v;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

/** Objects merge key by key; arrays and values replace. */
function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isPlainObject(v) && isPlainObject(out[k]) ? deepMerge(out[k] as Record<string, unknown>, v) : v;
  return out;
}

const subjectName = (n: number) => `subj${String(n).padStart(2, '0')}`;

/**
 * The manifest's problems of structure beyond its schema (names used twice, overrides of no analysis, a subject
 * without an NSD root, an `out` the batch sets), read defensively: with the schema's own problems they are listed
 * in one round, so a manifest whose keys are misspelt is not refused a second time for its duplicates.
 */
function structureProblems(input: unknown, field: (...segs: (string | number)[]) => string): string[] {
  const problems: string[] = [];
  const m = isPlainObject(input) ? input : {};
  const analysisNames = new Set<string>();
  (Array.isArray(m.analyses) ? m.analyses : []).forEach((a: unknown, i) => {
    if (!isPlainObject(a) || typeof a.name !== 'string') return;
    if (analysisNames.has(a.name)) problems.push(`${field('analyses', i, 'name')}: '${a.name}' is used twice`);
    analysisNames.add(a.name);
    if (isPlainObject(a.config) && 'out' in a.config) problems.push(`${field('analyses', i, 'config', 'out')}: set by the batch (<out>/<subject>/${a.name}); remove it`);
  });
  const names = new Set<string>();
  const nsdRoot = isPlainObject(m.nsd) ? m.nsd.root : undefined;
  (Array.isArray(m.subjects) ? m.subjects : []).forEach((s: unknown, i) => {
    const entry = typeof s === 'number' ? { subject: s } : isPlainObject(s) ? s : null;
    if (!entry || typeof entry.subject !== 'number') return;
    const name = typeof entry.name === 'string' ? entry.name : subjectName(entry.subject);
    if (names.has(name)) problems.push(`${field('subjects', i)}: subject name '${name}' is used twice (give each entry its own name)`);
    names.add(name);
    for (const k of Object.keys(isPlainObject(entry.overrides) ? entry.overrides : {})) {
      if (!analysisNames.has(k)) problems.push(`${field('subjects', i, 'overrides', k)}: no analysis is named '${k}' (analyses: ${[...analysisNames].join(', ')})`);
    }
    if (!entry.root && !nsdRoot) problems.push(`${field('subjects', i)}: no NSD root (give nsd.root, or root for this subject)`);
  });
  return problems;
}

/** Every path of an object's keys, objects' keys below them included, with its value: [['img2img'], {…}], [['img2img', 'seedz'], 2]. */
function keyPaths(v: Record<string, unknown>, prefix: string[] = []): [string[], unknown][] {
  return Object.entries(v).flatMap(([k, x]): [string[], unknown][] => [[[...prefix, k], x], ...(isPlainObject(x) ? keyPaths(x, [...prefix, k]) : [])]);
}

/**
 * A problem of an expanded config about a field that a subject's override sets is named where it is in the file,
 * `subjects[3].overrides.recon.img2img.seedz`, not where the template would have it (`analyses[0].config.img2img.seedz`,
 * which is not in the file): the deepest path the override sets that the problem is labelled by. Null when the
 * problem is about no field of the override.
 */
function overrideLabel(problem: string, where: string, override: Record<string, unknown>, at: string): string | null {
  let best: string[] | null = null;
  for (const [segs, value] of keyPaths(override)) {
    const label = fieldLabel(where, segs);
    // an object the override sets is merged into the template's: a problem below it is the override's only where
    // one of its own keys is named (img2img: { seeds: 2 } does not set img2img.steps; review s44), a value that
    // replaces the template's (an array, a scalar) owns every problem below it
    const about = problem.startsWith(`${label}:`) || (!isPlainObject(value) && (problem.startsWith(`${label}[`) || problem.startsWith(`${label}.`)));
    if (about && (!best || segs.length > best.length)) best = segs;
  }
  return best ? `${fieldLabel(at, best)}${problem.slice(fieldLabel(where, best).length)}` : null;
}

/**
 * Validates a manifest and expands it into one validated config per subject × analysis. Every relative path
 * (out, the NSD roots, and each path field of an analysis's config: model folders, captions, networks, feature
 * files, ids, ncsnr, masks…) is taken from `baseDir` (the manifest's folder; a service's root), here and nowhere
 * else, so that the path a service checks against its root is the path the job reads.
 */
export function resolveManifest(input: unknown, options: { source?: string; baseDir?: string } = {}): ResolvedBatch {
  const source = options.source ?? 'manifest';
  const base = options.baseDir ?? process.cwd();
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const field = (...segs: (string | number)[]) => fieldLabel(source, segs.map(String));
  const problems = structureProblems(input, field);
  // the schema's problems and the structure's together, in one round
  const validateSchema = manifestValidator();
  if (!validateSchema(input)) throw new ManifestError(source, [...problemsFrom(validateSchema.errors ?? [], source), ...problems]);
  const m = input as unknown as BatchManifest;
  // an expanded config's problem, by the subjects that have it: one alike in every subject is listed once
  const configProblems = new Map<string, string[]>();
  const out = abs(m.out);
  const subjects: ResolvedSubject[] = [];
  m.subjects.forEach((s, i) => {
    const entry = typeof s === 'number' ? { subject: s } : s;
    const name = entry.name ?? subjectName(entry.subject);
    const root = abs(entry.root ?? m.nsd?.root ?? '.');
    const vars = { subject: String(entry.subject), subj: subjectName(entry.subject), name };
    const analyses: ResolvedAnalysis[] = [];
    m.analyses.forEach((a, j) => {
      // the config's fields are named as the manifest has them: "nsd4.json: analyses[1].config.featureSets[0].name"
      const where = field('analyses', j, 'config');
      const tpl = deepMerge(a.config, entry.overrides?.[a.name] ?? {});
      // every path field the analysis's schema declares, from the base (not from the process's working folder)
      const schema = a.kind === 'reconstruct' ? ReconstructConfigSchema : EncodeConfigSchema;
      const cfg = resolveConfigPaths(schema, substitute(tpl, vars), base) as Record<string, unknown>;
      const runOut = join(out, name, a.name);
      const nsd = { ...(isPlainObject(cfg.nsd) ? cfg.nsd : {}), root, subject: entry.subject } as Record<string, unknown>;
      // one extraction cache per subject, shared by its analyses: the same region is extracted once
      if (typeof nsd.cacheDir !== 'string') nsd.cacheDir = join(out, name, 'cache');
      const sharding: Img2ImgSharding = { images: a.shards?.images ?? 64, seeds: a.shards?.seeds ?? 1 };
      try {
        if (a.kind === 'reconstruct') {
          analyses.push({ name: a.name, kind: 'reconstruct', config: resolveConfig({ ...cfg, out: runOut, nsd }, where), sharding });
        } else {
          analyses.push({ name: a.name, kind: 'encode', config: resolveEncodeConfig({ ...cfg, out: runOut, nsd }, where), sharding });
        }
      } catch (e) {
        const list = (e as { problems?: string[] }).problems ?? [`${where}: ${(e as Error).message}`];
        const override = entry.overrides?.[a.name];
        for (const p of list) {
          // about a field of this entry's override: named there (the entry's index tells apart a subject listed twice)
          const moved = override ? overrideLabel(p, where, override, field('subjects', i, 'overrides', a.name)) : null;
          if (moved) problems.push(moved);
          else configProblems.set(p, [...(configProblems.get(p) ?? []), name]);
        }
      }
    });
    subjects.push({ name, subject: entry.subject, root, analyses });
  });
  // a problem of some subjects only (an override, a substituted path) names them
  for (const [p, who] of configProblems) problems.push(who.length === m.subjects.length ? p : `${p} (for ${[...new Set(who)].join(', ')})`);
  if (problems.length) throw new ManifestError(source, [...new Set(problems)]);
  const retry = { attempts: m.retry?.attempts ?? 3, backoffMs: m.retry?.backoffMs ?? 2000 };
  const batch = { id: m.name, out, subjects, retry };
  const resolved = { ...batch, hash: batchHash(batch) };
  const legacy = legacySubjects(m, base, out);
  if (legacy && batchHash({ ...batch, subjects: legacy }) !== resolved.hash) legacyOf.set(resolved, legacy);
  return resolved;
}

/**
 * The subjects of batches resolved by resolveManifest whose hash was another before s24 (legacySubjects): kept beside
 * the batch, not in it (a batch's JSON — a job's input, batch.json — stays as it was).
 */
const legacyOf = new WeakMap<ResolvedBatch, ResolvedSubject[]>();

/**
 * The subjects as resolveManifest expanded them before s24 (commit a5891ca), when only out, the NSD roots, nsd.cacheDir
 * and the model folders were taken from the base and the config's other path fields (captions, networks, feature
 * files, ids, ncsnr, masks) stayed as written: what a batch submitted then was hashed from. Undefined when the manifest
 * did not resolve that way.
 */
function legacySubjects(m: BatchManifest, base: string, out: string): ResolvedSubject[] | undefined {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  try {
    return m.subjects.map((s) => {
      const entry = typeof s === 'number' ? { subject: s } : s;
      const name = entry.name ?? subjectName(entry.subject);
      const root = abs(entry.root ?? m.nsd?.root ?? '.');
      const vars = { subject: String(entry.subject), subj: subjectName(entry.subject), name };
      const analyses = m.analyses.map((a, j): ResolvedAnalysis => {
        const where = fieldLabel('manifest', ['analyses', String(j), 'config']);
        const cfg = substitute(deepMerge(a.config, entry.overrides?.[a.name] ?? {}), vars) as Record<string, unknown>;
        const runOut = join(out, name, a.name);
        const nsd = { ...(isPlainObject(cfg.nsd) ? cfg.nsd : {}), root, subject: entry.subject } as Record<string, unknown>;
        nsd.cacheDir = typeof nsd.cacheDir === 'string' ? abs(nsd.cacheDir) : join(out, name, 'cache');
        const sharding: Img2ImgSharding = { images: a.shards?.images ?? 64, seeds: a.shards?.seeds ?? 1 };
        if (a.kind === 'reconstruct') {
          const model = isPlainObject(cfg.model) ? { ...cfg.model } : cfg.model;
          if (isPlainObject(model) && typeof model.dir === 'string') model.dir = abs(model.dir);
          return { name: a.name, kind: 'reconstruct', config: resolveConfig({ ...cfg, out: runOut, nsd, model }, where), sharding };
        }
        const model = typeof cfg.model === 'string' ? abs(cfg.model) : cfg.model;
        return { name: a.name, kind: 'encode', config: resolveEncodeConfig({ ...cfg, out: runOut, nsd, model }, where), sharding };
      });
      return { name, subject: entry.subject, root, analyses };
    });
  } catch {
    return undefined;
  }
}

/**
 * The hash `b` had before s24, when its config paths other than the model folders were not yet taken from the
 * manifest's folder (a service's root), where that differs from its hash: a record of it is this manifest's batch
 * submitted by an older version. Undefined for a batch not resolved here (read back from JSON) or not changed.
 */
export function legacyBatchHash(b: ResolvedBatch): string | undefined {
  const subjects = legacyOf.get(b);
  return subjects && batchHash({ id: b.id, out: b.out, subjects, retry: b.retry, modelRoots: b.modelRoots });
}

/**
 * The batch's identity, which a batch submitted again under its name must match to map onto the jobs already in the
 * queue: its id, outputs, subjects with their configs, retry policy, and the model roots its jobs are held to (a
 * service's root: the same manifest from a service with another root, or from the CLI, is another batch, whose jobs
 * would not be held to this one's roots). A batch without roots hashes as before they were part of it.
 */
export function batchHash(b: Pick<ResolvedBatch, 'id' | 'out' | 'subjects' | 'retry' | 'modelRoots'>): string {
  const roots = b.modelRoots?.length ? { modelRoots: b.modelRoots } : {};
  return createHash('sha256').update(stableJson({ id: b.id, out: b.out, subjects: b.subjects, retry: b.retry, ...roots })).digest('hex').slice(0, 16);
}

/** `batch` run as a service's: every job's model files held to `roots` (BatchNode.modelRoots), part of its identity. */
export function batchUnderRoots(batch: ResolvedBatch, roots: readonly string[]): ResolvedBatch {
  const under = { ...batch, modelRoots: [...roots] };
  const resolved = { ...under, hash: batchHash(under) };
  const legacy = legacyOf.get(batch);
  if (legacy) legacyOf.set(resolved, legacy);
  return resolved;
}

/**
 * Reads a manifest file (JSON) and resolves it; relative paths are taken from the file's folder. Read as configs
 * are (readJsonFile): a missing file is "<path>: file not found", a syntax error "<path>:line:col: not valid JSON: …".
 */
export async function loadManifest(path: string): Promise<ResolvedBatch> {
  const json = await readJsonFile(path);
  return resolveManifest(json, { source: path, baseDir: dirname(resolve(path)) });
}
