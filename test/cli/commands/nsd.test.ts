import { spawn } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { registerNsdCommand } from '../../../ts/cli/commands/nsd.js';
import { registerSynthCommand } from '../../../ts/cli/commands/synth.js';
import { InvalidArgumentError } from '../../../ts/errors.js';
import { readNpy } from '../../../ts/io/npy.js';
import { betasPath } from '../../../ts/nsd/paths.js';
import { PreflightError } from '../../../ts/pipeline/errors.js';
import { synthNsd } from '../../../ts/synth/nsd.js';
import { runCommands } from '../../helpers/cli.js';
import { distModule } from '../../helpers/dist.js';
import { runCommand } from '../../helpers/nodeChild.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-cli-nsd-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const run = (...args: string[]): Promise<string> => runCommands([registerNsdCommand, registerSynthCommand], args);

describe('brainlatent synth nsd / nsd extract / nsd info / nsd image', () => {
  const root = join(tmp, 'nsd');
  const out = join(tmp, 'early');
  const cache = join(tmp, 'cache');

  it('synth nsd writes a tree that nsd info describes', async () => {
    const msg = await run('synth', 'nsd', '--out', root, '--sessions', '2', '--design-sessions', '3', '--trials', '30', '--shared', '5', '--grid', '16x20x12');
    expect(msg).toMatch(/wrote a miniature NSD .* 2 sessions × 30 trials, 30 images per subject \(5 shared\)/);
    const info = await run('nsd', 'info', '--root', root);
    expect(info).toMatch(/subject 1: betas \.nii\.gz sessions 1-2; \.hdf5 sessions 1-2/);
    expect(info).not.toMatch(/missing/i);
    expect(JSON.parse(await run('nsd', 'info', '--root', root, '--json')).subjects[0].rois).toContain('streams');
  });

  it('synth nsd names its flags in errors, before writing anything', async () => {
    const bad = join(tmp, 'not-written');
    for (const [flag, value, msg] of [
      ['--trials', '61', /^--design-sessions × --trials: expected a multiple of 3 \(each image is shown 3 times\), got 4 × 61$/],
      ['--shared', '500', /^--shared: expected an integer in 1\.\.79 \(fewer than the 80 images per subject\), got 500$/],
      ['--sessions', '9', /^--sessions: expected an integer in 1\.\.--design-sessions \(4\), got 9$/],
      ['--noise', '-1', /^--noise: expected a finite number >= 0, got -1$/],
    ] as const) {
      await expect(run('synth', 'nsd', '--out', bad, flag, value)).rejects.toThrow(msg);
    }
    expect(existsSync(bad)).toBe(false);
  });

  it('nsd extract writes the documented files, and reloads from the cache', async () => {
    const msg = await run('nsd', 'extract', '--root', root, '--subject', '1', '--roi', 'streams:early', '--sessions', '1-2', '--out', out, '--cache', cache);
    expect(msg).toMatch(/extracted in/);
    expect(msg).toMatch(/voxels, sessions 1-2\n/);
    const train = await readNpy(join(out, 'train_betas.npy'));
    const test = await readNpy(join(out, 'test_betas.npy'));
    const trainIds = await readNpy(join(out, 'train_image_ids.npy'));
    const testIds = await readNpy(join(out, 'test_image_ids.npy'));
    const voxels = await readNpy(join(out, 'voxels.npy'));
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect([train.dtype, test.dtype, trainIds.dtype, testIds.dtype, voxels.dtype]).toEqual(['float32', 'float32', 'int32', 'int32', 'int32']);
    expect(train.shape[0]).toBe(trainIds.shape[0]);
    expect(test.shape[0]).toBe(testIds.shape[0]);
    expect(voxels.shape).toEqual([train.shape[1], 3]);
    expect(manifest.options).toEqual({ zscore: 'none', averageTrain: false, averageTest: true, divisor: 300 });
    expect(manifest.counts.trainTrials).toBe(train.shape[0]);
    expect(new Set(testIds.data as ArrayLike<number> as Int32Array).size).toBe(test.shape[0]);
    const again = await run('nsd', 'extract', '--root', root, '--subject', '1', '--roi', 'streams:early', '--sessions', '1-2', '--out', join(tmp, 'again'), '--cache', cache);
    expect(again).toMatch(/loaded from cache/);
    expect(readFileSync(join(tmp, 'again', 'train_betas.npy'))).toEqual(readFileSync(join(out, 'train_betas.npy')));
  });

  it('options reach the library: --average-train --no-average-test --zscore train --no-cache', async () => {
    const dir = join(tmp, 'bd');
    await run('nsd', 'extract', '--root', root, '--subject', '1', '--roi', 'nsdgeneral', '--out', dir, '--average-train', '--no-average-test', '--zscore', 'train', '--format', 'nifti', '--no-cache');
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    expect(m.options).toEqual({ zscore: 'train', ddof: 1, averageTrain: true, averageTest: false, divisor: 300 });
    expect(m.inputs.betasFormat).toBe('nifti');
    expect(m.counts.testRows).toBe(m.counts.testTrials);
    expect(m.counts.trainRows).toBe(m.counts.trainImages);
  });

  it('errors name what is wrong', async () => {
    await expect(run('nsd', 'extract', '--root', root, '--subject', '1', '--roi', 'streams:early', '--sessions', '1-3', '--out', join(tmp, 'x'), '--no-cache')).rejects.toThrow(/session 3: betas file not found/);
    expect(existsSync(join(tmp, 'x'))).toBe(false);
    await expect(run('nsd', 'extract', '--root', root, '--subject', 'one', '--roi', 'nsdgeneral', '--out', join(tmp, 'x'))).rejects.toThrow("--subject: expected an integer >= 1, got 'one'");
    const flag = (...more: string[]) => run('nsd', 'extract', '--root', root, '--subject', '1', '--roi', 'nsdgeneral', '--out', join(tmp, 'x'), '--no-cache', ...more);
    await expect(flag('--zscore', 'sesion')).rejects.toThrow("--zscore: expected none, session, train, got 'sesion'");
    await expect(flag('--format', 'nii')).rejects.toThrow("--format: expected auto, nifti, hdf5, got 'nii'");
    await expect(flag('--divisor', 'x')).rejects.toThrow("--divisor: expected a number > 0, got 'x'");
    // (review C #7: accepted, and ddof dropped without a word)
    await expect(flag('--ddof', '0')).rejects.toThrow(
      new InvalidArgumentError('--ddof 0 has no use with --zscore none (the default): the betas are not z-scored; give --zscore train or session, or leave --ddof out'),
    );
    await expect(flag('--zscore', 'none', '--ddof', '1')).rejects.toThrow(
      new InvalidArgumentError('--ddof 1 has no use with --zscore none: the betas are not z-scored; give --zscore train or session, or leave --ddof out'),
    );
    await expect(run('nsd', 'extract', '--root', root, '--subject', '9', '--roi', 'nsdgeneral', '--out', join(tmp, 'x'))).rejects.toThrow("--subject: expected an NSD subject 1..8, got '9'");
    expect(existsSync(join(tmp, 'x'))).toBe(false);
  });

  it('every problem of the command line is listed at once: flags, --roi, --sessions, a mask on another grid', async () => {
    const bad = join(tmp, 'not-extracted');
    const e = await run('nsd', 'extract', '--root', root, '--subject', '1', '--roi', 'streams:bogus', '--sessions', '1-4', '--out', bad, '--zscore', 'sesion', '--no-cache').then(
      () => { throw new Error('expected a refusal'); },
      (x: unknown) => x as PreflightError,
    );
    expect(e).toBeInstanceOf(PreflightError);
    expect(e.message).toMatch(/^cannot start nsd extract:\n {2}- /);
    expect(e.problems).toHaveLength(3);
    expect(e.problems[0]).toBe("--zscore: expected none, session, train, got 'sesion'");
    expect(e.problems[1]).toMatch(/^--roi: region streams:bogus: no label "bogus" in streams; known labels: early, /);
    expect(e.problems[2]).toMatch(/^--sessions: subject 1 session 3: betas file not found .*; of the sessions asked for \(1-4\), 3-4 have no betas \(format 'auto'\); sessions with betas for subject 1: 1-2$/);
    // a mask file on another grid than the betas is named before any betas are read
    const { writeNifti } = await import('../../../ts/io/nifti.js');
    await writeNifti(join(tmp, 'small.nii.gz'), { dims: [5, 5, 5], datatype: 'int16' }, new Int16Array(125).fill(1));
    await expect(run('nsd', 'extract', '--root', root, '--subject', '1', '--roi', join(tmp, 'small.nii.gz'), '--out', bad, '--no-cache')).rejects.toThrow(
      // (HDF5 betas: with the dataset's shape, read as NSD's layout)
      /^--roi: the mask .*small\.nii\.gz is on a 5×5×5 grid but subject 1's betas \(.*betas_session01\.(hdf5, its dataset 'betas' of shape \(30, 12, 20, 16\) read as NSD's \(trials, Z, Y, X\)|nii\.gz)\) are on 16×20×12; expected a mask on the subject's grid$/,
    );
    expect(existsSync(bad)).toBe(false);
  });

  it('--sessions is parsed as a config\'s nsd.sessions is, and a problem alone has the list\'s form', async () => {
    const bad = join(tmp, 'not-extracted');
    const extract = (...more: string[]) => run('nsd', 'extract', '--root', root, '--roi', 'nsdgeneral', '--out', bad, '--no-cache', ...more);
    await expect(extract('--subject', '1', '--sessions', '3-1')).rejects.toThrow(
      new InvalidArgumentError('--sessions: range "3-1" runs backwards; a range goes from the lower session to the higher (1-3)'),
    );
    // the same words as the encode config's check of the same spec
    const { sessionSpecProblems } = await import('../../../ts/config/sessions.js');
    expect(sessionSpecProblems('3-1', '--sessions')).toEqual(['--sessions: range "3-1" runs backwards; a range goes from the lower session to the higher (1-3)']);
    const e = await extract('--subject', '1', '--sessions', '0,x', '--zscore', 'z').then(() => { throw new Error('expected a refusal'); }, (x: unknown) => x as PreflightError);
    expect(e.problems).toEqual([
      "--zscore: expected none, session, train, got 'z'",
      '--sessions: "0" (in "0,x"): sessions are numbered from 1; "x" (in "0,x") is not a session number or a range like 1-37',
    ]);
    expect(existsSync(bad)).toBe(false);
  });

  it('a --subject without betas in the root is named by --subject, with the subjects the root has, not blamed on --sessions', async () => {
    const bad = join(tmp, 'not-extracted');
    const said = `--subject: subject 2 has no betas in ${root} (format 'auto': looked for ${join(root, 'nsddata_betas/ppdata/subj02/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_session01.hdf5')} and the other sessions 1-37); the root has betas for subject 1`;
    for (const sessions of [[], ['--sessions', '1-2']]) {
      const e = await run('nsd', 'extract', '--root', root, '--subject', '2', '--roi', 'nsdgeneral', '--out', bad, '--no-cache', ...sessions).then(
        () => { throw new Error('expected a refusal'); },
        (x: unknown) => x as PreflightError,
      );
      // (its region is missing too: listed with it)
      expect(e.problems.filter((p) => !p.startsWith('--roi:'))).toEqual([said]);
    }
    expect(existsSync(bad)).toBe(false);
  });

  it('--format naming a format the root has no betas in is named by --format, with the betas of the other format and how to read them', async () => {
    const h5 = join(tmp, 'nsd-hdf5');
    await synthNsd({ out: h5, subjects: [1, 2], sessions: 2, designSessions: 3, trialsPerSession: 30, sharedImages: 5, grid: [16, 20, 12], imageSize: 8, formats: ['hdf5'] });
    const bad = join(tmp, 'not-extracted');
    const looked = join(h5, 'nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_session01.nii.gz');
    for (const sessions of [[], ['--sessions', '1-2']]) {
      await expect(run('nsd', 'extract', '--root', h5, '--subject', '1', '--roi', 'nsdgeneral', '--out', bad, '--no-cache', '--format', 'nifti', ...sessions)).rejects.toThrow(
        `--format: subject 1 has no betas in ${h5} (format 'nifti': looked for ${looked} and the other sessions 1-37); ` +
          "the root has .hdf5 betas for subject 1 (sessions 1-2) and subject 2 (sessions 1-2): format 'hdf5' reads them (or 'auto', either format)",
      );
    }
    expect(existsSync(bad)).toBe(false);
    expect(await run('nsd', 'extract', '--root', h5, '--subject', '1', '--roi', 'nsdgeneral', '--out', bad, '--no-cache', '--format', 'auto')).toMatch(/extracted in/);
  });

  it('a --out folder holding other files is refused before anything is extracted', async () => {
    const mine = join(tmp, 'mine');
    const freshCache = join(tmp, 'cache-untouched');
    mkdirSync(mine);
    writeFileSync(join(mine, 'notes.txt'), 'keep');
    await expect(run('nsd', 'extract', '--root', root, '--subject', '1', '--roi', 'nsdgeneral', '--out', mine, '--cache', freshCache)).rejects.toThrow(
      /mine exists and is not an NSD extraction folder \(it holds notes\.txt\)/,
    );
    expect(existsSync(freshCache)).toBe(false); // no extraction ran (it would have filled the cache)
    expect(readFileSync(join(mine, 'notes.txt'), 'utf8')).toBe('keep');
  });

  it('a --cache (or BRAINLATENT_CACHE) path that is a file is refused before anything is extracted, naming it', async () => {
    const file = join(tmp, 'Y.npy');
    writeFileSync(file, 'x');
    const out = join(tmp, 'exv');
    const extract = (...more: string[]) => run('nsd', 'extract', '--root', root, '--subject', '1', '--roi', 'streams:ventral', '--out', out, ...more);
    const progress = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const env = process.env.BRAINLATENT_CACHE;
    try {
      await expect(extract('--cache', file)).rejects.toThrow(`--cache ${file}: is an existing file; expected a folder for completed extractions (the cache)`);
      process.env.BRAINLATENT_CACHE = file;
      await expect(extract()).rejects.toThrow(
        `--cache (default from BRAINLATENT_CACHE) ${join(file, 'nsd')}: ${file} is a file, not a folder, so nothing can be written below it`,
      );
      expect(progress).not.toHaveBeenCalled(); // no extraction ran (it reports its progress on stderr)
    } finally {
      progress.mockRestore();
      if (env === undefined) delete process.env.BRAINLATENT_CACHE;
      else process.env.BRAINLATENT_CACHE = env;
    }
    expect(existsSync(out)).toBe(false);
  });

  it('a --cache that is --out, inside it or holding it is refused before anything is extracted (review s35-r5)', async () => {
    const out = join(tmp, 'exc');
    const extract = (cache: string) => run('nsd', 'extract', '--root', root, '--subject', '1', '--roi', 'nsdgeneral', '--out', out, '--cache', cache);
    await expect(extract(out)).rejects.toThrow(`--cache ${out}: is --out ${out}, which the extraction replaces whole; expected a cache folder apart from --out`);
    await expect(extract(join(out, 'c'))).rejects.toThrow(`--cache ${join(out, 'c')}: is inside --out ${out}, which the extraction replaces whole`);
    await expect(extract(tmp)).rejects.toThrow(`--cache ${tmp}: holds --out ${out}, which the extraction replaces whole`);
    expect(existsSync(out)).toBe(false);
  });

  it('nsd image refuses captions it cannot read when given --captions, before writing (they were passed over)', async () => {
    const png = join(tmp, 'capless.png');
    await expect(run('nsd', 'image', '--root', root, '--id', '3', '--out', png, '--captions', join(tmp, 'no-captions.csv'))).rejects.toThrow(/no-captions\.csv: file not found/);
    expect(existsSync(png)).toBe(false);
    await expect(run('nsd', 'image', '--root', root, '--id', '3', '--out', png, '--size', '')).rejects.toThrow(/--size/);
  });

  it('nsd info exits 1 for a root that is a file or holds no NSD design, saying why in one line after the report', async () => {
    const cli = (...args: string[]) => runCommand(process.execPath, [distModule('cli/main'), ...args]);
    const file = join(tmp, 'root-is-a-file');
    writeFileSync(file, 'x');
    const f = await cli('nsd', 'info', '--root', file);
    expect([f.status, f.stdout, f.stderr]).toEqual([1, '', `brainlatent: InvalidArgumentError: ${file} is a file; expected the NSD root folder (holding nsddata/, nsddata_betas/, …)\n`]);
    const other = join(tmp, 'not-nsd');
    mkdirSync(other);
    for (const json of [[], ['--json']]) {
      const r = await cli('nsd', 'info', '--root', other, ...json);
      expect(r.status).toBe(1);
      expect(r.stdout).toContain(json.length ? '"expdesign": false' : 'design (nsd_expdesign.mat): MISSING');
      expect(r.stderr).toBe(
        `brainlatent: MissingFileError: --root ${other}: no NSD design file (${join(other, 'nsddata/experiments/nsd/nsd_expdesign.mat')} not found); not an NSD root, or an incomplete download\n`,
      );
    }
    const ok = await cli('nsd', 'info', '--root', root);
    expect([ok.status, ok.stderr]).toEqual([0, '']);
  });

  it("the nsd commands take reconstruct's --nsd for --root; neither, or two different roots, is refused", async () => {
    const cli = (...args: string[]) => runCommand(process.execPath, [distModule('cli/main'), ...args]);
    const viaNsd = await cli('nsd', 'info', '--nsd', root);
    expect([viaNsd.status, viaNsd.stderr, viaNsd.stdout]).toEqual([0, '', (await cli('nsd', 'info', '--root', root)).stdout]);
    expect((await cli('nsd', 'info', '--root', root, '--nsd', root)).status).toBe(0);
    const none = await cli('nsd', 'info');
    expect([none.status, none.stderr]).toEqual([1, "brainlatent: error: required option '--root <dir>' not specified\n(add --help for usage)\n"]);
    const two = await cli('nsd', 'extract', '--root', root, '--nsd', tmp, '--subject', '1', '--roi', 'nsdgeneral', '--out', join(tmp, 'two'));
    expect([two.status, two.stderr.split('\n')[0]]).toEqual([1, `brainlatent: error: --root ${root} and --nsd ${tmp} name two NSD roots; give one (--nsd is another name for --root)`]);
    expect(existsSync(join(tmp, 'two'))).toBe(false);
    // --nsd alone gives the required --root; the help shows it under each nsd command (it was hidden)
    const image = await cli('nsd', 'image', '--nsd', root, '--id', '3');
    expect([image.status, image.stderr]).toEqual([1, "brainlatent: error: required option '--out <file>' not specified\n(add --help for usage)\n"]);
    for (const sub of ['extract', 'info', 'image']) {
      const help = (await cli('nsd', sub, '--help')).stdout;
      expect(help, sub).toMatch(/\n {2}--root <dir> +NSD root folder[^]*\(required\)\n {2}--nsd <dir> +the same as --root \(reconstruct's name for it\)\n/);
    }
  });

  it('nsd image writes a PNG of the stimulus and prints its captions', async () => {
    const png = join(tmp, 'img.png');
    const msg = await run('nsd', 'image', '--root', root, '--id', '3', '--size', '32', '--out', png);
    expect(msg).toMatch(/wrote .*img\.png \(32×32\)\n {2}a (small|large) /);
    const img = PNG.sync.read(readFileSync(png));
    expect([img.width, img.height]).toEqual([32, 32]);
    // 8-bit RGB (colour type 2), no alpha channel: IHDR's bit depth and colour type
    expect([...readFileSync(png).subarray(24, 26)]).toEqual([8, 2]);
    // a name without an extension gets .png; another extension is refused before anything is read
    expect(await run('nsd', 'image', '--root', root, '--id', '3', '--size', '32', '--out', join(tmp, 'img2'))).toMatch(/^wrote .*img2\.png \(32×32\)/);
    expect(readFileSync(join(tmp, 'img2.png'))).toEqual(readFileSync(png));
    await expect(run('nsd', 'image', '--root', root, '--id', '3', '--out', join(tmp, 'img0.jpg'))).rejects.toThrow(
      new InvalidArgumentError(`--out ${join(tmp, 'img0.jpg')}: nsd image writes PNG images; expected a .png name (or one without an extension: .png is added), got .jpg`),
    );
    expect(existsSync(join(tmp, 'img0.jpg'))).toBe(false);
  });
});

