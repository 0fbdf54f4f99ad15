/**
 * Two services in one process (the plugin registered twice in one Fastify app, each with its own root): each
 * service's own model loads (POST /v1/models) and its submission preflights hold model files to ITS root. Before,
 * both used the process's roots (BRAINLATENT_SERVICE_MODEL_ROOTS, the union of both), so service A loaded a model
 * whose weights link into service B's root, and A's preflight read a scheduler config linked there.
 */
import { cp, mkdir, mkdtemp, realpath, rename, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { SD_FIXTURE_VARIANTS, writeSdFixture } from '../../ts/sd/fixture.js';
import { brainlatentPlugin } from '../../ts/server/index.js';
import { externalize } from '../helpers/externalData.js';

let app: FastifyInstance;
let a = '';
let b = '';

const call = async (prefix: string, method: 'GET' | 'POST', url: string, payload?: unknown) => {
  const r = await app.inject({ method, url: `${prefix}${url}`, ...(payload === undefined ? {} : { payload: payload as object }) });
  return { status: r.statusCode, text: r.body, json: JSON.parse(r.body || 'null') };
};

beforeAll(async () => {
  a = await realpath(await mkdtemp(join(tmpdir(), 'bl-two-roots-a-')));
  b = await realpath(await mkdtemp(join(tmpdir(), 'bl-two-roots-b-')));
  const plain = join(a, 'models', 'plain');
  await writeSdFixture(plain, SD_FIXTURE_VARIANTS['optimum-1.24']);
  await externalize(join(plain, 'unet', 'model.onnx'), 'weights.pb');
  await mkdir(join(b, 'stash'));
  // under A, a folder whose U-Net weights are a link into B's root
  await cp(plain, join(a, 'models', 'weights-in-b'), { recursive: true });
  await rename(join(a, 'models', 'weights-in-b', 'unet', 'weights.pb'), join(b, 'stash', 'weights.pb'));
  await symlink(join(b, 'stash', 'weights.pb'), join(a, 'models', 'weights-in-b', 'unet', 'weights.pb'));
  // under A, a folder whose scheduler config is a link into B's root
  await cp(plain, join(a, 'models', 'scheduler-in-b'), { recursive: true });
  const cfg = join(a, 'models', 'scheduler-in-b', 'scheduler', 'scheduler_config.json');
  await rename(cfg, join(b, 'stash', 'scheduler_config.json'));
  await symlink(join(b, 'stash', 'scheduler_config.json'), cfg);

  app = Fastify({ pluginTimeout: 0, return503OnClosing: false });
  await app.register(brainlatentPlugin, { prefix: '/a', root: a, token: null, defaultMetrics: false });
  await app.register(brainlatentPlugin, { prefix: '/b', root: b, token: null, defaultMetrics: false });
  await app.ready();
}, 120_000);

afterAll(async () => {
  await app?.close();
  for (const d of [a, b]) if (d) await rm(d, { recursive: true, force: true });
});

describe("two services in one process: each one's loads and preflights are held to its own root", () => {
  it("service A refuses a model whose weights link into service B's root (was 201: B's root counted for A)", async () => {
    const r = await call('/a', 'POST', '/v1/models', { kind: 'sd', name: 'evil', path: 'models/weights-in-b' });
    expect(r.status, r.text).toBe(400);
    expect(r.json).toMatchObject({ code: 'FormatError' });
    expect(r.json.message).toMatch(/^body\.path: models\/weights-in-b\/unet\/model\.onnx: tensor '[^']+' \(a graph initializer\) keeps its data in 'weights\.pb', which leads, through a symbolic link, outside the service's root folder/);
    expect(r.text).not.toContain(b);
    expect((await call('/a', 'GET', '/v1/models/evil')).status).toBe(404);
  });

  it('service A still loads a model that lies in its own root', async () => {
    const r = await call('/a', 'POST', '/v1/models', { kind: 'sd', name: 'plain', path: 'models/plain' });
    expect(r.status, r.text).toBe(201);
  });

  it("service A's submission preflight refuses a scheduler config linked into B's root (its thread had both roots)", async () => {
    await mkdir(join(a, 'nsd'), { recursive: true });
    const config = { out: 'runs/r1', nsd: { root: 'nsd', subject: 1 }, model: { dir: 'models/scheduler-in-b' } };
    const r = await call('/a', 'POST', '/v1/jobs', { kind: 'reconstruct', config });
    expect(r.status, r.text).toBe(400);
    const problems: string[] = r.json.problems;
    expect(problems, problems.join('\n')).toContainEqual(
      expect.stringMatching(/^body\.config: models\/scheduler-in-b\/scheduler\/scheduler_config\.json: the file leads, through a symbolic link, outside the service's root folder/),
    );
    expect(r.text).not.toContain(b);
    // the same config with A's own scheduler config has no such problem (its other problems: the empty NSD root)
    const own = await call('/a', 'POST', '/v1/jobs', { kind: 'reconstruct', config: { ...config, model: { dir: 'models/plain' } } });
    expect(own.status, own.text).toBe(400);
    expect((own.json.problems as string[]).filter((p) => /scheduler_config|symbolic link/.test(p))).toEqual([]);
  });
});
