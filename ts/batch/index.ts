/** Batch processing: many subjects × analyses on this machine or through BullMQ (see docs/batch.md). */
export { runBatch, toResolved } from './runBatch.js';
export type { BatchReport, ManifestInput, RunBatchOptions } from './runBatch.js';
export { submitBatch, submitPlan } from './submit.js';
export type { SubmitOptions, SubmitResult } from './submit.js';
export { createWorker } from './worker.js';
export type { WorkerOptions, BatchWorker } from './worker.js';
export { getBatchStatus, watchBatch, waitForBatch, cancelBatch, retryBatch, listBatches } from './inspect.js';
export { resolveManifest, loadManifest, ManifestError, MANIFEST_SCHEMA } from './manifest.js';
export type { BatchManifest, ManifestAnalysis, ManifestSubject, ResolvedBatch, ResolvedSubject, ResolvedAnalysis } from './manifest.js';
export { analysisStages, planBatch, planNodes, QUEUES } from './graph.js';
export type { BatchPlan, BatchNode, SubjectPlan, AnalysisPlan, QueueClass, NodeWork } from './graph.js';
export { summarize, formatSummary, batchStatus, subjectProgress } from './status.js';
export type { BatchEvent, BatchStatus, BatchState, JobInfo, JobState, SubjectProgress, SummaryCell } from './status.js';
export { renderTable } from './table.js';
export { isInputError, BatchError } from './errors.js';
export { defaultConcurrency } from './localRunner.js';
export type { LocalRunOptions } from './localRunner.js';
