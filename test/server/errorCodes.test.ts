/**
 * An HTTP client and an embedder see the same code for the same failure: an error body's `code` is the error's own
 * `.code` (what the library throws in-process for the same input), and `name` its class. Each case sends a request
 * and makes the same call in-process, and compares the two.
 */
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { BrainlatentError } from '../../ts/errors.js';
import { decodeNpy, encodeNpy } from '../../ts/io/npy.js';
import { RidgeModel } from '../../ts/ridge/RidgeModel.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { ModelNotFoundError } from '../../ts/server/notFound.js';
import { startServerWithRidge, type TestServer } from './helpers.js';

let s: TestServer;
let model: RidgeModel;

beforeAll(async () => {
  s = await startServerWithRidge();
  model = await RidgeModel.load(join(s.root, 'models', 'ridge.safetensors'));
}, 60_000);
afterAll(async () => s?.stop());

/** The error `f` throws (or rejects with), as the library's error class with its code. */
async function thrown(f: () => unknown): Promise<BrainlatentError> {
  try {
    await f();
  } catch (e) {
    expect(e).toBeInstanceOf(BrainlatentError);
    return e as BrainlatentError;
  }
  throw new Error('expected an error');
}

/** A well-formed .npy of float32 `shape` whose header is over the reader's 1 MiB limit. */
function npyWithLongHeader(shape: number[]): Buffer {
  const headerLen = (1 << 20) + 64;
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}), }`;
  const lead = Buffer.alloc(12);
  lead.write('\x93NUMPY', 0, 'latin1');
  lead[6] = 2;
  lead.writeUInt32LE(headerLen, 8);
  const header = Buffer.from(`${dict}${' '.repeat(headerLen - dict.length - 1)}\n`, 'latin1');
  return Buffer.concat([lead, header, Buffer.alloc(4 * shape.reduce((a, b) => a * b, 1))]);
}

const npy = { 'content-type': 'application/x-npy' };

describe("an error body's code is the library's for the same input", () => {
  it('ShapeError: X with 5 features for a 4-feature model is ShapeMismatch', async () => {
    const x = new Float32Array([1, 2, 3, 4, 5]);
    const r = await s.call('POST', '/v1/ridge/z/predict', encodeNpy(x, [1, 5]), npy);
    const e = await thrown(() => model.predict({ data: x, rows: 1, cols: 5 }));
    expect(e.code).toBe('ShapeMismatch');
    expect(r.status, r.text).toBe(400);
    expect(r.json).toMatchObject({ code: e.code, name: 'ShapeError' });
  });

  it('InvalidArgumentError: an SD model "folder" that is a file is InvalidArgument', async () => {
    const r = await s.call('POST', '/v1/models', { kind: 'sd', name: 'sd', path: 'models/ridge.safetensors' });
    const e = await thrown(() => Diffusion.load(join(s.root, 'models', 'ridge.safetensors')));
    expect(e.code).toBe('InvalidArgument');
    expect(r.status, r.text).toBe(400);
    expect(r.json).toMatchObject({ code: e.code, name: 'InvalidArgumentError' });
  });

  it('MissingFileError: a missing SD model folder is MissingFile, as a missing ridge file is', async () => {
    const sd = await s.call('POST', '/v1/models', { kind: 'sd', name: 'sd', path: 'models/no-such-sd' });
    const e = await thrown(() => Diffusion.load(join(s.root, 'models', 'no-such-sd')));
    expect(e.code).toBe('MissingFile');
    expect(sd.status, sd.text).toBe(400);
    expect(sd.json).toMatchObject({ code: e.code, name: 'MissingFileError', message: expect.stringMatching(/^body\.path: model folder .*models\/no-such-sd does not exist/) });
    const ridge = await s.call('POST', '/v1/models', { kind: 'ridge', name: 'r', path: 'models/no-such.safetensors' });
    expect(ridge.status, ridge.text).toBe(400);
    expect(ridge.json).toMatchObject({ code: 'MissingFile', name: 'MissingFileError' });
  });

  it('LimitError: a .npy header over the 1 MiB limit is LimitExceeded', async () => {
    const bytes = npyWithLongHeader([1, 4]);
    const r = await s.call('POST', '/v1/ridge/z/predict', new Uint8Array(bytes), npy);
    const e = await thrown(() => decodeNpy(bytes, 'body'));
    expect(e.code).toBe('LimitExceeded');
    expect(r.status, r.text).toBe(413);
    expect(r.json).toMatchObject({ code: e.code, name: 'LimitError' });
  });

  it('NonFiniteError: a NaN in X is NonFinite', async () => {
    const x = new Float32Array([0, 0, Number.NaN, 0]);
    const r = await s.call('POST', '/v1/ridge/z/predict', encodeNpy(x, [1, 4]), npy);
    const e = await thrown(() => model.predict({ data: x, rows: 1, cols: 4 }));
    expect(e.code).toBe('NonFinite');
    expect(r.status, r.text).toBe(400);
    expect(r.json).toMatchObject({ code: e.code, name: 'NonFiniteError' });
  });

  it("a 404's code is the code of the error its route throws (ModelNotFound)", async () => {
    const r = await s.call('POST', '/v1/ridge/nope/predict', { x: [[1, 2, 3, 4]] });
    expect(r.status, r.text).toBe(404);
    expect(r.json).toMatchObject({ code: new ModelNotFoundError('nope').code, name: 'ModelNotFoundError', model: 'nope' });
    expect(r.json.code).toBe('ModelNotFound');
  });
});
