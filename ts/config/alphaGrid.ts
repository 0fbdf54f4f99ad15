/** Alpha grids in configs: a list, or the string forms `start:stop:count` / `a,b,c`, parsed once at validation. */
import { parseAlphas } from '../ridge/alphas.js';

/** The grid as numbers; a string that does not parse adds a problem naming `label` and yields []. */
export function resolveAlphaGrid(grid: string | number[], label: string, problems: string[]): number[] {
  if (Array.isArray(grid)) {
    // a list repeats nothing either (as `--alphas` and the string forms): a repeated alpha is a typo, not a grid
    const first = new Map<number, number>();
    grid.forEach((a, i) => {
      const j = first.get(a);
      if (j !== undefined) problems.push(`${label}: the alphas must be distinct, got ${a} at positions ${j} and ${i}`);
      else first.set(a, i);
    });
    return grid;
  }
  try {
    return parseAlphas(grid);
  } catch (e) {
    problems.push(`${label}: ${(e as Error).message.replace(/^alphas: /, '')}`);
    return [];
  }
}
