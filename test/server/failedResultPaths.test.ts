/**
 * A failed job's result (a batch's summary, whose reasons quote the failing job's error) is shown to clients as its
 * error is: the server's paths under the root made root-relative. Before, the error message was rewritten but the
 * result was stored as the job returned it, so GET /v1/jobs/ID named the server's folders.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readEvents, startTestServer, type TestServer } from './helpers.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
  mkdirSync(join(s.root, 'nsd-empty'));
});
afterAll(async () => s?.stop());

describe('a failed batch job', { timeout: 300_000 }, () => {
  it("shows no absolute path of the server's folders: not in its result's summary, nor in its error, nor in its events", async () => {
    // a subject without betas: its extraction fails at once, naming the folder it looked in
    const manifest = { name: 'bad', out: 'batches/bad', nsd: { root: 'nsd-empty' }, subjects: [1], analyses: [{ name: 'recon', kind: 'reconstruct', config: { model: { dir: 'model' } } }] };
    const r = await s.call('POST', '/v1/jobs', { kind: 'batch', manifest });
    expect(r.status, r.text).toBe(202);
    const events = await readEvents(`${s.url}/v1/jobs/${r.json.id}/events`);
    const job = await s.call('GET', `/v1/jobs/${r.json.id}`);
    expect(job.json.state).toBe('failed');
    // the reason is there, with the folder as the client wrote it
    const betas = job.json.result.summary.find((c: { stage: string }) => c.stage === 'betas');
    expect(betas.state).toBe('failed');
    expect(betas.reason).toMatch(/^SubjectWithoutBetasError: subject 1 has no betas in nsd-empty \(format 'auto': looked for nsd-empty\/nsddata_betas\//);
    expect(job.json.error.message).toContain('no betas in nsd-empty');
    for (const text of [job.text, (await s.call('GET', '/v1/jobs')).text, JSON.stringify(events)]) expect(text).not.toContain(s.root);
  });
});
