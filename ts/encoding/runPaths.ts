/**
 * The encode run folder: where each stage writes, and the feature tables a config defines (their names, the
 * key their files and stages go by, and which stage computes them).
 */
import { join } from 'node:path';

import type { EncodeConfig, FeatureSetSpec } from '../config/encode.js';

/** A feature table of the config: one per feature set, one per layer × timestep for U-Net sets. */
export interface TableSpec {
  /** Its name in results, maps and banded sets ("z", "unet:/mid_block/…@t201"). */
  name: string;
  /** Its name in files and stage ids: the name, or <set>.L<layer index>.t<timestep> for U-Net tables. */
  key: string;
  spec: FeatureSetSpec;
  layer?: string;
  timestep?: number;
  /** The stage that computes it: 'embed' for z and c, features.<set> for z_c and U-Net sets, none for files. */
  stage: string | null;
}

/** The tables of a config, 'file' sets first (the order of the results), then the others in config order. */
export function tableSpecs(c: EncodeConfig): TableSpec[] {
  const specs = [...c.featureSets.filter((s) => s.kind === 'file'), ...c.featureSets.filter((s) => s.kind !== 'file')];
  return specs.flatMap((spec): TableSpec[] => {
    switch (spec.kind) {
      case 'file':
        return [{ name: spec.name, key: spec.name, spec, stage: null }];
      case 'z':
      case 'c':
        return [{ name: spec.name, key: spec.name, spec, stage: 'embed' }];
      case 'zc':
        return [{ name: spec.name, key: spec.name, spec, stage: `features.${spec.name}` }];
      case 'unet':
        return spec.layers.flatMap((layer, li) =>
          spec.timesteps.map((t) => ({ name: `${spec.name}:${layer}@t${t}`, key: `${spec.name}.L${li}.t${t}`, spec, layer, timestep: t, stage: `features.${spec.name}` })),
        );
    }
  });
}

export const encodePaths = (out: string) => ({
  /** 73k ids of the training and test rows of the betas. */
  ids: join(out, 'data', 'image_ids.json'),
  noiseCeiling: join(out, 'data', 'noise_ceiling.npy'),
  embedZ: join(out, 'features', 'embed', 'z.npy'),
  embedC: join(out, 'features', 'embed', 'c.npy'),
  embedIds: join(out, 'features', 'embed', 'image_ids.npy'),
  embedShapes: join(out, 'features', 'embed', 'shapes.json'),
  /** A computed table (z_c, U-Net): rows are the embed ids. */
  table: (key: string) => join(out, 'features', `${key}.npy`),
  fit: (key: string) => ({
    r: join(out, 'fits', key, 'r.npy'),
    r2: join(out, 'fits', key, 'r2.npy'),
    alphas: join(out, 'fits', key, 'best_alphas.npy'),
    info: join(out, 'fits', key, 'fit.json'),
  }),
  banded: (name: string) => ({
    r: join(out, 'banded', name, 'r.npy'),
    weights: join(out, 'banded', name, 'band_weights.npy'),
    /** The alpha chosen per voxel (shared by the bands: band i's penalty is alpha/γᵢ). */
    alphas: join(out, 'banded', name, 'best_alphas.npy'),
    /** Held-out R² of the joint model, as measured; and of the model without set i (with partitioning). */
    r2: join(out, 'banded', name, 'r2.npy'),
    r2Without: (i: number) => join(out, 'banded', name, `r2_without_${i}.npy`),
    unique: (i: number) => join(out, 'banded', name, `unique_${i}.npy`),
    shared: join(out, 'banded', name, 'shared.npy'),
    info: join(out, 'banded', name, 'banded.json'),
  }),
  /** The maps the maps stage wrote (MapRecord[]: kind, file, mosaic, label, …); their names come from mapFile(). */
  maps: join(out, 'data', 'maps.json'),
  regions: join(out, 'regions.csv'),
  report: join(out, 'report.html'),
  summary: join(out, 'encoding.json'),
});
