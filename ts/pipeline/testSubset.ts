/**
 * The test images a run reconstructs: all of them (in the extraction's row order), or with `nsd.testImages`
 * the N smallest 73k ids — "the first N in id order", as the config says — so the subset does not depend on
 * the order in which the subject happened to see them.
 */
export function selectTestImages(testIds: readonly number[], limit: number | null): number[] {
  if (limit === null) return [...testIds];
  return [...testIds].sort((a, b) => a - b).slice(0, limit);
}
