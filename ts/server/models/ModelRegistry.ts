/**
 * Models loaded once and used by many requests: ridge models for predict, SD model folders for img2img. A model
 * replaced or unloaded while requests use it is released only after the last of them finishes.
 *
 * A load takes a while (a thread reads the file; ONNX Runtime builds its sessions), so a name is claimed when its
 * load starts, not when it lands: a second load of the name without "replace" is refused while the first runs; a
 * load with "replace" wins over every load of the name that started before it (one of those that lands after it is
 * dropped); a DELETE drops the loads of the name under way, and so does close.
 */
import { availableParallelism } from 'node:os';

import { BrainlatentError } from '../../errors.js';
import type { Matrix } from '../../matrix.js';
import { Diffusion, type SchedulerName } from '../../sd/Diffusion.js';
import { withModelRoots } from '../../sd/modelRoots.js';
import { ModelNotFoundError } from '../notFound.js';
import { ClosedError } from '../workQueue.js';
import type { PredictBatcher } from './predictBatcher.js';
import type { PredictPool } from './predictPool.js';

export class ModelExistsError extends BrainlatentError {
  /** `loading`: the name is not loaded yet, but another request's load of it is under way. */
  constructor(name: string, loading = false) {
    super(
      loading
        ? `a model named '${name}' is being loaded by another request; send "replace": true to have this load replace it`
        : `a model named '${name}' is already loaded; send "replace": true to replace it`,
      'ModelExists',
    );
  }
}

/** A load of a new name while `maxModels` names are loaded or being loaded: one must be unloaded first. */
export class ModelLimitError extends BrainlatentError {
  constructor(name: string, maxModels: number, names: readonly string[]) {
    const shown = names.length > 10 ? `${names.slice(0, 10).join(', ')}, … (${names.length} in all)` : names.join(', ');
    super(
      `cannot load model '${name}': ${maxModels} model${maxModels === 1 ? ' is' : 's are'} loaded or being loaded (${shown}), this service's limit (maxModels); unload one with DELETE /v1/models/<name>, or load under a loaded name with "replace": true`,
      'TooManyModels',
    );
  }
}

/** A load that landed after a DELETE of its name, or after a load of the name that started later: its model is dropped. */
export class ModelLoadCancelledError extends BrainlatentError {
  constructor(name: string, why: 'unloaded' | 'replaced') {
    super(
      why === 'unloaded'
        ? `model '${name}' was unloaded (DELETE) while this load of it ran; the model it loaded was dropped`
        : `model '${name}' was replaced by a later load of that name ("replace": true) that finished first; the model this load loaded was dropped`,
      'ModelLoadCancelled',
    );
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
  /** Its load's number, in the order loads started: a later load wins over an earlier one that lands after it. */
  serial: number;
  key: string;
  ridge?: RidgeShape;
  sd?: Diffusion;
  inFlight: number;
  retired: boolean;
}

type LoadOptions = { name: string; kind: 'ridge' | 'sd'; replace: boolean; provider?: string; threads?: number; scheduler?: SchedulerName };

export class ModelRegistry {
  private readonly models = new Map<string, Entry>();
  /** Per name, the loads under way that may still land (their serials); a DELETE, and close, empty it. */
  private readonly loading = new Map<string, Set<number>>();
  private serial = 0;
  /** The serial of each name's last DELETE: a load that arrived before it is dropped, wherever it had got to. */
  private readonly unloaded = new Map<string, number>();
  /** Per name, the loads whose requests have arrived (ticket) but that have not reached load yet. */
  private readonly arriving = new Map<string, Set<number>>();
  private closed = false;

