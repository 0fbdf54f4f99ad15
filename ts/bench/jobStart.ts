/**
 * bench:job-start — how long the service's event loop stalls when a job's process starts. Starting a process
 * (fork + exec) blocks the thread that forks: the kernel copies that process's page tables, and libuv waits until
 * the child has exec'd. A service with models loaded is hundreds of MiB, so this process holds a ballast of that
 * size (BENCH_JOB_START_BALLAST_MIB, default 400) while a LocalJobRunner (the service's own, default execute)
 * runs N small ridge-fit jobs one after another. Around each job's start (submit → the job's first progress
 * report) the event-loop delay is sampled every 1 ms, beside an idle probe process's over the same window (the
 * machine's floor). Reports max per start and their median/max, server vs floor, with the load average, and
 * appends a record to bench/results/job-start.jsonl.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';

import { writeNpy } from '../io/npy.js';
import { newJobId, type JobSpec } from '../server/jobs/JobRunner.js';
import { LocalJobRunner } from '../server/jobs/LocalJobRunner.js';
import type { RidgeFitConfig } from '../config/ridgeFit.js';
import { appendBenchRecord, machineInfo } from './benchRecord.js';

const STARTS = Number(process.env.BENCH_JOB_START_COUNT ?? 12);
const BALLAST_MIB = Number(process.env.BENCH_JOB_START_BALLAST_MIB ?? 400);
const RESOLUTION_MS = 1;

/** An idle process's event-loop delay (its max since the last read, in ms): the machine's floor. */
function floorProbe() {
  const proc = spawn(
    process.execPath,
    [
      '-e',
      `const h = require('node:perf_hooks').monitorEventLoopDelay({ resolution: ${RESOLUTION_MS} }); h.enable();
       require('node:readline').createInterface({ input: process.stdin }).on('line', (l) => {
         if (l !== 'reset') process.stdout.write(String(h.max / 1e6) + '\\n'); h.reset(); });`,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
  return {
    reset: () => proc.stdin!.write('reset\n'),
    maxMs: async () => {
      proc.stdin!.write('read\n');
      return Number((await lines.next()).value) - RESOLUTION_MS;
    },
    stop: () => proc.kill(),
  };
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const f1 = (x: number) => x.toFixed(1);

const root = mkdtempSync(join(tmpdir(), 'bl-bench-jobstart-'));
// a service's heap and native memory: touched pages, so fork has page tables to copy
const ballast: Buffer[] = [];
for (let i = 0; i < BALLAST_MIB; i++) ballast.push(Buffer.alloc(1 << 20, i & 0xff));
const probe = floorProbe();
const runner = new LocalJobRunner({ cwd: root });
try {
  const n = 60, p = 8, t = 4;
  await writeNpy(join(root, 'x.npy'), Float32Array.from({ length: n * p }, (_, i) => Math.sin(i)), [n, p]);
  await writeNpy(join(root, 'y.npy'), Float32Array.from({ length: n * t }, (_, i) => Math.cos(i)), [n, t]);
  const config: RidgeFitConfig = {
    out: '', x: join(root, 'x.npy'), y: join(root, 'y.npy'), groups: null, alphas: [1, 10, 100] as never, folds: 3, score: 'r2',
    fitIntercept: true, standardize: false, route: 'auto', cvMethod: 'auto', eigPrecision: 'auto', memoryGiB: 1,
  };
  const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  h.enable();
  const server: number[] = [];
  const floor: number[] = [];
  for (let i = 0; i < STARTS + 1; i++) {
    const out = join(root, `fit-${i}`);
    const spec: JobSpec = { id: newJobId('ridge-fit'), kind: 'ridge-fit', out, outShown: `fit-${i}`, input: { kind: 'ridge-fit', config: { ...config, out } } };
    await new Promise((r) => setTimeout(r, 300));
    h.reset();
    probe.reset();
    // the first tick after a reset only restarts the clock (it records nothing): let a few pass first
    await new Promise((r) => setTimeout(r, 20));
    const view = await runner.submit(spec);
    // the start's window: until the job's process reports (it has been forked, exec'd and has loaded the library)
    for (;;) {
      const v = runner.board.get(view.id)!;
      if (v.progress || v.state === 'done' || v.state === 'failed') break;
      await new Promise((r) => setTimeout(r, 5));
    }
    const serverMax = h.max / 1e6 - RESOLUTION_MS;
    const floorMax = await probe.maxMs();
    for (;;) {
      const v = runner.board.get(view.id)!;
      if (v.state === 'done' || v.state === 'failed' || v.state === 'cancelled') {
        if (v.state !== 'done') throw new Error(`job ${view.id} ${v.state}: ${v.error?.message}`);
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    // the first start also loads what a later one finds loaded: not counted
    if (i === 0) continue;
    server.push(serverMax);
    floor.push(floorMax);
  }
  h.disable();
  const rss = process.memoryUsage().rss / 2 ** 20;
  const figures = {
    starts: STARTS,
    rssMiB: Math.round(rss),
    resolutionMs: RESOLUTION_MS,
    serverMaxMs: server,
    floorMaxMs: floor,
    serverMedianMaxMs: median(server),
    serverWorstMs: Math.max(...server),
    floorMedianMaxMs: median(floor),
    floorWorstMs: Math.max(...floor),
    loadAverage: machineInfo().loadAverage,
  };
  console.log(`job start (${STARTS} starts, process RSS ${Math.round(rss)} MiB): the event loop's longest stall per start, ms`);
  console.log(`  service        ${server.map(f1).join(' ')}  (median ${f1(figures.serverMedianMaxMs)}, worst ${f1(figures.serverWorstMs)})`);
  console.log(`  machine floor  ${floor.map(f1).join(' ')}  (median ${f1(figures.floorMedianMaxMs)}, worst ${f1(figures.floorWorstMs)})`);
  console.log(`  load average ${figures.loadAverage.join(' ')} on ${machineInfo().cores} cores`);
  console.log(`appended to ${appendBenchRecord('job-start', figures)}`);
} finally {
  await runner.close(10_000);
  probe.stop();
  ballast.length = 0;
  rmSync(root, { recursive: true, force: true });
}
