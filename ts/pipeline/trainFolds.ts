/**
 * A run's fold count against its fits' training rows, checked in the preflight: a count the rows cannot hold was
 * refused by every fit, after the extraction and the features, and the preflight's fit plan threw RidgeCV's bare
 * message naming no field.
 */
import { assignFolds } from '../ridge/folds.js';

/** `field` (the config's fold count) against the training rows, grouped by image as the fits group them; null when they hold it. */
export function trainFoldsProblem(field: string, folds: number, trainIds: Int32Array, onePerImage: boolean): string | null {
  try {
    assignFolds(trainIds.length, { folds, groups: trainIds }, `${trainIds.length} training rows${onePerImage ? ' (one per image)' : ''}`);
    return null;
  } catch (e) {
    return `${field}: ${(e as Error).message}`;
  }
}
