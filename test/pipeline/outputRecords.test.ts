/**
 * A stage's marker records the files it wrote (size, time, a small file's hash): on resume, an output truncated or
 * overwritten since reruns that stage and what depends on it, saying which file and what differed; a run folder
 * copied without its times, or left as it was, is skipped; a marker from before these records is taken as it was.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it, vi } from 'vitest';

import { stageProgress } from '../../ts/cli/commands/reconstruct.js';
import { buildDemoWorld } from '../../ts/demo/world.js';
import { resolveConfig, type ReconstructConfig, type ReconstructConfigInput } from '../../ts/pipeline/config.js';
import { HASHED_BYTES } from '../../ts/pipeline/outputRecords.js';
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
    truncateSync(out('fits/big.bin'), HASHED_BYTES + 1); // (sparse: not hashed, so not read)
    await mark();
    const m = JSON.parse(readFileSync(out('stages/fit.f.json'), 'utf8'));
    expect(m.outputFiles['fits/r.npy']).toMatchObject({ size: 56_789, mtimeMs: statSync(out('fits/r.npy')).mtimeMs });
    expect(m.outputFiles['fits/r.npy'].sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(m.outputFiles['fits/big.bin']).toEqual({ size: HASHED_BYTES + 1, mtimeMs: statSync(out('fits/big.bin')).mtimeMs });
    expect(await stageState(config, 'fit.f')).toEqual({ done: true });
    truncateSync(out('fits/r.npy'), 1_234);
    expect(await stageState(config, 'fit.f')).toEqual({ done: false, why: 'fits/r.npy: 1,234 bytes, the stage recorded 56,789' });
    writeFileSync(out('fits/r.npy'), Buffer.alloc(60_000, 7));
    expect((await stageState(config, 'fit.f')).why).toBe('fits/r.npy: 60,000 bytes, the stage recorded 56,789');
    rmSync(out('fits/r.npy'));
    expect((await stageState(config, 'fit.f')).why).toBe('fits/r.npy is missing');
  });

  it('the same size and another time: a small file is compared by its hash, a large one counts as changed', async () => {
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
    later(out('fits/big.bin'));
    expect((await stageState(config, 'fit.f')).why).toMatch(/^fits\/big\.bin: modified .*, the stage recorded .* \(same size; too large to have been hashed, so taken as changed\)$/);
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
      img2img: { ...world.config.img2img, steps: 4, seeds: 1, rule: 'diffusers' },
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
    truncateSync(z, Math.floor(size / 2));
    const dry = await reconstruct(config, { dryRun: true });
    expect(dry.plan!.find((l) => l.startsWith('run  decoders'))).toContain(`(again: decoders/z.safetensors: ${Math.floor(size / 2).toLocaleString('en-US')} bytes, the stage recorded ${size.toLocaleString('en-US')})`);
    expect(dry.stages.filter((s) => s.status === 'skipped').map((s) => s.stage)).toEqual(['extract', 'features']);
    expect(await run()).toEqual({
      ran: ['decoders', 'zonly', 'img2img', 'evaluate', 'report'],
      again: [`decoders: decoders/z.safetensors: ${Math.floor(size / 2).toLocaleString('en-US')} bytes, the stage recorded ${size.toLocaleString('en-US')}`],
    });
    expect(statSync(z).size).toBe(size);

    const sample = readdirSync(out('images')).find((f) => /_000\.png$/.test(f))!;
    writeFileSync(out(`images/${sample}`), 'junk\n');
    const r = await run();
    expect(r.ran).toEqual(['img2img', 'evaluate', 'report']);
    expect(r.again).toEqual([expect.stringMatching(new RegExp(`^img2img: images/${sample}: 5 bytes, the stage recorded [\\d,]+$`))]);
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
