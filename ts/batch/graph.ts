/**
 * The job graph of a batch. Per subject: one `betas` job that extracts every region its analyses use into the
 * subject's shared cache (so each extraction runs once), one job per z or c feature computation that several of
 * its analyses share (`shared.<z|c>-<hash>`, sharedFeatures.ts), then per analysis a chain of stage jobs —
 * reconstruct: extract → features → decoders → zonly → img2img shards → img2img (merge) → evaluate → report;
 * encode: its own stages (extract → ceiling → embed → features.<set> → fit.<table> → banded.<name> → maps →
 * report, encodeStages), one job each. Job ids are deterministic, `<batch>.<subject>.<analysis>.<stage>[.<shard>]`,
 * so a resubmitted batch maps onto the jobs it already has.
 */
import { join } from 'node:path';

import { readNsdDesign } from '../nsd/expdesign.js';
import type { NsdExtractOptions } from '../nsd/extract.js';
import { encodeExtractOptions, encodeStages, type EncodeConfig } from '../encoding/encode.js';
import type { ReconstructConfig } from '../pipeline/config.js';
import { STAGES, type StageName } from '../pipeline/runFolder.js';
import { extractOptions, img2imgShards, type Img2ImgShard } from '../pipeline/stages.js';
import { legacyBatchHash, type ResolvedBatch, type ResolvedSubject } from './manifest.js';
import { consumerRecipes, recipeKey, type FeatureConsumer, type FeatureRecipe } from './sharedFeatures.js';

/**
 * Queues by the resource a job needs, so machines can take only what suits them (`worker --queues sample`
 * on GPU nodes): data = NSD extraction (I/O), compute = decoders, evaluation, reports, encode (CPU, BLAS),
 * sample = the diffusion model (z and c features, z-only decode, img2img shards; encode's embeddings and
 * diffusion features), control = joins.
 */
export const QUEUES = ['data', 'compute', 'sample', 'control'] as const;
export type QueueClass = (typeof QUEUES)[number];

export type NodeWork =
  | { kind: 'betas'; extractions: Omit<NsdExtractOptions, 'onProgress'>[] }
  /** `force` (the extract stage only, from the batch's --force): a run folder of another config is replaced, not refused. */
  | { kind: 'stage'; config: ReconstructConfig; stage: Exclude<StageName, 'img2img'>; force?: boolean }
  | { kind: 'shard'; config: ReconstructConfig; shard: Img2ImgShard }
  | { kind: 'merge'; config: ReconstructConfig; shards: Img2ImgShard[] }
  /** Features that several analyses of the subject compute alike, once, into `dir` (sharedFeatures.ts). */
  | { kind: 'sharedFeatures'; recipe: FeatureRecipe; dir: string; consumers: FeatureConsumer[] }
  /** An analysis's features stage (reconstruct: features, encode: embed) from the shared entries in `dir`. */
  | { kind: 'featuresLink'; consumer: FeatureConsumer; recipes: { z: FeatureRecipe; c: FeatureRecipe }; dir: string }
  /** One stage of an encoding analysis (an id of encodeStages(config)); `force` as for 'stage'. */
  | { kind: 'encodeStage'; config: EncodeConfig; stage: string; force?: boolean }
  | { kind: 'subject' }
  /** A tiny job (wait `ms`, write one file): measures the queue's own cost, and exercises the faults. */
  | {
      kind: 'probe';
      out: string;
      ms: number;
      /** (tests) fail as an input error after `ms` */
      fail?: boolean;
      /** (tests) block its process for good once started, as a call stuck in native code does: it answers no abort */
      hang?: boolean;
    };

export interface BatchNode {
  id: string;
  batch: string;
  subject: string;
  /** null for the subject's own jobs (betas, shared features, the subject join). */
  analysis: string | null;
  /** Stage name as shown in summaries: betas, a reconstruction's extract … report (img2img: shards and merge), an encoding's stage ids, subject. */
  stage: string;
  /** Shard label (k<seeds>.i<images>) for img2img shards. */
  shard?: string;
  queue: QueueClass;
  /** Jobs that must finish first. */
  deps: string[];
  work: NodeWork;
  /**
   * A service's batch: its root folders (absolute, as the service sees them: a worker sees them at the same paths,
   * as every other path of the job). The job's model files must lie inside them, links followed (modelRoots.ts).
   */
  modelRoots?: string[];
}

