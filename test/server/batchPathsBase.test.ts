import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { DemoWorld } from '../../ts/demo/world.js';
import { batchManifest, batchWorld } from '../batch/world.js';
import { startTestServer, type TestServer } from './helpers.js';

// A batch's relative paths are the root's, for the check against the root and for the job's reads alike: a file of
// the same name in the service's working folder (outside its root) is never read (reviewer R6, s24).
let s: TestServer;
let world: DemoWorld;
let cwd: string;
const startCwd = process.cwd();
beforeAll(async () => {
  s = await startTestServer();
  world = await batchWorld(s.root, [1]);
  cwd = realpathSync(mkdtempSync(join(tmpdir(), 'bl-cwd-')));
  // the same name in the working folder and in the root: a captions file whose one key says which was read
  writeFileSync(join(cwd, 'capsx.json'), JSON.stringify({ SECRET_FROM_OUTSIDE_ROOT: ['x'] }));
  writeFileSync(join(s.root, 'capsx.json'), JSON.stringify({ INSIDE_THE_ROOT: ['x'] }));
  process.chdir(cwd);
}, 600_000);
afterAll(async () => {
  process.chdir(startCwd);
  await s?.stop();
  if (cwd) rmSync(cwd, { recursive: true, force: true });
});

describe("a batch's relative paths", () => {
  it('are read from the root, not the working folder: the captions inside are read, the network inside accepted', async () => {
    const rel = (p: string) => p.slice(s.root.length + 1);
    const m = batchManifest(world, 'base', 'runs/base', [1]);
    const cfg = m.analyses[0].config as { model: { dir: string }; evaluation: { networks: { path: string }[] } };
    const networks = cfg.evaluation.networks.map((n) => ({ ...n, path: rel(n.path) }));
    const config = { ...cfg, model: { ...cfg.model, dir: rel(cfg.model.dir) }, nsd: { captions: 'capsx.json' }, evaluation: { ...cfg.evaluation, networks } };
    const r = await s.call('POST', '/v1/jobs', { kind: 'batch', manifest: { ...m, nsd: { root: rel(world.nsdRoot) }, analyses: [{ ...m.analyses[0], config }] } });
    expect(r.status, r.text).toBe(400);
    const p: string = r.json.problems.join('\n');
    expect(p).toMatch(/key "INSIDE_THE_ROOT" is not a 73k id/);
    expect(p).not.toMatch(/SECRET_FROM_OUTSIDE_ROOT/);
    // every other path of the config is fine: the captions are the one problem
    expect(r.json.problems).toHaveLength(1);
  });
});
