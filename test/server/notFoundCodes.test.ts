/**
 * Every 404 carries one documented `code` per kind of thing not found, whichever route answers it: ModelNotFound
 * (with the model's name) for the model routes, predict and img2img alike, JobNotFound (with the id) for the job
 * routes, FileNotFound for a run folder's file and RouteNotFound for a route the service does not have.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { encodeNpy } from '../../ts/io/npy.js';
import { failingFitJob, startServerWithRidge, until, type TestServer } from './helpers.js';

let s: TestServer;

beforeAll(async () => {
  s = await startServerWithRidge();
}, 60_000);
afterAll(async () => s?.stop());

const b64 = (data: Float32Array, shape: number[]) => encodeNpy(data, shape).toString('base64');
const img2img = { z: b64(new Float32Array(4 * 8 * 8), [1, 4, 8, 8]), c: b64(new Float32Array(77 * 32), [1, 77, 32]), steps: 2 };
const npy = { 'content-type': 'application/x-npy' };

describe('404: one code per kind of thing not found, on every route', () => {
  it.each([
    ['GET', '/v1/models/nope', undefined, undefined, 'nope', "no model named 'nope' is loaded (POST /v1/models loads one)"],
    ['DELETE', '/v1/models/nope', undefined, undefined, 'nope', "no model named 'nope' is loaded (POST /v1/models loads one)"],
    ['POST', '/v1/ridge/nope/predict', { x: [[1, 2, 3, 4]] }, undefined, 'nope', "no ridge model named 'nope' is loaded (POST /v1/models loads one)"],
    ['POST', '/v1/ridge/nope/predict', encodeNpy(new Float32Array(4), [1, 4]), npy, 'nope', "no ridge model named 'nope' is loaded (POST /v1/models loads one)"],
    ['POST', '/v1/sd/nope/img2img', img2img, undefined, 'nope', "no sd model named 'nope' is loaded (POST /v1/models loads one)"],
    // a model of the other kind is not the model the route needs
    ['POST', '/v1/sd/z/img2img', img2img, undefined, 'z', "model 'z' is a ridge model, not a Stable Diffusion (diffusion) model: POST /v1/ridge/z/predict runs it (this route needs a Stable Diffusion (diffusion) model; POST /v1/models loads one)"],
  ] as const)('%s %s: ModelNotFound naming the model', async (method, path, body, headers, model, message) => {
    const r = await s.call(method, path, body, headers);
    expect(r.status, r.text).toBe(404);
    expect(r.json).toEqual({ error: 'Not Found', code: 'ModelNotFound', name: 'ModelNotFoundError', model, message });
  });

  it('JobNotFound with the id on the job routes', async () => {
    for (const [method, path] of [['GET', '/v1/jobs/gone-1'], ['DELETE', '/v1/jobs/gone-1'], ['GET', '/v1/jobs/gone-1/files/report.html']]) {
      const r = await s.call(method, path);
      expect(r.status, path).toBe(404);
      expect(r.json, path).toMatchObject({ error: 'Not Found', code: 'JobNotFound', name: 'JobNotFoundError', id: 'gone-1' });
    }
  });

  it("FileNotFound for a file a known job's run folder does not have, RouteNotFound for a route the service does not have", async () => {
    const job = await s.call('POST', '/v1/jobs', await failingFitJob(s, 'run1'));
    expect(job.status, job.text).toBe(202);
    const file = await s.call('GET', `/v1/jobs/${job.json.id}/files/nothing.txt`);
    expect(file.status).toBe(404);
    expect(file.json).toEqual({ error: 'Not Found', code: 'FileNotFound', name: 'FileNotFoundError', message: "no file 'nothing.txt' in this run folder" });
    const route = await s.call('GET', '/v1/nothing');
    expect(route.status).toBe(404);
    expect(route.json).toEqual({ error: 'Not Found', code: 'RouteNotFound', name: 'RouteNotFoundError', message: 'no route GET /v1/nothing' });
    // (a NaN in its Y: it fails at its fit, and the service closes with no job running)
    await until(async () => ((await s.call('GET', `/v1/jobs/${job.json.id}`)).json.state === 'failed' ? true : undefined), 60_000, 'the job to fail');
  });
});
