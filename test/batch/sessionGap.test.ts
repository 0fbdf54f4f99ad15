import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { BatchManifest } from '../../ts/batch/manifest.js';
import type { SummaryCell } from '../../ts/batch/status.js';
import type { DemoWorld } from '../../ts/demo/world.js';
import { encode } from '../../ts/encoding/encode.js';
import { readNsdDesign } from '../../ts/nsd/expdesign.js';
import { betasPath } from '../../ts/nsd/paths.js';
import { planNsdSessions, sessionGaps } from '../../ts/nsd/sessionPlan.js';
import { sessionsFact } from '../../ts/report/sessions.js';
import { reconstruct } from '../../ts/pipeline/reconstruct.js';
import { batchWorld, encodeTemplate, reconTemplate, singleConfig } from './world.js';
import { runCommand } from '../helpers/nodeChild.js';

// With nsd.sessions null a run reads every session that has betas. NSD subjects end at different sessions, but a
// session missing between two that are there is more likely a file lost or not yet copied: it is said (a warning,
// not an error) by the preflights and dry runs, `batch plan`, and the batch's summary, instead of the run quietly
// reading the others. `nsd extract` says it too, and each report.html lists the sessions read with it.

const dir = mkdtempSync(join(tmpdir(), 'bl-session-gap-'));
const cli = join(__dirname, '..', '..', 'dist', 'cli', 'main.js');
let world: DemoWorld;
const gap = /subject 2: session 2 has no betas \(looked for .*subj02.*betas_session02\.hdf5 or \.nii\.gz\), though sessions before and after do: with nsd\.sessions null the run reads only the sessions that have betas \(1, 3-4\); restore the file, or set nsd\.sessions to the sessions you mean to read/;

