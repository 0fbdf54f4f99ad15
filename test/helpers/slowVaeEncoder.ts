/**
 * A VAE encoder that computes for a while per image: the SD layout's signature (sample float [batch, 3, H, W] →
 * latent_parameters [batch, 8, H/8, W/8], mean ‖ logvar) over the fixture's 8×8 average pool, then a chain of `layers`
 * 1×1 convolutions by one channels² weight at the latent resolution, so that an image's cost is fixed by its size
 * (H/8·W/8 · channels² · 2 · layers floating-point operations), whatever the machine, and ONNX Runtime's terminate flag
 * is read between the convolutions. Written over the vae_encoder/model.onnx of an SD fixture folder.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { GraphBuilder, intsAttr, model, rng, valueInfo } from '../../ts/sd/fixture.js';

const FLOAT = 1;

export function writeSlowVaeEncoder(sdFolder: string, channels = 256, layers = 32): void {
  const g = new GraphBuilder(rng(6));
  const conv = (x: string, cin: number, cout: number, w?: string) =>
    g.op('Conv', [x, w ?? g.weight([cout, cin, 1, 1], Math.sqrt(3 / cin))], [intsAttr('kernel_shape', [1, 1])]);
  const pooled = g.op('AveragePool', ['sample'], [intsAttr('kernel_shape', [8, 8]), intsAttr('strides', [8, 8])]);
  let h = conv(pooled, 3, channels);
  // (uniform weights of variance 1/channels: the values keep their scale along the chain)
  const w = g.weight([channels, channels, 1, 1], Math.sqrt(3 / channels));
  for (let i = 0; i < layers; i++) h = conv(h, channels, channels, w);
  g.op('Mul', [conv(h, channels, 8), g.floats([0.1])], [], 'latent_parameters');
  const bytes = model(
    g,
    'vae_encoder',
    [valueInfo('sample', FLOAT, ['batch_size', 3, 'height', 'width'])],
    [valueInfo('latent_parameters', FLOAT, ['batch_size', 8, 'height_latent', 'width_latent'])],
  );
  writeFileSync(join(sdFolder, 'vae_encoder', 'model.onnx'), bytes);
}
