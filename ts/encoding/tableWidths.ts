/**
 * The columns of each feature table an encode run fits, where they are known before the features are computed: a
 * 'file' set's from its header, z's and c's (and z_c's, as wide as z) from the model folder's declared sizes, a
 * U-Net layer's from the preflight's probe run of the U-Net, and a table whose stage will not run from the file it
 * left in the run folder. What the preflight plans each fit's memory with (ridgeMemory.ts).
 */
import { existsSync } from 'node:fs';

import type { EncodeConfig } from '../config/encode.js';
import { readNpyHeader } from '../io/npy.js';
import { embeddingWidths } from '../sd/embeddingWidths.js';
import { pooledWidth } from './features.js';
import { encodePaths, tableSpecs } from './runPaths.js';

/**
 * Columns by table key (tableSpecs) for the tables whose width is known now. `unetShapes`: a U-Net layer's output
 * shape on the preflight's probe batch (checkUnetLayers), by layer name: its table's columns once pooled.
 * `stagesToRun`: the stages that will run (default: all); a table whose stage will not run is read from the run folder.
 */
export async function knownTableWidths(c: EncodeConfig, unetShapes: ReadonlyMap<string, readonly number[]>, stagesToRun?: ReadonlySet<string>): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const p = encodePaths(c.out);
  const tables = tableSpecs(c);
  const embedded = c.model && tables.some((t) => t.spec.kind !== 'file') ? await embeddingWidths(c.model, c.imageSize) : { z: null, c: null };
  for (const t of tables) {
    let width: number | null = null;
    const done = t.stage !== null && stagesToRun !== undefined && !stagesToRun.has(t.stage);
    const file = t.spec.kind === 'file' ? t.spec.path : t.spec.kind === 'z' ? p.embedZ : t.spec.kind === 'c' ? p.embedC : p.table(t.key);
    if ((t.spec.kind === 'file' || done) && existsSync(file)) {
      try {
        const h = await readNpyHeader(file);
        if (h.shape.length === 2) width = h.shape[1];
      } catch {
        // an unreadable table is the preflight's or the stage's problem, named there
      }
    } else if (t.spec.kind === 'z' || t.spec.kind === 'zc') width = embedded.z;
    else if (t.spec.kind === 'c') width = embedded.c;
    else if (t.spec.kind === 'unet' && t.layer !== undefined) {
      const shape = unetShapes.get(t.layer);
      if (shape) width = pooledWidth(shape, t.spec.pool);
    }
    if (width !== null && width > 0) out.set(t.key, width);
  }
  return out;
}
