/**
 * bench:serve — `brainlatent serve` under load, the server in its own process (as deployed), autocannon here:
 *  1. predict on a 4,096-target ridge model at concurrency 1, 8 and 32, with JSON and with .npy bodies:
 *     throughput, p50/p99 latency, non-2xx;
 *  2. the server's RSS after 1,000 and after 10,000 predict requests (no leak: equal within noise);
 *  3. the server's event-loop lag (prom-client's monitorEventLoopDelay, reset at each scrape, and /healthz
 *     answered every 10 ms) while an img2img request runs and while a demo job runs.
 * Appends a record to bench/results/serve.jsonl (with the load average: timings on a shared machine are noisy).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type autocannonType from 'autocannon';

import { encodeNpy } from '../io/npy.js';
import { packageRoot } from '../native/binding.js';
import { RidgeModel } from '../ridge/RidgeModel.js';
import { Diffusion } from '../sd/Diffusion.js';
import { writeSdFixture } from '../sd/fixture.js';
import { appendBenchRecord, machineInfo } from './benchRecord.js';

const FEATURES = 2048;
const TARGETS = 4096;
const DURATION = Number(process.env.BENCH_SERVE_SECONDS ?? 10);

function gaussian(seed: number): () => number {
  let s = seed >>> 0 || 1;
  const u = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

/** A ridge model of the bench's shape with random coefficients (what predict costs does not depend on the fit). */
async function writeModel(path: string): Promise<void> {
  const g = gaussian(1);
  const f32 = (n: number, fn: () => number) => Float32Array.from({ length: n }, fn);
  await new RidgeModel({
    coef: { data: f32(FEATURES * TARGETS, () => g() / Math.sqrt(FEATURES)), rows: FEATURES, cols: TARGETS },
    intercept: f32(TARGETS, g),
    xMean: f32(FEATURES, () => 0),
    xScale: f32(FEATURES, () => 1),
    bestAlphas: f32(TARGETS, () => 100),
    bestScores: f32(TARGETS, () => 0.3),
    cvScores: { data: f32(TARGETS, () => 0.3), rows: 1, cols: TARGETS },
    settings: { alphas: [100], nFolds: 5, foldKind: 'contiguous', score: 'r2', fitIntercept: true, standardize: false },
  }).save(path);
}

async function startServer(root: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const cli = join(packageRoot, 'dist', 'cli', 'main.js');
  const proc = spawn(process.execPath, [cli, 'serve', '--root', root, '--port', '0', '--shutdown-deadline', '5'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const url = await new Promise<string>((ok, fail) => {
    proc.once('exit', (c) => fail(new Error(`serve exited ${c}: ${out}`)));
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+?)\/ /.exec(out);
      if (m) ok(m[1]);
    });
  });
  return {
    url,
    stop: () =>
      new Promise<void>((ok) => {
        proc.once('exit', () => ok());
        proc.kill('SIGTERM');
      }),
  };
}

async function post(url: string, body: unknown): Promise<Response> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!r.ok) throw new Error(`POST ${url}: ${r.status} ${await r.text()}`);
  return r;
}

/** Gauges from one scrape of the Prometheus text (one scrape: prom-client resets its event-loop histogram at each). */
async function metrics(url: string, names: string[]): Promise<number[]> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return names.map((name) => {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : NaN;
  });
}
const metric = async (url: string, name: string) => (await metrics(url, [name]))[0];

interface LoadResult {
  connections: number;
  body: 'json' | 'npy';
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
}

// autocannon is a development tool (not installed with the package): loaded here, with a way out.
async function loadAutocannon(): Promise<typeof autocannonType> {
  try {
    return (await import('autocannon')).default;
  } catch {
    throw new Error("bench serve needs autocannon, a development dependency: run it from a checkout, or `npm install --no-save autocannon@9.0.0`");
  }
}

async function load(url: string, connections: number, body: 'json' | 'npy', x: Float32Array, options: { duration?: number; amount?: number } = {}): Promise<LoadResult> {
  const npy = body === 'npy';
  const autocannon = await loadAutocannon();
  const r = await autocannon({
    url: `${url}/v1/ridge/bench/predict`,
    method: 'POST',
    connections,
    ...(options.amount ? { amount: options.amount } : { duration: options.duration ?? DURATION }),
    headers: npy ? { 'content-type': 'application/x-npy', accept: 'application/x-npy' } : { 'content-type': 'application/json' },
    body: npy ? encodeNpy(x, [1, FEATURES]) : JSON.stringify({ x: [Array.from(x)] }),
  });
  return {
    connections,
    body,
    requestsPerSecond: r.requests.average,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors,
  };
}