beforeAll(async () => {
  world = await batchWorld(dir, [1, 2]);
  // subject 2's second session of four is gone; subject 1's last one (an earlier end, as NSD's subjects have)
  rmSync(betasPath(world.nsdRoot, 2, 2, 'hdf5'));
  rmSync(betasPath(world.nsdRoot, 1, 4, 'hdf5'));
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function brainlatent(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const r = await runCommand(process.execPath, [cli, ...args], { hangLimitMs: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function manifestFile(name: string, m: BatchManifest): string {
  const f = join(dir, `${name}.json`);
  writeFileSync(f, JSON.stringify(m));
  return f;
}

const encodeConfig = (subject: number, out: string) =>
  ({ ...encodeTemplate(world), out, nsd: { ...(encodeTemplate(world).nsd as object), root: world.nsdRoot, subject } }) as Parameters<typeof encode>[0];

describe('a session missing between sessions with betas (nsd.sessions null)', () => {
  it('is a gap only in the middle; planNsdSessions warns of it, and of nothing when the sessions are named or the last is missing', async () => {
    expect(sessionGaps([1, 2, 3])).toEqual([]);
    expect(sessionGaps([1, 3, 4])).toEqual([2]);
    expect(sessionGaps([2, 5, 6])).toEqual([3, 4]);
    const design = await readNsdDesign(world.nsdRoot);
    const nsd = (subject: number, sessions: number[] | null) => ({ root: world.nsdRoot, subject, sessions, format: 'auto' as const });
    const two = await planNsdSessions(nsd(2, null), design);
    expect(two.problems).toEqual([]);
    expect(two.plan!.sessions).toEqual([1, 3, 4]);
    expect(two.warnings).toHaveLength(1);
    expect(two.warnings[0]).toMatch(gap);
    expect((await planNsdSessions(nsd(2, [1, 3, 4]), design)).warnings).toEqual([]);
    expect((await planNsdSessions(nsd(1, null), design)).warnings).toEqual([]);
  });

  it('the dry runs of reconstruct and encode say it, and their runs report it (onWarning, the result)', async () => {
    const r = await reconstruct(singleConfig(world, 2, join(dir, 'recon-dry')), { dryRun: true });
    expect(r.plan!.some((l) => /^warning: /.test(l) && gap.test(l))).toBe(true);
    expect(r.warnings).toHaveLength(1);
    const told: string[] = [];
    const recon = await reconstruct(singleConfig(world, 2, join(dir, 'recon-run')), { onWarning: (w) => told.push(w) });
    expect(told.filter((w) => gap.test(w))).toHaveLength(1);
    expect(recon.warnings).toEqual(told);
    // its report lists the sessions read, with the warning under them
    const html = readFileSync(join(dir, 'recon-run', 'report.html'), 'utf8');
    expect(html).toContain('<p id="sessions">Betas of subject 2, sessions 1, 3-4 (3 sessions: every session with betas (nsd.sessions null)).</p>\n<div class="warning"><strong>Warning:</strong> subject 2: session 2 has no betas');
    expect(html.match(new RegExp(`<div class="warning"><strong>Warning:</strong> (${gap.source})</div>`))).not.toBeNull();
    const e = await encode(encodeConfig(2, join(dir, 'enc-dry')), { dryRun: true });
    expect(e.plan!.some((l) => /^warning: /.test(l) && gap.test(l))).toBe(true);
    const heard: string[] = [];
    const ran = await encode(encodeConfig(2, join(dir, 'enc-run')), { onWarning: (w) => heard.push(w) });
    expect(heard).toHaveLength(1);
    expect(heard[0]).toMatch(gap);
    expect(ran.warnings).toEqual(heard);
    const encHtml = readFileSync(join(dir, 'enc-run', 'report.html'), 'utf8');
    expect(encHtml).toContain('<tr><th>sessions</th><td>1, 3-4 (3 sessions: every session with betas (nsd.sessions null))</td></tr>');
    // (under the table of the data the run used)
    expect(encHtml).toMatch(/<table class="meta">.*<\/table>\n<div class="warning"><strong>Warning:<\/strong> subject 2: session 2 has no betas/);
    expect(encHtml.match(new RegExp(`<div class="warning"><strong>Warning:</strong> (${gap.source})</div>`))).not.toBeNull();
    expect(JSON.parse(readFileSync(join(dir, 'enc-run', 'encoding.json'), 'utf8')).sessions).toEqual([1, 3, 4]);
    // subject 1 ends a session early: nothing to say
    expect((await encode(encodeConfig(1, join(dir, 'enc-dry1')), { dryRun: true })).plan!.some((l) => /^warning: /.test(l))).toBe(false);
  }, 300_000);

  it('the reports warn only of a gap in every session with betas: not of sessions named, nor of an early end', () => {
    const nsd = (sessions: string | null) => ({ root: world.nsdRoot, subject: 2, format: 'auto' as const, sessions });
    expect(sessionsFact({ sessions: [1, 3, 4], nsd: nsd(null) })!.warning).toMatch(gap);
    expect(sessionsFact({ sessions: [1, 3, 4], nsd: nsd('1,3-4') })).toEqual({ text: '1, 3-4 (3 sessions: nsd.sessions 1,3-4)', warning: null });
    expect(sessionsFact({ sessions: [1, 2, 3], nsd: nsd(null) })!.warning).toBeNull();
    // a run folder from before the sessions were recorded: nothing to list
    expect(sessionsFact({ nsd: nsd(null) })).toBeNull();
  });

  it("nsd extract says it, in the flag's words, before it extracts; not with --sessions, nor for a subject whose last session is missing", async () => {
    const extract = (subject: number, out: string, ...more: string[]) =>
      brainlatent('nsd', 'extract', '--root', world.nsdRoot, '--subject', String(subject), '--roi', 'streams', '--out', join(dir, out), '--no-cache', ...more);
    const two = await extract(2, 'ex2');
    expect(two.status).toBe(0);
    expect(two.stderr).toMatch(
      /^warning: subject 2: session 2 has no betas \(looked for .*subj02.*betas_session02\.hdf5 or \.nii\.gz\), though sessions before and after do: without --sessions the run reads only the sessions that have betas \(1, 3-4\); restore the file, or give --sessions the sessions you mean to read$/m,
    );
    expect(two.stdout).toMatch(/^subject 2, streams: \d+ voxels, sessions 1, 3-4$/m);
    const named = await extract(2, 'ex2-named', '--sessions', '1,3-4');
    expect(named.status).toBe(0);
    expect(named.stderr).not.toMatch(/warning/);
    const one = await extract(1, 'ex1');
    expect(one.status).toBe(0);
    expect(one.stderr).not.toMatch(/warning/);
  });

  it('batch plan lists it once per subject (exit status 0); batch run prints it and records it in summary.json', async () => {
    const both: BatchManifest = {
      name: 'gap',
      out: join(dir, 'gap'),
      nsd: { root: world.nsdRoot },
      subjects: [1, 2],
      analyses: [
        { name: 'recon', kind: 'reconstruct', config: reconTemplate(world), shards: { images: 4, seeds: 1 } },
        { name: 'enc', kind: 'encode', config: encodeTemplate(world) },
      ],
    };
    const plan = await brainlatent('batch', 'plan', manifestFile('gap', both));
    expect(plan.status).toBe(0);
    expect(plan.stdout).toMatch(/jobs, 2 subjects; preflight: no problems, 1 warning\n/);
    const lines = plan.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^warning: subj02 × recon, enc: /);
    expect(lines[0]).toMatch(gap);

    const out = join(dir, 'gap-run');
    const f = manifestFile('gap-run', { name: 'gaprun', out, nsd: { root: world.nsdRoot }, subjects: [2], analyses: [{ name: 'enc', kind: 'encode', config: encodeTemplate(world) }] });
    const r = await brainlatent('batch', 'run', f, '--concurrency', '2');
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^warning: subj02 × enc: subject 2: session 2 has no betas/);
    expect(r.stdout).toMatch(/subj02 {2}betas +done.*\n +warning: subject 2: session 2 has no betas/);
    expect(r.stdout).toMatch(/batch gaprun: done \(.*\); 1 warning \(above\)/);
    const saved = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { summary: SummaryCell[] };
    const betas = saved.summary.find((c) => c.stage === 'betas')!;
    expect(betas.warnings).toHaveLength(1);
    expect(betas.warnings![0]).toMatch(gap);
    expect(saved.summary.filter((c) => c.warnings).map((c) => c.stage)).toEqual(['betas']);
    // run again: every job skipped, and the warning still there (the run still reads those sessions)
    const again = await brainlatent('batch', 'run', f, '--concurrency', '2');
    expect(again.stdout).toMatch(/subj02 {2}betas +skipped.*\n +warning: subject 2: session 2 has no betas/);
  });
});
