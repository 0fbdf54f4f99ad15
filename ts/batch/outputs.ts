/** What a batch writes next to its run folders: the plan (batch.json) and the final summary (summary.json). */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

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
  await mkdir(plan.out, { recursive: true });
  const tmp = join(plan.out, `.batch.json.${process.pid}`);
  await writeFile(tmp, JSON.stringify({ format: 'brainlatent-batch', version: 1, ...plan }, null, 1));
  const { rename } = await import('node:fs/promises');
  await rename(tmp, join(plan.out, 'batch.json'));
}

export async function writeReport(plan: BatchPlan, report: BatchReport): Promise<void> {
  await mkdir(plan.out, { recursive: true });
  await writeFile(join(plan.out, 'summary.json'), JSON.stringify({ batch: plan.id, state: report.state, counts: report.counts, summary: report.summary }, null, 2));
}