/** One analysis of one subject: its jobs in order; a group of shards is followed by its merge. */
export interface AnalysisPlan {
  name: string;
  kind: 'reconstruct' | 'encode';
  out: string;
  steps: (BatchNode | { shards: BatchNode[] })[];
}

export interface SubjectPlan {
  name: string;
  /** The subject's join: done when every analysis is. */
  root: BatchNode;
  shared: BatchNode[];
  analyses: AnalysisPlan[];
}

export interface BatchPlan {
  id: string;
  out: string;
  hash: string;
  retry: { attempts: number; backoffMs: number };
  /**
   * The time limit of each work job (--job-timeout; not of the joins, which run in the worker itself), in ms: past it
   * the job's process is killed and the attempt fails (retried as any transient failure). Absent: none. Not part of
   * the hash: a batch submitted again with another limit is the same batch (its queued jobs keep theirs).
   */
  jobTimeoutMs?: number;
  subjects: SubjectPlan[];
  /** A service's batch: the roots its every job is held to (BatchNode.modelRoots), part of its hash. */
  modelRoots?: string[];
  /** The hash this manifest's batch had before s24 took its config paths from the manifest's folder, where it differs (legacyBatchHash). */
  legacyHash?: string;
}

/** The queue of an encoding stage: the diffusion model's work on sample, the extraction on data, the fits on compute. */
function encodeQueue(stage: string): QueueClass {
  if (stage === 'extract') return 'data';
  if (stage === 'embed' || stage.startsWith('features.')) return 'sample';
  return 'compute';
}

/** The stages of an analysis in order, as its jobs name them (a reconstruction's img2img covers its shards). */
export function analysisStages(kind: 'reconstruct' | 'encode', config: ReconstructConfig | EncodeConfig): string[] {
  return kind === 'reconstruct' ? [...STAGES] : encodeStages(config as EncodeConfig).map((s) => s.id);
}

const STAGE_QUEUE: Record<StageName, QueueClass> = {
  extract: 'data',
  features: 'sample',
  decoders: 'compute',
  zonly: 'sample',
  img2img: 'sample',
  evaluate: 'compute',
  report: 'compute',
};

/**
 * What names one submission of a batch (one submitPlan call: its record's submittedAt; or one local run: its start),
 * as its jobs are told it (NodeControl.submission) and its img2img shards' markers record it.
 */
export const submissionId = (batch: string, at: string | number) => `${batch}@${typeof at === 'number' ? new Date(at).toISOString() : at}`;

/** The id of an img2img shard's job, from its merge job's id (`<batch>.<subject>.<analysis>.img2img`). */
export const shardNodeId = (mergeId: string, s: Img2ImgShard) => `${mergeId}.${shardLabel(s)}`;
export const shardLabel = (s: Img2ImgShard) => `k${s.seedStart}-${s.seedEnd - 1}.i${s.imageStart}-${s.imageEnd < 0 ? 'end' : s.imageEnd - 1}`;

/**
 * The most img2img shard jobs one subject × analysis has: a larger seed count is cut into shards of more seeds than
 * the analysis's `shards` (the same samples). Each shard is a queue entry that carries its config (a few KiB in
 * Redis) and a line of every listing: a seed count with zeros too many in one-seed shards (the default) made a
 * million jobs, and a plan that overflowed the stack. Real batches have tens to hundreds (NSD's ~1,000 test images in
 * shards of 64 × 1 seed, 5 seeds: 80).
 */
export const MAX_SHARDS_PER_ANALYSIS = 10_000;

/**
 * The analyses whose img2img shards hold more seeds (or images) than their `shards` asked, to stay within
 * MAX_SHARDS_PER_ANALYSIS: one line each (`subj01 × recon: img2img in 10,000 shards of 10 seeds, not the 1 per shard
 * asked: …`), for `batch plan` to say why its shards are not the manifest's.
 */
