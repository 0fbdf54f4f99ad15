/**
 * A config's `ridge.memoryBudget` (bytes) against what the engine needs: the least any fit of the run takes, known
 * before anything runs, and the engine's own refusal restated in the config's unit (it counts in GiB and names the
 * library option `memoryBudget`).
 */
import { OutOfMemoryError } from '../errors.js';

/**
 * Parts of every ridge fit's fixed footprint that depend on nothing but the number of targets (native/core/src/ridge/
 * engine.cpp, attempt()): a 1 MiB reserve for small allocations, and each target's best score and alpha (doubles)
 * and index (int32), 20 bytes. X's prepared copy, the route's Grams and decompositions and the target batches come on
 * top, so a budget below this is refused by the engine whatever the features.
 */
const ENGINE_RESERVE = 2 ** 20;
const BYTES_PER_TARGET = 20;

/** The least memory budget, in bytes, that a ridge fit to `targets` targets (voxels) can have. */
export const ridgeBudgetFloor = (targets: number): number => ENGINE_RESERVE + BYTES_PER_TARGET * targets;

/** Bytes in GiB as the engine writes them (printf's %.3g), so that the figures of both messages read alike. */
function gib(bytes: number): string {
  const g = Number((bytes / 2 ** 30).toPrecision(3));
  const e = g === 0 ? 0 : Math.floor(Math.log10(g));
  return `${e < -4 || e >= 3 ? g.toExponential().replace(/e([+-])(\d)$/, 'e$10$2') : String(g)} GiB`;
}

/** The preflight's problem with `ridge.memoryBudget` for fits to `voxels` voxels, or null. */
export function memoryBudgetProblem(budget: number | undefined, voxels: number): string | null {
  if (budget === undefined) return null;
  const floor = ridgeBudgetFloor(voxels);
  if (budget >= floor) return null;
  return (
    `ridge.memoryBudget is ${budget} bytes (${gib(budget)}), below the ${floor} bytes (${gib(floor)}) that every ridge fit of this run needs ` +
    `before X's copy and the route's work buffers (the engine's 1 MiB reserve and ${BYTES_PER_TARGET} bytes for each of the ${voxels} voxels): ` +
    'the budget is in bytes (2 GiB is 2147483648); leave it out for the engine\'s default'
  );
}

/**
 * The engine's refusal of a budget, for a config user: the budget given in bytes beside the engine's GiB, and the
 * least budget it asks for in bytes (rounded up from its 3 significant digits) under the config's name, `field`.
 */
export function inConfigUnits(e: OutOfMemoryError, budget: number | undefined, field = 'ridge.memoryBudget'): OutOfMemoryError {
  let message = e.message;
  if (budget !== undefined) message = message.replace(/the memory budget of (\S+ GiB)/, (_, g: string) => `the memory budget of ${g} (${field}: ${budget} bytes)`);
  message = message.replace(/raise memoryBudget to at least ([0-9.]+(?:e[-+]?\d+)?) GiB/, (_, g: string) => {
    const v = Number(g);
    const ulp = 10 ** (Math.floor(Math.log10(v)) - 2);
    return `raise ${field} (in bytes) to at least ${Math.ceil((v + ulp) * 2 ** 30)} (${g} GiB)`;
  });
  if (message === e.message) return e;
  const out = new OutOfMemoryError(message);
  out.stack = `${out.name}: ${message}\n${(e.stack ?? '').split('\n').slice(1).join('\n')}`;
  return out;
}
