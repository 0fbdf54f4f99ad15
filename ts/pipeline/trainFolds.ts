/**
 * A run's fold count against its fits' training rows, checked in the preflight: a count the rows cannot hold was
 * refused by every fit, after the extraction and the features, and the preflight's fit plan threw RidgeCV's bare
 * message naming no field. The problem says how many folds the rows do hold, in the words of the form used: a
 * command line that has no way to set the count (reconstruct without --config) is told plainly that the data set is
 * too small for the default, and what to change.
 */
import { fieldNames, type FieldNames } from '../config/fieldNames.js';
import { assignFolds } from '../ridge/folds.js';

/** Whether the rows, grouped by image, hold `folds` folds; the reason they do not otherwise. */
function foldsProblem(folds: number, trainIds: Int32Array, rows: string): string | null {
  try {
    assignFolds(trainIds.length, { folds, groups: trainIds }, rows);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * The most folds below `folds` that the rows hold (each whole images, each of 2 rows at least), or null when not even
 * 2 do. Tried from the most there could be (one image a fold, two rows a fold) down: a count the rows refuse is rare
 * and small (a tiny data set), so the first tries find it.
 */
export function largestTrainFolds(folds: number, trainIds: Int32Array): number | null {
  const images = new Set(trainIds).size;
  for (let k = Math.min(folds - 1, images, Math.floor(trainIds.length / 2)); k >= 2; k--) {
    if (foldsProblem(k, trainIds, 'rows') === null) return k;
  }
  return null;
}

/**
 * `field` (the config's fold count) against the training rows, grouped by image as the fits group them; null when
 * they hold it. `what` is the fit ('the z decoder'); `names` words the field and its remedy for the form used.
 */
export function trainFoldsProblem(
  field: string,
  folds: number,
  trainIds: Int32Array,
  onePerImage: boolean,
  names: FieldNames = fieldNames(),
  what = 'the fit',
): string | null {
  const images = new Set(trainIds).size;
  const rows = `${trainIds.length} training rows${onePerImage ? ' (one per image)' : ` of ${images} images`}`;
  // (a fold holds whole images: the engine said only 'groups: 2 distinct groups cannot fill 5 folds')
  const problem = images < folds && folds <= trainIds.length
    ? `${rows}: ${images} images cannot fill ${folds} folds (an image never straddles folds)`
    : foldsProblem(folds, trainIds, rows);
  if (problem === null) return null;
  const most = largestTrainFolds(folds, trainIds);
  const remedy = most !== null ? `${names.setTo(field, most)} (the most these rows hold)` : 'not even 2 folds of 2 rows each fit: use a data set with more training images';
  if (names.fromDefault(field)) {
    // (the form has no way to set the count: what is wrong in plain words, then what to change)
    return `the data set is too small for ${what}'s ${folds}-fold cross-validation (the default): ${problem}; ${remedy}`;
  }
  return `${names.name(field)}: ${problem}; ${remedy}`;
}
