/**
 * Side branches for the U-Net checks' tests, added to a fixture U-Net (its output unchanged): a Shape and an int64
 * Cast (not float), a Reshape to [1, -1] and a mean over everything (no row per image), none of which can be a
 * feature; and a float16 Cast (a float16 export's tensors, here without value_info), which can (read as float32).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { onnx } from '../helpers/onnx.js';

/** The tensors addSideBranches adds that cannot be features. */
export const SIDE_BRANCHES = ['sample_shape', 'tanh_int', 'tanh_one_row', 'tanh_mean'];
/** The float16 Cast of `from` addSideBranches adds: a feature, read as float32. */
export const HALF_BRANCH = 'tanh_half';

/** Adds the side branches of `from` (a [B, C, h, w] tensor) and of the sample to the U-Net of `dir`. */
export async function addSideBranches(dir: string, from: string): Promise<void> {
  const path = join(dir, 'unet', 'model.onnx');
  const m = onnx.ModelProto.decode(await readFile(path));
  const T = onnx.TensorProto.DataType;
  const INT = onnx.AttributeProto.AttributeType.INT;
  const g = m.graph!;
  g.initializer = [...(g.initializer ?? []), { name: 'row_shape', dims: [2], dataType: T.INT64, rawData: new Uint8Array(BigInt64Array.of(1n, -1n).buffer) }];
  g.node = [
    ...(g.node ?? []),
    { name: 'side/Shape', opType: 'Shape', input: ['sample'], output: ['sample_shape'] },
    { name: 'side/CastInt', opType: 'Cast', input: [from], output: ['tanh_int'], attribute: [{ name: 'to', type: INT, i: T.INT64 }] },
    { name: 'side/CastHalf', opType: 'Cast', input: [from], output: ['tanh_half'], attribute: [{ name: 'to', type: INT, i: T.FLOAT16 }] },
    { name: 'side/Reshape', opType: 'Reshape', input: [from, 'row_shape'], output: ['tanh_one_row'] },
    { name: 'side/ReduceMean', opType: 'ReduceMean', input: [from], output: ['tanh_mean'], attribute: [{ name: 'keepdims', type: INT, i: 0 }] },
  ];
  await writeFile(path, onnx.ModelProto.encode(m).finish());
}

