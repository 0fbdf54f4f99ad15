/**
 * The service's Prometheus metrics (prom-client), in a registry of its own so a host app's metrics are not
 * touched: jobs by state and the queue depth (read from the job runner when scraped), stage durations,
 * U-Net steps per second, predict latency, the compute pools' queues and refusals, and HTTP latency per route,
 * plus prom-client's default process metrics (CPU, memory, event-loop lag).
 */
import { requirePromClient } from '../optionalDependencies.js';

// The fields' types are what the service uses of prom-client's metrics, written here: the emitted .d.ts of
// './server' must not name prom-client, an optional dependency a slim install (--omit=optional) has no types of.
// (prom-client's Histogram, Counter, Gauge and Registry have these members, so the objects are assigned as they are.)

/** Label values of a metric with label names `L`. */
export type MetricLabels<L extends string> = Partial<Record<L, string | number>>;

/** A histogram (prom-client's Histogram): one observation, with its labels when it has label names. */
export interface HistogramMetric<L extends string = string> {
  observe(value: number): void;
  observe(labels: MetricLabels<L>, value: number): void;
}

/** A counter (prom-client's Counter). */
export interface CounterMetric<L extends string = string> {
  inc(value?: number): void;
  inc(labels: MetricLabels<L>, value?: number): void;
}

/** A gauge (prom-client's Gauge). */
export interface GaugeMetric<L extends string = string> {
  set(value: number): void;
  set(labels: MetricLabels<L>, value: number): void;
}

/** The service's own registry (prom-client's Registry): the exposition text and its content type. */
export interface MetricsRegistry {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export interface MetricSources {
  /** Jobs waiting to start. */
  queueDepth(): Promise<number> | number;
  /** Jobs per state. */
  jobCounts(): Promise<Record<string, number>> | Record<string, number>;
  /** Running and queued tasks of each compute pool. */
  pools(): { name: string; active: number; queued: number }[];
}

/**
 * What the U-Net metrics count: one latent through the U-Net once, whatever the batch (a sampler call runs a batch):
 * the engine's calls, not the steps asked for (PNDM's warm-up repeats a timestep, Heun calls twice a step).
 */
const UNET_UNIT = "images × the U-Net calls the engine ran for each (not the steps: PNDM's warm-up and Heun's second call count), × 2 with classifier-free guidance";

export class ServiceMetrics {
  readonly registry: MetricsRegistry;
  readonly stageSeconds: HistogramMetric<'kind' | 'stage'>;
  readonly predictSeconds: HistogramMetric<'model'>;
  readonly predictBatchRows: HistogramMetric;
  readonly img2imgSeconds: HistogramMetric<'model'>;
  readonly unetSteps: CounterMetric<'source'>;
  readonly unetStepsPerSecond: GaugeMetric<'source'>;
  readonly rejected: CounterMetric<'pool'>;
  readonly modelOutputErrors: CounterMetric<'model' | 'output'>;
  readonly http: HistogramMetric<'method' | 'route' | 'code'>;

  constructor(sources: MetricSources, options: { defaultMetrics?: boolean; prefix?: string; eventLoopResolutionMs?: number } = {}) {
    const client = requirePromClient(); // an optional dependency, loaded on first use
    const registry = new client.Registry();
    this.registry = registry;
    const p = options.prefix ?? 'brainlatent_';
    const registers = [registry];
    if (options.defaultMetrics !== false) client.collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: options.eventLoopResolutionMs ?? 10 });
    new client.Gauge({
      name: `${p}job_queue_depth`,
      help: 'Jobs submitted and not yet started',
      registers,
      async collect() {
        this.set(await sources.queueDepth());
      },
    });
    new client.Gauge({
      name: `${p}jobs`,
      help: 'Jobs known to the service, by state',
      labelNames: ['state'],
      registers,
      async collect() {
        this.reset();
        for (const [state, n] of Object.entries(await sources.jobCounts())) this.set({ state }, n);
      },
    });
    new client.Gauge({
      name: `${p}pool_tasks`,
      help: 'Tasks of the request-time compute pools (predict, img2img), running or queued',
      labelNames: ['pool', 'status'],
      registers,
      collect() {
        this.reset();
        for (const q of sources.pools()) {
          this.set({ pool: q.name, status: 'active' }, q.active);
          this.set({ pool: q.name, status: 'queued' }, q.queued);
        }
      },
    });
    this.rejected = new client.Counter({
      name: `${p}pool_rejected_total`,
      help: 'Requests refused with 503 because a queue was full: pool predict or img2img (request-time compute pools), decode (large bodies waiting for a predict thread), jobs (POST /v1/jobs, the job queue), or bodies (request bodies in flight over inFlightBodyLimit)',
      labelNames: ['pool'],
      registers,
    });
    this.modelOutputErrors = new client.Counter({
      name: `${p}model_output_errors_total`,
      help: 'Requests answered 500 because a loaded model turned finite inputs into NaN/Inf, by model and output',
      labelNames: ['model', 'output'],
      registers,
    });
    this.stageSeconds = new client.Histogram({
      name: `${p}job_stage_duration_seconds`,
      help: 'Wall time of each finished job stage',
      labelNames: ['kind', 'stage'],
      buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600],
      registers,
    });
    this.predictSeconds = new client.Histogram({
      name: `${p}predict_duration_seconds`,
      help: 'Ridge predict latency (queue wait included)',
      labelNames: ['model'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.predictBatchRows = new client.Histogram({
      name: `${p}predict_batch_samples`,
      help: 'Samples per predict call (requests that waited are predicted together)',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers,
    });
    this.img2imgSeconds = new client.Histogram({
      name: `${p}img2img_duration_seconds`,
      help: 'img2img request latency (queue wait included)',
      labelNames: ['model'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });
    this.unetSteps = new client.Counter({
      name: `${p}unet_steps_total`,
      help: `U-Net evaluations of one latent run (${UNET_UNIT}), by source: img2img requests, or jobs (the img2img shards that ran in them, finished or not)`,
      labelNames: ['source'],
      registers,
    });
    this.unetStepsPerSecond = new client.Gauge({
      name: `${p}unet_steps_per_second`,
      help: `U-Net evaluations of one latent (${UNET_UNIT}) per second of U-Net time, of the most recent img2img request or job`,
      labelNames: ['source'],
      registers,
    });
    this.http = new client.Histogram({
      name: `${p}http_request_duration_seconds`,
      help: 'HTTP request latency by route',
      labelNames: ['method', 'route', 'code'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers,
    });
  }

  /** A sampler run: `calls` U-Net evaluations of one latent (UNET_UNIT) in `seconds` of U-Net time. */
  unet(source: 'img2img' | 'job', calls: number, seconds: number): void {
    if (!(calls > 0)) return;
    this.unetSteps.inc({ source }, calls);
    if (seconds > 0) this.unetStepsPerSecond.set({ source }, calls / seconds);
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
