/**
 * readOnnxSignature reads a model's declared inputs and outputs without its weights: what `sd img2img` checks its
 * --image, --latents and --cond against before the model loads, and the preflights' fixed-latent-size check.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { FormatError, MissingFileError } from '../../ts/errors.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import { onnx } from '../helpers/onnx.js';
import { latentSizeMismatch, readOnnxSignature, unetDeclaredSizes } from '../../ts/sd/onnxSignature.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-onnx-signature-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A protobuf varint. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}
const field = (f: number, body: Uint8Array | number[]) => [...varint(f * 8 + 2), ...varint(body.length), ...body];

describe('readOnnxSignature', () => {
  it("gives the graph's inputs and outputs as onnx.ModelProto.decode does, for every fixture variant's models", async () => {
    await writeSdFixture(join(tmp, 'sd'));
    for (const part of ['unet', 'text_encoder', 'vae_encoder', 'vae_decoder']) {
      const path = join(tmp, 'sd', part, 'model.onnx');
      const g = onnx.ModelProto.decode(readFileSync(path)).graph!;
      const decl = (v: import('onnx-proto').onnx.IValueInfoProto) => ({
        name: v.name,
        dims: v.type!.tensorType!.shape!.dim!.map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue))),
      });
      expect(await readOnnxSignature(path), part).toEqual({ inputs: g.input!.map(decl), outputs: g.output!.map(decl) });
    }
    const u = await unetDeclaredSizes(join(tmp, 'sd'));
    expect(u).toMatchObject({ sampleName: 'sample', height: null, width: null, condDim: 32 });
    expect(latentSizeMismatch(u, 8, 8)).toBeNull();
    expect(latentSizeMismatch({ height: 16, width: 16 }, 8, 6)).toEqual({ height: 16, width: 16 });
    expect(latentSizeMismatch({ height: 16, width: null }, 16, 6)).toBeNull();
  });

  it('skips the initializers by their length: a 2.5 GB model (sparse here) is read in a few small reads', async () => {
    const sample = onnx.ValueInfoProto.encode({
      name: 'sample',
      type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'batch_size' }, { dimValue: 4 }, { dimValue: 16 }, { dimValue: 16 }] } } },
    }).finish();
    const out = onnx.ValueInfoProto.encode({ name: 'out_sample', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'b' }, { dimValue: 4 }] } } } }).finish();
    const node = onnx.NodeProto.encode({ opType: 'Identity', input: ['sample'], output: ['out_sample'] }).finish();
    const weights = 2.5e9; // beyond what a Buffer (and so onnx.ModelProto.decode) can hold
    const tail = [...field(11, sample), ...field(12, out)];
    const before = [...field(1, node), ...varint(5 * 8 + 2), ...varint(weights)];
    const graphLength = before.length + weights + tail.length;
    const head = Uint8Array.from([...varint(1 * 8), 8, ...varint(7 * 8 + 2), ...varint(graphLength), ...before]);
    const path = join(tmp, 'big.onnx');
    const fd = openSync(path, 'w');
    writeSync(fd, head, 0, head.length, 0);
    writeSync(fd, Uint8Array.from(tail), 0, tail.length, head.length + weights);
    closeSync(fd);
    expect(statSync(path).size).toBe(head.length + weights + tail.length);
    const t0 = performance.now();
    expect(await readOnnxSignature(path)).toEqual({
      inputs: [{ name: 'sample', dims: ['batch_size', 4, 16, 16] }],
      outputs: [{ name: 'out_sample', dims: ['b', 4] }],
    });
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('names the file when it is missing, truncated or not protobuf', async () => {
    await expect(readOnnxSignature(join(tmp, 'none.onnx'), 'U-Net')).rejects.toThrow(MissingFileError);
    const cut = join(tmp, 'cut.onnx');
    const whole = readFileSync(join(tmp, 'sd', 'unet', 'model.onnx'));
    writeFileSync(cut, whole.subarray(0, Math.floor(whole.length / 2)));
    await expect(readOnnxSignature(cut)).rejects.toThrow(FormatError);
    await expect(readOnnxSignature(cut)).rejects.toThrow(new RegExp(`^${cut}: not a readable ONNX model \\(`));
    const text = join(tmp, 'text.onnx');
    writeFileSync(text, 'not an ONNX file');
    await expect(readOnnxSignature(text)).rejects.toThrow(`${text}: not a readable ONNX model (`);
  });
});
