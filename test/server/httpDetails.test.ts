/**
 * The service's small HTTP answers say what a client needs to fix its request: a non-Bearer Authorization header,
 * a body over its route's limit (the limit in bytes and the route), JSON that does not parse (where), a known path
 * with another method (405 with Allow), a cancel of a job that has ended (409 with its state), predict on a
 * diffusion model (which route runs it), a predict shape error naming body.x, a number beyond float32 named as sent,
 * img2img's shape errors (c and z of different batch sizes, c's width, z's channels, uncond) naming body.c, body.z
 * and body.uncond, a reconstruct config its preflight
 * would refuse (400 at submission, nothing written), and an event stream resumed beyond its job's end (the final
 * event, not an empty stream).
 */
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { encodeNpy } from '../../ts/io/npy.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import { failingFitJob, readEvents, startServerWithRidge, startTestServer, until, TEST_TOKEN, type TestServer } from './helpers.js';

describe('auth: a credential of another scheme', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ token: TEST_TOKEN });
  });
  afterAll(async () => s?.stop());

  it('a Basic Authorization header is told a bearer token is expected', async () => {
    const r = await s.call('GET', '/v1/jobs', undefined, { authorization: 'Basic dXNlcjpwYXNz' });
    expect(r.status).toBe(401);
    expect(r.json.message).toBe("the Authorization header is of scheme 'Basic': this service expects a bearer token (Authorization: Bearer <token>)");
    expect((await s.call('GET', '/v1/jobs', undefined, { authorization: 'Bearer nope' })).json.message).toBe('the bearer token is not valid');
    // the scheme's name is case-insensitive
    expect((await s.call('GET', '/v1/jobs', undefined, { authorization: `bearer ${TEST_TOKEN}` })).status).toBe(200);
  });
});

