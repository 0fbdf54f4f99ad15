/** What a batch writes next to its run folders: the plan (batch.json) and the final summary (summary.json). */
import { join } from 'node:path';

import { writeFileAtomic } from '../io/atomicWrite.js';

import type { BatchPlan } from './graph.js';
import { loadManifest, resolveManifest, type BatchManifest, type ResolvedBatch } from './manifest.js';
import type { BatchStatus, SummaryCell } from './status.js';

export interface BatchReport extends BatchStatus {
  summary: SummaryCell[];
}

export type ManifestInput = string | BatchManifest | ResolvedBatch;

/** A manifest path, a manifest object or an already resolved batch → the resolved batch. */
export async function toResolved(m: ManifestInput): Promise<ResolvedBatch> {
  if (typeof m === 'string') return loadManifest(m);
  if ('hash' in m && 'retry' in m && typeof (m as ResolvedBatch).id === 'string') return m as ResolvedBatch;
  return resolveManifest(m);
}

/** The plan next to the outputs (what runs, with which job ids): for people, and for `batch retry`. */
export async function writePlan(plan: BatchPlan): Promise<void> {
  await writeFileAtomic(join(plan.out, 'batch.json'), JSON.stringify({ format: 'brainlatent-batch', version: 1, ...plan }, null, 1));
}

export async function writeReport(plan: BatchPlan, report: BatchReport): Promise<void> {
  await writeFileAtomic(join(plan.out, 'summary.json'), JSON.stringify({ batch: plan.id, state: report.state, counts: report.counts, summary: report.summary }, null, 2));
}
