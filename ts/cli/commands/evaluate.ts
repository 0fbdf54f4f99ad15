import { readdir, readFile, mkdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

import { Type } from '@sinclair/typebox';
import type { Command } from 'commander';

import { ConfigError } from '../../config/errors.js';
import { FeatureNetworkSchema } from '../../config/reconstruct.js';
import { checkConfig } from '../../config/validate.js';
import { CancelledError, FormatError, InvalidArgumentError, MissingFileError } from '../../errors.js';
import { averageMetrics, Evaluation, type EvaluationResult } from '../../eval/evaluate.js';
import type { FeatureNetworkSpec } from '../../eval/featureNetwork.js';
import { featureNetworkProblems } from '../../eval/featureNetworkSignature.js';
import { MAX_METRIC_SIZE, SSIM_MIN_SIZE } from '../../eval/pixel.js';
import { comparisonsLeftOut, leftOutCounts, leftOutNote, metricsBetter, metricsCsv, metricsText, metricValues, perImageValues, type TableRow } from '../../eval/table.js';
import { writeFileAtomic } from '../../io/atomicWrite.js';
import { readPngsAt } from '../../io/pngReads.js';
import { onnxruntimeNodeInstalled } from '../../native/onnxruntimeNode.js';
import { onnxruntimeNodeInstallLine } from '../../optionalDependencies.js';
import { MAX_ORT_THREADS } from '../../sd/optionBounds.js';
import { seconds } from '../format.js';
import { integerFlag } from '../flagValue.js';
import { checkOutputPath } from '../outputPath.js';
import { progressBar } from '../progress.js';
import { stopOnSignals } from '../stopSignals.js';

interface EvaluateFlags {
  truth: string;
  reconstructions: string[];
  out?: string;
  size: string;
  networks?: string;
  threads: string;
  pixelIdentification: boolean;
}

/** The .png files of a folder, by name. */
async function pngNames(dir: string, flag: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') throw new MissingFileError(`${flag} ${dir}: no such folder`);
    if (e.code === 'ENOTDIR') throw new InvalidArgumentError(`${flag} ${dir}: not a folder; expected a folder of PNG files`);
    throw e;
  });
  return entries
    .filter((e) => !e.isDirectory() && /\.png$/i.test(e.name))
    .map((e) => e.name)
    .sort();
}

/** Names of `want` not in `have`, as a phrase: the first few and how many in all. */
function missingNames(want: readonly string[], have: ReadonlySet<string>): string | null {
  const missing = want.filter((n) => !have.has(n));
  if (missing.length === 0) return null;
  return `${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''} (${missing.length} of ${want.length})`;
}

/** The networks of a JSON file (reconstruct's evaluation.networks), their paths from the file's folder. */
async function readNetworks(file: string): Promise<FeatureNetworkSpec[]> {
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw e.code === 'ENOENT' ? new MissingFileError(`--networks ${file}: no such file`) : e;
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FormatError(`--networks ${file}: not JSON (${(e as Error).message})`, { path: file });
  }
  const { value, problems } = checkConfig(Type.Array(FeatureNetworkSchema), json, file);
  if (problems.length) throw new ConfigError(file, problems, 'list of feature networks');
  const networks = value.map((n) => ({ ...n, path: resolve(dirname(file), n.path) }));
  // (before any image is read, as reconstruct's preflight: each file, its output and input side, and the runtime)
  for (const [i, n] of networks.entries()) problems.push(...(await featureNetworkProblems(n, `[${i}]`)));
  if (networks.length > 0 && !onnxruntimeNodeInstalled()) problems.push(`feature networks run on onnxruntime-node, which is not installed (${onnxruntimeNodeInstallLine()})`);
  if (problems.length) throw new ConfigError(file, problems, 'list of feature networks');
  return networks;
}

/** The metrics a set's labels show: its folder's name, or its path where two sets share a name. */
function setLabels(dirs: readonly string[]): string[] {
  const names = dirs.map((d) => basename(resolve(d)));
  return names.map((n, i) => (names.indexOf(n) !== names.lastIndexOf(n) ? dirs[i] : n));
}

