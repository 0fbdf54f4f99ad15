/**
 * A text encoder that computes for a while: the SD layout's signature (input_ids int32 [batch, 77] →
 * last_hidden_state [batch, 77, dim]) over a chain of `layers` MatMuls by one dim² weight, so that a run's length is
 * proportional to its rows (batch·77) and ONNX Runtime's terminate flag is read between the MatMuls. Written over the
 * text_encoder/model.onnx of an SD fixture folder; `outDim` (default `dim`) is the width it returns, by one more
 * MatMul, for a folder whose U-Net takes another (the demo world's 64).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { GraphBuilder, intAttr, intsAttr, model, rng, valueInfo } from '../../ts/sd/fixture.js';

const INT32 = 6, FLOAT = 1;

export function writeSlowTextEncoder(sdFolder: string, dim = 512, layers = 60, outDim = dim): void {
  const g = new GraphBuilder(rng(5));
  const ids = g.op('Cast', ['input_ids'], [intAttr('to', FLOAT)]);
  const col = g.op('Unsqueeze', [g.op('Mul', [ids, g.floats([1 / 49408])]), g.ints([2])]);
  let h = g.op('MatMul', [col, g.weight([1, dim], 1)]);
  const w = g.weight([dim, dim], 1 / Math.sqrt(dim));
  for (let i = 0; i < layers; i++) h = g.op('MatMul', [h, w]);
  if (outDim !== dim) h = g.op('MatMul', [h, g.weight([dim, outDim], 1 / Math.sqrt(dim))]);
  g.op('Identity', [h], [], 'last_hidden_state');
  g.op('ReduceMean', ['last_hidden_state'], [intsAttr('axes', [1]), intAttr('keepdims', 0)], 'pooler_output');
  const bytes = model(
    g,
    'text_encoder',
    [valueInfo('input_ids', INT32, ['batch_size', 77])],
    [valueInfo('last_hidden_state', FLOAT, ['batch_size', 77, outDim]), valueInfo('pooler_output', FLOAT, ['batch_size', outDim])],
  );
  writeFileSync(join(sdFolder, 'text_encoder', 'model.onnx'), bytes);
}