export function widenedShards(batch: ResolvedBatch, plan: BatchPlan): string[] {
  const lines: string[] = [];
  const n = (x: number) => x.toLocaleString('en-US');
  for (const [i, s] of plan.subjects.entries()) {
    for (const [j, a] of s.analyses.entries()) {
      const asked = batch.subjects[i]?.analyses[j];
      const group = a.steps.find((st): st is { shards: BatchNode[] } => 'shards' in st);
      const first = group?.shards[0]?.work;
      if (!asked || asked.kind !== 'reconstruct' || first?.kind !== 'shard' || first.shard.imageEnd < 0) continue;
      const seeds = first.shard.seedEnd - first.shard.seedStart, images = first.shard.imageEnd - first.shard.imageStart;
      const askedSeeds = Math.max(1, Math.floor(asked.sharding.seeds));
      const askedImages = Math.max(asked.sharding.images, (asked.config as ReconstructConfig).img2img.batchSize);
      const wider = [
        ...(images > askedImages ? [`${n(images)} images, not the ${n(asked.sharding.images)}`] : []),
        ...(seeds > askedSeeds ? [`${n(seeds)} seeds, not the ${n(askedSeeds)}`] : []),
      ];
      if (!wider.length) continue;
      lines.push(
        `${s.name} × ${a.name}: img2img in ${n(group!.shards.length)} shards of ${wider.join(' and ')} per shard asked: a subject × analysis has at most ` +
          `${n(MAX_SHARDS_PER_ANALYSIS)} (the same samples)`,
      );
    }
  }
  return lines;
}

/** Test images the reconstruction will use (the design's shared images this subject saw, limited), or null when the design cannot be read. */
async function plannedTestImages(config: ReconstructConfig): Promise<number | null> {
  try {
    const d = await readNsdDesign(config.nsd.root);
    const seen = new Set<number>();
    for (let c = 0; c < d.subjectimCols; c++) seen.add(d.subjectim[c * d.subjectimRows + (config.nsd.subject - 1)]);
    const n = Array.from(d.sharedix).filter((id) => seen.has(id)).length;
    return config.nsd.testImages === null ? n : Math.min(n, config.nsd.testImages);
  } catch {
    // the extract job reports the problem; one shard then covers whatever it finds
    return null;
  }
}

