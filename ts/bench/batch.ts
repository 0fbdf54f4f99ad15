/**
 * `bench batch`: what the queue costs and what a second worker buys.
 *  1. Overhead per job: 200 probe jobs that do nothing, through BullMQ (1 worker, 1 job process) and
 *     through the local pool; the per-job cost against the demo world's stage times.
 *  2. Throughput: the demo world with two subjects through BullMQ with 1 and with 2 worker processes, each
 *     single-threaded (BLAS and ONNX Runtime 1 thread), on a redis-server started here.
 * Appends a record to bench/results/batch.jsonl (with the load average: other work on the machine skews it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { planBatch, probePlan } from '../batch/graph.js';
import { waitForBatch } from '../batch/inspect.js';
import { runLocal } from '../batch/localRunner.js';
import { resolveManifest } from '../batch/manifest.js';
import { submitPlan } from '../batch/submit.js';
import { buildDemoWorld } from '../demo/world.js';
import { appendBenchRecord, machineInfo } from './benchRecord.js';

const log = (s: string) => process.stdout.write(`${s}\n`);
const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js');

async function startRedis(dir: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  const p = spawn('redis-server', ['--port', `${port}`, '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((ok, fail) => {
    let out = '';
    p.once('exit', (c) => fail(new Error(`redis-server exited with ${c}`)));
    p.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ready to accept connections')) ok();
    });
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      p.kill('SIGTERM');
      await once(p, 'exit');
    },
  };
}

function startWorkers(url: string, n: number): ChildProcess[] {
  return Array.from({ length: n }, (_, i) =>
    spawn(process.execPath, [cli, 'worker', '--redis', url, '--name', `bench${i}`, '--threads', '1', '--concurrency', '1'], { stdio: ['ignore', 'ignore', 'ignore'] }),
  );
}

async function stopWorkers(ws: ChildProcess[]): Promise<void> {
  await Promise.all(ws.map(async (w) => {
    if (w.exitCode !== null) return;
    w.kill('SIGTERM');
    await once(w, 'exit');
  }));
}

async function main(): Promise<void> {
  if (spawnSync('redis-server', ['--version']).status !== 0) throw new Error('bench batch needs redis-server (Debian: apt-get install redis-server)');
  const dir = mkdtempSync(path.join(tmpdir(), 'bl-bench-batch-'));
  const redis = await startRedis(dir);
  const figures: Record<string, unknown> = {};
  try {
    // 1. the queue's own cost per job
    const probes = 200;
    let ws = startWorkers(redis.url, 1);
    await submitPlan(probePlan('warmup', 10, path.join(dir, 'warmup'), 0), { redis: redis.url });
    await waitForBatch('warmup', { redis: redis.url, intervalMs: 100 });
    let t0 = performance.now();
    await submitPlan(probePlan('overhead', probes, path.join(dir, 'overhead'), 0), { redis: redis.url });
    await waitForBatch('overhead', { redis: redis.url, intervalMs: 100 });
    const bullMs = (performance.now() - t0) / probes;
    await stopWorkers(ws);
    t0 = performance.now();
    await runLocal(probePlan('local', probes, path.join(dir, 'local'), 0), { concurrency: 1, env: { ...process.env, BRAINLATENT_THREADS: '1' } });
    const localMs = (performance.now() - t0) / probes;
    log(`overhead per job (${probes} empty jobs, one worker): BullMQ ${bullMs.toFixed(1)} ms, local pool ${localMs.toFixed(1)} ms`);
    figures.overheadMsPerJob = { bullmq: bullMs, local: localMs, jobs: probes };

    // 2. throughput on the demo world (two subjects), 1 and 2 single-threaded workers
    const world = await buildDemoWorld({ out: path.join(dir, 'world'), subjects: [1, 2] });
    const { nsd: _n, ...tpl } = world.config;
    const manifest = (name: string) => ({
      name,
      out: path.join(dir, name),
      nsd: { root: world.nsdRoot },
      subjects: [1, 2],
      analyses: [{ name: 'recon', kind: 'reconstruct' as const, config: { ...tpl, model: { ...tpl.model, threads: 1 } } as Record<string, unknown>, shards: { images: 8, seeds: 1 } }],
    });
    const runs: Record<string, unknown>[] = [];
    for (const n of [1, 2]) {
      const plan = await planBatch(resolveManifest(manifest(`w${n}`)));
      ws = startWorkers(redis.url, n);
      const loadBefore = machineInfo().loadAverage;
      t0 = performance.now();
      await submitPlan(plan, { redis: redis.url });
      const r = await waitForBatch(plan.id, { redis: redis.url, intervalMs: 250 });
      const wall = (performance.now() - t0) / 1000;
      await stopWorkers(ws);
      if (r.state !== 'done') throw new Error(`batch ${plan.id}: ${r.state}`);
      const stages: Record<string, number> = {};
      for (const c of r.summary) if (c.stage !== 'subject') stages[c.stage] = (stages[c.stage] ?? 0) + c.seconds / 2;
      const jobs = r.jobs.length;
      // job-seconds per wall second: n on an idle machine with a core per worker; less when other work takes the cores
      const workSeconds = r.jobs.reduce((a, j) => a + (j.seconds ?? 0), 0);
      const loadAverage = { before: loadBefore, after: machineInfo().loadAverage };
      runs.push({ workers: n, wallSeconds: wall, jobs, jobsPerMinute: (60 * jobs) / wall, subjectsPerHour: (3600 * 2) / wall, workSeconds, jobsAtOnce: workSeconds / wall, loadAverage, stageSecondsPerSubject: stages });
      log(
        `${n} worker(s): 2 subjects (${jobs} jobs) in ${wall.toFixed(1)} s, ${(workSeconds / wall).toFixed(2)} jobs at once on average; load average ${loadAverage.before.join(' ')} → ${loadAverage.after.join(' ')}; ` +
          `per subject: ${Object.entries(stages).map(([k, v]) => `${k} ${v.toFixed(2)} s`).join(', ')}`,
      );
    }
    const [one, two] = runs as { wallSeconds: number; jobs: number; workSeconds: number; stageSecondsPerSubject: Record<string, number> }[];
    const cores = machineInfo().cores;
    figures.throughput = {
      runs,
      speedup: one.wallSeconds / two.wallSeconds,
      // the same work took this much longer per job with two workers: >1 when the workers competed for cores
      jobSlowdownWith2: two.workSeconds / one.workSeconds,
      note:
        `shared machine (${cores} cores): the speed-up is what 2 workers gained under the load average recorded with each run; ` +
        `jobSlowdownWith2 > 1 says the second worker did not get a free core (on a quiet machine with a core per worker it is ≈ 1 and the speed-up approaches the sampling-bound limit)`,
      world: { testImages: world.testImages, seeds: 5, steps: 50, shard: '8 images × 1 seed' },
    };
    // the queue's cost against the work: a subject's jobs × the overhead per job over its stages' seconds
    const work = Object.values(one.stageSecondsPerSubject).reduce((a, v) => a + v, 0);
    const jobsPerSubject = one.jobs / 2;
    figures.overheadShare = { jobsPerSubject, workSecondsPerSubject: work, bullmq: (jobsPerSubject * bullMs) / 1000 / work, local: (jobsPerSubject * localMs) / 1000 / work };
    log(`queue overhead per subject: ${jobsPerSubject} jobs × ${bullMs.toFixed(1)} ms = ${((jobsPerSubject * bullMs) / 1000).toFixed(2)} s against ${work.toFixed(1)} s of stage work (${((100 * jobsPerSubject * bullMs) / 1000 / work).toFixed(2)} %)`);
    log(
      `speed-up with 2 workers: ${(one.wallSeconds / two.wallSeconds).toFixed(2)}× (each job ${(two.workSeconds / one.workSeconds).toFixed(2)}× as long as with 1 worker); ` +
        `load average ${machineInfo().loadAverage.join(' ')} on ${cores} cores shared with other work`,
    );
    const file = appendBenchRecord('batch', figures);
    log(`record appended to ${file}`);
  } finally {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
