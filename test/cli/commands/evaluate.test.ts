/**
 * brainlatent evaluate: the metrics of folders of reconstructions against a folder of the images seen, paired by
 * file name — the library's values, the sets' mean as reconstruct's final, the files written; what it refuses.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { registerEvaluateCommand } from '../../../ts/cli/commands/evaluate.js';
import { ConfigError } from '../../../ts/config/errors.js';
import { featureNetworkModel } from '../../../ts/demo/models.js';
import { averageMetrics, evaluateReconstructions } from '../../../ts/eval/evaluate.js';
import { InvalidArgumentError, MissingFileError } from '../../../ts/errors.js';
import { readPngsAt } from '../../../ts/io/pngReads.js';
import { writePng } from '../../../ts/sd/png.js';
import { runCommands } from '../../helpers/cli.js';
import { tempDir } from '../../helpers/tempDir.js';

const NAMES = ['a.png', 'b.png', 'c.png', 'd.png', 'e.png', 'f.png'];

/** A folder of PNGs (32 px): image i's pixels a smooth pattern of i, plus `noise` of seed `seed`. */
async function folder(dir: string, noise: number, seed: number, names = NAMES): Promise<string> {
  mkdirSync(dir, { recursive: true });
  let s = seed;
  for (const [i, name] of names.entries()) {
    const data = new Uint8Array(32 * 32 * 3);
    for (let p = 0; p < data.length; p++) {
      s = (s * 1664525 + 1013904223) >>> 0;
      const x = Math.floor(p / 3) % 32, y = Math.floor(p / 96);
      data[p] = Math.max(0, Math.min(255, 128 + 100 * Math.sin((x * (i + 1) + y * (p % 3)) / 5) + noise * ((s >>> 24) - 128) / 128));
    }
    await writePng(join(dir, name), { data, count: 1, height: 32, width: 32 });
  }
  return dir;
}

const run = (args: string[]) => runCommands([registerEvaluateCommand], ['evaluate', ...args]);

