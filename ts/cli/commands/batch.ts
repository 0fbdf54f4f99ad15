/** `brainlatent batch run|plan MANIFEST`: every subject × analysis of a manifest, here or through BullMQ. */
import type { Command } from 'commander';

import { InvalidArgumentError } from '../../errors.js';
import { planBatch, planNodes } from '../../batch/graph.js';
import { loadManifest } from '../../batch/manifest.js';
import { runBatch, type BatchReport } from '../../batch/runBatch.js';
import { formatSummary, type BatchEvent } from '../../batch/status.js';

export function positiveInt(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isInteger(x) || x < 0) throw new InvalidArgumentError(`--${name}: expected a non-negative integer, got '${v}'`);
  return x;
}

/** One line per job that changes state (logs), on stderr. */
export function eventLogger(): (e: BatchEvent) => void {
  return (e) => {
    if (e.type !== 'job' || !e.job) return;
    const j = e.job;
    if (j.state === 'active' && j.fraction > 0) return;
    const what = j.state === 'active' ? `started${j.attempts > 1 ? ` (attempt ${j.attempts})` : ''}` : j.state;
    const secs = j.seconds !== undefined && j.state === 'done' ? ` in ${j.seconds.toFixed(1)} s` : '';
    process.stderr.write(`${new Date(e.at).toISOString().slice(11, 19)} ${j.id} ${what}${secs}${j.reason ? `: ${j.reason}` : ''}\n`);
  };
}

export function printReport(r: BatchReport, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify({ batch: r.batch, state: r.state, counts: r.counts, summary: r.summary }, null, 2)}\n`);
    return;
  }
  process.stdout.write(`${formatSummary(r.summary)}\n\nbatch ${r.batch}: ${r.state} (${Object.entries(r.counts).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`).join(', ')})\n`);
}

const MANIFEST_HELP = `
The manifest (JSON) lists subjects and analyses; each analysis is a reconstruct or encode config used as a
template ({subject}, {subj}, {name} are substituted; out, nsd.root and nsd.subject are filled in):

  { "name": "nsd4", "out": "runs/nsd4", "nsd": { "root": "/data/nsd" },
    "subjects": [1, 2, 5, { "subject": 7, "overrides": { "recon": { "img2img": { "seeds": 1 } } } }],
    "analyses": [
      { "name": "recon", "kind": "reconstruct", "config": { "model": { "dir": "models/sd-v1-4-onnx" } },
        "shards": { "images": 64, "seeds": 1 } },
      { "name": "enc", "kind": "encode", "config": { "model": "models/sd-v1-4-onnx",
        "featureSets": [{ "kind": "z" }, { "kind": "c" }] } } ] }

Outputs: <out>/<subject>/<analysis>/ (a run folder each), <out>/<subject>/cache (the subject's
extraction, shared by its analyses), <out>/batch.json (the job graph), <out>/summary.json.
See docs/batch.md.`;

export function registerBatchCommand(program: Command): void {
  const batch = program
    .command('batch')
    .description('many subjects × analyses: the whole job graph here (default) or spread over workers through BullMQ and Redis')
    .addHelpText('after', MANIFEST_HELP);

  batch
    .command('run <manifest>')
    .description('run every job of the manifest on this machine with a pool of worker processes, and print the summary per subject × stage')
    .option('--concurrency <n>', 'jobs at once (worker processes); default half the cores')
    .option('--json', 'print the summary as JSON')
    .addHelpText(
      'after',
      `
Stages whose outputs are complete are skipped, so running a finished manifest again does nothing, and an
interrupted batch resumes. A subject whose inputs are broken fails alone (with the reason); the others go on.
Exit status 1 when any job failed.

Examples:
  brainlatent batch run nsd.json --concurrency 2
  brainlatent batch run nsd.json --json > summary.json`,
    )
    .action(async (file: string, f: { concurrency?: string; json?: boolean }) => {
      const ac = new AbortController();
      process.once('SIGINT', () => ac.abort());
      const r = await runBatch(file, { concurrency: positiveInt(f.concurrency, 'concurrency') || undefined, signal: ac.signal, onEvent: eventLogger() });
      printReport(r, !!f.json);
      if (r.state !== 'done') process.exitCode = 1;
    });

  batch
    .command('plan <manifest>')
    .description('validate the manifest and list the jobs it makes (ids, queues, dependencies), without running anything')
    .option('--json', 'print the plan as JSON')
    .action(async (file: string, f: { json?: boolean }) => {
      const plan = await planBatch(await loadManifest(file));
      const nodes = planNodes(plan);
      if (f.json) {
        process.stdout.write(`${JSON.stringify(nodes.map(({ work: _w, ...n }) => n), null, 2)}\n`);
        return;
      }
      for (const n of nodes) process.stdout.write(`${n.id.padEnd(52)} ${n.queue.padEnd(8)} after ${n.deps.length ? n.deps.length > 2 ? `${n.deps.length} jobs` : n.deps.join(', ') : '-'}\n`);
      process.stdout.write(`\n${nodes.length} jobs, ${plan.subjects.length} subjects\n`);
    });
}