export function registerEvaluateCommand(program: Command): void {
  program
    .command('evaluate')
    .description("the NSD metrics of reconstructions from any method: PixCorr, SSIM and two-way identification against the images seen")
    .requiredOption('--truth <dir>', 'folder of the images seen (PNG), one per reconstruction, of the same file name')
    .requiredOption('--reconstructions <dir...>', "folders of reconstructions (PNG); several (a method's seeds) are also averaged, image by image, as reconstruct's final")
    .option('--out <dir>', 'folder to write metrics.csv (beside the published rows), metrics_per_image.csv and metrics.json')
    .option('--size <px>', `side PixCorr, SSIM and the pixels' 2WI compare at, from ${SSIM_MIN_SIZE} to ${MAX_METRIC_SIZE} (NSD's stimuli: 425)`, '425')
    .option('--networks <file>', "JSON list of ONNX image networks for 2WI or correlation distance, as reconstruct's evaluation.networks (paths from the file's folder)")
    .option('--threads <n>', "the networks' ONNX Runtime intra-op threads; 0: one per physical core", '0')
    .option('--no-pixel-identification', "leave out two-way identification on the pixels")
    .addHelpText(
      'after',
      `
Every image is read at --size. Each network runs on the images seen once, whatever the number of sets. A uniform
image has no correlation: its PixCorr and 2WI are left out of the means, and counted. Ctrl-C stops the work.

Example (a method's 3 seeds against NSD's stimuli written by \`brainlatent nsd image\`):
  brainlatent evaluate --truth stimuli/ --reconstructions seed0/ seed1/ seed2/ --networks nets.json --out metrics/
nets.json: [{ "name": "AlexNet(2)", "path": "alexnet_features4.onnx", "inputSize": 224, "metric": "identification" }]

See docs/pipeline.md for the metrics' definitions (those of the published NSD tables).`,
    )
    .action(async (flags: EvaluateFlags) => {
      const size = integerFlag(flags.size, '--size', SSIM_MIN_SIZE, MAX_METRIC_SIZE);
      const threads = integerFlag(flags.threads, '--threads', 0, MAX_ORT_THREADS);
      const networks = flags.networks === undefined ? [] : await readNetworks(flags.networks);
      if (flags.out !== undefined) await checkOutputPath('--out', flags.out, 'folder', 'the metrics');
      const truth = new Set(await pngNames(flags.truth, '--truth'));
      let names: string[] | undefined;
      for (const dir of flags.reconstructions) {
        const here = await pngNames(dir, '--reconstructions');
        if (here.length === 0) throw new MissingFileError(`--reconstructions ${dir}: no PNG files`);
        const gone = missingNames(here, truth);
        if (gone) throw new MissingFileError(`--truth ${flags.truth}: no image seen for the reconstructions ${gone} of ${dir}`);
        names ??= here;
        const other = missingNames(names, new Set(here)) ?? missingNames(here, new Set(names));
        if (other) throw new InvalidArgumentError(`--reconstructions: ${dir} and ${flags.reconstructions[0]} hold different images: ${other}; every set must hold the same file names`);
      }
      const files = names!;
      const labels = setLabels(flags.reconstructions);
      const bar = progressBar('evaluate');
      const stop = stopOnSignals();
      const t0 = performance.now();
      let set = 0;
      const sets = flags.reconstructions.length;
      const results: EvaluationResult[] = [];
      try {
        const gt = await readPngsAt(files.map((f) => join(flags.truth, f)), size, { signal: stop.signal });
        const evaluation = new Evaluation(gt, {
          size,
          networks,
          threads,
          pixelIdentification: flags.pixelIdentification,
          signal: stop.signal,
          onProgress: (q) => bar.update((set + q.fraction) / sets, `${labels[set]}: ${q.step}`),
        });
        for (; set < sets; set++) {
          bar.update(set / sets, `${labels[set]}: reading ${files.length} images`);
          results.push(await evaluation.evaluate(await readPngsAt(files.map((f) => join(flags.reconstructions[set], f)), size, { signal: stop.signal })));
        }
      } catch (e) {
        bar.done();
        throw e instanceof CancelledError && stop.signal.aborted
          ? new CancelledError(`evaluate: interrupted (${stop.name()}) after ${seconds((performance.now() - t0) / 1000)}; nothing written`, { cause: stop.signal.reason })
          : e;
      }
      bar.done();
      stop.dispose();
      const source = `${files.length} images`;
      const rows: TableRow[] = results.map((r, i) => ({ method: labels[i], source, metrics: r.metrics }));
      if (sets > 1) rows.push({ method: `mean of ${sets} sets`, source, metrics: averageMetrics(results.map((r) => r.metrics)) });
      const better = metricsBetter(rows[0].metrics);
      console.log(`${metricsText(rows.map((r) => ({ method: r.method, values: metricValues(r.metrics) })), better)}\n(2WI: two-way identification in %, chance 50%)`);
      const note = leftOutNote(
        rows.map((r, i) => ({ label: r.method, leftOut: leftOutCounts(r.metrics), comparisons: comparisonsLeftOut(r.metrics), summed: i === sets })),
        files.length,
      );
      if (note) console.log(note);
      if (flags.out !== undefined) {
        await mkdir(flags.out, { recursive: true });
        await writeFileAtomic(join(flags.out, 'metrics.csv'), metricsCsv(rows));
        const header = ['file', ...rows.flatMap((r) => r.metrics.map((m) => `${r.method}:${m.name}`))];
        const lines = [header.join(','), ...files.map((f, i) => [f, ...rows.flatMap((r) => r.metrics.map((m) => m.perImage[i]))].join(','))];
        await writeFileAtomic(join(flags.out, 'metrics_per_image.csv'), `${lines.join('\n')}\n`);
        const json = {
          images: files.length,
          files,
          sets: rows.map((r) => ({
            label: r.method,
            metrics: metricValues(r.metrics),
            leftOut: leftOutCounts(r.metrics),
            comparisonsLeftOut: comparisonsLeftOut(r.metrics),
            perImage: perImageValues(r.metrics),
          })),
          better,
        };
        await writeFileAtomic(join(flags.out, 'metrics.json'), JSON.stringify(json, null, 2));
        console.log(`wrote ${join(flags.out, 'metrics.csv')}, metrics_per_image.csv and metrics.json (${seconds((performance.now() - t0) / 1000)})`);
      }
    });
}
