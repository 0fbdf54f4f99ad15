/**
 * POST /v1/models of an SD folder under the root whose files link out of it: a 400 naming the file (root-relative)
 * and the tensor, without the link's target; before, the service loaded the weights from wherever the link led
 * (a client who could leave a link under the root could have any file of the machine read as a model's). A folder
 * whose links stay under the root (a Hugging Face cache there) loads. The service's root is a model root while it
 * runs (BRAINLATENT_SERVICE_MODEL_ROOTS, which its threads and job processes inherit; each job also carries it), and no longer once it has stopped.
 */
import { cp, mkdir, mkdtemp, readFile, realpath, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { SD_FIXTURE_VARIANTS, writeSdFixture } from '../../ts/sd/fixture.js';
import { onnx } from '../helpers/onnx.js';
import { serviceModelRoots } from '../../ts/sd/modelRoots.js';
import { externalize } from '../helpers/externalData.js';
import { linkIntoBlobs } from '../helpers/linkedModels.js';
import { startTestServer, type TestServer } from './helpers.js';

let s: TestServer;
let outside = '';

beforeAll(async () => {
  s = await startTestServer();
  outside = await realpath(await mkdtemp(join(tmpdir(), 'bl-model-links-out-')));
  const plain = join(outside, 'plain');
  await writeSdFixture(plain, SD_FIXTURE_VARIANTS['optimum-1.24']);
  await externalize(join(plain, 'unet', 'model.onnx'), 'weights.pb');
  // weights.pb a link to a file outside the root
  await cp(plain, join(s.root, 'models', 'evil'), { recursive: true });
  await rename(join(s.root, 'models', 'evil', 'unet', 'weights.pb'), join(outside, 'weights.pb'));
  await symlink(join(outside, 'weights.pb'), join(s.root, 'models', 'evil', 'unet', 'weights.pb'));
  // a Hugging Face cache under the root
  const snapshot = join(s.root, 'hub', 'models--org--sd', 'snapshots', 'r1');
  await mkdir(snapshot, { recursive: true });
  await cp(plain, snapshot, { recursive: true });
  await linkIntoBlobs(snapshot, join(s.root, 'hub', 'models--org--sd', 'blobs'), () => true);
  // unet/model.onnx a link to a file outside the root (an ONNX file whose input names are the server's secret), and
  // one to a file that does not exist there
  const secret = onnx.ModelProto.decode(await readFile(join(plain, 'unet', 'model.onnx')));
  for (const i of secret.graph!.input!) i.name = `SECRET_${i.name}`;
  await writeFile(join(outside, 'secret.onnx'), onnx.ModelProto.encode(secret).finish());
  for (const [name, target] of [
    ['sig-there', join(outside, 'secret.onnx')],
    ['sig-missing', join(outside, 'no-such.onnx')],
  ]) {
    await cp(plain, join(s.root, 'models', name), { recursive: true });
    await rm(join(s.root, 'models', name, 'unet', 'model.onnx'));
    await symlink(target, join(s.root, 'models', name, 'unet', 'model.onnx'));
  }
}, 120_000);
afterAll(async () => {
  await s?.stop();
  await rm(outside, { recursive: true, force: true });
});

describe('POST /v1/models: links in a model folder', () => {
  it('refuses a folder whose weights link outside the root: 400 naming the file and the tensor, not where the link leads', async () => {
    expect(serviceModelRoots()).toContain(s.root);
    const r = await s.call('POST', '/v1/models', { kind: 'sd', name: 'evil', path: 'models/evil' });
    expect(r.status, r.text).toBe(400);
    expect(r.json).toMatchObject({ code: 'FormatError', name: 'FormatError' });
    expect(r.json.message).toMatch(/^body\.path: models\/evil\/unet\/model\.onnx: tensor '[^']+' \(a graph initializer\) keeps its data in 'weights\.pb', which leads, through a symbolic link, outside the service's root folder/);
    expect(r.text).not.toContain(outside);
    expect((await s.call('GET', '/v1/models/evil')).status).toBe(404);
  });

  it('loads a Hugging Face cache under the root', async () => {
    const r = await s.call('POST', '/v1/models', { kind: 'sd', name: 'hub', path: 'hub/models--org--sd/snapshots/r1' });
    expect(r.status, r.text).toBe(201);
  });

  it("a job's preflight refuses a U-Net linked outside the root alike whether its target exists or not, never reading it", async () => {
    // (before: the existing target's input names were in the 400, the missing one was 'has no unet/model.onnx')
    const config = (dir: string) => ({ out: `runs/${dir}`, nsd: { root: 'nsd', subject: 1 }, model: { dir: `models/${dir}` } });
    const there = await s.call('POST', '/v1/jobs', { kind: 'reconstruct', config: config('sig-there') });
    const missing = await s.call('POST', '/v1/jobs', { kind: 'reconstruct', config: config('sig-missing') });
    expect(there.status, there.text).toBe(400);
    expect(missing.status, missing.text).toBe(400);
    expect(there.text).not.toContain('SECRET_');
    expect(there.text).not.toContain(outside);
    expect(there.text.replaceAll('sig-there', 'X')).toBe(missing.text.replaceAll('sig-missing', 'X'));
    const problems: string[] = there.json.problems ?? [there.json.message];
    expect(problems).toContainEqual(expect.stringMatching(/models\/sig-there\/unet\/model\.onnx: the model file leads, through a symbolic link, outside the service's root folder/));
  });

  it('POST /v1/models answers a U-Net linked outside the root alike whether its target exists or not', async () => {
    // (before: the existing target was 400 'leads outside the root', the missing one 400 MissingFile 'has no unet/model.onnx')
    const there = await s.call('POST', '/v1/models', { kind: 'sd', name: 'there', path: 'models/sig-there' });
    const missing = await s.call('POST', '/v1/models', { kind: 'sd', name: 'missing', path: 'models/sig-missing' });
    expect(there.status, there.text).toBe(400);
    expect(missing.status, missing.text).toBe(400);
    expect(there.json).toMatchObject({ code: 'FormatError' });
    expect(there.json.message).toMatch(/models\/sig-there\/unet\/model\.onnx: the model file leads, through a symbolic link, outside the service's root folder/);
    expect(there.text.replaceAll('sig-there', 'X')).toBe(missing.text.replaceAll('sig-missing', 'X'));
    expect(there.text).not.toContain(outside);
    expect(there.text).not.toContain('SECRET_');
  });

  it("a job's preflight refuses a model whose external data link outside the root, as POST /v1/models does", async () => {
    // (before: accepted at submission, 202, failing a minute later in the features stage)
    const r = await s.call('POST', '/v1/jobs', { kind: 'reconstruct', config: { out: 'runs/evil', nsd: { root: 'nsd', subject: 1 }, model: { dir: 'models/evil' } } });
    expect(r.status, r.text).toBe(400);
    expect(r.json.problems).toContainEqual(
      expect.stringMatching(/^body\.config: models\/evil\/unet\/model\.onnx: tensor '[^']+' \(a graph initializer\) keeps its data in 'weights\.pb', which leads, through a symbolic link, outside the service's root folder/),
    );
    expect(r.text).not.toContain(outside);
    const enc = await s.call('POST', '/v1/jobs', { kind: 'encode', config: { out: 'runs/evil-enc', nsd: { root: 'nsd', subject: 1 }, model: 'models/evil', featureSets: [{ name: 'u', kind: 'unet', layers: ['mid'], timesteps: [201] }] } });
    expect(enc.status, enc.text).toBe(400);
    expect(enc.json.problems).toContainEqual(expect.stringMatching(/keeps its data in 'weights\.pb', which leads, through a symbolic link, outside the service's root folder/));
  });

  it('a model folder named in a config that links outside the root is refused alike whether its target exists or not', async () => {
    // (before: a link to a missing folder passed the path check, and the preflight said it 'does not exist')
    await symlink(outside, join(s.root, 'models', 'dir-there'));
    await symlink(join(outside, 'no-such-dir'), join(s.root, 'models', 'dir-gone'));
    const config = (dir: string) => ({ out: `runs/${dir}`, nsd: { root: 'nsd', subject: 1 }, model: { dir: `models/${dir}` } });
    const there = await s.call('POST', '/v1/jobs', { kind: 'reconstruct', config: config('dir-there') });
    const gone = await s.call('POST', '/v1/jobs', { kind: 'reconstruct', config: config('dir-gone') });
    expect(there.status, there.text).toBe(400);
    expect(there.text.replaceAll('dir-there', 'X')).toBe(gone.text.replaceAll('dir-gone', 'X'));
    expect(there.text).toContain('leads outside the service');
    expect(there.text).not.toContain(outside);
  });

  it('the root is no longer a model root once the service has stopped', async () => {
    const root = s.root;
    await s.stop();
    expect(serviceModelRoots()).not.toContain(root);
    s = undefined as unknown as TestServer;
  });
});
