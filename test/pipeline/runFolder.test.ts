import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { InvalidArgumentError, LockedError } from '../../ts/errors.js';
import { LOCK_FILE } from '../../ts/io/folderLock.js';
import { clearingFiles, clearingInterrupted, clearingPlan, clearRunFolder, lockRunFolder, markStage, readManifest, runFolderConflict, stageDone, stageRecipe } from '../../ts/pipeline/runFolder.js';
import { configHash, type ReconstructConfig } from '../../ts/pipeline/config.js';
import { runFileNamed } from '../../ts/pipeline/runFiles.js';
import { filesUnder } from '../helpers/filesUnder.js';

const root = mkdtempSync(join(tmpdir(), 'bl-runfolder-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

/** A finished run folder of an "old" config: run.json, stage markers, outputs, and the extraction cache. */
function oldRun(): string {
  const out = join(root, `run${n++}`);
  mkdirSync(join(out, 'stages'), { recursive: true });
  mkdirSync(join(out, 'images'));
  mkdirSync(join(out, 'cache', 'subj01_x'), { recursive: true });
  writeFileSync(join(out, 'run.json'), JSON.stringify({ format: 'brainlatent-run', version: 1, configHash: 'old', config: {}, versions: {} }));
  writeFileSync(join(out, 'stages', 'evaluate.json'), '{}');
  for (const f of ['metrics.json', 'metrics.csv', 'report.html', 'images/00001_org.png']) writeFileSync(join(out, f), 'old');
  writeFileSync(join(out, 'cache', 'subj01_x', 'manifest.json'), '{}');
  return out;
}

describe('run folder: lock and --force', () => {
  it('--force empties the folder of the old run, keeping the extraction cache and the lock', async () => {
    const out = oldRun();
    const lock = await lockRunFolder(out, 'test');
    await clearRunFolder(out);
    expect(readdirSync(out).sort()).toEqual([LOCK_FILE, 'cache', 'run.json'].sort());
    expect(JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'))).toMatchObject({ clearing: true, previousConfigHash: 'old' });
    expect(await clearingInterrupted(out)).toBe(true);
    expect(await readManifest(out)).toBeNull();
    // a folder being cleared is no other run's: any config may finish clearing it
    expect(await runFolderConflict({ out } as ReconstructConfig)).toBeNull();
    await lock.release();
    expect(existsSync(join(out, LOCK_FILE))).toBe(false);
  });

  it('--force removes only what a run wrote: files of the user beside it (the config itself, notes) stay', async () => {
    const out = oldRun();
    for (const f of ['enc.json', 'notes.txt', 'mydata.npy']) writeFileSync(join(out, f), 'mine');
    // an entry only a (newer) stage marker names goes too
    mkdirSync(join(out, 'extra'));
    writeFileSync(join(out, 'extra', 'x.npy'), 'old');
    writeFileSync(join(out, 'stages', 'new.json'), JSON.stringify({ stage: 'new', outputs: ['extra/x.npy', '../outside', 'cache/k'] }));
    await clearRunFolder(out);
    expect(readdirSync(out).sort()).toEqual(['cache', 'enc.json', 'mydata.npy', 'notes.txt', 'run.json']);
    expect(readFileSync(join(out, 'enc.json'), 'utf8')).toBe('mine');
  });

  it("--force keeps the user's files inside the run's own folders, and removes an interrupted stage's files by their names", async () => {
    const out = oldRun();
    const mine = ['data/participants.csv', 'images/figure.png', 'decoders/notes.md', 'stages-notes.txt'];
    // img2img was killed after writing a sample, before its marker: its file goes by its name (sample 1000 and on
    // with four digits and more: runFolder's paths() pads to three)
    const interrupted = ['images/00002_003.png', 'images/00002_1000.png', 'decoders/z.safetensors', 'stages/img2img.partial/all.json'];
    for (const f of [...mine, ...interrupted]) {
      mkdirSync(dirname(join(out, f)), { recursive: true });
      writeFileSync(join(out, f), f);
    }
    const plan = await clearingPlan(out);
    expect(plan).toMatch(/^--force: first removes the previous run's outputs in .* \(decoders, images, metrics\.csv, metrics\.json, report\.html, run\.json, stages\); other files there stay \(4 no run wrote: data\/participants\.csv, decoders\/notes\.md, images\/figure\.png, stages-notes\.txt\)$/);
    await clearRunFolder(out);
    expect(filesUnder(out)).toEqual(['cache/subj01_x/manifest.json', ...mine, 'run.json'].sort());
    // the folders it emptied went (stages/), those holding a file of the user's stayed
    expect(existsSync(join(out, 'stages'))).toBe(false);
  });

  it("an encode folder: the old config's map and table names go without their markers, a map of the user's stays", async () => {
    const out = join(root, `enc${n++}`);
    const config = { featureSets: [{ name: 'z', kind: 'z' }, { name: 'mid', kind: 'unet', layers: ['/down/0'], timesteps: [201] }], banded: [{ name: 'z+mid', sets: ['z', 'mid'] }] };
    mkdirSync(join(out, 'stages'), { recursive: true });
    writeFileSync(join(out, 'run.json'), JSON.stringify({ format: 'brainlatent-run', version: 1, configHash: 'old', config, versions: {} }));
    const theirs = [
      'maps/z.nii.gz', 'maps/z_log10-alpha.nii.gz', 'maps/z+mid_unique-z.nii.gz', 'maps/z+mid_gamma-mid.nii.gz', 'mosaics/z.png', 'mosaics/z+mid_r2.png',
      // a U-Net table's maps are named after the set, its layer and timestep
      'maps/mid_down_0_t201.nii.gz', 'maps/mid_down_0_t201_r-over-sqrt-nc.nii.gz', 'features/mid.L0.t201.npy', 'fits/z/r.npy', 'banded/z+mid/r2_without_1.npy',
    ];
    // names a user gives files derived from the maps start as the maps' do: they are not a run's
    const mine = ['maps/my_contrast.nii.gz', 'maps/z_thresholded.nii.gz', 'mosaics/z+mid_annotated.png', 'features/mine.npy', 'features/mid.L1.t201.npy', 'mosaics/zebra.png', 'fits/z/notes.txt'];
    for (const f of [...theirs, ...mine]) {
      mkdirSync(dirname(join(out, f)), { recursive: true });
      writeFileSync(join(out, f), f);
    }
    expect(theirs.every((f) => runFileNamed(f, config))).toBe(true);
    expect(mine.some((f) => runFileNamed(f, config))).toBe(false);
    await clearRunFolder(out);
    expect(filesUnder(out)).toEqual([...mine, 'run.json'].sort());
    expect(existsSync(join(out, 'banded'))).toBe(false);
  });

  it('a clearing a kill interrupted is finished from the list it recorded (the markers that listed the files are gone)', async () => {
    const out = oldRun();
    // a newer version's output, known only by its marker
    mkdirSync(join(out, 'extra'));
    writeFileSync(join(out, 'extra', 'x.npy'), 'old');
    writeFileSync(join(out, 'stages', 'new.json'), JSON.stringify({ stage: 'new', outputs: ['extra'] }));
    const { writeJsonAtomic } = await import('../../ts/io/atomicWrite.js');
    // what clearRunFolder writes first; then the kill, after the markers went
    const { entries } = await clearingFiles(out);
    expect(entries).toEqual(['extra', 'images', 'metrics.csv', 'metrics.json', 'report.html', 'run.json', 'stages']);
    await writeJsonAtomic(join(out, 'run.json'), { format: 'brainlatent-run', clearing: true, previousConfigHash: 'old', startedAt: 'then', removing: ['extra/x.npy', 'images/00001_org.png', 'metrics.csv', 'metrics.json', 'report.html', 'stages/evaluate.json', 'stages/new.json'] });
    rmSync(join(out, 'stages'), { recursive: true });
    // (and it had removed a file whose folder it had not reached yet)
    mkdirSync(join(out, 'fits', 'z'), { recursive: true });
    const marker = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    await writeJsonAtomic(join(out, 'run.json'), { ...marker, removing: [...marker.removing, 'fits/z/r.npy'] });
    expect(await clearingInterrupted(out)).toBe(true);
    // any run there finishes it, with or without --force: its dry run says so
    expect(await clearingPlan(out)).toMatch(/^finishes an interrupted --force: first removes the previous run's outputs in .* \(extra, images, metrics\.csv, metrics\.json, report\.html, run\.json\); other files there stay$/);
    await clearRunFolder(out);
    expect(filesUnder(out)).toEqual(['cache/subj01_x/manifest.json', 'run.json']);
    expect(readdirSync(out).sort()).toEqual(['cache', 'run.json']);
  });

  it('a clearing killed after its last file, before the folders it emptied, removes them next time', async () => {
    const out = join(root, `emptied${n++}`);
    mkdirSync(join(out, 'fits', 'z'), { recursive: true });
    mkdirSync(join(out, 'maps'));
    writeFileSync(join(out, 'maps', 'mine.nii.gz'), 'mine');
    writeFileSync(join(out, 'run.json'), JSON.stringify({ format: 'brainlatent-run', clearing: true, previousConfigHash: 'old', startedAt: 'then', removing: ['fits/z/r.npy', 'maps/z.nii.gz'] }));
    await clearRunFolder(out);
    expect(readdirSync(out).sort()).toEqual(['maps', 'run.json']);
    expect(filesUnder(out)).toEqual(['maps/mine.nii.gz', 'run.json']);
  });

  it('a clearing begun by a version that removed whole entries (its marker lists nothing) is finished as it began', async () => {
    const out = join(root, `legacy${n++}`);
    mkdirSync(join(out, 'maps'), { recursive: true });
    writeFileSync(join(out, 'run.json'), JSON.stringify({ format: 'brainlatent-run', clearing: true, previousConfigHash: 'old', startedAt: 'then' }));
    // the old config's map (its name unknown now: the marker holds no config) and a top-level file of the user's
    for (const f of ['maps/z.nii.gz', 'maps/zc_log10-alpha.nii.gz', 'notes.txt']) writeFileSync(join(out, f), f);
    await clearRunFolder(out);
    expect(filesUnder(out)).toEqual(['notes.txt', 'run.json']);
  });

  it('a folder named otherwise than its normal form (a trailing slash, //, /./) is cleared and refused the same', async () => {
    for (const spelling of [(o: string) => `${o}/`, (o: string) => o.replace(/\/([^/]+)$/, '//$1'), (o: string) => o.replace(/\/([^/]+)$/, '/./$1')]) {
      const out = oldRun();
      writeFileSync(join(out, 'notes.txt'), 'mine');
      expect(await runFolderConflict({ out: spelling(out) } as ReconstructConfig)).toMatch(/holds another run's outputs \(images, metrics\.csv, metrics\.json, report\.html, stages;/);
      expect(await clearingPlan(spelling(out))).toMatch(/\(images, metrics\.csv, metrics\.json, report\.html, run\.json, stages\); other files there stay \(1 no run wrote: notes\.txt\)$/);
      await clearRunFolder(spelling(out));
      expect(filesUnder(out)).toEqual(['cache/subj01_x/manifest.json', 'notes.txt', 'run.json']);
    }
  });

  it('a link to a folder is not followed: its files stay, and the dry run says it is a link', async () => {
    const out = oldRun();
    const elsewhere = join(root, `elsewhere${n++}`);
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, '00001_000.png'), 'theirs');
    symlinkSync(elsewhere, join(out, 'samples'));
    expect(await clearingPlan(out)).toMatch(/other files there stay \(1 no run wrote: samples \(a link, not followed\)\)$/);
    await clearRunFolder(out);
    expect(readFileSync(join(elsewhere, '00001_000.png'), 'utf8')).toBe('theirs');
  });

  it('a run.json no run wrote (a config of the same name) is refused, with or without --force, and left as it is', async () => {
    const out = join(root, 'foreign');
    mkdirSync(join(out, 'stages'), { recursive: true });
    const config = JSON.stringify({ out: '.', nsd: { root: '/data/nsd', subject: 1 } });
    writeFileSync(join(out, 'run.json'), config);
    writeFileSync(join(out, 'notes.txt'), 'mine');
    const message = /run\.json exists but is not a brainlatent run manifest .*choose another --out/;
    expect(await runFolderConflict({ out } as ReconstructConfig)).toMatch(message);
    expect(await runFolderConflict({ out } as ReconstructConfig, { force: true })).toMatch(message);
    expect(await runFolderConflict({ out } as ReconstructConfig)).not.toMatch(/config undefined/);
    await expect(clearRunFolder(out)).rejects.toThrow(InvalidArgumentError);
    await expect(clearRunFolder(out)).rejects.toThrow(message);
    expect(readFileSync(join(out, 'run.json'), 'utf8')).toBe(config);
    expect(readdirSync(out).sort()).toEqual(['notes.txt', 'run.json', 'stages']);
  });

  // (review s47, file formats: a run.json cut short or with a flipped byte was called "a file of yours?")
  it('a run record damaged past reading is named so, with the way back; refused with or without --force and left as it is', async () => {
    const out = oldRun();
    const whole = readFileSync(join(out, 'run.json'), 'utf8');
    const cut = whole.slice(0, Math.floor(whole.length / 2));
    writeFileSync(join(out, 'run.json'), cut);
    const damaged = new RegExp(
      `^${join(out, 'run.json')} is a brainlatent run manifest that cannot be read \\(not valid JSON: .+\\): it was damaged after the run wrote it\\. ` +
        `Delete it and run the same config again to resume \\(every stage is checked against the records in ${join(out, 'stages')}\\), or choose another --out$`,
    );
    expect(await runFolderConflict({ out } as ReconstructConfig)).toMatch(damaged);
    expect(await runFolderConflict({ out } as ReconstructConfig, { force: true })).toMatch(damaged);
    await expect(clearRunFolder(out)).rejects.toThrow(damaged);
    expect(readFileSync(join(out, 'run.json'), 'utf8')).toBe(cut);
    // parsed, but a field lost to an edit
    const run = JSON.parse(whole);
    delete run.configHash;
    writeFileSync(join(out, 'run.json'), JSON.stringify(run));
    expect(await runFolderConflict({ out } as ReconstructConfig)).toMatch(/cannot be read \(it has no "configHash"\)/);
    // a file of the user's that only holds the marker inside (a copy of a record, nested) is theirs: never told to delete it
    writeFileSync(join(out, 'run.json'), JSON.stringify({ saved: run }));
    expect(await runFolderConflict({ out } as ReconstructConfig)).toMatch(/exists but is not a brainlatent run manifest \(a file of yours\?\)/);
    // deleted as told, the folder is a run's again: nothing in the way of the same config (its stages resume by their markers)
    rmSync(join(out, 'run.json'));
    expect(await runFolderConflict({ out } as ReconstructConfig)).toBeNull();
  });

  // (review C #11's gap: a run record of any version was resumed as this one's)
  it('a run.json of a newer layout is refused naming its version, and replaced under --force', async () => {
    const out = oldRun();
    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    writeFileSync(join(out, 'run.json'), JSON.stringify({ ...run, version: 2 }));
    expect(await runFolderConflict({ out } as ReconstructConfig)).toBe(
      `run folder ${out} holds a run whose ${join(out, 'run.json')} has version 2; this brainlatent reads run records of version 1 ` +
        '(the run was written by a newer brainlatent: upgrade brainlatent to resume it, or resume it with the one that wrote it); use another --out, or --force to replace them',
    );
    expect(await runFolderConflict({ out } as ReconstructConfig, { force: true })).toBeNull();
    // the current version is this run's or another config's as before
    writeFileSync(join(out, 'run.json'), JSON.stringify(run));
    expect(await runFolderConflict({ out } as ReconstructConfig)).toMatch(/holds another run's outputs/);
  });

  // (an older brainlatent took a newer one's stage for stale and redid it, replacing its results without a word; in a
  // batch whose workers run two versions each redid the other's)
  it('a stage a newer brainlatent made (a later recipe) is refused naming the stage, both recipes and its version; --force replaces it', async () => {
    const out = join(root, `run${n++}`);
    const cfg = { out } as ReconstructConfig;
    mkdirSync(join(out, 'stages'), { recursive: true });
    writeFileSync(join(out, 'run.json'), JSON.stringify({ format: 'brainlatent-run', version: 1, configHash: configHash(cfg), config: {}, versions: {} }));
    const marker = (stage: string, recipe: number, ranWith?: Record<string, string>) =>
      writeFileSync(join(out, 'stages', `${stage}.json`), JSON.stringify({ stage, configHash: configHash(cfg), recipe, outputs: [], ...(ranWith ? { ranWith } : {}) }));
    marker('extract', stageRecipe('extract'));
    marker('features', stageRecipe('features') + 1, { brainlatent: '9.1.0', node: 'v22' });
    const version = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')).version;
    expect(await runFolderConflict(cfg)).toBe(
      `run folder ${out} holds stages of this run that a newer brainlatent made (features: recipe ${stageRecipe('features') + 1}, by brainlatent 9.1.0; ` +
        `this one makes ${stageRecipe('features')}): this brainlatent (${version}) would redo them and replace their results; resume the run with ` +
        'brainlatent 9.1.0 or newer, or use another --out, or --force to replace them',
    );
    expect(await runFolderConflict(cfg, { force: true })).toBeNull();
    // a marker without its version (written before ranWith), in the caller's words
    marker('img2img', stageRecipe('img2img') + 3);
    expect(await runFolderConflict(cfg, { remedy: 'remove it from the batch' })).toMatch(
      /\(features: recipe \d+, by brainlatent 9\.1\.0; this one makes \d+; img2img: recipe \d+; this one makes \d+\): .* resume the run with brainlatent 9\.1\.0 or newer, or remove it from the batch$/,
    );
    // this version's recipes, an older one's (redone, as before), and another config's markers are no conflict
    marker('features', stageRecipe('features'));
    marker('img2img', 1);
    writeFileSync(join(out, 'stages', 'maps.json'), JSON.stringify({ stage: 'maps', configHash: 'another', recipe: 99, outputs: [] }));
    expect(await runFolderConflict(cfg)).toBeNull();
    // an img2img a newer brainlatent was interrupted in: its record of finished samples says its recipe
    const partial = join(out, 'stages', 'img2img.partial');
    mkdirSync(partial);
    const record = (recipe: number | undefined, hash = configHash(cfg)) =>
      writeFileSync(join(partial, 'all.json'), JSON.stringify({ key: 'k', done: [[0, 0]], configHash: hash, ...(recipe === undefined ? {} : { recipe, brainlatent: '9.2.0' }) }));
    record(stageRecipe('img2img') + 1);
    expect(await runFolderConflict(cfg)).toMatch(
      new RegExp(`\\(img2img \\(interrupted: all\\): recipe ${stageRecipe('img2img') + 1}, by brainlatent 9\\.2\\.0; this one makes ${stageRecipe('img2img')}\\): .* resume the run with brainlatent 9\\.2\\.0 or newer`),
    );
    // this recipe's, one written before records said theirs, and another config's: no conflict
    for (const [recipe, hash] of [[stageRecipe('img2img'), undefined], [undefined, undefined], [stageRecipe('img2img') + 1, 'another']] as const) {
      record(recipe, hash);
      expect(await runFolderConflict(cfg)).toBeNull();
    }
  });

  /**
   * What a batch's features job killed before it removed its uncached copy of a shared entry leaves (its time limit,
   * a SIGKILL, a crash): the copy whole, a second one half written by a writer of another host sharing the folder (not
   * removeStaleTemporaries' to judge), and a removal killed half way, moved aside; with a file of the user's of a
   * like name. --force listed all of them as files no run wrote, and kept them.
   */
  function killedFeaturesJob(): { out: string; left: string[]; mine: string[] } {
    const out = oldRun();
    const left = [
      '.shared-features-uncached/z-1a2b/data.npy',
      '.shared-features-uncached/z-1a2b/ids.npy',
      '.shared-features-uncached/z-1a2b/entry.json',
      '.shared-features-uncached/.c-3c4d.tmp-abcdef-4242-0badf00d/data.npy',
      '..shared-features-uncached.tmp-abcdef-4343-deadbeef/z-5e6f/data.npy',
    ];
    const mine = ['shared-features-uncached/notes.txt', '.shared-features-uncached.txt'];
    for (const f of [...left, ...mine]) {
      mkdirSync(dirname(join(out, f)), { recursive: true });
      writeFileSync(join(out, f), f);
    }
    return { out, left, mine };
  }

  it("a killed batch features job's uncached copy is the run's temporary: --force removes it and never names it a file of the user's", async () => {
    const { out, mine } = killedFeaturesJob();
    const plan = await clearingPlan(out);
    expect(plan).toMatch(
      /^--force: first removes the previous run's outputs in .* \(\.\.shared-features-uncached\.tmp-abcdef-4343-deadbeef, \.shared-features-uncached, images, metrics\.csv, metrics\.json, report\.html, run\.json, stages\); other files there stay \(2 no run wrote: \.shared-features-uncached\.txt, shared-features-uncached\/notes\.txt\)$/,
    );
    expect((await clearingFiles(out)).kept).toEqual([...mine].sort());
    await clearRunFolder(out);
    expect(filesUnder(out)).toEqual(['cache/subj01_x/manifest.json', ...mine, 'run.json'].sort());
    expect(readdirSync(out).filter((f) => f.includes('uncached')).sort()).toEqual(['.shared-features-uncached.txt', 'shared-features-uncached']);
  });

  it('the next run removes it when it takes the folder (whatever host left it), and nothing else', async () => {
    const { out, mine } = killedFeaturesJob();
    const lock = await lockRunFolder(out, 'next');
    expect(filesUnder(out)).toEqual(['cache/subj01_x/manifest.json', 'images/00001_org.png', 'metrics.csv', 'metrics.json', 'report.html', 'run.json', 'stages/evaluate.json', ...mine, LOCK_FILE].sort());
    await lock.release();
  });

  it("run.json's rewrite lock, left by a rewrite killed while it held it, is never named a file of the user's", async () => {
    const out = oldRun();
    writeFileSync(join(out, '.run.json.lock'), '{}');
    expect(await clearingPlan(out)).not.toMatch(/run\.json\.lock/);
    expect((await clearingFiles(out)).kept).toEqual([]);
  });

  it('a folder that never held a run keeps its files under --force', async () => {
    const out = join(root, 'mine');
    mkdirSync(out);
    writeFileSync(join(out, 'notes.txt'), 'keep me');
    await clearRunFolder(out);
    expect(readdirSync(out)).toEqual(['notes.txt']);
  });

  it('a second run in a locked folder is refused, naming the first', async () => {
    const out = oldRun();
    const lock = await lockRunFolder(out, 'brainlatent reconstruct --config a.json');
    await expect(lockRunFolder(out, 'second')).rejects.toThrow(LockedError);
    await expect(lockRunFolder(out, 'second')).rejects.toThrow(/in use by pid \d+ on .*brainlatent reconstruct --config a\.json/);
    await lock.release();
  });
});

describe('stage markers: the recipe of what a stage computes', () => {
  it('a marker of another recipe (or of none, written before recipes existed) is not done; the current one is', async () => {
    const out = join(root, 'recipes');
    mkdirSync(join(out, 'features'), { recursive: true });
    writeFileSync(join(out, 'features', 'z.npy'), 'z');
    const config = { out } as ReconstructConfig;
    // features' noise keying changed (recipe 2): its outputs from before would mix with new ones on a resume
    expect(stageRecipe('features')).toBe(2);
    expect(stageRecipe('extract')).toBe(1);
    await markStage(config, { stage: 'features', seconds: 1, outputs: ['features/z.npy'] });
    const marker = JSON.parse(readFileSync(join(out, 'stages', 'features.json'), 'utf8'));
    expect(marker.recipe).toBe(2);
    expect(await stageDone(config, 'features')).toBe(true);
    const { recipe: _, ...before } = marker;
    writeFileSync(join(out, 'stages', 'features.json'), JSON.stringify(before));
    expect(await stageDone(config, 'features')).toBe(false);
    writeFileSync(join(out, 'stages', 'features.json'), JSON.stringify({ ...marker, recipe: 1 }));
    expect(await stageDone(config, 'features')).toBe(false);
    // a stage at recipe 1 is done with a marker from before recipes existed
    await markStage(config, { stage: 'extract', seconds: 1, outputs: ['features/z.npy'] });
    const { recipe: __, ...extract } = JSON.parse(readFileSync(join(out, 'stages', 'extract.json'), 'utf8'));
    writeFileSync(join(out, 'stages', 'extract.json'), JSON.stringify(extract));
    expect(await stageDone(config, 'extract')).toBe(true);
  });
});
