/**
 * `await runBatch(manifest, {onEvent, signal})`: every subject × analysis of a manifest, on this machine
 * (a pool of worker processes) or, with `redis`, through BullMQ (submit, then local workers and/or workers
 * elsewhere take the jobs). Same graph, same job ids, same outputs either way.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { planBatch, type BatchPlan } from './graph.js';
import { runLocal, type LocalRunOptions } from './localRunner.js';
import { loadManifest, resolveManifest, type BatchManifest, type ResolvedBatch } from './manifest.js';
import { summarize, type BatchStatus, type SummaryCell } from './status.js';

export interface BatchReport extends BatchStatus {
  summary: SummaryCell[];
}

export type ManifestInput = string | BatchManifest | ResolvedBatch;

/** A manifest path, a manifest object or an already resolved batch → the resolved batch. */
export async function toResolved(m: ManifestInput): Promise<ResolvedBatch> {
  if (typeof m === 'string') return loadManifest(m);
  if ('hash' in m && 'retry' in m && Array.isArray((m as ResolvedBatch).subjects) && typeof (m as ResolvedBatch).id === 'string') return m as ResolvedBatch;
  return resolveManifest(m);
}

/** Writes the plan next to the outputs (what ran, with which job ids), for people and for `batch status` without Redis. */
export async function writePlan(plan: BatchPlan): Promise<void> {
  await mkdir(plan.out, { recursive: true });
  await writeFile(join(plan.out, 'batch.json'), JSON.stringify({ format: 'brainlatent-batch', version: 1, ...plan }, null, 1));
}

export async function writeReport(plan: BatchPlan, report: BatchReport): Promise<void> {
  await mkdir(plan.out, { recursive: true });
  await writeFile(join(plan.out, 'summary.json'), JSON.stringify({ batch: plan.id, state: report.state, counts: report.counts, summary: report.summary }, null, 2));
}

export type RunBatchOptions = LocalRunOptions;

/** Runs a whole batch on this machine; resolves with the final status and the summary per subject × stage. */
export async function runBatch(manifest: ManifestInput, options: RunBatchOptions = {}): Promise<BatchReport> {
  const plan = await planBatch(await toResolved(manifest));
  await writePlan(plan);
  const status = await runLocal(plan, options);
  const report = { ...status, summary: summarize(status.jobs) };
  await writeReport(plan, report);
  return report;
}
