/**
 * POST /v1/models of an SD folder whose U-Net keeps its data at an absolute location outside the root: a 400 naming
 * the file (root-relative) and the tensor, with the location shown as `<server path>` (before, the answer quoted the
 * absolute server path, '/tmp/…/outside/w2.bin'). Error answers go through the same rewrite as served run files:
 * the server's paths under the root root-relative, any other absolute path hidden; a route in an answer (a 405, a
 * body over its route's limit) is not a path and stays. A job's error is shown the same way.
 */
import { copyFile, cp, mkdir, mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { SD_FIXTURE_VARIANTS, writeSdFixture } from '../../ts/sd/fixture.js';
import { externalize, relocate } from '../helpers/externalData.js';
import { startTestServer, type TestServer } from './helpers.js';
import { StartedJobsRunner } from './startedJobsRunner.js';

let s: TestServer;
let outside = '';


beforeAll(async () => {
  s = await startTestServer();
  outside = await realpath(await mkdtemp(join(tmpdir(), 'bl-model-locations-out-')));
  const dir = join(s.root, 'models', 'ext2');
  await writeSdFixture(join(outside, 'plain'), SD_FIXTURE_VARIANTS['optimum-1.24']);
  await externalize(join(outside, 'plain', 'unet', 'model.onnx'), 'weights.pb');
  await cp(join(outside, 'plain'), dir, { recursive: true });
  await mkdir(join(outside, 'outside'));
  await copyFile(join(dir, 'unet', 'weights.pb'), join(outside, 'outside', 'w2.bin'));
  expect((await relocate(join(dir, 'unet', 'model.onnx'), () => true, join(outside, 'outside', 'w2.bin'))).length).toBeGreaterThan(0);
}, 120_000);
afterAll(async () => {
  await s?.stop();
  await rm(outside, { recursive: true, force: true });
});

describe('an error answer names no server path outside the root', () => {
  it('POST /v1/models: an absolute external data location is refused naming the file and the tensor, not the location', async () => {
    const r = await s.call('POST', '/v1/models', { kind: 'sd', name: 'ext2', path: 'models/ext2' });
    expect(r.status, r.text).toBe(400);
    expect(r.json).toMatchObject({ code: 'FormatError', name: 'FormatError' });
    expect(r.json.message).toMatch(/^body\.path: models\/ext2\/unet\/model\.onnx: tensor '[^']+' \(a graph initializer\) keeps its data in '<server path>', an absolute path: /);
    expect(r.text).not.toContain(outside);
  });

  it("a job's error: the server's paths under the root root-relative, any other hidden, a route kept", async () => {
    const runner = new StartedJobsRunner();
    const t = await startTestServer({ runner }, s.root);
    try {
      const r = await t.call('POST', '/v1/jobs', { kind: 'demo', out: 'demo-fails' });
      expect(r.status, r.text).toBe(202);
      runner.board.finish(r.json.id, 'failed', { error: { name: 'FormatError', code: 'FormatError', message: `${s.root}/models/ext2/unet/model.onnx: keeps its data in '${outside}/outside/w2.bin' (load it with POST /v1/models/x)` } });
      const job = await t.call('GET', `/v1/jobs/${r.json.id}`);
      expect(job.json.error.message).toBe("models/ext2/unet/model.onnx: keeps its data in '<server path>' (load it with POST /v1/models/x)");
    } finally {
      await t.stop();
    }
  });

  it('keeps the route a 405 or a 413 names', async () => {
    const r = await s.call('PUT', '/v1/jobs');
    expect(r.status).toBe(405);
    expect(r.json.message).toContain('/v1/jobs');
    const big = await s.call('POST', '/v1/jobs', { kind: 'demo', out: 'x'.repeat(2 << 20) });
    expect(big.status).toBe(413);
    expect(big.json.message).toContain('POST /v1/jobs');
  });
});
