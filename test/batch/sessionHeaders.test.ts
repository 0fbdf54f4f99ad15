import { mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { BatchManifest } from '../../ts/batch/manifest.js';
import type { DemoWorld } from '../../ts/demo/world.js';
import { Hdf5Reader, writeHdf5 } from '../../ts/io/hdf5.js';
import { readNsdDesign } from '../../ts/nsd/expdesign.js';
import { extractionProblems } from '../../ts/nsd/extract.js';
import { betasPath } from '../../ts/nsd/paths.js';
import { planNsdSessions } from '../../ts/nsd/sessionPlan.js';
import { runCommand } from '../helpers/nodeChild.js';
import { batchWorld, reconTemplate } from './world.js';

// The preflights (batch plan, a submission's, reconstruct/encode's) read every session's betas header, not only the
// first's: a later session cut short (a copy that stopped) or of another shape was found by the extraction, after
// the sessions before it were read, and `batch plan` said "no problems" (review s28-r4).

const dir = mkdtempSync(join(tmpdir(), 'bl-session-headers-'));
const cli = join(__dirname, '..', '..', 'dist', 'cli', 'main.js');
let world: DemoWorld;

beforeAll(async () => {
  world = await batchWorld(dir, [1, 2]);
  // subject 1's third session cut short; subject 2's second has one trial fewer than its first
  const cut = betasPath(world.nsdRoot, 1, 3, 'hdf5');
  truncateSync(cut, Math.floor(statSync(cut).size * 0.6));
  const short = betasPath(world.nsdRoot, 2, 2, 'hdf5');
  const r = await Hdf5Reader.open(short);
  const [T, Z, Y, X] = r.shape('betas');
  r.close();
  await writeHdf5(short, [{ name: 'betas', data: new Int16Array((T - 1) * Z * Y * X), shape: [T - 1, Z, Y, X], chunks: [T - 1, 1, 1, 1] }]);
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cutFile = /subj01\/func1pt8mm\/betas_fithrf_GLMdenoise_RR\/betas_session03\.hdf5: HDF5 could not open it: truncated file/;
const fewer = /subj02\/func1pt8mm\/betas_fithrf_GLMdenoise_RR\/betas_session02\.hdf5: (\d+) trials, expected (\d+) like \S+betas_session01\.hdf5/;

describe("every session's betas header is read by the preflights", () => {
  it('planNsdSessions and extractionProblems name a later session cut short, and one with other trials', async () => {
    const design = await readNsdDesign(world.nsdRoot);
    const nsd = (subject: number) => ({ root: world.nsdRoot, subject, sessions: null, format: 'auto' as const });
    const one = await planNsdSessions(nsd(1), design);
    expect(one.plan).toBeNull();
    expect(one.problems).toHaveLength(1);
    expect(one.problems[0]).toMatch(/^nsd\.sessions: /);
    expect(one.problems[0]).toMatch(cutFile);
    const two = await planNsdSessions(nsd(2), design);
    expect(two.problems).toHaveLength(1);
    const [, got, expected] = two.problems[0].match(fewer)!;
    expect(Number(got)).toBe(Number(expected) - 1);
    // the sessions before the bad one alone are fine
    expect((await planNsdSessions({ ...nsd(1), sessions: [1, 2] }, design)).problems).toEqual([]);
    const ex = await extractionProblems({ root: world.nsdRoot, subject: 1, roi: 'streams:early' });
    expect(ex.map((p) => p.option)).toEqual(['sessions']);
    expect(ex[0].error.message).toMatch(cutFile);
    expect((await extractionProblems({ root: world.nsdRoot, subject: 2, roi: 'streams:early' }))[0].error.message).toMatch(fewer);
  });

  it('batch plan refuses the manifest, naming each file with its subject', async () => {
    const m: BatchManifest = {
      name: 'heads',
      out: join(dir, 'heads'),
      nsd: { root: world.nsdRoot },
      subjects: [1, 2],
      analyses: [{ name: 'recon', kind: 'reconstruct', config: reconTemplate(world), shards: { images: 4, seeds: 1 } }],
    };
    const file = join(dir, 'heads.json');
    writeFileSync(file, JSON.stringify(m));
    const r = await runCommand(process.execPath, [cli, 'batch', 'plan', file], { hangLimitMs: 300_000 });
    expect(r.status, r.stdout + r.stderr).not.toBe(0);
    const out = r.stdout + r.stderr;
    expect(out).toMatch(cutFile);
    expect(out).toMatch(fewer);
  });
});
