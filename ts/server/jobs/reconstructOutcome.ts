/**
 * A reconstruct job's result, from its finished run folder's metrics.json (nothing recomputed), and the metrics a
 * demo job's result carries: the z-only and final means, which metrics are accuracies and which distances, and the
 * test images with the count each metric left out of its mean, having no correlation (a uniform image or a constant
 * feature row; ts/eval/identification.ts) — as metrics.json, the report and the CLI have them.
 */
import { readFile } from 'node:fs/promises';

import type { ReconstructConfig } from '../../pipeline/config.js';
import type { RunMetrics } from '../../pipeline/report.js';
import { paths } from '../../pipeline/runFolder.js';

/** The metrics of a job's result; `better`, `images` and `leftOut` absent where the run folder predates them. */
export interface JobMetrics {
  zonly: Record<string, number>;
  final: Record<string, number>;
  /** Which metrics are accuracies (the page shows them in %) and which distances. */
  better?: RunMetrics['better'];
  /** Test images the means are over. */
  images?: number;
  /** Per set of values, the images each metric left out of its mean (0 for most). */
  leftOut?: { zonly: Record<string, number>; final: Record<string, number> };
}

/** The job result's metrics from a run's recorded ones (metrics.json, or the evaluate stage's summary). */
export function jobMetrics(m: Partial<JobMetrics> & Pick<JobMetrics, 'zonly' | 'final'>): JobMetrics {
  return {
    zonly: m.zonly,
    final: m.final,
    ...(m.better ? { better: m.better } : {}),
    ...(m.images !== undefined ? { images: m.images } : {}),
    ...(m.leftOut ? { leftOut: { zonly: m.leftOut.zonly, final: m.leftOut.final } } : {}),
  };
}

/**
 * What a finished reconstruction's run folder says: its test images, its metrics and its report. (Its U-Net work
 * reaches the steps/s metric from the batch layer: the shards that ran in this job, whether it ends done, failed or
 * cancelled.)
 */
export async function reconstructOutcome(config: ReconstructConfig): Promise<{ testImages: number; metrics: JobMetrics; report: string }> {
  const m = JSON.parse(await readFile(paths(config.out).metricsJson, 'utf8')) as JobMetrics & { images: number };
  return { testImages: m.images, metrics: jobMetrics(m), report: 'report.html' };
}
