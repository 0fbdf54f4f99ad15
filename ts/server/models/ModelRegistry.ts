/**
 * Models loaded once and used by many requests: ridge models for predict, SD model folders for img2img. A model
 * replaced or unloaded while requests use it is released only after the last of them finishes.
 */
import { availableParallelism } from 'node:os';

import { BrainlatentError } from '../../errors.js';
import type { Matrix } from '../../matrix.js';
import { Diffusion, type SchedulerName } from '../../sd/Diffusion.js';
import { withModelRoots } from '../../sd/modelRoots.js';
import { ModelNotFoundError } from '../notFound.js';
import type { PredictBatcher } from './predictBatcher.js';
import type { PredictPool } from './predictPool.js';

export class ModelExistsError extends BrainlatentError {
  constructor(name: string) {
    super(`a model named '${name}' is already loaded; send "replace": true to replace it`, 'ModelExists');
  }
}

export interface ModelView {
  name: string;
  kind: 'ridge' | 'sd';
  /** The file or folder, relative to the service's root. */
  path: string;
  loadedAt: string;
  /** ridge: features and targets; sd: latent channels and conditioning width. */
  shape: Record<string, number>;
  /** sd: the scheduler an img2img request runs when it names none (the load's, else the folder's config's). */
  scheduler?: SchedulerName;
  /** Requests using it now. */
  inFlight: number;
}

/** What the routes check a request against before queueing it (the arrays live in the predict threads). */
export interface RidgeShape {
  nFeatures: number;
  nTargets: number;
}

interface Entry {
  view: Omit<ModelView, 'inFlight'>;
  key: string;
  ridge?: RidgeShape;
  sd?: Diffusion;
  inFlight: number;
  retired: boolean;
}

type LoadOptions = { name: string; kind: 'ridge' | 'sd'; replace: boolean; provider?: string; threads?: number; scheduler?: SchedulerName };

export class ModelRegistry {
  private readonly models = new Map<string, Entry>();
  private serial = 0;

  /**
   * `modelRoots`: the service's root folders, which the model files it loads must lie in, links followed
   * (modelRoots.ts); held to these, not to the process's, which are every service's of the process.
   */
  constructor(
    private readonly predictPool: PredictPool,
    private readonly batcher: PredictBatcher,
    private readonly modelRoots: readonly string[],
  ) {}

  list(): ModelView[] {
    return [...this.models.values()].map((e) => ({ ...e.view, inFlight: e.inFlight }));
  }

  get(name: string): ModelView | undefined {
    const e = this.models.get(name);
    return e ? { ...e.view, inFlight: e.inFlight } : undefined;
  }

  get size(): number {
    return this.models.size;
  }

  /** Loads a ridge model (.safetensors) or an SD model folder under `name`, its files held to the service's roots. */
  load(o: LoadOptions, absPath: string, shownPath: string): Promise<ModelView> {
    return withModelRoots(this.modelRoots, () => this.loadHere(o, absPath, shownPath));
  }

  private async loadHere(o: LoadOptions, absPath: string, shownPath: string): Promise<ModelView> {
    if (this.models.has(o.name) && !o.replace) throw new ModelExistsError(o.name);
    const key = `${o.name}#${++this.serial}`;
    const base = { name: o.name, kind: o.kind, path: shownPath, loadedAt: new Date().toISOString() };
    let entry: Entry;
    if (o.kind === 'ridge') {
      // read, checked and put in shared memory by a predict thread: the event loop never touches its arrays
      const { features, targets } = await this.predictPool.loadRidge(key, absPath);
      entry = { view: { ...base, shape: { features, targets } }, key, ridge: { nFeatures: features, nTargets: targets }, inFlight: 0, retired: false };
    } else {
      // ONNX Runtime's threads leave a core to the event loop and do not spin while idle
      const sd = await Diffusion.load(absPath, { provider: o.provider, intraOpThreads: o.threads || Math.max(1, availableParallelism() - 1), spinning: false, scheduler: o.scheduler });
      const shape = { latentChannels: sd.info.latentChannels, condDim: sd.info.condDim };
      entry = { view: { ...base, shape, scheduler: sd.defaultScheduler() }, key, sd, inFlight: 0, retired: false };
    }
    const old = this.models.get(o.name);
    this.models.set(o.name, entry);
    if (old) this.retire(old);
    return { ...entry.view, inFlight: 0 };
  }

  unload(name: string): boolean {
    const e = this.models.get(name);
    if (!e) return false;
    this.models.delete(name);
    this.retire(e);
    return true;
  }

  /**
   * Ridge predictions on the predict threads, batched with other requests for the model when they wait; `signal`
   * takes a request that is still waiting out of the queue (CancelledError).
   */
  async predict(name: string, x: Matrix, signal?: AbortSignal): Promise<Matrix> {
    return this.use(name, 'ridge', (e) => this.batcher.run(e.key, x, signal));
  }

  /** Runs `fn` with the SD model `name`, which stays loaded until it returns. */
  async withDiffusion<T>(name: string, fn: (sd: Diffusion) => Promise<T>): Promise<T> {
    return this.use(name, 'sd', (e) => fn(e.sd!));
  }

  /** The ridge model `name`'s shape (for checking a request before queueing it). */
  ridge(name: string): RidgeShape {
    const e = this.models.get(name);
    if (!e?.ridge) throw new ModelNotFoundError(name, 'ridge', e?.view.kind);
    return e.ridge;
  }

  close(): void {
    for (const e of this.models.values()) this.retire(e);
    this.models.clear();
  }

  private async use<T>(name: string, kind: 'ridge' | 'sd', fn: (e: Entry) => Promise<T>): Promise<T> {
    const e = this.models.get(name);
    if (!e || e.view.kind !== kind) throw new ModelNotFoundError(name, kind, e?.view.kind);
    e.inFlight++;
    try {
      return await fn(e);
    } finally {
      e.inFlight--;
      if (e.retired && e.inFlight === 0) this.release(e);
    }
  }

  private retire(e: Entry): void {
    e.retired = true;
    if (e.inFlight === 0) this.release(e);
  }

  private release(e: Entry): void {
    if (e.ridge) this.predictPool.unregister(e.key);
    e.sd?.dispose();
    e.ridge = undefined;
    e.sd = undefined;
  }
}