describe('request details', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServerWithRidge();
    await writeSdFixture(join(s.root, 'models', 'sd'));
    const r = await s.call('POST', '/v1/models', { kind: 'sd', name: 'sd', path: 'models/sd' });
    expect(r.status, r.text).toBe(201);
  }, 120_000);
  afterAll(async () => s?.stop());

  it('413 names the limit in bytes and the route', async () => {
    const big = await s.call('POST', '/v1/jobs', { kind: 'demo', out: 'x'.repeat(2 << 20) });
    expect(big.status).toBe(413);
    expect(big.json.code).toBe('FST_ERR_CTP_BODY_TOO_LARGE');
    expect(big.json.limit).toBe(1 << 20);
    expect(big.json.message).toMatch(/^the request body is over the 1,048,576-byte limit \(1 MiB\) of POST \/v1\/jobs \(this one declares [\d,]+ bytes\)$/);
    const data = await s.call('POST', '/v1/ridge/z/predict', new Uint8Array((64 << 20) + 1), { 'content-type': 'application/x-npy' });
    expect(data.status).toBe(413);
    expect(data.json.message).toMatch(/67,108,864-byte limit \(64 MiB\) of POST \/v1\/ridge\/:model\/predict/);
  });

  it('JSON that does not parse: the 400 says where and what was expected', async () => {
    const notJson = 'body: expected JSON (application/json), got text that stops being JSON at';
    const r = await s.call('POST', '/v1/jobs', '{"kind": "demo",\n "out": x}', { 'content-type': 'application/json' });
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('FST_ERR_CTP_INVALID_JSON_BODY');
    expect(r.json.problems).toEqual([`${notJson} line 2, column 9: invalid symbol`]);
    expect(r.json.message).toBe(`the request body is not valid (1 problem):\n  - ${notJson} line 2, column 9: invalid symbol`);
    const cut = await s.call('POST', '/v1/jobs', '{"kind": ', { 'content-type': 'application/json' });
    expect(cut.json.problems).toEqual([`${notJson} line 1, column 10: value expected (at the end of the body)`]);
    // the data routes' own parser, small and large bodies alike
    const small = await s.call('POST', '/v1/ridge/z/predict', '{"x": [[1, 2, 3, 4]]]', { 'content-type': 'application/json' });
    expect(small.json.problems).toEqual([`${notJson} line 1, column 21: comma expected`]);
    const large = await s.call('POST', '/v1/ridge/z/predict', `{"x": [${'[1, 2, 3, 4],'.repeat(30_000)}]}`, { 'content-type': 'application/json' });
    expect(large.status).toBe(400);
    expect(large.json.code).toBe('FST_ERR_CTP_INVALID_JSON_BODY');
    expect(large.json.problems).toEqual([expect.stringMatching(/^body: expected JSON \(application\/json\), got text that stops being JSON at line 1, column \d+: value expected$/)]);
    // a poisoned key is refused as before
    const proto = await s.call('POST', '/v1/jobs', '{"kind": "demo", "__proto__": {"x": 1}}', { 'content-type': 'application/json' });
    expect(proto.status).toBe(400);
    expect(proto.json.code).toBe('FST_ERR_CTP_INVALID_JSON_BODY');
  });

  it('a known path with a method it does not take: 405 with Allow, not 404', async () => {
    const r = await s.call('PUT', '/v1/jobs');
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('GET, HEAD, POST');
    expect(r.json).toMatchObject({ error: 'Method Not Allowed', code: 'MethodNotAllowed', name: 'MethodNotAllowedError', allow: ['GET', 'HEAD', 'POST'] });
    expect(r.json.message).toBe('PUT is not allowed on /v1/jobs: it takes GET, HEAD, POST');
    const job = await s.call('POST', '/v1/jobs/some-id');
    expect(job.status).toBe(405);
    expect(job.headers.get('allow')).toBe('GET, HEAD, DELETE');
    expect((await s.call('DELETE', '/v1/jobs/x/files/report.html')).headers.get('allow')).toBe('GET, HEAD');
    // a path the service does not have is still 404
    expect((await s.call('PUT', '/v1/nothing')).status).toBe(404);
  });

  it('DELETE of a job that has ended: 409 with its state', async () => {
    const job = await s.call('POST', '/v1/jobs', await failingFitJob(s, 'gone'));
    expect(job.status, job.text).toBe(202);
    await until(async () => ((await s.call('GET', `/v1/jobs/${job.json.id}`)).json.state === 'failed' ? true : undefined), 60_000, 'the job to fail');
    const r = await s.call('DELETE', `/v1/jobs/${job.json.id}`);
    expect(r.status).toBe(409);
    expect(r.json).toMatchObject({ error: 'Conflict', code: 'JobFinished', name: 'JobFinishedError', id: job.json.id, state: 'failed' });
    expect(r.json.message).toBe(`job '${job.json.id}' has already ended (failed): there is nothing to cancel`);
  });

  it('an event stream resumed at or beyond the end of an ended job still gets the final event', async () => {
    const job = await s.call('POST', '/v1/jobs', await failingFitJob(s, 'gone2'));
    const id = job.json.id;
    await until(async () => ((await s.call('GET', `/v1/jobs/${id}`)).json.state === 'failed' ? true : undefined), 60_000, 'the job to fail');
    const all = await readEvents(`${s.url}/v1/jobs/${id}/events`);
    const final = all[all.length - 1];
    expect(final.event).toBe('error');
    for (const last of [final.id, final.id + 50]) {
      const resumed = await readEvents(`${s.url}/v1/jobs/${id}/events`, { 'last-event-id': String(last) });
      expect(resumed.map((e) => [e.id, e.event]), `Last-Event-ID ${last}`).toEqual([[final.id, 'error']]);
    }
    // one before the end: what came after it, the final event once
    const tail = await readEvents(`${s.url}/v1/jobs/${id}/events`, { 'last-event-id': String(final.id - 1) });
    expect(tail.map((e) => e.id)).toEqual([final.id]);
  });

  it('predict on a diffusion model says which route runs it; img2img on a ridge model likewise', async () => {
    const r = await s.call('POST', '/v1/ridge/sd/predict', { x: [[1, 2, 3, 4]] });
    expect(r.status).toBe(404);
    expect(r.json).toMatchObject({ code: 'ModelNotFound', model: 'sd' });
    expect(r.json.message).toBe(
      "model 'sd' is a Stable Diffusion (diffusion) model, not a ridge model: POST /v1/sd/sd/img2img runs it (this route needs a ridge model; POST /v1/models loads one)",
    );
  });

  it('a predict shape error names body.x (JSON) or the .npy body', async () => {
    const json = await s.call('POST', '/v1/ridge/z/predict', { x: [[1, 2, 3]] });
    expect(json.status).toBe(400);
    expect(json.json.message).toBe("body.x: X has 3 features per sample but model 'z' takes 4");
    const npy = await s.call('POST', '/v1/ridge/z/predict', encodeNpy(new Float32Array(3), [1, 3]), { 'content-type': 'application/x-npy' });
    expect(npy.json.message).toBe("body (X as .npy): X has 3 features per sample but model 'z' takes 4");
  });

  // s26-r2: 1e39 was told 'is Infinity' (what float32 made of it, not what was sent)
  it('a number beyond float32 is named as sent, with the range, in JSON and in a float64 .npy', async () => {
    const json = await s.call('POST', '/v1/ridge/z/predict', { x: [[1e39, 0, 0, -1e39]] });
    expect(json.status).toBe(400);
    expect(json.json).toMatchObject({ code: 'NonFinite', name: 'NonFiniteError' });
    expect(json.json.message).toBe(
      "body.x: element [sample 0, feature 0] (flat index 0) is 1e+39, beyond float32's range (±3.4e38), the type it is read as (2 of 4 values are not finite); finite numbers are required",
    );
    const npy = await s.call('POST', '/v1/ridge/z/predict', encodeNpy(new Float64Array([0, 0, -3.5e38, 0]), [1, 4]), { 'content-type': 'application/x-npy' });
    expect(npy.json.message).toBe(
      "body (X as .npy): element [sample 0, feature 2] (flat index 2) is -3.5e+38, beyond float32's range (±3.4e38), the type it is read as; finite numbers are required",
    );
  });

  // s26-r2: 'img2img: z has 2 images but c has 1 rows', where the route's other answers name the body's fields
  it("img2img with c's rows not one per image of z names body.c and body.z", async () => {
    const b64 = (shape: number[]) => encodeNpy(new Float32Array(shape.reduce((a, n) => a * n, 1)), shape).toString('base64');
    const r = await s.call('POST', '/v1/sd/sd/img2img', { z: b64([2, 4, 8, 8]), c: b64([1, 77, 32]), steps: 2 });
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ code: 'ShapeMismatch', name: 'ShapeError' });
    expect(r.json.message).toBe('body.c: has 1 rows ([1, 77, 32]) but body.z has 2 images ([2, 4, 8, 8]); expected one row of c per image');
  });

  // s27: these were the sampler's own ('img2img: c has width 16 …'), found once the request had been queued
  it("img2img's other shape errors name body.z, body.c and body.uncond, what was expected and what was sent", async () => {
    const b64 = (shape: number[]) => encodeNpy(new Float32Array(shape.reduce((a, n) => a * n, 1)), shape).toString('base64');
    const refusal = async (body: Record<string, unknown>) => {
      const r = await s.call('POST', '/v1/sd/sd/img2img', { steps: 2, ...body });
      expect(r.status, r.text).toBe(400);
      expect(r.json).toMatchObject({ code: 'ShapeMismatch', name: 'ShapeError' });
      return r.json.message as string;
    };
    const [z, c] = [b64([2, 4, 8, 8]), b64([2, 77, 32])];
    expect(await refusal({ z, c: b64([2, 77, 16]) })).toBe('body.c: has width 16 ([2, 77, 16]) but the U-Net expects encoder_hidden_states of width 32');
    expect(await refusal({ z: b64([2, 3, 8, 8]), c })).toBe('body.z: has shape [2, 3, 8, 8] but the U-Net expects 4 latent channels');
    expect(await refusal({ z, c, uncond: b64([1, 77, 16]), guidance: 3 })).toBe(
      'body.uncond: has shape [1, 77, 16], expected [1 or 2, 77, 32]: the sequence length and width of body.c [2, 77, 32], its pair in classifier-free guidance',
    );
    // (one image: "[1 or 1, …]" before)
    expect(await refusal({ z: b64([1, 4, 8, 8]), c: b64([1, 77, 32]), uncond: b64([1, 76, 32]), guidance: 3 })).toBe(
      'body.uncond: has shape [1, 76, 32], expected [1, 77, 32]: the sequence length and width of body.c [1, 77, 32], its pair in classifier-free guidance',
    );
    expect(await refusal({ z, c: b64([2, 10, 32]), guidance: 3 })).toBe(
      'body.c: has shape [2, 10, 32], expected [2, 77, 32]: the text encoder\'s sequence length is 77 (its embedding of "" is the unconditional input when guidance > 1)',
    );
    expect(await refusal({ z: b64([0, 4, 8, 8]), c: b64([0, 77, 32]) })).toBe('body.z: has no images');
    // an uncond is not read at guidance 1 (no unconditional pass): its shape refuses nothing
    const ok = await s.call('POST', '/v1/sd/sd/img2img', { z, c, uncond: b64([1, 77, 16]), guidance: 1, steps: 2, output: 'latents' });
    expect(ok.status, ok.text).toBe(200);
  });

  // review s43: a seeds array of another length was refused by the sampler once queued, as 'img2img seeds: …'
  it('img2img with a seeds array not one per image names body.seeds and body.z', async () => {
    const b64 = (shape: number[]) => encodeNpy(new Float32Array(shape.reduce((a, n) => a * n, 1)), shape).toString('base64');
    const r = await s.call('POST', '/v1/sd/sd/img2img', { z: b64([2, 4, 8, 8]), c: b64([2, 77, 32]), steps: 2, seeds: [1, 2, 3] });
    expect(r.status, r.text).toBe(400);
    expect(r.json).toMatchObject({ code: 'InvalidArgument', name: 'InvalidArgumentError', message: 'body.seeds: expected one seed per image of body.z (2), got an array of 3' });
    const ok = await s.call('POST', '/v1/sd/sd/img2img', { z: b64([2, 4, 8, 8]), c: b64([2, 77, 32]), steps: 2, seeds: [1, 2], output: 'latents' });
    expect(ok.status, ok.text).toBe(200);
  });

  it('a reconstruct config its preflight refuses is a 400 at submission, before anything is written', async () => {
    mkdirSync(join(s.root, 'nsd'));
    const config = { out: 'runs/r1', nsd: { root: 'nsd', subject: 1 }, model: { dir: 'models/sd' }, img2img: { steps: 1000, scheduler: 'ddim' } };
    const r = await s.call('POST', '/v1/jobs', { kind: 'reconstruct', config });
    expect(r.status, r.text).toBe(400);
    expect(r.json.code).toBe('InvalidRequest');
    const problems: string[] = r.json.problems;
    // the img2img plan's refusal (1000 steps under 'leading' spacing), named by the field and its largest valid value, among the others
    expect(problems.some((p) => /^body\.config: img2img\.steps 1000 is too many for this model's schedule .*img2img\.steps is at most 999 here$/.test(p)), problems.join('\n')).toBe(true);
    expect(problems.every((p) => p.startsWith('body.config: '))).toBe(true);
    // the server's paths are shown relative to the root
    expect(JSON.stringify(r.json)).not.toContain(s.root);
    expect(existsSync(join(s.root, 'runs'))).toBe(false);
    expect(existsSync(join(s.root, '.brainlatent')) ? readdirSync(join(s.root, '.brainlatent')) : []).toEqual([]);
    expect((await s.call('GET', '/v1/jobs?kind=reconstruct')).json.jobs).toEqual([]);
  });

  // (was 202: the preflight checked the files and the U-Net's size only, and the job failed at features with the
  // engine's ShapeError; `reconstruct --dry-run` refused it)
  it('a model folder whose unet/model.onnx is the VAE decoder is refused at submission, as --dry-run refuses it', async () => {
    cpSync(join(s.root, 'models', 'sd'), join(s.root, 'models', 'swapped'), { recursive: true });
    copyFileSync(join(s.root, 'models', 'sd', 'vae_decoder', 'model.onnx'), join(s.root, 'models', 'swapped', 'unet', 'model.onnx'));
    mkdirSync(join(s.root, 'nsd'), { recursive: true });
    const config = { out: 'runs/swapped', nsd: { root: 'nsd', subject: 1 }, model: { dir: 'models/swapped' } };
    const r = await s.call('POST', '/v1/jobs', { kind: 'reconstruct', config });
    expect(r.status, r.text).toBe(400);
    const problems: string[] = r.json.problems;
    expect(problems).toContainEqual(expect.stringMatching(/^body\.config: models\/swapped\/unet\/model\.onnx lacks sample, timestep or encoder_hidden_states: not an SD 1\.x U-Net \(found inputs: latent_sample \[/));
    expect(existsSync(join(s.root, 'runs', 'swapped'))).toBe(false);
    // the same function refuses it for the CLI's dry run
    const { preflight } = await import('../../ts/pipeline/preflight.js');
    const { resolveConfig } = await import('../../ts/pipeline/config.js');
    const resolved = resolveConfig({ ...config, out: join(s.root, config.out), nsd: { root: join(s.root, 'nsd'), subject: 1 }, model: { dir: join(s.root, 'models', 'swapped') } });
    await expect(preflight(resolved)).rejects.toThrow(/unet\/model\.onnx lacks sample, timestep or encoder_hidden_states/);
  });
});

describe("the submission preflight's verdict", () => {
  // (a failure that was not a PreflightError, or a thread that died, was an accepted job: [] problems)
  it('an input failure is a refusal, anything else a PreflightThreadError (500); never an accepted job', async () => {
    const { preflightVerdict, PreflightThreadError } = await import('../../ts/server/jobs/jobPreflight.js');
    expect(preflightVerdict({ problems: [] })).toEqual([]);
    expect(preflightVerdict({ failed: { name: 'ShapeError', code: 'ShapeMismatch', message: 'models/x/unet/model.onnx: …' } })).toEqual(['body.config: models/x/unet/model.onnx: …']);
    expect(() => preflightVerdict({ failed: { name: 'TypeError', message: 'x is undefined' } })).toThrow(PreflightThreadError);
    expect(() => preflightVerdict(null)).toThrow(/the preflight thread ended without a verdict/);
  });
});
