/** NSD's 73k image ids in files a user gives: 1-based, 1..73000 (nsdId, 0-based, is the 73k id − 1; docs/data.md). */
import { FormatError } from '../errors.js';
import { readIntVectorNpy } from '../io/npy.js';

/** Images in NSD's stimulus set (73k ids 1..NSD_IMAGES). */
export const NSD_IMAGES = 73000;

/**
 * The first element of `ids` that is not a 73k id, said as `<what> (<path>): element i is v, …`; null when every
 * one is. A 0 among them reads as 0-based nsdIds given for 73k ids (every row would then meet the next image's
 * betas), so the message says so.
 */
export function nsd73kIdProblem(ids: ArrayLike<number>, path: string, what: string): string | null {
  for (let i = 0; i < ids.length; i++) {
    const v = ids[i];
    if (Number.isInteger(v) && v >= 1 && v <= NSD_IMAGES) continue;
    const hasZero = Array.prototype.includes.call(ids, 0);
    const hint = hasZero ? `; it holds a 0, as 0-based nsdIds do: 73k ids are nsdId + 1` : '';
    return `${what} (${path}): element ${i} is ${v}, expected a 73k id (a whole number 1..${NSD_IMAGES}, 1-based)${hint}`;
  }
  return null;
}

/** Rows read as 73k ids 1..rows (no ids file) past 73,000 have no image: the message, or null when they fit. */
export function rowsAs73kIdsProblem(rows: number, path: string, what: string): string | null {
  if (rows <= NSD_IMAGES) return null;
  return `${what}: ${path} has ${rows} rows, read as 73k ids 1..${rows} (no ids file), but NSD's 73k ids end at ${NSD_IMAGES}; give ids (an .npy of each row's 73k id)`;
}

/** Reads an .npy of 73k ids (1-D integers), refusing any outside 1..73000 with nsd73kIdProblem's message. */
export async function read73kIdsNpy(path: string, what: string): Promise<Int32Array> {
  const ids = await readIntVectorNpy(path, what);
  const problem = nsd73kIdProblem(ids, path, what);
  if (problem) throw new FormatError(problem, { path, field: 'data' });
  return ids;
}
