/**
 * bench:pipeline: wall time and peak memory (RSS, sampled) per stage of `brainlatent demo` at its default
 * size; appends a record to bench/results/pipeline.jsonl.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { runDemo } from '../demo/runDemo.js';
import { appendBenchRecord } from './benchRecord.js';

const out = mkdtempSync(join(tmpdir(), 'bl-bench-pipeline-'));
const peak: Record<string, number> = {};
let stage = 'world';
const sample = () => {
  const rss = process.memoryUsage().rss / 2 ** 20;
  peak[stage] = Math.max(peak[stage] ?? 0, rss);
};
const timer = setInterval(sample, 20);
const t0 = performance.now();
try {
  const r = await runDemo(
    { out },
    {
      onProgress: (p) => {
        sample();
        if (p.status === 'running') stage = p.stage;
      },
    },
  );
  sample();
  const total = (performance.now() - t0) / 1000;
  const figures = {
    totalSeconds: total,
    worldSeconds: r.worldSeconds,
    stages: Object.fromEntries(r.run.stages.map((s) => [s.stage, { seconds: s.seconds, peakRssMiB: Math.round(peak[s.stage] ?? 0) }])),
    worldPeakRssMiB: Math.round(peak.world ?? 0),
    testImages: r.run.testImages,
    components: r.world.components,
    metrics: r.run.metrics,
  };
  console.log(JSON.stringify(figures, null, 2));
  console.log(`appended to ${appendBenchRecord('pipeline', figures)}`);
} finally {
  clearInterval(timer);
  rmSync(out, { recursive: true, force: true });
}
