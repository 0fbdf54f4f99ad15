/** Alpha grids in configs: a list, or the string forms `start:stop:count` / `a,b,c`, parsed once at validation. */
import { parseAlphas, repeatedAlphaProblem, repeatedAlphas } from '../ridge/alphas.js';

/** The grid as numbers; a string that does not parse adds a problem naming `label` and yields []. */
export function resolveAlphaGrid(grid: string | number[], label: string, problems: string[]): number[] {
  if (Array.isArray(grid)) {
    // checked here too, not only when RidgeCV is built: a config's problems are listed before any work, all at once
    for (const r of repeatedAlphas(grid)) problems.push(`${label}: ${repeatedAlphaProblem(r)}`);
    return grid;
  }
  try {
    return parseAlphas(grid);
  } catch (e) {
    problems.push(`${label}: ${(e as Error).message.replace(/^alphas: /, '')}`);
    return [];
  }
}