  /**
   * `modelRoots`: the service's root folders, which the model files it loads must lie in, links followed
   * (modelRoots.ts); held to these, not to the process's, which are every service's of the process.
   */
  constructor(
    private readonly predictPool: PredictPool,
    private readonly batcher: PredictBatcher,
    private readonly modelRoots: readonly string[],
    /** Names loaded or being loaded at once, ridge and SD together (the plugin's maxModels). */
    private readonly maxModels = Infinity,
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

  /**
   * A load's place in the order of loads and DELETEs, taken when its request arrives: a route that resolves the path
   * first (an await) and loads after would otherwise count from then, and a DELETE in between answered 204 while the
   * load still landed (review s45).
   */
  ticket(name: string): number {
    const serial = ++this.serial;
    this.arriving.set(name, (this.arriving.get(name) ?? new Set()).add(serial));
    return serial;
  }

  /** The load of `ticket` has begun, or will not: it is no longer arriving. */
  arrived(name: string, ticket: number): void {
    const set = this.arriving.get(name);
    if (set?.delete(ticket) && set.size === 0) this.arriving.delete(name);
  }

  /** Loads a ridge model (.safetensors) or an SD model folder under `name`, its files held to the service's roots. */
  load(o: LoadOptions, absPath: string, shownPath: string, serial = this.ticket(o.name)): Promise<ModelView> {
    this.arrived(o.name, serial);
    return withModelRoots(this.modelRoots, () => this.loadHere(o, absPath, shownPath, serial));
  }

  private async loadHere(o: LoadOptions, absPath: string, shownPath: string, serial: number): Promise<ModelView> {
    if (this.closed) throw new ClosedError(`loading model '${o.name}'`);
    if ((this.unloaded.get(o.name) ?? -1) > serial) throw new ModelLoadCancelledError(o.name, 'unloaded');
    const under = this.loading.get(o.name);
    if (!o.replace && (this.models.has(o.name) || under)) throw new ModelExistsError(o.name, !this.models.has(o.name));
    // a new name takes one more place (a replace of a name loaded or being loaded takes none)
    if (!this.models.has(o.name) && !under) {
      const names = new Set([...this.models.keys(), ...this.loading.keys()]);
      if (names.size >= this.maxModels) throw new ModelLimitError(o.name, this.maxModels, [...names]);
    }
    const loads = under ?? new Set<number>();
    this.loading.set(o.name, loads.add(serial));
    let entry: Entry;
    let live: boolean;
    try {
      entry = await this.read(o, serial, absPath, shownPath);
    } finally {
      // (false when a DELETE or close emptied the set while it ran)
      live = loads.delete(serial);
      if (loads.size === 0 && this.loading.get(o.name) === loads) this.loading.delete(o.name);
    }
    const old = this.models.get(o.name);
    const dropped = this.closed ? new ClosedError(`loading model '${o.name}'`) : !live ? new ModelLoadCancelledError(o.name, 'unloaded') : old && old.serial > serial ? new ModelLoadCancelledError(o.name, 'replaced') : undefined;
    if (dropped) {
      this.release(entry);
      throw dropped;
    }
    this.models.set(o.name, entry);
    if (old) this.retire(old);
    return { ...entry.view, inFlight: 0 };
  }

  /** Reads the model into an entry that nothing uses yet. */
  private async read(o: LoadOptions, serial: number, absPath: string, shownPath: string): Promise<Entry> {
    const key = `${o.name}#${serial}`;
    const base = { name: o.name, kind: o.kind, path: shownPath, loadedAt: new Date().toISOString() };
    if (o.kind === 'ridge') {
      // read, checked and put in shared memory by a predict thread: the event loop never touches its arrays
      const { features, targets } = await this.predictPool.loadRidge(key, absPath);
      return { view: { ...base, shape: { features, targets } }, serial, key, ridge: { nFeatures: features, nTargets: targets }, inFlight: 0, retired: false };
    }
    // ONNX Runtime's threads leave a core to the event loop and do not spin while idle
    const sd = await Diffusion.load(absPath, { provider: o.provider, intraOpThreads: o.threads || Math.max(1, availableParallelism() - 1), spinning: false, scheduler: o.scheduler });
    const shape = { latentChannels: sd.info.latentChannels, condDim: sd.info.condDim };
    return { view: { ...base, shape, scheduler: sd.defaultScheduler() }, serial, key, sd, inFlight: 0, retired: false };
  }

  /** Unloads `name` and drops the loads of it under way; false when there was neither. */
  unload(name: string): boolean {
    const loads = this.loading.get(name);
    const underWay = (loads?.size ?? 0) > 0 || this.arriving.has(name);
    // (only where a load of it may come after: a DELETE of a name never loaded left an entry for good)
    if (underWay) this.unloaded.set(name, ++this.serial);
    else this.unloaded.delete(name);
    loads?.clear();
    this.loading.delete(name);
    const e = this.models.get(name);
    if (e) {
      this.models.delete(name);
      this.retire(e);
    }
    return e !== undefined || underWay;
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
    // (a request whose body arrived after the service began closing: 503, not the 404 of an emptied registry)
    if (this.closed) throw new ClosedError(`model '${name}'`);
    const e = this.models.get(name);
    if (!e?.ridge) throw new ModelNotFoundError(name, 'ridge', e?.view.kind);
    return e.ridge;
  }

  close(): void {
    this.closed = true;
    for (const loads of this.loading.values()) loads.clear();
    this.loading.clear();
    for (const e of this.models.values()) this.retire(e);
    this.models.clear();
  }

  private async use<T>(name: string, kind: 'ridge' | 'sd', fn: (e: Entry) => Promise<T>): Promise<T> {
    if (this.closed) throw new ClosedError(`model '${name}'`);
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