describe('brainlatent evaluate', () => {
  it("gives the library's metrics of each set, their mean as reconstruct's final, and writes them", async () => {
    const dir = tempDir('bl-evaluate-cli-');
    const truth = await folder(join(dir, 'truth'), 0, 1);
    const seeds = [await folder(join(dir, 'seed0'), 60, 2), await folder(join(dir, 'seed1'), 90, 3)];
    mkdirSync(join(dir, 'nets'));
    writeFileSync(join(dir, 'nets', 'demo.onnx'), featureNetworkModel());
    writeFileSync(join(dir, 'nets', 'nets.json'), JSON.stringify([{ name: 'Demo(2WI)', path: 'demo.onnx', inputSize: 16, metric: 'identification' }]));
    const printed = await run(['--truth', truth, '--reconstructions', ...seeds, '--size', '24', '--networks', join(dir, 'nets', 'nets.json'), '--out', join(dir, 'out')]);
    // the library's values, each set read at --size
    const networks = [{ name: 'Demo(2WI)', path: join(dir, 'nets', 'demo.onnx'), inputSize: 16, metric: 'identification' as const }];
    const gt = await readPngsAt(NAMES.map((n) => join(truth, n)), 24);
    const expected = [];
    for (const s of seeds) expected.push((await evaluateReconstructions(gt, await readPngsAt(NAMES.map((n) => join(s, n)), 24), { size: 24, networks })).metrics);
    const mean = averageMetrics(expected);
    const json = JSON.parse(readFileSync(join(dir, 'out', 'metrics.json'), 'utf8'));
    expect(json.images).toBe(6);
    expect(json.files).toEqual(NAMES);
    expect(json.sets.map((s: { label: string }) => s.label)).toEqual(['seed0', 'seed1', 'mean of 2 sets']);
    for (const [i, metrics] of [...expected, mean].entries()) {
      expect(json.sets[i].metrics).toEqual(Object.fromEntries(metrics.map((m) => [m.name, m.value])));
      expect(json.sets[i].perImage.PixCorr).toEqual(Array.from(metrics[0].perImage));
    }
    expect(Object.keys(json.sets[0].metrics)).toEqual(['PixCorr', 'SSIM', 'Pixels(2WI)', 'Demo(2WI)']);
    // (the noisier seed reconstructs less well)
    expect(json.sets[0].metrics.PixCorr).toBeGreaterThan(json.sets[1].metrics.PixCorr);
    expect(printed).toMatch(/^method\s+PixCorr/m);
    expect(printed).toMatch(/^mean of 2 sets\s+0\.\d{3}/m);
    const csv = readFileSync(join(dir, 'out', 'metrics.csv'), 'utf8').split('\n');
    // (the published methods' columns after ours: their rows follow)
    expect(csv[0]).toMatch(/^method,source,PixCorr,SSIM,Pixels\(2WI\),Demo\(2WI\),AlexNet\(2\),/);
    expect(csv.some((l) => /^Brain-Diffuser,/.test(l))).toBe(true);
    expect(csv[1]).toMatch(/^seed0,6 images,0\.\d+,/);
    const perImage = readFileSync(join(dir, 'out', 'metrics_per_image.csv'), 'utf8').trim().split('\n');
    expect(perImage).toHaveLength(7);
    expect(perImage[0].split(',').slice(0, 3)).toEqual(['file', 'seed0:PixCorr', 'seed0:SSIM']);
    expect(perImage[1].split(',')[1]).toBe(String(expected[0][0].perImage[0]));
  });

  it('refuses what it cannot pair or read, naming the flag, the folder and the files', async () => {
    const dir = tempDir('bl-evaluate-cli-bad-');
    const truth = await folder(join(dir, 'truth'), 0, 1, NAMES.slice(0, 4));
    const ok = await folder(join(dir, 'ok'), 50, 2, NAMES.slice(0, 4));
    const more = await folder(join(dir, 'more'), 50, 3);
    const fewer = await folder(join(dir, 'fewer'), 50, 4, NAMES.slice(0, 3));
    mkdirSync(join(dir, 'empty'));
    await expect(run(['--truth', truth, '--reconstructions', more])).rejects.toThrow(new MissingFileError(`--truth ${truth}: no image seen for the reconstructions e.png, f.png (2 of 6) of ${more}`));
    await expect(run(['--truth', truth, '--reconstructions', ok, fewer])).rejects.toThrow(
      new InvalidArgumentError(`--reconstructions: ${fewer} and ${ok} hold different images: d.png (1 of 4); every set must hold the same file names`),
    );
    await expect(run(['--truth', truth, '--reconstructions', join(dir, 'empty')])).rejects.toThrow(new MissingFileError(`--reconstructions ${join(dir, 'empty')}: no PNG files`));
    await expect(run(['--truth', join(dir, 'nowhere'), '--reconstructions', ok])).rejects.toThrow(new MissingFileError(`--truth ${join(dir, 'nowhere')}: no such folder`));
    await expect(run(['--truth', truth, '--reconstructions', ok, '--size', '5'])).rejects.toThrow(new InvalidArgumentError('--size: expected an integer from 11 to 4096, got 5'));
    await expect(run(['--truth', truth, '--reconstructions', ok, '--threads', '-1'])).rejects.toThrow(new InvalidArgumentError('--threads: expected an integer from 0 to 1024, got -1'));
    writeFileSync(join(dir, 'nets.json'), JSON.stringify([{ name: 'x', path: 'x.onnx', inputSize: 16 }]));
    const err = await run(['--truth', truth, '--reconstructions', ok, '--networks', join(dir, 'nets.json')]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.join('\n')).toMatch(/metric/);
    // a network file that is not there, or whose input side is fixed at another: refused before any image is read
    writeFileSync(join(dir, 'fixed.onnx'), featureNetworkModel());
    writeFileSync(join(dir, 'nets2.json'), JSON.stringify([{ name: 'gone', path: 'gone.onnx', inputSize: 16, metric: 'distance' }, { name: 'x', path: 'fixed.onnx', inputSize: 16, metric: 'distance', output: 'nope' }]));
    const err2 = await run(['--truth', truth, '--reconstructions', ok, '--networks', join(dir, 'nets2.json')]).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(ConfigError);
    expect((err2 as ConfigError).problems).toHaveLength(2);
    expect((err2 as ConfigError).problems[0]).toMatch(/^\[0\] \(feature network 'gone'\): .*gone\.onnx/);
    expect((err2 as ConfigError).problems[1]).toMatch(/^\[1\]\.output: feature network 'x' .* has no output 'nope'/);
    writeFileSync(join(dir, 'file'), 'x');
    await expect(run(['--truth', truth, '--reconstructions', ok, '--out', join(dir, 'file')])).rejects.toThrow(/--out .*file: .*expected a folder for the metrics/);
  });
});
