/**
 * POST /v1/models of an SD folder under the root whose files link out of it: a 400 naming the file (root-relative)
 * and the tensor, without the link's target; before, the service loaded the weights from wherever the link led
 * (a client who could leave a link under the root could have any file of the machine read as a model's). A folder
 * whose links stay under the root (a Hugging Face cache there) loads. The service's root is a model root while it
 * runs (BRAINLATENT_SERVICE_MODEL_ROOTS, which its threads and job processes inherit; each job also carries it), and no longer once it has stopped.
 */
import { cp, mkdir, mkdtemp, realpath, rename, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { SD_FIXTURE_VARIANTS, writeSdFixture } from '../../ts/sd/fixture.js';
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

  it('the root is no longer a model root once the service has stopped', async () => {
    const root = s.root;
    await s.stop();
    expect(serviceModelRoots()).not.toContain(root);
    s = undefined as unknown as TestServer;
  });
});
