/**
 * A stage's marker records the files it wrote (size, time, a small file's hash): on resume, an output truncated or
 * overwritten since reruns that stage and what depends on it, saying which file and what differed; a run folder
 * copied without its times, or left as it was, is skipped; a marker from before these records is taken as it was.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it, vi } from 'vitest';

import { stageProgress } from '../../ts/cli/commands/reconstruct.js';
import { buildDemoWorld } from '../../ts/demo/world.js';
import { resolveConfig, type ReconstructConfig, type ReconstructConfigInput } from '../../ts/pipeline/config.js';
import { FINGERPRINT_END, FINGERPRINT_SAMPLES, FINGERPRINT_SLICE, fileFingerprint, HASHED_BYTES, outputRecords, sameTime, type OutputRecord } from '../../ts/pipeline/outputRecords.js';
import { reconstruct, reconstructStageDefs, type ReconstructProgress } from '../../ts/pipeline/reconstruct.js';
import { markStage, stageState } from '../../ts/pipeline/runFolder.js';
import { planStages, runStages, stageDepKey, type StageDef, type StageProgress } from '../../ts/pipeline/stageRunner.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-output-records-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Moves a file's modification time on, as a rewrite (or a copy without its times) a while later would. */
const later = (path: string, seconds = 10) => {
  const t = statSync(path).mtimeMs / 1000 + seconds;
  utimesSync(path, t, t);
};

/** Writes `text` into a file at byte `at`, its size kept when it fits. */
const writeAt = (path: string, at: number, text: string) => {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, text, Math.min(at, statSync(path).size - text.length));
  } finally {
    closeSync(fd);
  }
};

/** Strips the output records from a marker, as the version before them wrote it. */
const oldMarker = (file: string) => {
  const { outputFiles: _, ...old } = JSON.parse(readFileSync(file, 'utf8'));
  writeFileSync(file, JSON.stringify(old, null, 2));
};

/**
 * Turns a run folder's markers into those the version before the output records wrote: each without them, and with
 * what it read of the stages before it (depKey) as that version recorded it, from their markers as it wrote them.
 */
async function asOldVersion(config: { out: string }, stages: readonly StageDef[]): Promise<void> {
  for (const s of stages) {
    const file = join(config.out, 'stages', `${s.id}.json`);
    oldMarker(file);
    const m = JSON.parse(readFileSync(file, 'utf8'));
    if (m.depKey !== undefined) writeFileSync(file, JSON.stringify({ ...m, depKey: await stageDepKey(config, s) }, null, 2));
  }
}

