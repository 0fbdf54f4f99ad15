/**
 * A failed job's result (a batch's summary, whose reasons quote the failing job's error) is shown to clients as its
 * error is: the server's paths under the root made root-relative. Before, the error message was rewritten but the
 * result was stored as the job returned it, so GET /v1/jobs/ID named the server's folders.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { DemoWorld } from '../../ts/demo/world.js';
import { Hdf5Reader, writeHdf5 } from '../../ts/io/hdf5.js';
import { betasPath } from '../../ts/nsd/paths.js';
import { batchManifest, batchWorld } from '../batch/world.js';
import { readEvents, startTestServer, type TestServer } from './helpers.js';

let s: TestServer;
let world: DemoWorld;
beforeAll(async () => {
  s = await startTestServer();
  world = await batchWorld(s.root, [1]);
  // a session whose betas hold a NaN: the submission's preflight passes it (it reads the betas' headers only: a
  // file cut short is refused there, submitPreflight.test.ts), the extraction fails on it
  const betas = betasPath(world.nsdRoot, 1, 2, 'hdf5');
  const r = await Hdf5Reader.open(betas);
  const shape = r.shape('betas');
  r.close();
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(1);
  data.fill(Number.NaN, 0, data.length >> 1);
  await writeHdf5(betas, [{ name: 'betas', data, shape, chunks: [shape[0], 1, 1, 1] }]);
}, 600_000);
afterAll(async () => s?.stop());

describe('a failed batch job', { timeout: 300_000 }, () => {
  it("shows no absolute path of the server's folders: not in its result's summary, nor in its error, nor in its events", async () => {
    const rel = (p: string) => p.slice(s.root.length + 1);
    const m = batchManifest(world, 'bad', 'batches/bad', [1]);
    const recon = m.analyses[0].config as { model: { dir: string } };
    const manifest = { ...m, nsd: { root: rel(world.nsdRoot) }, analyses: [{ ...m.analyses[0], config: { ...recon, model: { ...recon.model, dir: rel(recon.model.dir) } } }] };
    const r = await s.call('POST', '/v1/jobs', { kind: 'batch', manifest });
    expect(r.status, r.text).toBe(202);
    const events = await readEvents(`${s.url}/v1/jobs/${r.json.id}/events`);
    const job = await s.call('GET', `/v1/jobs/${r.json.id}`);
    expect(job.json.state).toBe('failed');
    // the reason is there, with the folder as the client wrote it
    const betas = job.json.result.summary.find((c: { stage: string }) => c.stage === 'betas');
    expect(betas.state).toBe('failed');
    expect(betas.reason).toMatch(/^NonFiniteError: betas \(world\/nsd\/nsddata_betas\/ppdata\/subj01\/func1pt8mm\/betas_fithrf_GLMdenoise_RR\/betas_session02\.hdf5\): .*NaN/);
    expect(job.json.error.message).toContain('failed (first: bad.subj01.betas: NonFiniteError: betas (world/nsd/nsddata_betas/');
    for (const text of [job.text, (await s.call('GET', '/v1/jobs')).text, JSON.stringify(events)]) expect(text).not.toContain(s.root);
  });
});