/** The server's event-loop lag over a window (prom-client resets its delay histogram at each scrape) and /healthz latencies. */
async function lagDuring<T>(url: string, work: () => Promise<T>): Promise<{ result: T; maxLagMs: number; p99LagMs: number; healthzMaxMs: number; healthzP99Ms: number; pings: number }> {
  await metric(url, 'nodejs_eventloop_lag_max_seconds');
  let running = true;
  const pings: number[] = [];
  const pinger = (async () => {
    while (running) {
      const t0 = performance.now();
      await fetch(`${url}/healthz`).then((r) => r.text());
      pings.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const result = await work();
  running = false;
  await pinger;
  const [maxLag, p99Lag] = await metrics(url, ['nodejs_eventloop_lag_max_seconds', 'nodejs_eventloop_lag_p99_seconds']);
  const maxLagMs = 1000 * maxLag;
  const p99LagMs = 1000 * p99Lag;
  pings.sort((a, b) => a - b);
  return { result, maxLagMs, p99LagMs, healthzMaxMs: pings[pings.length - 1], healthzP99Ms: pings[Math.floor(0.99 * (pings.length - 1))], pings: pings.length };
}

const root = mkdtempSync(join(tmpdir(), 'bl-bench-serve-'));
const server = await (async () => {
  mkdirSync(join(root, 'models'));
  await writeModel(join(root, 'models', 'bench.safetensors'));
  // a U-Net heavy enough that one request samples for a few seconds
  await writeSdFixture(join(root, 'models', 'sd'), { unetChannels: 32, unetLayers: 4 });
  return startServer(root);
})();
try {
  const { url } = server;
  const loadAverageBefore = machineInfo().loadAverage;
  await post(`${url}/v1/models`, { kind: 'ridge', name: 'bench', path: 'models/bench.safetensors' });
  await post(`${url}/v1/models`, { kind: 'sd', name: 'sd', path: 'models/sd' });
  const g = gaussian(2);
  const x = Float32Array.from({ length: FEATURES }, g);

  // 1. throughput and latency
  await load(url, 8, 'npy', x, { amount: 500 }); // warm-up
  const predict: LoadResult[] = [];
  for (const body of ['json', 'npy'] as const) {
    for (const c of [1, 8, 32]) {
      const r = await load(url, c, body, x);
      predict.push(r);
      console.log(`predict ${body} c=${c}: ${r.requestsPerSecond.toFixed(0)} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, non-2xx ${r.non2xx}`);
    }
  }

  // 2. memory after 1,000 and after 10,000 requests
  await load(url, 8, 'json', x, { amount: 1000 });
  const rss1k = await metric(url, 'process_resident_memory_bytes');
  await load(url, 8, 'json', x, { amount: 9000 });
  const rss10k = await metric(url, 'process_resident_memory_bytes');
  const memory = { rssAfter1kMiB: rss1k / 2 ** 20, rssAfter10kMiB: rss10k / 2 ** 20, growthMiB: (rss10k - rss1k) / 2 ** 20, ratio: rss10k / rss1k };
  console.log(`RSS after 1,000 requests ${memory.rssAfter1kMiB.toFixed(1)} MiB, after 10,000 ${memory.rssAfter10kMiB.toFixed(1)} MiB (×${memory.ratio.toFixed(3)})`);

  // 3. event-loop lag while img2img runs (512×512 images: sampling, VAE decode and PNG encoding)
  const sd = await Diffusion.load(join(root, 'models', 'sd'), { components: ['text_encoder'] });
  const c = await sd.encodeText(['a red square on a blue ground']);
  sd.dispose();
  const z = Float32Array.from({ length: 4 * 64 * 64 }, g);
  const img2imgBody = { z: encodeNpy(z, [1, 4, 64, 64]).toString('base64'), c: encodeNpy(c.data, c.shape).toString('base64'), strength: 0.8, steps: 50, guidance: 5 };
  const idle = await lagDuring(url, () => new Promise((r) => setTimeout(r, 3000)));
  const img2img = await lagDuring(url, async () => {
    const t0 = performance.now();
    const r = await post(`${url}/v1/sd/sd/img2img`, img2imgBody);
    const bytes = (await r.arrayBuffer()).byteLength;
    return { seconds: (performance.now() - t0) / 1000, pngBytes: bytes };
  });
  console.log(`img2img ${img2img.result.seconds.toFixed(2)} s: event-loop lag max ${img2img.maxLagMs.toFixed(1)} ms, p99 ${img2img.p99LagMs.toFixed(1)} ms; /healthz max ${img2img.healthzMaxMs.toFixed(1)} ms over ${img2img.pings} pings (idle: lag max ${idle.maxLagMs.toFixed(1)} ms)`);
  const demo = await lagDuring(url, async () => {
    const t0 = performance.now();
    const job = (await (await post(`${url}/v1/jobs`, { kind: 'demo', out: 'demo', sessions: 8, testImages: 8, seeds: 1, steps: 10 })).json()) as { id: string };
    for (;;) {
      const v = (await (await fetch(`${url}/v1/jobs/${job.id}`)).json()) as { state: string };
      if (v.state !== 'queued' && v.state !== 'running') return { seconds: (performance.now() - t0) / 1000, state: v.state };
      await new Promise((r) => setTimeout(r, 250));
    }
  });
  console.log(`demo job ${demo.result.seconds.toFixed(1)} s (${demo.result.state}): event-loop lag max ${demo.maxLagMs.toFixed(1)} ms, p99 ${demo.p99LagMs.toFixed(1)} ms; /healthz max ${demo.healthzMaxMs.toFixed(1)} ms`);

  const strip = ({ result: _r, ...rest }: { result: unknown } & Record<string, unknown>) => rest;
  const figures = {
    model: { features: FEATURES, targets: TARGETS, rowsPerRequest: 1 },
    durationSeconds: DURATION,
    predict,
    memory,
    eventLoop: {
      idle: strip(idle),
      img2img: { ...strip(img2img), requestSeconds: img2img.result.seconds, image: '512×512, 50 steps × strength 0.8, guidance 5, PNG' },
      demoJob: { ...strip(demo), jobSeconds: demo.result.seconds, state: demo.result.state },
    },
    loadAverageBefore,
  };
  console.log(`appended to ${appendBenchRecord('serve', figures)}`);
} finally {
  await server.stop();
  rmSync(root, { recursive: true, force: true });
}
