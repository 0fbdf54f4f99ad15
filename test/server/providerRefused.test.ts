/**
 * POST /v1/models with a `provider` this service's ONNX Runtime cannot run ('cuda' on a CPU-only host, a name ONNX
 * Runtime does not know): a 400 naming body.provider and the providers the service has, not a 500 with ONNX
 * Runtime's internals and advice to set BRAINLATENT_ORT_LIB (which a client cannot); the engine's own message is
 * in the server's log (review s43).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { nativeSync } from '../../ts/native/call.js';
import { resolveOrtLibrary } from '../../ts/sd/native.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import { startTestServer, type TestServer } from './helpers.js';

let s: TestServer;
let log = '';
const runtime = nativeSync((b) => b.ortLoad(resolveOrtLibrary()));
const cudaRuns = runtime.providers.includes('CUDAExecutionProvider');

beforeAll(async () => {
  const stream = new Writable({ write: (chunk, _enc, done) => ((log += String(chunk)), done()) });
  s = await startTestServer({ logger: { level: 'warn', stream } });
  mkdirSync(join(s.root, 'models'));
  await writeSdFixture(join(s.root, 'models', 'sd'));
}, 120_000);
afterAll(async () => s?.stop());

const has = runtime.providers.join(', ');

describe('an execution provider the service cannot run', () => {
  it("a name ONNX Runtime does not know: 400 BackendUnavailable naming body.provider and the service's providers", async () => {
    const r = await s.call('POST', '/v1/models', { kind: 'sd', name: 'sd', path: 'models/sd', provider: 'nope' });
    expect(r.status, r.text).toBe(400);
    const message = `body.provider: 'nope' cannot run on this service: its ONNX Runtime ${runtime.version} has ${has}; send 'cpu', the default (details in the server log)`;
    // (every 400 lists its problems: here the message, the one problem)
    expect(r.json).toEqual({ error: 'Bad Request', code: 'BackendUnavailable', name: 'BackendUnavailableError', message, problems: [message] });
    // the engine's message, with ONNX Runtime's list of names, is the server's to read
    const line = log.split('\n').find((l) => l.includes('the execution provider the request named is unavailable'));
    expect(line).toBeDefined();
    expect(JSON.parse(line!)).toMatchObject({ level: 40, provider: 'nope', err: { type: 'BackendUnavailableError', message: expect.stringMatching(/^execution provider 'nope' is unavailable: Unknown provider name 'nope'/) } });
    expect((await s.call('GET', '/v1/models')).json.models).toEqual([]);
  });

  it.skipIf(cudaRuns)("'cuda' without its libraries: the same 400, saying so for the operator, without BRAINLATENT_ORT_LIB or the server's paths", async () => {
    const r = await s.call('POST', '/v1/models', { kind: 'sd', name: 'sd2', path: 'models/sd', provider: 'cuda' });
    expect(r.status, r.text).toBe(400);
    expect(r.json).toMatchObject({ code: 'BackendUnavailable', name: 'BackendUnavailableError' });
    const libraries = runtime.providersWithoutLibrary.some((p) => p.provider === 'CUDAExecutionProvider')
      ? "; the CUDA provider's libraries are not installed on the server (its operator can install a CUDA build of ONNX Runtime: docs/cuda.md)"
      : '';
    expect(r.json.message).toBe(`body.provider: 'cuda' cannot run on this service: its ONNX Runtime ${runtime.version} has ${has}${libraries}; send 'cpu', the default (details in the server log)`);
    expect(r.json.message).not.toMatch(/BRAINLATENT_ORT_LIB|server path|onnxruntime_src/);
    // and 'cpu' loads
    expect((await s.call('POST', '/v1/models', { kind: 'sd', name: 'sd2', path: 'models/sd', provider: 'cpu' })).status).toBe(201);
  });
});
