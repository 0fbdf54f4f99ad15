import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { BatchManifest } from '../../ts/batch/manifest.js';
import type { SummaryCell } from '../../ts/batch/status.js';
import type { DemoWorld } from '../../ts/demo/world.js';
import { redisAvailable, redisTestBed } from './redis.js';
import { batchWorld, encodeTemplate, reconTemplate } from './world.js';

// An analysis's config edited in the manifest: its run folder holds the old config's outputs, so the batch refuses
// it, naming the batch's own remedy (a batch has no --out); `--force` replaces that folder's run, as
// `reconstruct --force` does (the user's files stay), and leaves the analyses whose config did not change alone.

const dir = mkdtempSync(join(tmpdir(), 'bl-batch-force-'));
const cli = join(__dirname, '..', '..', 'dist', 'cli', 'main.js');
let world: DemoWorld;

beforeAll(async () => {
  world = await batchWorld(dir, [1]);
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The CLI in a child process, awaited (a blocking spawn starves the test worker's messages to vitest for minutes). */
function brainlatent(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 300_000, maxBuffer: 64 << 20 }, (e, stdout, stderr) => {
      const code = (e as { code?: unknown } | null)?.code;
      resolve({ status: e ? (typeof code === 'number' ? code : null) : 0, stdout, stderr });
    });
  });
}

/** Subject 1, a reconstruction and an encoding; `edit` changes the encoding's alphas (to a second grid with 'again', a third with 'third') and/or the z decoder's. */
function manifestFile(file: string, out: string, edit: { enc?: boolean | 'again' | 'third'; recon?: boolean } = {}): string {
  const recon = reconTemplate(world) as { decoders: Record<string, Record<string, unknown>> };
  const m: BatchManifest = {
    name: 'force',
    out,
    nsd: { root: world.nsdRoot },
    subjects: [1],
    analyses: [
      {
        name: 'recon',
        kind: 'reconstruct',
        config: edit.recon ? { ...recon, decoders: { ...recon.decoders, z: { ...recon.decoders.z, alphas: [1, 100, 10000] } } } : recon,
        shards: { images: 4, seeds: 1 },
      },
      { name: 'enc', kind: 'encode', config: { ...encodeTemplate(world), ...(edit.enc ? { ridge: { alphas: ENC_ALPHAS[String(edit.enc)] } } : {}) } },
    ],
  };
  const f = join(dir, file);
  writeFileSync(f, JSON.stringify(m));
  return f;
}

const ENC_ALPHAS: Record<string, number[]> = { true: [1, 10, 100, 1000, 10000, 100000], again: [1, 100, 10000], third: [10, 1000, 100000] };

/** `batch run … --json`: the exit status and the summary's cells. */
async function run(file: string, ...flags: string[]): Promise<{ status: number | null; cells: SummaryCell[]; stderr: string }> {
  const r = await brainlatent('batch', 'run', file, '--concurrency', '2', '--json', ...flags);
  return { status: r.status, cells: r.stdout ? (JSON.parse(r.stdout) as { summary: SummaryCell[] }).summary : [], stderr: r.stderr };
}

const states = (cells: SummaryCell[], analysis: string) => [...new Set(cells.filter((c) => c.analysis === analysis).map((c) => c.state))];

/** An encoding run folder's numbers: encoding.json's feature sets and banded models, and every map's voxels. */
function encodeNumbers(folder: string): unknown {
  const summary = JSON.parse(readFileSync(join(folder, 'encoding.json'), 'utf8'));
  const maps = Object.fromEntries(
    readdirSync(join(folder, 'maps'))
      .filter((f) => f.endsWith('.nii.gz'))
      .map((f) => [f, createHash('sha256').update(gunzipSync(readFileSync(join(folder, 'maps', f)))).digest('hex')]),
  );
  expect(Object.keys(maps).length).toBeGreaterThan(3);
  return { featureSets: summary.featureSets, banded: summary.banded, maps };
}