describe('brainlatent nsd extract: Ctrl-C', () => {
  it('stops the extraction, says so in a CancelledError line (exit 1, as the other long commands), and writes nothing', async () => {
    // 40 sessions (one synthesised, linked 39 times): a second or so of reading after the first progress line
    const root = join(tmp, 'nsd40');
    await synthNsd({ out: root, sessions: 1, designSessions: 40, trialsPerSession: 30, sharedImages: 5, grid: [32, 32, 24], imageSize: 8, formats: ['nifti'] });
    for (let s = 2; s <= 40; s++) linkSync(betasPath(root, 1, 1, 'nifti'), betasPath(root, 1, s, 'nifti'));
    const out = join(tmp, 'sigint-out');
    const cache = join(tmp, 'sigint-cache');
    const child = spawn(process.execPath, [
      distModule('cli/main'), 'nsd', 'extract', '--root', root, '--subject', '1', '--roi', 'nsdgeneral', '--sessions', '1-40', '--out', out, '--cache', cache,
    ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let stderr = '';
    let stdout = '';
    let sent = false;
    child.stdout.on('data', (d: Buffer) => void (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!sent && /nsd extract: +\d+% · 1\/40 sessions/.test(stderr)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((done) => child.on('close', (c) => done(c)));
    expect(sent).toBe(true);
    expect(code).toBe(1);
    expect(stderr).toMatch(new RegExp(`brainlatent: CancelledError: nsd extract: interrupted \\(SIGINT\\) after [\\d.]+ m?s; nothing written to ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} nor to the cache\n$`));
    expect(stdout).toBe('');
    expect(existsSync(out)).toBe(false);
    expect(existsSync(cache) ? readdirSync(cache) : []).toEqual([]);
    expect(readdirSync(tmp).filter((n) => n.startsWith('sigint') || n.startsWith('.sigint'))).toEqual([]);
  }, 180_000);
});