async function planSubject(batch: ResolvedBatch, s: ResolvedSubject, options: BatchPlanOptions): Promise<SubjectPlan> {
  const base = `${batch.id}.${s.name}`;
  // (a service's roots go with every job: whichever worker runs it holds its model files to them)
  const roots = batch.modelRoots?.length ? { modelRoots: [...batch.modelRoots] } : {};
  const node = (n: Omit<BatchNode, 'batch' | 'subject'>): BatchNode => ({ batch: batch.id, subject: s.name, ...n, ...roots });
  // every distinct extraction of this subject's analyses, once
  const extractions = new Map<string, Omit<NsdExtractOptions, 'onProgress'>>();
  for (const a of s.analyses) {
    const list = a.kind === 'reconstruct' ? (['z', 'c'] as const).map((t) => extractOptions(a.config as ReconstructConfig, t)) : [encodeExtractOptions(a.config as EncodeConfig)];
    for (const o of list) extractions.set(JSON.stringify(o), o);
  }
  const betas = node({ id: `${base}.betas`, analysis: null, stage: 'betas', queue: 'data', deps: [], work: { kind: 'betas', extractions: [...extractions.values()] } });
  const shared = sharedFeatureNodes(batch, s, betas, node);
  /** An analysis's features stage as a job: its own, or a link to the shared features it needs. */
  const featuresNode = (a: ResolvedSubject['analyses'][number], n: BatchNode): BatchNode => {
    const link = shared.links.get(a.name);
    return link ? { ...n, queue: 'sample', deps: [...n.deps, ...link.deps], work: link.work } : n;
  };
  const analyses: AnalysisPlan[] = [];
  for (const a of s.analyses) {
    const id = `${base}.${a.name}`;
    const steps: AnalysisPlan['steps'] = [];
    let prev = [betas.id];
    if (a.kind === 'encode') {
      // one job per stage, with the stages' own dependencies (the local runner runs independent ones side by
      // side); they come in dependency order, so the queue's chain of them is valid too
      const config = a.config as EncodeConfig;
      for (const st of encodeStages(config)) {
        const deps = st.deps.length ? st.deps.map((d) => `${id}.${d}`) : prev;
        const force = options.force && st.id === 'extract' ? { force: true } : {};
        const n = node({ id: `${id}.${st.id}`, analysis: a.name, stage: st.id, queue: encodeQueue(st.id), deps, work: { kind: 'encodeStage', config, stage: st.id, ...force } });
        steps.push(st.id === 'embed' ? featuresNode(a, n) : n);
      }
    } else {
      const config = a.config as ReconstructConfig;
      for (const stage of STAGES) {
        if (stage === 'img2img') {
          const n = await plannedTestImages(config);
          const shards = n === null ? [{ imageStart: 0, imageEnd: -1, seedStart: 0, seedEnd: config.img2img.seeds }] : img2imgShards(config, n, a.sharding, MAX_SHARDS_PER_ANALYSIS);
          const group = shards.map((sh) =>
            node({ id: shardNodeId(`${id}.img2img`, sh), analysis: a.name, stage: 'img2img', shard: shardLabel(sh), queue: 'sample', deps: prev, work: { kind: 'shard', config, shard: sh } }),
          );
          steps.push({ shards: group });
          const merge = node({ id: `${id}.img2img`, analysis: a.name, stage: 'img2img', queue: 'control', deps: group.map((g) => g.id), work: { kind: 'merge', config, shards } });
          steps.push(merge);
          prev = [merge.id];
          continue;
        }
        const force = options.force && stage === 'extract' ? { force: true } : {};
        // the decoders read the extraction's betas as well as the features: a features job skipped after an extraction
        // that ran (the same images, STAGE_DEP_KEYS) must not hide that extraction from them
        const deps = stage === 'decoders' ? [`${id}.extract`, ...prev] : prev;
        const n = node({ id: `${id}.${stage}`, analysis: a.name, stage, queue: STAGE_QUEUE[stage], deps, work: { kind: 'stage', config, stage, ...force } });
        steps.push(stage === 'features' ? featuresNode(a, n) : n);
        prev = [n.id];
      }
    }
    analyses.push({ name: a.name, kind: a.kind, out: a.config.out, steps });
  }
  const lasts = analyses.map((a) => {
    const last = a.steps[a.steps.length - 1];
    return 'shards' in last ? last.shards.map((x) => x.id) : [last.id];
  });
  const root = node({ id: base, analysis: null, stage: 'subject', queue: 'control', deps: lasts.flat(), work: { kind: 'subject' } });
  return { name: s.name, root, shared: [betas, ...shared.nodes], analyses };
}

/**
 * One job per z or c recipe that two or more of the subject's analyses share (sharedFeatures.ts), after the
 * extraction; and, per analysis that takes part, the work of its features stage (link the shared entries) with
 * the shared jobs it waits for. An analysis whose recipes nobody shares keeps its own features stage.
 */
function sharedFeatureNodes(
  batch: ResolvedBatch,
  s: ResolvedSubject,
  betas: BatchNode,
  node: (n: Omit<BatchNode, 'batch' | 'subject'>) => BatchNode,
): { nodes: BatchNode[]; links: Map<string, { deps: string[]; work: NodeWork }> } {
  const consumers = s.analyses.flatMap((a): { name: string; c: FeatureConsumer }[] => {
    if (a.kind === 'reconstruct') return [{ name: a.name, c: { kind: 'reconstruct', config: a.config as ReconstructConfig } }];
    const config = a.config as EncodeConfig;
    return encodeStages(config).some((st) => st.id === 'embed') ? [{ name: a.name, c: { kind: 'encode', config } }] : [];
  });
  const dir = join(batch.out, s.name, 'cache', 'features');
  const groups = new Map<string, { recipe: FeatureRecipe; users: { name: string; c: FeatureConsumer }[] }>();
  for (const u of consumers) {
    const r = consumerRecipes(u.c);
    for (const recipe of [r.z, r.c]) {
      const key = `${recipe.part}-${recipeKey(recipe)}`;
      const g = groups.get(key) ?? { recipe, users: [] };
      g.users.push(u);
      groups.set(key, g);
    }
  }
  const nodes: BatchNode[] = [];
  const links = new Map<string, { deps: string[]; work: NodeWork }>();
  for (const [key, g] of groups) {
    if (g.users.length < 2) continue;
    const n = node({ id: `${batch.id}.${s.name}.shared.${key}`, analysis: null, stage: `features.${g.recipe.part}`, queue: 'sample', deps: [betas.id], work: { kind: 'sharedFeatures', recipe: g.recipe, dir, consumers: g.users.map((u) => u.c) } });
    nodes.push(n);
    for (const u of g.users) {
      const l = links.get(u.name) ?? { deps: [], work: { kind: 'featuresLink', consumer: u.c, recipes: consumerRecipes(u.c), dir } };
      l.deps.push(n.id);
      links.set(u.name, l);
    }
  }
  return { nodes, links };
}

