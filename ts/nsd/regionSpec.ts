// The region spec's grammar alone, without the NIfTI readers a mask needs: the CLI's path checks parse
// specs on every command, and `ridge fit` must not load nifti-reader-js to do so.
import { InvalidArgumentError } from '../errors.js';

/**
 * Region specs: `nsdgeneral`; `<atlas>` (every label > 0); `<atlas>:<labels>` with labels given by name or
 * number, comma-separated (`streams:early`, `streams:1,5`, `prf-visualrois:V1,hV4`); or a path to any mask
 * .nii/.nii.gz on the subject's grid (voxels > 0).
 */
export type RegionSpec =
  | { kind: 'atlas'; atlas: string; labels: string[] | null }
  | { kind: 'file'; path: string };

export function parseRegionSpec(spec: string): RegionSpec {
  const s = spec.trim();
  if (!s) throw new InvalidArgumentError('region spec is empty; expected e.g. nsdgeneral, streams:early or a mask .nii.gz path');
  if (/\.nii(\.gz)?$/i.test(s) || s.includes('/') || s.includes('\\')) return { kind: 'file', path: s };
  const [atlas, labelText] = s.split(':', 2);
  if (!/^[A-Za-z0-9_.-]+$/.test(atlas)) throw new InvalidArgumentError(`region spec "${spec}": "${atlas}" is not an atlas name`);
  const labels = labelText === undefined ? null : labelText.split(',').map((l) => l.trim()).filter(Boolean);
  if (labels && labels.length === 0) throw new InvalidArgumentError(`region spec "${spec}": no labels after ":"`);
  return { kind: 'atlas', atlas, labels };
}