describe('stage markers: the files a stage wrote', () => {
  const config = { out: join(tmp, 'run') } as ReconstructConfig;
  const out = (f: string) => join(config.out, f);
  const mark = () => markStage(config, { stage: 'fit.f', seconds: 1, outputs: ['fits/r.npy', 'fits/big.bin'] });

  it('records each output; a truncated or grown one, or a missing one, reruns the stage and says which and what differed', async () => {
    mkdirSync(out('fits'), { recursive: true });
    writeFileSync(out('fits/r.npy'), Buffer.alloc(56_789, 7));
    writeFileSync(out('fits/big.bin'), 'b');
    truncateSync(out('fits/big.bin'), HASHED_BYTES + 1); // (sparse: read only where it is fingerprinted)
    await mark();
    const m = JSON.parse(readFileSync(out('stages/fit.f.json'), 'utf8'));
    expect(m.outputFiles['fits/r.npy']).toMatchObject({ size: 56_789, mtimeMs: statSync(out('fits/r.npy')).mtimeMs });
    expect(m.outputFiles['fits/r.npy'].sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(m.outputFiles['fits/big.bin']).toEqual({ size: HASHED_BYTES + 1, mtimeMs: statSync(out('fits/big.bin')).mtimeMs, fingerprint: await fileFingerprint(out('fits/big.bin')) });
    expect(m.outputFiles['fits/big.bin'].fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(await stageState(config, 'fit.f')).toEqual({ done: true });
    truncateSync(out('fits/r.npy'), 1_234);
    expect(await stageState(config, 'fit.f')).toEqual({ done: false, why: 'fits/r.npy: 1,234 bytes, the stage recorded 56,789' });
    writeFileSync(out('fits/r.npy'), Buffer.alloc(60_000, 7));
    expect((await stageState(config, 'fit.f')).why).toBe('fits/r.npy: 60,000 bytes, the stage recorded 56,789');
    rmSync(out('fits/r.npy'));
    expect((await stageState(config, 'fit.f')).why).toBe('fits/r.npy is missing');
  });

  it('the same size and another time: a small file is compared by its hash, a large one by its fingerprint', async () => {
    writeFileSync(out('fits/r.npy'), Buffer.alloc(56_789, 7));
    await mark();
    // the same bytes with another time (cp -r, rsync without -t, touch): still the stage's
    later(out('fits/r.npy'));
    expect(await stageState(config, 'fit.f')).toEqual({ done: true });
    // other bytes of the same length
    writeFileSync(out('fits/r.npy'), Buffer.alloc(56_789, 8));
    expect((await stageState(config, 'fit.f')).why).toMatch(/^fits\/r\.npy: its content differs from what the stage wrote \(same size; modified .*, the stage recorded .*\)$/);
    writeFileSync(out('fits/r.npy'), Buffer.alloc(56_789, 7));
    await mark();
    // the same large file with another time (a copy without its times): its fingerprint is the same
    later(out('fits/big.bin'));
    expect(await stageState(config, 'fit.f')).toEqual({ done: true });
    // other content of the same size (another run's output of the same shape): its head, a slice between, its tail
    const big = out('fits/big.bin');
    const gap = HASHED_BYTES + 1 - 2 * FINGERPRINT_END - FINGERPRINT_SLICE;
    const eighthSlice = FINGERPRINT_END + Math.floor((8 * gap) / (FINGERPRINT_SAMPLES + 1));
    for (const at of [0, eighthSlice + 100, HASHED_BYTES]) {
      await mark();
      writeAt(big, at, 'other');
      later(big);
      expect(statSync(big).size).toBe(HASHED_BYTES + 1);
      expect((await stageState(config, 'fit.f')).why).toMatch(/^fits\/big\.bin: its content differs from what the stage wrote \(same size, other sampled content; modified .*, the stage recorded .*\)$/);
    }
    // (its limit: a change that falls between the slices is not seen)
    await mark();
    writeAt(big, eighthSlice - 100, 'other');
    later(big);
    expect(await stageState(config, 'fit.f')).toEqual({ done: true });
    // a large file's record from before fingerprints: another time at its size counts as changed, as it did
    await mark();
    const file = out('stages/fit.f.json');
    const m = JSON.parse(readFileSync(file, 'utf8'));
    delete m.outputFiles['fits/big.bin'].fingerprint;
    writeFileSync(file, JSON.stringify(m));
    expect(await stageState(config, 'fit.f')).toEqual({ done: true });
    later(big);
    expect((await stageState(config, 'fit.f')).why).toMatch(/^fits\/big\.bin: modified .*, the stage recorded .* \(same size; recorded without a hash or fingerprint, so taken as changed\)$/);
  });

  it('times that agree to the coarser clock (a copy with its times onto 1 s, 2 s or 10 ms file systems, a tar) are the same, with no read', async () => {
    await mark();
    // the record's hash and fingerprint made wrong, so that any read of either file would find it changed
    const file = out('stages/fit.f.json');
    const m = JSON.parse(readFileSync(file, 'utf8'));
    m.outputFiles['fits/r.npy'].sha256 = '0'.repeat(64);
    m.outputFiles['fits/big.bin'].fingerprint = '0'.repeat(64);
    const setTimes = (msOf: (recorded: number) => number) => {
      for (const f of ['fits/r.npy', 'fits/big.bin']) {
        const ms = msOf(m.outputFiles[f].mtimeMs);
        utimesSync(out(f), ms / 1000, ms / 1000);
        if (Number.isInteger(ms)) expect(statSync(out(f)).mtimeMs).toBe(ms);
      }
    };
    // a recorded time finer than a second, as ext4 and the like keep them
    const t0 = Math.floor(m.outputFiles['fits/r.npy'].mtimeMs / 1000) * 1000 + 1_734.5;
    for (const f of ['fits/r.npy', 'fits/big.bin']) {
      utimesSync(out(f), t0 / 1000, t0 / 1000);
      m.outputFiles[f].mtimeMs = statSync(out(f)).mtimeMs;
    }
    writeFileSync(file, JSON.stringify(m));
    // tar's whole seconds, Lustre's (truncated)
    setTimes((t) => Math.floor(t / 1000) * 1000);
    expect(await stageState(config, 'fit.f')).toEqual({ done: true });
    // FAT's 2 s, rounded up; exFAT's 10 ms
    setTimes((t) => Math.ceil(t / 2000) * 2000);
    expect(await stageState(config, 'fit.f')).toEqual({ done: true });
    setTimes((t) => Math.floor(t / 10) * 10);
    expect(await stageState(config, 'fit.f')).toEqual({ done: true });
    // more than a tick of the coarser clock apart is another time: read, and (with the wrong hash) changed
    setTimes((t) => Math.floor(t / 1000) * 1000 + 3000);
    expect((await stageState(config, 'fit.f')).why).toMatch(/^fits\/r\.npy: its content differs/);
    // and so is a time a tick apart on the same fine clock
    setTimes((t) => t + 1.5);
    expect((await stageState(config, 'fit.f')).why).toMatch(/^fits\/r\.npy: its content differs/);
  });

  it('sameTime: equal, or a fine time and a coarse one within its tick; two coarse times apart are not', () => {
    const t = 1_700_000_001_734.5;
    expect(sameTime(t, t)).toBe(true);
    expect(sameTime(t, 1_700_000_001_000)).toBe(true);
    expect(sameTime(1_700_000_001_000, t)).toBe(true);
    expect(sameTime(t, 1_700_000_002_000)).toBe(true); // FAT, rounded up
    expect(sameTime(t, 1_700_000_001_730)).toBe(true); // exFAT
    expect(sameTime(t, 1_700_000_003_000)).toBe(false);
    expect(sameTime(t, 1_700_000_000_000)).toBe(true); // FAT, truncated
    expect(sameTime(t, 1_699_999_999_000)).toBe(false);
    expect(sameTime(t, t + 0.25)).toBe(false);
    expect(sameTime(1_700_000_001_000, 1_700_000_002_000)).toBe(false);
    expect(sameTime(1_700_000_001_730, 1_700_000_001_740)).toBe(false);
  });

  it("known records (the merge's, from its shards'): a file still at its size and time keeps its hash or fingerprint, unread; the others are read", async () => {
    writeFileSync(out('fits/r.npy'), Buffer.alloc(56_789, 7));
    const now = await outputRecords(config.out, ['fits/r.npy', 'fits/big.bin']);
    // known records whose hash and fingerprint no read of these files would give: kept only if not read
    const wrong = '0'.repeat(64);
    const known = { 'fits/r.npy': { ...now['fits/r.npy'], sha256: wrong }, 'fits/big.bin': { ...now['fits/big.bin'], fingerprint: wrong } };
    expect(await outputRecords(config.out, ['fits/r.npy', 'fits/big.bin'], known)).toEqual(known);
    await markStage(config, { stage: 'fit.f', seconds: 1, outputs: ['fits/r.npy', 'fits/big.bin'] }, known);
    expect(JSON.parse(readFileSync(out('stages/fit.f.json'), 'utf8')).outputFiles).toEqual(known);
    // a time to the coarser clock (a tar of the folder) is the same: kept, with the present time
    const whole = Math.floor(now['fits/r.npy'].mtimeMs / 1000);
    utimesSync(out('fits/r.npy'), whole, whole);
    expect((await outputRecords(config.out, ['fits/r.npy'], known))['fits/r.npy']).toEqual({ size: 56_789, mtimeMs: whole * 1000, sha256: wrong });
    // moved on, another size, or a known record without the content's hash: read
    later(out('fits/r.npy'));
    later(out('fits/big.bin'));
    expect(await outputRecords(config.out, ['fits/r.npy', 'fits/big.bin'], known)).toEqual(await outputRecords(config.out, ['fits/r.npy', 'fits/big.bin']));
    expect((await outputRecords(config.out, ['fits/r.npy'], known))['fits/r.npy'].sha256).toBe(now['fits/r.npy'].sha256);
    const at = await outputRecords(config.out, ['fits/r.npy', 'fits/big.bin']);
    expect((await outputRecords(config.out, ['fits/r.npy'], { 'fits/r.npy': { ...at['fits/r.npy'], size: 1, sha256: wrong } }))['fits/r.npy'].sha256).toBe(now['fits/r.npy'].sha256);
    expect((await outputRecords(config.out, ['fits/big.bin'], { 'fits/big.bin': { ...at['fits/big.bin'], fingerprint: undefined, sha256: wrong } }))['fits/big.bin'].fingerprint).toBe(now['fits/big.bin'].fingerprint);
  });

  it('a marker from before the records (no outputFiles) is taken as it was: its outputs only have to exist', async () => {
    await mark();
    oldMarker(out('stages/fit.f.json'));
    truncateSync(out('fits/r.npy'), 10);
    expect(await stageState(config, 'fit.f')).toEqual({ done: true });
    rmSync(out('fits/r.npy'));
    expect((await stageState(config, 'fit.f')).why).toBe('fits/r.npy is missing');
  });
});

describe('the stage runner: a damaged output reruns its stage and what depends on it, no other', () => {
  const config = { out: join(tmp, 'chain') };
  const ran: string[] = [];
  // a → b → c, and d after a alone
  const stage = (id: string, deps: string[]): StageDef => ({
    id, deps, describe: id,
    run: async () => {
      ran.push(id);
      mkdirSync(join(config.out, 'o'), { recursive: true });
      writeFileSync(join(config.out, 'o', `${id}.bin`), Buffer.alloc(100, id.charCodeAt(0)));
      return { outputs: [`o/${id}.bin`] };
    },
  });
  const stages = [stage('a', []), stage('b', ['a']), stage('c', ['b']), stage('d', ['a'])];
  const run = async () => {
    ran.length = 0;
    const events: StageProgress[] = [];
    await runStages(config, stages, await planStages(config, stages), { onProgress: (p) => events.push(p) });
    return { ran: [...ran], again: events.filter((e) => e.again !== undefined).map((e) => `${e.stage}: ${e.again}`) };
  };

  it('runs all, then skips all; b truncated reruns b and c, saying why once; then skips all again', async () => {
    expect((await run()).ran).toEqual(['a', 'b', 'c', 'd']);
    expect(await run()).toEqual({ ran: [], again: [] });
    truncateSync(join(config.out, 'o', 'b.bin'), 40);
    expect(await run()).toEqual({ ran: ['b', 'c'], again: ['b: o/b.bin: 40 bytes, the stage recorded 100'] });
    expect(await run()).toEqual({ ran: [], again: [] });
  });

  it("a rerun records the outputs it kept as they were from its last marker, unread, and reads those it wrote", async () => {
    const kept = { out: join(tmp, 'kept') };
    // (a stage that keeps k1 when it is there, as img2img keeps its intact samples, and writes k2 each time)
    const k: StageDef = {
      id: 'k', deps: [], describe: 'k',
      run: async () => {
        mkdirSync(join(kept.out, 'o'), { recursive: true });
        if (!existsSync(join(kept.out, 'o', 'k1.bin'))) writeFileSync(join(kept.out, 'o', 'k1.bin'), Buffer.alloc(50, 1));
        writeFileSync(join(kept.out, 'o', 'k2.bin'), Buffer.alloc(60, 2));
        return { outputs: ['o/k1.bin', 'o/k2.bin'] };
      },
    };
    await runStages(kept, [k], await planStages(kept, [k]));
    const markerPath = join(kept.out, 'stages', 'k.json');
    const marker = JSON.parse(readFileSync(markerPath, 'utf8')) as { outputFiles: Record<string, OutputRecord> };
    // (a hash no read of k1 gives: kept in the next marker only if k1 is not read again)
    marker.outputFiles['o/k1.bin'].sha256 = 'f'.repeat(64);
    writeFileSync(markerPath, JSON.stringify(marker));
    truncateSync(join(kept.out, 'o', 'k2.bin'), 10);
    await runStages(kept, [k], await planStages(kept, [k]));
    const after = (JSON.parse(readFileSync(markerPath, 'utf8')) as { outputFiles: Record<string, OutputRecord> }).outputFiles;
    expect(after['o/k1.bin'].sha256).toBe('f'.repeat(64));
    expect(after['o/k2.bin']).toMatchObject({ size: 60, sha256: createHash('sha256').update(Buffer.alloc(60, 2)).digest('hex') });
  });

  it('markers of the version before (no records) still skip, a damaged output and all; --force still runs all', async () => {
    await asOldVersion(config, stages);
    truncateSync(join(config.out, 'o', 'c.bin'), 3);
    expect(await run()).toEqual({ ran: [], again: [] });
    ran.length = 0;
    await runStages(config, stages, await planStages(config, stages, true));
    expect(ran).toEqual(['a', 'b', 'c', 'd']);
  });

  it("the CLI's progress says it in one line on stderr", () => {
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      stageProgress()({ stage: 'decoders', index: 3, stages: 7, fraction: 0, status: 'running', again: 'decoders/z.safetensors: 1,234 bytes, the stage recorded 56,789' });
      expect(write.mock.calls.map((c) => String(c[0]))).toContain('[3/7] decoders: decoders/z.safetensors: 1,234 bytes, the stage recorded 56,789; rerunning decoders\n');
    } finally {
      write.mockRestore();
    }
  });
});

describe('reconstruct: resuming over damaged outputs', () => {
  it('a truncated decoder reruns the decoders and the stages after them; a junk image, img2img and after; untouched, a copy without times, or old markers skip all', async () => {
    const world = await buildDemoWorld({ out: join(tmp, 'world'), imageSize: 64, sessions: 4, trialsPerSession: 60, testImages: 4 });
    const config: ReconstructConfigInput = {
      ...world.config,
      out: join(tmp, 'recon'),
      model: { ...world.config.model, threads: 1 },
      // (two seeds: two units of the img2img stage, a block of its 4 test images each)
      img2img: { ...world.config.img2img, steps: 4, seeds: 2, batchSize: 1, rule: 'diffusers' },
    };
    const out = (f: string) => join(tmp, 'recon', f);
    const run = async () => {
      const again: string[] = [];
      const r = await reconstruct(config, { onProgress: (p: ReconstructProgress) => p.again && again.push(`${p.stage}: ${p.again}`) });
      return { ran: r.stages.filter((s) => s.status === 'ran').map((s) => s.stage), again };
    };
    expect((await run()).ran).toHaveLength(7);
    expect(await run()).toEqual({ ran: [], again: [] });

    const z = out('decoders/z.safetensors');
    const size = statSync(z).size;
    // (the tensors after the safetensors header: the header's fit_info holds the fit's timings, whose digits vary)
    const tensorBytes = () => {
      const b = readFileSync(z);
      return b.subarray(8 + Number(b.readBigUInt64LE(0)));
    };
    const tensors = tensorBytes();
    truncateSync(z, Math.floor(size / 2));
    const dry = await reconstruct(config, { dryRun: true });
    expect(dry.plan!.find((l) => l.startsWith('run  decoders'))).toContain(`(again: decoders/z.safetensors: ${Math.floor(size / 2).toLocaleString('en-US')} bytes, the stage recorded ${size.toLocaleString('en-US')})`);
    expect(dry.stages.filter((s) => s.status === 'skipped').map((s) => s.stage)).toEqual(['extract', 'features']);
    expect(await run()).toEqual({
      ran: ['decoders', 'zonly', 'img2img', 'evaluate', 'report'],
      again: [`decoders: decoders/z.safetensors: ${Math.floor(size / 2).toLocaleString('en-US')} bytes, the stage recorded ${size.toLocaleString('en-US')}`],
    });
    // the same model made again (its size could differ by the header's padding: 8 bytes in one CI run)
    expect(tensorBytes().equals(tensors)).toBe(true);
    // (decoders made again: no sample of img2img's last run is kept, intact as they are)
    expect(JSON.parse(readFileSync(out('stages/img2img.json'), 'utf8')).summary).toMatchObject({ samplesRun: 8, reusedSamples: 0 });

    // a junk sample of seed 0: img2img reruns the unit that holds it (seed 0's block), keeping seed 1's
    const sample = readdirSync(out('images')).find((f) => /_000\.png$/.test(f))!;
    const good = readFileSync(out(`images/${sample}`));
    writeFileSync(out(`images/${sample}`), 'junk\n');
    const dryImg = await reconstruct(config, { dryRun: true });
    expect(dryImg.estimates!.img2img.basis).toMatch(/ × 4 samples to compute ÷ 1 per batch \(4 = 2 seed\(s\) × 4 images − 4 kept intact from the stage's last run, stages\/img2img\.json\)$/);
    const r = await run();
    expect(r.ran).toEqual(['img2img', 'evaluate', 'report']);
    expect(r.again).toEqual([expect.stringMatching(new RegExp(`^img2img: images/${sample}: 5 bytes, the stage recorded [\\d,]+$`))]);
    expect(JSON.parse(readFileSync(out('stages/img2img.json'), 'utf8')).summary).toMatchObject({ samplesRun: 4, reusedSamples: 4 });
    expect(readFileSync(out(`images/${sample}`))).toEqual(good);
    expect(await run()).toEqual({ ran: [], again: [] });

    // every output's time moved on (a copy without its times): the hashes say they are the stage's
    for (const dir of ['images', 'decoded', 'data']) for (const f of readdirSync(out(dir))) later(out(`${dir}/${f}`));
    expect(await run()).toEqual({ ran: [], again: [] });

    // markers of the version before: a damaged output is taken as it was (only missing ones rerun), as before
    await asOldVersion({ out: join(tmp, 'recon') }, await reconstructStageDefs(resolveConfig(config), () => Promise.reject(new Error('not run'))));
    truncateSync(out('metrics.csv'), 10);
    truncateSync(z, 100);
    expect(await run()).toEqual({ ran: [], again: [] });
  }, 300_000);
});
