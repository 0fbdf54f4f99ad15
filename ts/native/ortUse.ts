/**
 * Which ONNX Runtime a piece of work ran its models on, for the record of what computed a stage (runVersions.ts'
 * stageVersions): the places that load or hand out a model say so (Diffusion.load, OnnxModel's loads, a
 * reconstruction's shared model each time a stage asks for it, a feature network). Scoped to the async work that
 * asked (AsyncLocalStorage), so two jobs side by side in one process each see their own, and a stage's use counts
 * in the run around it too.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

import type { OrtRuntimeInfo } from './samplerTypes.js';

export interface OrtUse {
  /** 'engine': the engine's own ONNX Runtime (its C API; one library per process); 'onnxruntime-node': that package's JavaScript API. */
  via: 'engine' | 'onnxruntime-node';
  version: string;
  /** The library the engine loaded (engine only). */
  library?: string;
}

interface Scope {
  uses: OrtUse[];
  outer: Scope | undefined;
}

const scopes = new AsyncLocalStorage<Scope>();

/** Records a use in the work running now and in every recording around it; nothing when none records. */
export function noteOrtUse(use: OrtUse): void {
  for (let s = scopes.getStore(); s; s = s.outer) {
    if (!s.uses.some((u) => u.via === use.via && u.version === use.version && u.library === use.library)) s.uses.push(use);
  }
}

/** Records a model run on the engine's ONNX Runtime (ortLoad's answer). */
export function noteEngineOrt(runtime: Pick<OrtRuntimeInfo, 'version' | 'libraryPath'>): void {
  noteOrtUse({ via: 'engine', version: runtime.version, library: runtime.libraryPath });
}

/** Runs `fn` and returns what it returned with the ONNX Runtimes it (and what it awaited) ran models on. */
export async function recordingOrtUse<T>(fn: () => Promise<T>): Promise<{ value: T; uses: OrtUse[] }> {
  const scope: Scope = { uses: [], outer: scopes.getStore() };
  const value = await scopes.run(scope, fn);
  return { value, uses: scope.uses };
}

/** The ONNX Runtimes the work around this call has run models on so far (within recordingOrtUse; none outside): a failed run's record. */
export function ortUsesSoFar(): OrtUse[] {
  return [...(scopes.getStore()?.uses ?? [])];
}