describe('a config edited in the manifest', () => {
  const out = join(dir, 'out');
  const recon = join(out, 'subj01', 'recon');
  const enc = join(out, 'subj01', 'enc');

  it('is refused by batch plan, batch run and the extract job with the batch remedy (--force), not "use another --out"', async () => {
    expect((await run(manifestFile('first.json', out))).status).toBe(0);
    writeFileSync(join(enc, 'notes.txt'), 'mine\n');
    writeFileSync(join(recon, 'notes.txt'), 'mine\n');
    const edited = manifestFile('enc-edited.json', out, { enc: true });
    const folder = /subj01 × enc: run folder .*subj01\/enc holds another run's outputs \(.*; config \w+, this config \w+\); to apply this config, /.source;
    const kept = /: it replaces them, files of yours there stay; or give the analysis another name to keep them/.source;

    // each command names its own --force
    const plan = await brainlatent('batch', 'plan', edited);
    expect(plan.status).toBe(1);
    expect(plan.stderr).toMatch(
      new RegExp(`${folder}run or submit the batch with --force \\('batch run MANIFEST --force', 'batch submit MANIFEST --redis URL --force'; 'batch plan MANIFEST --force' lists what they replace\\)${kept}`),
    );
    expect(plan.stderr).not.toMatch(/another --out/);
    // the closing hint names the remedy, not --no-preflight's skip (the job would refuse the folder too)
    expect(plan.stderr).toMatch(/\na run folder of another config: apply the remedy it names \(--force replaces its run\); --no-preflight would not help, the analysis's job refuses that folder too\n$/);
    expect(plan.stderr).not.toMatch(/skip these checks/);
    expect(plan.stderr).not.toMatch(/subj01 × recon/);

    const refused = await brainlatent('batch', 'run', edited);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/BatchPreflightError: batch force: the preflight found 1 problem .*; nothing was run:/);
    expect(refused.stderr).toMatch(new RegExp(`${folder}run the batch with --force \\('batch run MANIFEST --force'\\)${kept}`));
    const submit = await brainlatent('batch', 'submit', edited, '--redis', 'redis://127.0.0.1:1');
    expect(submit.status).toBe(1);
    expect(submit.stderr).toMatch(/; nothing was submitted:/);
    expect(submit.stderr).toMatch(new RegExp(`${folder}submit the batch with --force \\('batch submit MANIFEST --redis URL --force'\\)${kept}`));

    // the job's own check (workers check again; --no-preflight leaves it to them)
    const job = await run(edited, '--no-preflight');
    expect(job.status).toBe(1);
    const extract = job.cells.find((c) => c.analysis === 'enc' && c.stage === 'extract')!;
    expect(extract.state).toBe('failed');
    expect(extract.reason).toMatch(
      /^PreflightError: cannot start encode: run folder .*subj01\/enc holds another run's outputs .*; to apply this config, run the batch again with --force \('batch run MANIFEST --force'; a batch submitted through Redis: 'batch retry force --redis URL --force'\)/,
    );
    expect(extract.reason).not.toMatch(/another --out/);
    expect(states(job.cells, 'recon')).toEqual(['skipped']);
    // nothing of the old run was touched
    expect(existsSync(join(enc, 'encoding.json'))).toBe(true);
  });

  // (batch runs over a miniature world: 98 s and over 120 s on a loaded 2-core machine in CI; the limit is a hang guard)
  it('--force: batch plan lists the folder it replaces; batch run redoes that analysis only, keeps your files, and its results equal a fresh run', { timeout: 300_000 }, async () => {
    const edited = join(dir, 'enc-edited.json');
    const plan = await brainlatent('batch', 'plan', edited, '--force');
    expect(plan.status).toBe(0);
    expect(plan.stdout).toMatch(/--force: subj01 × enc: replaces the previous run's outputs in .*subj01\/enc \(.*encoding\.json.*\); other files there stay/);
    expect(plan.stdout).not.toMatch(/subj01 × recon: replaces/);
    expect(plan.stdout).toMatch(/preflight: no problems/);

    const forced = await run(edited, '--force');
    expect(forced.status).toBe(0);
    expect(forced.stderr).toMatch(/--force: subj01 × enc: replaces/);
    expect(states(forced.cells, 'enc')).toEqual(['done']);
    expect(states(forced.cells, 'recon')).toEqual(['skipped']);
    expect(readFileSync(join(enc, 'notes.txt'), 'utf8')).toBe('mine\n');

    // the reconstruction's config edited too: its extract job refuses it, then --force redoes it (the encoding, unchanged since, is skipped)
    const both = manifestFile('both-edited.json', out, { enc: true, recon: true });
    const job = await run(both, '--no-preflight');
    expect(job.cells.find((c) => c.analysis === 'recon' && c.stage === 'extract')!.reason).toMatch(
      /^PreflightError: cannot start the reconstruction: run folder .*subj01\/recon holds another run's outputs .*run the batch again with --force/,
    );
    const again = await run(both, '--force');
    expect(again.status).toBe(0);
    expect(states(again.cells, 'recon')).toEqual(['done']);
    expect(states(again.cells, 'enc')).toEqual(['skipped']);
    expect(readFileSync(join(recon, 'notes.txt'), 'utf8')).toBe('mine\n');

    // the same manifest in a fresh folder: the same numbers
    const fresh = join(dir, 'fresh');
    expect((await run(manifestFile('fresh.json', fresh, { enc: true, recon: true }))).status).toBe(0);
    expect(readFileSync(join(recon, 'metrics.json'), 'utf8')).toBe(readFileSync(join(fresh, 'subj01', 'recon', 'metrics.json'), 'utf8'));
    expect(encodeNumbers(enc)).toEqual(encodeNumbers(join(fresh, 'subj01', 'enc')));

    // --force replaces only a folder of another config: run again, nothing is redone
    const idle = await run(both, '--force');
    expect(idle.status).toBe(0);
    expect(idle.stderr).not.toMatch(/--force: .*replaces/);
    expect([...new Set(idle.cells.map((c) => c.state))]).toEqual(['skipped']);
  });
});

const bed = redisTestBed('bl-batch-force-redis-');

describe.skipIf(!redisAvailable)('a config edited in the manifest, through Redis', () => {
  it("the worker's extract job refuses it with the batch remedy; 'batch submit --force' puts --force in the jobs, and the worker replaces the folder", { timeout: 300_000 }, async () => {
    const out = join(dir, 'out');
    const enc = join(out, 'subj01', 'enc');
    const edited = manifestFile('redis-edited.json', out, { enc: 'again', recon: true });
    const refused = await run(edited, '--redis', bed.url(), '--no-preflight');
    expect(refused.status).toBe(1);
    expect(refused.cells.find((c) => c.analysis === 'enc' && c.stage === 'extract')!.reason).toMatch(
      /^PreflightError: cannot start encode: run folder .*subj01\/enc holds another run's outputs .*; to apply this config, run the batch again with --force/,
    );
    expect((await brainlatent('batch', 'cancel', 'force', '--redis', bed.url(), '--purge')).status).toBe(0);
    const submitted = await brainlatent('batch', 'submit', edited, '--redis', bed.url(), '--force');
    expect(submitted.status).toBe(0);
    expect(submitted.stderr).toMatch(/--force: subj01 × enc: replaces/);
    // workers here, no --force of their own: the jobs carry it
    const ran = await run(edited, '--redis', bed.url(), '--no-preflight');
    expect(ran.status).toBe(0);
    expect(states(ran.cells, 'enc')).toEqual(['done']);
    expect(states(ran.cells, 'recon')).toEqual(['skipped']);
    expect(readFileSync(join(enc, 'notes.txt'), 'utf8')).toBe('mine\n');
    expect(JSON.parse(readFileSync(join(enc, 'run.json'), 'utf8')).config.ridge.alphas).toEqual([1, 100, 10000]);
  });

  it("a subject that failed on it: 'batch retry' is refused naming its own --force, and 'batch retry --force' replaces the folder", { timeout: 300_000 }, async () => {
    const out = join(dir, 'out');
    const enc = join(out, 'subj01', 'enc');
    expect((await brainlatent('batch', 'cancel', 'force', '--redis', bed.url(), '--purge')).status).toBe(0);
    const edited = manifestFile('redis-retry.json', out, { enc: 'third', recon: true });
    const failed = await run(edited, '--redis', bed.url(), '--no-preflight');
    expect(failed.status).toBe(1);
    expect(failed.cells.find((c) => c.analysis === 'enc' && c.stage === 'extract')!.reason).toMatch(
      /holds another run's outputs .*; to apply this config, run the batch again with --force \('batch run MANIFEST --force'; a batch submitted through Redis: 'batch retry force --redis URL --force'\)/,
    );

    // the retry's preflight finds the folder, and names retry's own --force (submit --force would not resubmit the failed subject)
    const plain = await brainlatent('batch', 'retry', 'force', '--redis', bed.url());
    expect(plain.status).toBe(1);
    expect(plain.stderr).toMatch(/BatchPreflightError: batch force: the preflight found 1 problem in 1 of 2 subject × analysis pairs; nothing was resubmitted:/);
    expect(plain.stderr).toMatch(
      /subj01 × enc: run folder .*subj01\/enc holds another run's outputs .*; to apply this config, retry the batch with --force \('batch retry force --redis URL --force'\): it replaces them, files of yours there stay/,
    );
    expect(plain.stderr).not.toMatch(/submit --force/);

    const forced = await brainlatent('batch', 'retry', 'force', '--redis', bed.url(), '--force');
    expect(forced.status).toBe(0);
    expect(forced.stderr).toMatch(/--force: subj01 × enc: replaces the previous run's outputs in .*subj01\/enc \(.*encoding\.json.*\); other files there stay/);
    expect(forced.stderr).not.toMatch(/subj01 × recon: replaces/);
    expect(forced.stdout).toBe('batch force: resubmitted subj01\n');
    // workers here, no --force of their own: the retried jobs carry it
    const ran = await run(edited, '--redis', bed.url(), '--no-preflight');
    expect(ran.status).toBe(0);
    expect(states(ran.cells, 'enc')).toEqual(['done']);
    expect(states(ran.cells, 'recon')).toEqual(['skipped']);
    expect(readFileSync(join(enc, 'notes.txt'), 'utf8')).toBe('mine\n');
    expect(JSON.parse(readFileSync(join(enc, 'run.json'), 'utf8')).config.ridge.alphas).toEqual([10, 1000, 100000]);
  });
});
