/**
 * Two jobs of one batch analysis that end together each rewrite run.json's `stageVersions` from the stage markers
 * (runNode's recordRunStages). Each wrote under a temporary name renamed into place, but without a lock: a job that
 * had read the markers before the other's marker was written renamed its account last, and the other's stage was
 * gone from run.json (8 of 1,000 rounds of 8 rewrites at once lost one or more stages, in one process). The rewrites
 * now take a lock file beside run.json, so the second reads every marker written before it. A lock left by a dead
 * process is taken over.
 *
 * The interleaving is forced here: the first rewrite is held just before its write until the second has written (no
 * lock) or for a while (the second then waits for the lock): what run.json holds at the end is checked, not when.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it, vi } from 'vitest';

const gate = vi.hoisted(() => ({
  /** The next run.json write waits for `until` after calling `reached`. */
  hold: null as { reached: () => void; until: Promise<void> } | null,
  /** Called after each run.json write. */
  written: null as (() => void) | null,
}));

vi.mock('../../ts/io/atomicWrite.js', async (importOriginal) => {
  const m = await importOriginal<typeof import('../../ts/io/atomicWrite.js')>();
  const writeJsonAtomic = (async (path: string, value: unknown, opts?: Parameters<typeof m.writeJsonAtomic>[2]) => {
    const isRun = path.endsWith('run.json');
    const h = isRun ? gate.hold : null;
    if (h) {
      gate.hold = null;
      h.reached();
      await h.until;
    }
    await m.writeJsonAtomic(path, value, opts);
    if (isRun) gate.written?.();
  }) as typeof m.writeJsonAtomic;
  return { ...m, writeJsonAtomic };
});

const { markStage, writeManifest } = await import('../../ts/pipeline/runFolder.js');
const { RUN_JSON_LOCK, recordRunFailure, recordStageVersions } = await import('../../ts/pipeline/runRecord.js');
const { commandOutput } = await import('../helpers/nodeChild.js');

const dir = mkdtempSync(join(tmpdir(), 'bl-run-record-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const STAGES = ['extract', 'features', 'decoders', 'zonly'];
let n = 0;

/** A run folder whose run.json is its config's, and the marker of `stage` written as a job writes it (with what computed it). */
async function runFolder() {
  const out = join(dir, `run-${++n}`);
  mkdirSync(out);
  const config = { out, tag: 'race' };
  await writeManifest(config, { runner: 'test' });
  const mark = (stage: string) => markStage(config, { stage, seconds: 0, outputs: [], ranWith: { job: stage } });
  const recorded = () => Object.keys((JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as { stageVersions?: { stages: object } }).stageVersions?.stages ?? {});
  return { out, config, mark, recorded };
}

describe("run.json's rewrites by jobs that end together", () => {
  it('the rewrite that read the markers first cannot rename its account over the other\'s: both stages are recorded', async () => {
    const r = await runFolder();
    await r.mark('extract');
    await r.mark('features');
    let reached!: () => void;
    const atWrite = new Promise<void>((res) => (reached = res));
    let release!: () => void;
    gate.hold = { reached, until: new Promise<void>((res) => (release = res)) };
    // job A: its marker is there; it reads the markers (extract, features) and is held just before its write
    const a = recordStageVersions(r.config, STAGES, 'features');
    await atWrite;
    // job B ends meanwhile: its marker, then its rewrite (which, without a lock, writes at once: then A is let go)
    await r.mark('decoders');
    gate.written = release;
    const b = recordStageVersions(r.config, STAGES, 'decoders');
    // (with the lock, B waits for A, which goes on after a while)
    const timer = setTimeout(release, 300);
    await Promise.all([a, b]);
    clearTimeout(timer);
    gate.written = null;
    expect(r.recorded()).toEqual(['extract', 'features', 'decoders']);
    // each wrote under a temporary name, renamed into place; the lock is gone
    expect(readdirSync(r.out).sort()).toEqual(['run.json', 'stages']);
  });

  it('many at once, each after its own marker: every stage is recorded', async () => {
    const stages = Array.from({ length: 12 }, (_, i) => `s${i}`);
    for (let round = 0; round < 5; round++) {
      const r = await runFolder();
      await Promise.all(
        stages.map(async (s, i) => {
          await new Promise((res) => setTimeout(res, (i * 7) % 5));
          await r.mark(s);
          await recordStageVersions(r.config, stages, s);
        }),
      );
      expect(r.recorded()).toEqual(stages);
    }
  });

  it('a failure recorded while another job rewrites: neither is lost', async () => {
    const r = await runFolder();
    await r.mark('extract');
    await Promise.all([r.mark('features').then(() => recordStageVersions(r.config, STAGES, 'features')), recordRunFailure(r.config, ['extract', 'features'], 'decoders', new Error('boom'))]);
    const m = JSON.parse(readFileSync(join(r.out, 'run.json'), 'utf8'));
    expect(m.failed).toMatchObject({ stage: 'decoders', error: 'Error: boom' });
    // (whichever came last read both markers)
    expect(Object.keys(m.stageVersions.stages)).toEqual(['extract', 'features']);
  });

  it("a lock left by a dead process of this host is taken over; one of another host's, unrenewed for 30 s, too", async () => {
    const r = await runFolder();
    const dead = await commandOutput(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const holder = (pid: number, host: string) => JSON.stringify({ pid, host, command: 'brainlatent batch job x', startedAt: new Date().toISOString(), processStart: null, token: `t${pid}` });
    writeFileSync(join(r.out, RUN_JSON_LOCK), holder(Number(dead), hostname()));
    await r.mark('extract');
    await recordStageVersions(r.config, STAGES, 'extract');
    expect(r.recorded()).toEqual(['extract']);
    expect(existsSync(join(r.out, RUN_JSON_LOCK))).toBe(false);

    writeFileSync(join(r.out, RUN_JSON_LOCK), holder(1, 'another-host.invalid'));
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(r.out, RUN_JSON_LOCK), old, old);
    await r.mark('features');
    await recordStageVersions(r.config, STAGES, 'features');
    expect(r.recorded()).toEqual(['extract', 'features']);
    expect(existsSync(join(r.out, RUN_JSON_LOCK))).toBe(false);
  });
});
