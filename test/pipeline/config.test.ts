import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { resolveEncodeConfig } from '../../ts/config/encode.js';
import { RidgeFitConfigSchema } from '../../ts/config/ridgeFit.js';
import { checkConfig } from '../../ts/config/validate.js';
import { configHash, DEFAULTS, resolveConfig } from '../../ts/pipeline/config.js';
import { ConfigError, PreflightError } from '../../ts/pipeline/errors.js';
import { reconstruct } from '../../ts/pipeline/reconstruct.js';
import { largestTrainFolds, trainFoldsProblem } from '../../ts/pipeline/trainFolds.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import { synthNsd } from '../../ts/synth/nsd.js';
import { readNsdDesign } from '../../ts/nsd/expdesign.js';
import { tempDir } from '../helpers/tempDir.js';

describe('config validation', () => {
  it('fills in the defaults of the method', () => {
    const c = resolveConfig({ out: '/tmp/x', nsd: { root: '/data/nsd', subject: 1 }, model: { dir: '/m' } });
    expect(c.img2img).toMatchObject({ strength: 0.8, steps: 50, guidance: 5, seeds: 5, size: 512 });
    expect(c.features.zSize).toBe(320);
    expect(c.decoders.z.roi).toBe('streams:early');
    expect(c.decoders.c.roi).toBe('streams:ventral');
    expect(c.decoders.z.fitIntercept).toBe(true);
  });

  it('lists every problem at once: unknown keys, wrong types, out of range, missing', () => {
    let err: ConfigError | undefined;
    try {
      resolveConfig({ out: 3, nsd: { root: '/d', subject: 9, colour: 'red' }, img2img: { strength: 1.5, steps: 'fifty' }, extra: true });
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const p = err!.problems.join('\n');
    expect(p).toMatch(/config\.out: expected a path, got number 3/);
    expect(p).toMatch(/config\.nsd\.subject: expected an integer from 1 to 8, got number 9/);
    expect(p).toMatch(/config\.nsd\.colour: unknown key/);
    expect(p).toMatch(/config\.img2img\.strength: expected a number in \(0, 1\]/);
    expect(p).toMatch(/config\.img2img\.steps: expected an integer/);
    expect(p).toMatch(/config\.extra: unknown key/);
    expect(p).toMatch(/config\.model: required/);
    expect(err!.problems.length).toBe(7);
  });

  it('nsd.sessions takes the forms of the encode config and extractNsd (a spec string, a list, null), checked alike by both', () => {
    const recon = (sessions: unknown) => () => resolveConfig({ out: 'o', nsd: { root: 'r', subject: 1, sessions }, model: { dir: 'm' } }, 'run.json');
    const enc = (sessions: unknown) => () => resolveEncodeConfig({ out: 'o', nsd: { root: 'r', subject: 1, sessions }, model: 'm', featureSets: [{ name: 'z', kind: 'z' }] }, 'run.json');
    // a list was refused: "expected a non-empty string or null, got an array of 3"
    for (const ok of [[1, 2, 3], [7], '1-3', '1-10,12', null]) {
      expect(recon(ok)().nsd.sessions).toEqual(ok);
      expect(enc(ok)().nsd.sessions).toEqual(ok);
    }
    for (const [bad, problem] of [
      [[], 'run.json: nsd.sessions: expected a non-empty string or an array of at least 1 item, each an integer from 1 to 999, or null, got an array of 0'],
      [[1, 0], 'run.json: nsd.sessions[1]: expected an integer from 1 to 999, got number 0'],
      [['1'], 'run.json: nsd.sessions[0]: expected an integer from 1 to 999, got the string "1"'],
      [true, 'run.json: nsd.sessions: expected a non-empty string or an array of at least 1 item, each an integer from 1 to 999, or null, got boolean true'],
      ['3-1', 'run.json: nsd.sessions: range "3-1" runs backwards; a range goes from the lower session to the higher (1-3)'],
    ] as const) {
      for (const make of [recon, enc]) {
        let err: ConfigError | undefined;
        try {
          make(bad)();
        } catch (e) {
          err = e as ConfigError;
        }
        expect(err?.problems, JSON.stringify(bad)).toEqual([problem]);
      }
    }
  });

  it('a null, array or missing config is one clear problem, not a crash', () => {
    for (const [input, got] of [[null, 'null'], [[1], 'an array of 1'], [undefined, 'nothing'], ['run.json', 'the string "run.json"']] as const) {
      expect(() => resolveConfig(input, 'run.json')).toThrow(`run.json is not a valid reconstruction config (1 problem):\n  - run.json: expected an object, got ${got}`);
    }
  });

  it('names unknown keys and misspelt values with the closest known one', () => {
    let err: ConfigError | undefined;
    try {
      resolveConfig({ out: 'o', nsd: { root: 'r', subject: 1, sesions: '1-3' }, model: { dir: 'm' }, img2img: { scheduler: 'dim' }, decoders: { z: { score: 'Pearson' } } }, 'dir/run.json');
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err!.problems).toEqual([
      'dir/run.json: nsd.sesions: unknown key (did you mean "sessions"?); known: root, subject, sessions, format, cacheDir, captions, testImages',
      'dir/run.json: decoders.z.score: expected "r2" or "pearson", got the string "Pearson" (did you mean "pearson"?)',
      'dir/run.json: img2img.scheduler: expected "ddim", "pndm", "ddpm", "lms", "euler", "euler-ancestral", "heun", "dpmpp2m", "dpmpp2m-sde", or "unipc", got the string "dim" (did you mean "ddim"?)',
    ]);
  });

  it("refuses a feature network's std that is not > 0 up front (FeatureNetwork.open refused it at the evaluate stage, after the fits)", () => {
    let err: ConfigError | undefined;
    try {
      resolveConfig({ out: 'o', nsd: { root: 'r', subject: 1 }, model: { dir: 'm' }, evaluation: { networks: [{ name: 'a', path: 'p', inputSize: 224, metric: 'identification', std: [0.2, 0, 0.2] }] } }, 'run.json');
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err!.problems).toEqual(['run.json: evaluation.networks[0].std[1]: expected a number > 0, got number 0']);
  });

  it("takes a decoder's memoryBudget as a whole number of bytes, as RidgeCV does (a fraction of a byte was floored)", () => {
    let err: ConfigError | undefined;
    try {
      resolveConfig({ out: 'o', nsd: { root: 'r', subject: 1 }, model: { dir: 'm' }, decoders: { z: { memoryBudget: 0.5 }, c: { memoryBudget: 2 ** 30 } } }, 'run.json');
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err!.problems).toEqual(['run.json: decoders.z.memoryBudget: expected an integer from 1 to 1125899906842624, got number 0.5']);
  });

  it('checks nested values: nullable fields, lists, multiples of 8, alpha grids', () => {
    let err: ConfigError | undefined;
    try {
      resolveConfig({
        out: 'o',
        nsd: { root: 'r', subject: 1, cacheDir: 5, testImages: 1 },
        model: { dir: 'm' },
        features: { zSize: 100 },
        decoders: { z: { alphas: '1:0:3' }, c: { alphas: [] } },
        evaluation: { networks: [{ name: 'a', path: 'p', inputSize: 224, metric: 'identification', mean: [0.5, 0.5] }, 7] },
      });
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err!.problems).toEqual([
      'config.nsd.cacheDir: expected a path or null, got number 5',
      'config.nsd.testImages: expected an integer >= 2 or null, got number 1',
      'config.features.zSize: expected an integer from 8 to 4096, a multiple of 8, got number 100',
      'config.decoders.c.alphas: expected a string "start:stop:count" (log-spaced, e.g. "1e1:1e7:10") or "a,b,c", or an array of at least 1 item, each a number > 0, got an array of 0',
      'config.evaluation.networks[0].mean: expected an array of 3 items, each a number, got an array of 2',
      'config.evaluation.networks[1]: expected an object, got number 7',
      'config.decoders.z.alphas: expected finite log-spaced bounds > 0, got 1:0',
    ]);
  });

  it("refuses feature networks of one name or a built-in metric's, and an evaluation.size below SSIM's window, before any stage (review s35-r4)", () => {
    const net = (name: string, metric = 'identification') => ({ name, path: 'n.onnx', inputSize: 224, metric });
    let err: ConfigError | undefined;
    try {
      resolveConfig({ out: 'o', nsd: { root: 'r', subject: 1 }, model: { dir: 'm' }, evaluation: { size: 10, networks: [net('AlexNet(2)'), net('AlexNet(2)', 'distance'), net('SSIM'), net('CLIP')] } }, 'run.json');
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err!.problems).toEqual([
      "run.json: evaluation.size: expected an integer from 11 to 4096, got number 10",
      "run.json: evaluation.networks[1].name: network name 'AlexNet(2)' is used twice (also by evaluation.networks[0]); each names its metric's column",
      "run.json: evaluation.networks[2].name: 'SSIM' is the name of a metric every run computes; name the network otherwise",
    ]);
    expect(resolveConfig({ out: 'o', nsd: { root: 'r', subject: 1 }, model: { dir: 'm' }, evaluation: { size: 11, networks: [net('AlexNet(2)'), net('CLIP')] } }).evaluation.size).toBe(11);
  });

  it("lists what only DDIM defines (eta, the compvis rule) against the scheduler, before any stage runs", () => {
    const base = { out: 'o', nsd: { root: 'r', subject: 1 }, model: { dir: 'm' } };
    const problems = (img2img: object) => {
      try {
        resolveConfig({ ...base, img2img });
        return [];
      } catch (e) {
        return (e as ConfigError).problems;
      }
    };
    // the default rule is compvis (TN's): a scheduler other than ddim needs rule 'diffusers'
    expect(problems({ scheduler: 'euler' })).toEqual(['config.img2img.rule: the compvis img2img rule is defined for the ddim scheduler only, not euler (img2img.scheduler)']);
    expect(problems({ scheduler: 'euler', rule: 'diffusers', eta: 0.5 })).toEqual(['config.img2img.eta: eta > 0 is defined for the ddim scheduler only, not euler (img2img.scheduler)']);
    expect(problems({ strength: 1, steps: 10 })).toEqual([
      'config.img2img.rule: the compvis img2img rule needs strength·steps < steps (it noises one step above the first, past the schedule here); got img2img.strength 1 with img2img.steps 10',
    ]);
    // a batch manifest's analysis: the file named once, in the label (it was repeated before each field cited:
    // 'got lab3.json: analyses[0].config.img2img.strength 1 with lab3.json: analyses[0].config.img2img.steps 1000')
    let inFile: string[] = [];
    try {
      resolveConfig({ ...base, img2img: { strength: 1, steps: 1000 } }, 'lab3.json: analyses[0].config');
    } catch (e) {
      inFile = (e as ConfigError).problems;
    }
    expect(inFile).toEqual([
      'lab3.json: analyses[0].config.img2img.rule: the compvis img2img rule needs strength·steps < steps (it noises one step above the first, past the schedule here); got img2img.strength 1 with img2img.steps 1000',
    ]);
    expect(problems({ scheduler: 'euler', rule: 'diffusers' })).toEqual([]);
    expect(problems({ eta: 0.5 })).toEqual([]);
  });

  it("refuses an img2img.seed whose last sample's seed (seed + seeds − 1) is above 2^53 − 1, not only when the img2img stage runs", () => {
    const base = { out: 'o', nsd: { root: 'r', subject: 1 }, model: { dir: 'm' } };
    const problems = (img2img: object) => {
      try {
        resolveConfig({ ...base, img2img }, 'run.json');
        return [];
      } catch (e) {
        return (e as ConfigError).problems;
      }
    };
    const max = Number.MAX_SAFE_INTEGER;
    expect(problems({ seed: max - 1, seeds: 5 })).toEqual([
      `run.json: img2img.seed: sample k is seeded img2img.seed + k, so the last of img2img.seeds 5 has seed ${max - 1} + 4, above the largest seed ${max}; expected img2img.seed at most ${max - 4} with 5 seeds`,
    ]);
    // (the default 5 seeds)
    expect(problems({ seed: max })).toHaveLength(1);
    expect(problems({ seed: max - 4, seeds: 5 })).toEqual([]);
    expect(problems({ seed: max, seeds: 1 })).toEqual([]);
    // a seed out of range itself is the schema's one problem
    expect(problems({ seed: max + 1 })).toEqual([`run.json: img2img.seed: expected an integer from 0 to ${max}, got number ${max + 1}`]);
  });

  it('refuses an img2img.batchSize above 2^31 - 1, the bound Diffusion.img2img takes, before any stage runs', () => {
    const base = { out: 'o', nsd: { root: 'r', subject: 1 }, model: { dir: 'm' } };
    let err: ConfigError | undefined;
    try {
      resolveConfig({ ...base, img2img: { batchSize: 2 ** 31 } }, 'run.json');
    } catch (e) {
      err = e as ConfigError;
    }
    // (it passed, and the img2img stage refused it after extraction and the fits)
    expect(err?.problems).toEqual(['run.json: img2img.batchSize: expected an integer from 1 to 2147483647, got number 2147483648']);
    expect(resolveConfig({ ...base, img2img: { batchSize: 2 ** 31 - 1 } }).img2img.batchSize).toBe(2 ** 31 - 1);
  });

  it("bounds features.batchSize at 4096 images per VAE call, as encode's featureBatch (one batch of every image ran out of memory at the features stage)", () => {
    const base = { out: 'o', nsd: { root: 'r', subject: 1 }, model: { dir: 'm' } };
    expect(() => resolveConfig({ ...base, features: { batchSize: 4097 } }, 'run.json')).toThrow('run.json: features.batchSize: expected an integer from 1 to 4096, got number 4097');
    expect(resolveConfig({ ...base, features: { batchSize: 4096 } }).features.batchSize).toBe(4096);
  });

  it("bounds the decoders' folds, and the ridge-fit job's, at RidgeCV's 2^20", () => {
    const base = { out: 'o', nsd: { root: 'r', subject: 1 }, model: { dir: 'm' } };
    expect(() => resolveConfig({ ...base, decoders: { c: { folds: 2 ** 20 + 1 } } }, 'run.json')).toThrow('run.json: decoders.c.folds: expected an integer from 2 to 1048576, got number 1048577');
    expect(resolveConfig({ ...base, decoders: { c: { folds: 2 ** 20 } } }).decoders.c.folds).toBe(2 ** 20);
    const fit = (folds: number) => checkConfig(RidgeFitConfigSchema, { out: 'o', x: 'x.npy', y: 'y.npy', folds }, 'body.config').problems;
    expect(fit(2 ** 20 + 1)).toEqual(['body.config.folds: expected an integer from 2 to 1048576, got number 1048577']);
    expect(fit(2 ** 20)).toEqual([]);
  });

  it('parses alpha grids, leaves its input untouched and is idempotent', () => {
    const input = { out: 'o', nsd: { root: 'r', subject: 2 }, model: { dir: 'm' }, decoders: { z: { alphas: '1e-2:1e2:5' } } };
    const frozen = JSON.parse(JSON.stringify(input));
    const c = resolveConfig(input);
    expect(input).toEqual(frozen);
    expect(c.decoders.z.alphas.map((a) => Number(a.toPrecision(6)))).toEqual([0.01, 0.1, 1, 10, 100]);
    expect(c.decoders.c.alphas).toEqual(DEFAULTS.decoders.c.alphas);
    expect(resolveConfig(c)).toEqual(c);
    expect(configHash(resolveConfig(c))).toBe(configHash(c));
  });
});

describe('bad input is caught before any long work', () => {
  it('names a missing model folder and data root together', async () => {
    const out = tempDir('bl-bad-');
    await expect(reconstruct({ out, nsd: { root: join(out, 'no-nsd'), subject: 1 }, model: { dir: join(out, 'no-model') } })).rejects.toThrow(
      /model folder .*no-model does not exist[\s\S]*NSD root .*no-nsd does not exist/,
    );
  });

  it("a decoder's memoryBudget below its fit's fixed part is refused before any work, naming the numbers; the budget it names shows its plan in --dry-run", async () => {
    const dir = tempDir('bl-budget-');
    const root = join(dir, 'nsd');
    await synthNsd({ out: root, formats: ['hdf5'], trialsPerSession: 30 });
    const model = join(dir, 'model');
    await writeSdFixture(model);
    const out = join(dir, 'run');
    const config = (memoryBudget: number) => ({ out, nsd: { root, subject: 1 }, model: { dir: model }, decoders: { z: { memoryBudget } } });
    let err: PreflightError | undefined;
    await reconstruct(config(200_000)).catch((e: unknown) => (err = e as PreflightError));
    expect(err).toBeInstanceOf(PreflightError);
    expect(err!.problems).toEqual([
      expect.stringMatching(
        /^the z decoder \(decoders\.z\) needs at least \S+ GiB of work buffers \(route (exact|per-fold)-(kernel|primal), [\d,]+ samples × [\d,]+ features → [\d,]+ z features: X's prepared copy \S+ GiB, the route's Grams and decompositions \S+ GiB, \S+ GiB fixed in all, plus \S+ \S+ per z feature\); decoders\.z\.memoryBudget is 200000 bytes \(\S+ GiB\): raise it to at least \d+ bytes \(\S+ GiB, batches of 64 z features\), or leave it out/,
      ),
    ]);
    // refused before the extraction: nothing written
    expect(existsSync(join(out, 'data'))).toBe(false);
    const enough = Number(/raise it to at least (\d+) bytes/.exec(err!.problems[0])![1]);
    const dry = await reconstruct(config(enough), { dryRun: true });
    const lines = dry.plan!.filter((l) => l.startsWith('  the '));
    expect(lines).toEqual([
      expect.stringMatching(new RegExp(`^ {2}the z decoder \\(decoders\\.z\\): route \\S+, [\\d,]+ samples × [\\d,]+ features → [\\d,]+ z features; work buffers planned at most \\S+ GiB of a \\S+ GiB budget \\(fixed \\S+ GiB \\+ \\S+ GiB per batch\\), [\\d,]+ target batch(es)? of (6[4-9]|[7-9]\\d|\\d{3,})`)),
      expect.stringMatching(/^ {2}the c decoder \(decoders\.c\): route \S+, .* work buffers planned at most \S+ GiB of a \S+ GiB budget/),
    ]);
  });

  it("a decoder's folds more than its training rows hold are refused before any work, naming decoders.<t>.folds (it was RidgeCV's bare message)", async () => {
    const dir = tempDir('bl-folds-');
    const root = join(dir, 'nsd');
    await synthNsd({ out: root, formats: ['hdf5'], trialsPerSession: 30 });
    const model = join(dir, 'model');
    await writeSdFixture(model);
    const out = join(dir, 'run');
    let err: PreflightError | undefined;
    await reconstruct({ out, nsd: { root, subject: 1 }, model: { dir: model }, decoders: { z: { folds: 100_000 }, c: { folds: 100_000, averageTrain: true } } }).catch(
      (e: unknown) => (err = e as PreflightError),
    );
    expect(err).toBeInstanceOf(PreflightError);
    expect(err!.problems).toEqual([
      expect.stringMatching(/^decoders\.z\.folds: [\d,]+ training rows of \d+ images: 100000 folds but only \d+ samples; set decoders\.z\.folds to \d+ \(the most these rows hold\)$/),
      expect.stringMatching(/^decoders\.c\.folds: [\d,]+ training rows \(one per image\): 100000 folds but only \d+ samples; set decoders\.c\.folds to \d+ \(the most these rows hold\)$/),
    ]);
    expect(existsSync(join(out, 'data'))).toBe(false);
  });

  it('largestTrainFolds: the most folds below the count asked for that the rows hold, whole images of 2 rows at least each', () => {
    const ids = (...v: number[]) => Int32Array.from(v);
    // 2 images of 3 rows: 2 folds; 4 images of 2 rows: 4; below the count asked for
    expect(largestTrainFolds(5, ids(1, 1, 1, 2, 2, 2))).toBe(2);
    expect(largestTrainFolds(5, ids(1, 1, 2, 2, 3, 3, 4, 4))).toBe(4);
    expect(largestTrainFolds(3, ids(1, 1, 2, 2, 3, 3, 4, 4))).toBe(2);
    // one row per image: 2 a fold at least (5 rows: 2 folds)
    expect(largestTrainFolds(5, ids(1, 2, 3, 4, 5))).toBe(2);
    // not even 2 folds of 2 rows
    expect(largestTrainFolds(5, ids(1, 2))).toBeNull();
    expect(largestTrainFolds(5, ids(1, 1, 1))).toBeNull();
    // the library's words: the field, the reason, the count to set
    expect(trainFoldsProblem('decoders.z.folds', 5, ids(1, 1, 1, 2, 2, 2), false)).toBe(
      'decoders.z.folds: 6 training rows of 2 images: 2 images cannot fill 5 folds (an image never straddles folds); set decoders.z.folds to 2 (the most these rows hold)',
    );
    expect(trainFoldsProblem('decoders.z.folds', 2, ids(1, 1, 1, 2, 2, 2), false)).toBeNull();
  });

  it('regions with no voxels, test images without captions, and a run folder holding another run', async () => {
    const dir = tempDir('bl-bad-');
    const root = join(dir, 'nsd');
    await synthNsd({ out: root, formats: ['hdf5'], trialsPerSession: 30 });
    const model = join(dir, 'model');
    await writeSdFixture(model);
    const captions = join(dir, 'captions.json');
    writeFileSync(captions, JSON.stringify({ '1': 'a caption for image 1 only' }));
    const out = join(dir, 'run');
    const base = { out, nsd: { root, subject: 1 }, model: { dir: model } };
    let err: PreflightError | undefined;
    try {
      await reconstruct({ ...base, nsd: { root, subject: 1, captions }, decoders: { z: { roi: 'streams:9' } } });
    } catch (e) {
      err = e as PreflightError;
    }
    expect(err).toBeInstanceOf(PreflightError);
    const p = err!.problems.join('\n');
    expect(p).toMatch(/decoders\.z\.roi .streams:9.:/);
    expect(p).toMatch(/image\(s\) \(\d+ test, \d+ training\) have no captions/);
    // training images too, before the extraction (the features stage found them after it)
    const design = await readNsdDesign(root);
    const testCaptions = join(dir, 'test-captions.json');
    writeFileSync(testCaptions, JSON.stringify(Object.fromEntries(Array.from(design.sharedix, (id) => [String(id), 'a caption']))));
    const onlyTest = await reconstruct({ ...base, nsd: { root, subject: 1, captions: testCaptions } }).catch((e: PreflightError) => e);
    expect(onlyTest).toBeInstanceOf(PreflightError);
    expect((onlyTest as PreflightError).problems.join('\n')).toMatch(/^\d+ training image\(s\) have no captions in /m);
    // another run's folder
    writeFileSync(join(dir, 'placeholder'), '');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'run.json'), JSON.stringify({ format: 'brainlatent-run', version: 1, configHash: 'someoneelse', config: {}, versions: {}, createdAt: '' }));
    // only its run.json (a run that failed before writing anything): not in the way, the new run takes the folder over
    const takeover = await reconstruct(base, { dryRun: true });
    expect(takeover.plan!.join('\n')).toMatch(/run  extract/);
    mkdirSync(join(out, 'data'));
    writeFileSync(join(out, 'data', 'image_ids.json'), '{}');
    await expect(reconstruct(base, { dryRun: false })).rejects.toThrow(/holds another run's outputs \(data; config someoneelse, this config [0-9a-f]+\)/);
    // a dry run answers as the run would (refused); with --force it says what would go first and what would run
    await expect(reconstruct(base, { dryRun: true })).rejects.toThrow(/holds another run's outputs/);
    const dry = await reconstruct(base, { dryRun: true, force: true });
    expect(dry.plan!.join('\n')).toMatch(/run  img2img/);
    expect(dry.plan!.join('\n')).toMatch(/--force: first removes the previous run's outputs in .* \(data, run\.json\); other files there stay/);
  });
});