export interface BatchPlanOptions {
  /**
   * The batch's --force: each analysis's extract job, which claims its run folder, replaces a run of another config
   * there (its outputs go, other files stay) instead of refusing it. Folders of this config are resumed as always.
   */
  force?: boolean;
}

/** The job graph of a resolved manifest (reads each subject's design file to size the img2img shards). */
export async function planBatch(batch: ResolvedBatch, options: BatchPlanOptions = {}): Promise<BatchPlan> {
  const subjects: SubjectPlan[] = [];
  for (const s of batch.subjects) subjects.push(await planSubject(batch, s, options));
  const roots = batch.modelRoots?.length ? { modelRoots: [...batch.modelRoots] } : {};
  const legacyHash = legacyBatchHash(batch);
  return { id: batch.id, out: batch.out, hash: batch.hash, retry: batch.retry, subjects, ...roots, ...(legacyHash ? { legacyHash } : {}) };
}

/**
 * The plan with --force in the extract job of each analysis of the subjects named (the job that claims the run
 * folder, as planBatch's `force` puts it): what `batch retry --force` resubmits.
 */
export function forceSubjects(plan: BatchPlan, names: readonly string[]): BatchPlan {
  const forced = (n: BatchNode): BatchNode =>
    (n.work.kind === 'stage' || n.work.kind === 'encodeStage') && n.work.stage === 'extract' ? { ...n, work: { ...n.work, force: true } } : n;
  return {
    ...plan,
    subjects: plan.subjects.map((s) =>
      names.includes(s.name) ? { ...s, analyses: s.analyses.map((a) => ({ ...a, steps: a.steps.map((st) => ('shards' in st ? st : forced(st))) })) } : s,
    ),
  };
}

/** Every job of a plan, dependencies before dependents. */
export function planNodes(plan: BatchPlan): BatchNode[] {
  const out: BatchNode[] = [];
  for (const s of plan.subjects) {
    // (one push per job: a spread of a long shard list overflows the stack)
    for (const n of s.shared) out.push(n);
    for (const a of s.analyses) for (const st of a.steps) for (const n of 'shards' in st ? st.shards : [st]) out.push(n);
    out.push(s.root);
  }
  return out;
}

/**
 * `count` independent tiny jobs (wait `ms`, publish `<out>/<job id>.json` once) spread over the work queues,
 * joined by one root: what `bench batch` measures the queue's overhead with, and what the fault tests kill
 * workers in. The first `slow.count` jobs take `slow.ms` instead (long enough to be caught running).
 */
export function probePlan(id: string, count: number, out: string, ms: number, retry = { attempts: 3, backoffMs: 200 }, slow = { count: 0, ms }): BatchPlan {
  const probes: BatchNode[] = Array.from({ length: count }, (_, i) => ({
    id: `${id}.probe.p${String(i).padStart(4, '0')}`,
    batch: id,
    subject: 'probe',
    analysis: null,
    stage: 'probe',
    shard: `p${i}`,
    queue: (['data', 'compute', 'sample'] as const)[i % 3],
    deps: [],
    work: { kind: 'probe', out, ms: i < slow.count ? slow.ms : ms },
  }));
  const root: BatchNode = { id: `${id}.probe`, batch: id, subject: 'probe', analysis: null, stage: 'subject', queue: 'control', deps: probes.map((p) => p.id), work: { kind: 'subject' } };
  return { id, out, hash: `probe-${count}-${ms}-${slow.count}x${slow.ms}`, retry, subjects: [{ name: 'probe', root, shared: probes, analyses: [] }] };
}
