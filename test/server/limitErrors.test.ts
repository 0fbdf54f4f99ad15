/**
 * A LimitError is the client's input over a limit the service keeps, never the service's own failure: in the
 * request's content (a .npy body, an img2img body's base64 array, each within the data body limit) a 413 naming the
 * field and the limit; in a file the client named by path (POST /v1/models) a 400 naming body.path and the file.
 */
import { truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { encodeNpy } from '../../ts/io/npy.js';
import { startServerWithRidge, startTestServer, type TestServer } from './helpers.js';

let s: TestServer;

beforeAll(async () => {
  s = await startServerWithRidge();
}, 60_000);
afterAll(async () => s?.stop());

/** A well-formed version 2.0 .npy of float32 `shape` whose header (padded with spaces) is `headerLen` bytes: 64 over the reader's 1 MiB limit. */
function npyWithLongHeader(shape: number[], headerLen = (1 << 20) + 64): Buffer {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}), }`;
  const lead = Buffer.alloc(12);
  lead.write('\x93NUMPY', 0, 'latin1');
  lead[6] = 2;
  lead[7] = 0;
  lead.writeUInt32LE(headerLen, 8);
  const header = Buffer.from(`${dict}${' '.repeat(headerLen - dict.length - 1)}\n`, 'latin1');
  return Buffer.concat([lead, header, Buffer.alloc(4 * shape.reduce((a, b) => a * b, 1))]);
}

describe('LimitError → 413 for the request content, 400 for a file the client named', () => {
  it('a predict .npy body with a header over the 1 MiB limit: 413 naming the body and the limit', async () => {
    const r = await s.call('POST', '/v1/ridge/z/predict', new Uint8Array(npyWithLongHeader([1, 4])), { 'content-type': 'application/x-npy' });
    expect(r.status, r.text).toBe(413);
    expect(r.json).toEqual({ error: 'Payload Too Large', code: 'LimitExceeded', name: 'LimitError', message: 'body: .npy header of 1048640 bytes is over the 1048576-byte limit' });
  });

  it('predictions over the predictionLimit (samples × the model\'s targets × 4 bytes): 413 before the work, naming the most samples', async () => {
    // a few bytes a sample in, the model's targets × 4 out: a small body could ask for gigabytes (past 4 GiB a predict
    // thread's answer came back truncated, with 200)
    const t = await startTestServer({ predictionLimit: 100 }, s.root);
    try {
      expect((await t.call('POST', '/v1/models', { kind: 'ridge', name: 'z', path: 'models/ridge.safetensors' })).status).toBe(201);
      const rows = (n: number) => ({ x: Array.from({ length: n }, () => [0.1, 0.2, 0.3, 0.4]) });
      // the test model has 3 targets: 12 bytes a sample, 8 samples within 100 bytes, 9 over
      expect((await t.call('POST', '/v1/ridge/z/predict', rows(8))).status).toBe(200);
      const r = await t.call('POST', '/v1/ridge/z/predict', rows(9));
      expect(r.status, r.text).toBe(413);
      expect(r.json).toEqual({
        error: 'Payload Too Large',
        code: 'LimitExceeded',
        name: 'LimitError',
        message: "body.x: 9 samples × 3 targets of model 'z' are 108 bytes of predictions, over this service's limit of 100 (predictionLimit): send at most 8 samples per request",
      });
    } finally {
      await t.stop();
    }
  });

  it("an img2img body's base64 z with such a header: 413 naming body.z", async () => {
    const body = { z: npyWithLongHeader([1, 4, 8, 8]).toString('base64'), c: encodeNpy(new Float32Array(77 * 32), [1, 77, 32]).toString('base64') };
    const r = await s.call('POST', '/v1/sd/nope/img2img', body);
    expect(r.status, r.text).toBe(413);
    expect(r.json).toEqual({ error: 'Payload Too Large', code: 'LimitExceeded', name: 'LimitError', message: 'body.z: .npy header of 1048640 bytes is over the 1048576-byte limit' });
  });

  it('a ridge model file named in POST /v1/models whose safetensors header is over the 100 MB limit: 400 naming body.path and the file', async () => {
    // (sparse: the header's length says 100 MB + 1 and the file is that long, but nothing past the length is written)
    const n = 100_000_001;
    const path = join(s.root, 'models', 'big.safetensors');
    const lead = Buffer.alloc(8);
    lead.writeBigUInt64LE(BigInt(n));
    writeFileSync(path, lead);
    truncateSync(path, 8 + n + 16);
    const r = await s.call('POST', '/v1/models', { kind: 'ridge', name: 'big', path: 'models/big.safetensors' });
    expect(r.status, r.text).toBe(400);
    expect(r.json).toEqual({
      error: 'Bad Request',
      code: 'LimitExceeded',
      name: 'LimitError',
      message: 'body.path: models/big.safetensors: safetensors header of 100000001 bytes is over the 100000000-byte limit',
      problems: ['body.path: models/big.safetensors: safetensors header of 100000001 bytes is over the 100000000-byte limit'],
    });
  });
});
