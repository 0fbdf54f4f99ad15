import type { Command } from 'commander';

import { CancelledError, InvalidArgumentError, NonFiniteError, OutOfMemoryError } from '../../errors.js';
import { allInOrder } from '../../allInOrder.js';
import { assertFinite } from '../../io/finite.js';
import { prepareAtomicFile } from '../../io/atomicWrite.js';
import { readMatrixNpy, writeNpy } from '../../io/npy.js';
import { writeSafetensorsTo } from '../../io/safetensors.js';
import { useEngineArrayAllocator, useEngineFileMapping, useEngineFileWriter } from '../../native/call.js';
import { alphaDiagnostics } from '../../ridge/alphaDiagnostics.js';
import { alphaEdgeWarning, DECIMAL, parseAlphas } from '../../ridge/alphas.js';
import { checkFitBudget, checkFitInputs, Y_READ, type FitInputNames } from '../../ridge/fitPreflight.js';
import { ridgePlanLine, planRidgeFit } from '../../ridge/memoryPlan.js';
import { MAX_ENGINE_THREADS, RidgeCV, setThreads, type RidgeCVOptions } from '../../ridge/RidgeCV.js';
import { RidgeModel, ridgeModelFile } from '../../ridge/RidgeModel.js';
import { MAX_FOLDS, MAX_MEMORY_BUDGET } from '../../ridge/options.js';
import { choiceFlag, integerFlag } from '../flagValue.js';
import { alphaHistogram, mean, seconds } from '../format.js';
import { checkOutputFile } from '../outputPath.js';
import { checkInputFile } from '../inputPath.js';
import { FlagProblems } from '../problems.js';
import { progressBar } from '../progress.js';
import { exitWhenDone } from '../setup.js';
import { stopOnSignals } from '../stopSignals.js';

interface FitFlags {
  x: string;
  y: string;
  alphas: string;
  folds: string;
  groups?: string;
  score: 'r2' | 'pearson';
  intercept: boolean;
  standardize?: boolean;
  route: 'auto' | 'primal' | 'kernel';
  cvMethod: 'auto' | 'per-fold' | 'exact';
  eigPrecision: 'auto' | 'float32' | 'float64';
  memory?: string;
  threads?: string;
  backend: 'auto' | 'cpu' | 'cuda';
  out: string;
  dryRun?: boolean;
}

// Flags arrive as text: each becomes a number here, with the flag's name in the error; the library
// validates the values once more only where its own rules apply (alphas, folds against samples).

function gibibytes(text: string, flag: string): number {
  const v = Number(text);
  if (!DECIMAL.test(text.trim()) || !Number.isFinite(v) || !(v > 0)) throw new InvalidArgumentError(`${flag}: expected a size in GiB > 0 (e.g. 0.5 or 8), got '${text}'`);
  if (v * 2 ** 30 > MAX_MEMORY_BUDGET) throw new InvalidArgumentError(`${flag}: expected a size in GiB up to ${MAX_MEMORY_BUDGET / 2 ** 30} (1 PiB), got '${text}'`);
  // (below one byte the budget rounds to 0, which the library refused in its own words after the dry run's header)
  if (v * 2 ** 30 < 1) throw new InvalidArgumentError(`${flag}: expected a size in GiB of at least one byte (2^-30 GiB: 9.32e-10 or more), got '${text}'`);
  return Math.round(v * 2 ** 30);
}

/** The inputs as `ridge fit`'s refusals name them: by their flags. */
const FIT_FLAGS: FitInputNames = { x: '--x', y: '--y', groups: '--groups', folds: '--folds', memory: '--memory', fit: 'ridge fit' };

/** The fit's options from the flags (checked): what it runs with, and what its memory is planned with before. */
function fitOptions(flags: FitFlags, c: { alphas: number[]; folds: number; groups?: Int32Array; memoryBudget?: number }): RidgeCVOptions {
  return {
    alphas: c.alphas,
    folds: c.folds,
    groups: c.groups,
    score: flags.score,
    fitIntercept: flags.intercept,
    standardize: flags.standardize ?? false,
    route: flags.route,
    cvMethod: flags.cvMethod,
    eigPrecision: flags.eigPrecision,
    memoryBudget: c.memoryBudget,
    backend: flags.backend,
  };
}

/**
 * Every flag, the output path and the inputs' headers (shape, type, rows), and the groups (small), checked before
 * X and Y are read: a fit can take minutes, and a command line with several mistakes is refused once, listing them all.
 * With every flag and header sound, the fit's memory is planned from the shapes: a --memory the fit would refuse
 * (below its fixed part plus one target) is refused here, before gigabytes of X and Y are read.
 */
async function checkFitFlags(flags: FitFlags) {
  const p = new FlagProblems();
  const threads = flags.threads === undefined ? undefined : p.take(() => integerFlag(flags.threads!, '--threads', 0, MAX_ENGINE_THREADS));
  const folds = p.take(() => integerFlag(flags.folds, '--folds', 2, MAX_FOLDS));
  const memoryBudget = flags.memory === undefined ? undefined : p.take(() => gibibytes(flags.memory!, '--memory'));
  const alphas = p.take(() => parseAlphas(flags.alphas), '--alphas');
  p.take(() => choiceFlag(flags.score, '--score', ['r2', 'pearson']));
  p.take(() => choiceFlag(flags.route, '--route', ['auto', 'primal', 'kernel']));
  p.take(() => choiceFlag(flags.cvMethod, '--cv-method', ['auto', 'per-fold', 'exact']));
  p.take(() => choiceFlag(flags.eigPrecision, '--eig-precision', ['auto', 'float32', 'float64']));
  p.take(() => choiceFlag(flags.backend, '--backend', ['auto', 'cpu', 'cuda']));
  // a model that cannot be written (or would overwrite an input) is refused before the fit starts
  const out = await p.takeAsync(() =>
    checkOutputFile('--out', flags.out, {
      ext: '.safetensors',
      what: 'the model (.safetensors)',
      writes: 'ridge fit writes a .safetensors model',
      inputs: [['--x', flags.x], ['--y', flags.y], ['--groups', flags.groups]],
    }),
  );
  const { groups: groupIds, shape } = await checkFitInputs(p, { x: flags.x, y: flags.y, groups: flags.groups, folds }, FIT_FLAGS);
  if (shape) checkFitBudget(p, fitOptions(flags, { alphas: alphas!, folds: folds!, groups: groupIds, memoryBudget }), shape, FIT_FLAGS);
  p.throwIfAny('ridge fit');
  const options = fitOptions(flags, { alphas: alphas!, folds: folds!, groups: groupIds, memoryBudget });
  return { threads, options, alphas: alphas!, out: out!, shape: shape! };
}

export function registerRidgeCommand(program: Command): void {
  const ridge = program
    .command('ridge')
    .description('Multi-target ridge regression with per-target alpha chosen by K-fold CV');

  const fit = ridge
    .command('fit')
    .description('fit RidgeCV on X (samples × features) and Y (samples × targets) stored as .npy')
    .requiredOption('--x <file>', 'X as .npy (float32 or float64, samples × features)')
    .requiredOption('--y <file>', 'Y as .npy (float32 or float64, samples × targets; 1-D: one target)')
    .option('--alphas <grid>', "candidate alphas, distinct and > 0: '1,10,100' or log-spaced start:stop:count (count >= 2 unless start = stop)", '1e1:1e7:10')
    .option('--folds <k>', 'number of CV folds (contiguous unless --groups)', '5')
    .option('--groups <file>', 'group label per sample (.npy int): a group never straddles folds, e.g. the image id of each trial')
    .option('--score <name>', "CV score maximised per target: 'r2' or 'pearson'", 'r2')
    .option('--no-intercept', 'do not centre X and Y (data must already be zero-mean)')
    .option('--standardize', 'z-score X columns with training statistics (stored in the model)')
    .option('--route <route>', "'auto', 'primal' (eig of XᵀX) or 'kernel' (eig of XXᵀ)", 'auto')
    .option('--cv-method <m>', "'auto', 'per-fold' or 'exact' (one decomposition, closed-form CV)", 'auto')
    .option('--eig-precision <p>', "'auto', 'float32' or 'float64'", 'auto')
    .option('--memory <GiB>', "budget of the engine's work buffers in GiB (X's copy, Grams, decompositions, target batches); a fit whose fixed footprint exceeds it is refused (default: 2, raised to the fixed footprint plus a batch of 2,048 targets when the fit needs more)")
    .option('--threads <n>', `engine threads, at most ${MAX_ENGINE_THREADS} (default: all cores; 0 = all cores)`)
    .option('--backend <b>', "'auto', 'cpu' or 'cuda'", 'auto')
    .requiredOption('--out <file>', 'model output (.safetensors; added to a name without an extension), checked before the fit: not a folder, not an input, its parent an existing writable folder')
    .option('--dry-run', "check the flags and the inputs' headers and print the fit's route and memory plan (planned peak, target batches) under --memory; X and Y are not read, no model is written")
    .addHelpText(
      'after',
      `
Example:
  brainlatent ridge fit --x early_betas.npy --y z_train.npy --alphas 1e1:1e7:10 \\
      --folds 5 --groups image_ids.npy --standardize --out z_decoder.safetensors

The model predicts ((X - x_mean) / x_scale) @ coef + intercept; Python can read it with
safetensors.numpy.load_file(path).`,
    )
    .action(async (flags: FitFlags) => {
      for (const [flag, path] of [['--x', flags.x], ['--y', flags.y], ['--groups', flags.groups]] as const) if (path !== undefined) checkInputFile(flag, path, '.npy');
      const { threads, options, alphas, out, shape } = await checkFitFlags(flags);
      if (threads !== undefined) setThreads(threads);
      if (flags.dryRun) {
        console.log(`X ${shape.rows}×${shape.cols} (${flags.x}), Y ${shape.rows}×${shape.targets} (${flags.y}); ${alphas.length} alphas, ${options.folds} folds${options.groups ? ' (grouped)' : ''}`);
        console.log(ridgePlanLine('ridge fit', shape, planRidgeFit(options, shape)));
        console.log(`dry run: X and Y not read, no model written to ${out}`);
        return;
      }
      const tRead = performance.now();
      useEngineArrayAllocator();
      useEngineFileMapping();
      useEngineFileWriter();
      // The engine checks X and Y for NaN/Inf in native code before it fits: read them unchecked rather than scan
      // them twice (the scan in JavaScript is a fifth of this command's time outside the fit at NSD sizes).
      const unchecked = { finite: false };
      const [x, y] = await allInOrder([readMatrixNpy(flags.x, 'X', unchecked), readMatrixNpy(flags.y, 'Y', { ...unchecked, ...Y_READ })]);
      for (const [m, name, path] of [[x, 'X', flags.x], [y, 'Y', flags.y]] as const) {
        if (m.sourceDtype === 'float64') console.log(`note: ${name} (${path}) is float64; converted to float32, the engine's precision`);
      }
      // (their rows agree: checkFitFlags compared the headers, and read the groups)
      const readSecs = (performance.now() - tRead) / 1000;
      console.log(`X ${x.rows}×${x.cols}, Y ${y.rows}×${y.cols}; ${alphas.length} alphas, ${flags.folds} folds${options.groups ? ' (grouped)' : ''}`);
      const bar = progressBar('ridge fit');
      // Ctrl-C or SIGTERM stops the fit within one of the engine's large operations, says so, and writes no model
      const stop = stopOnSignals();
      const t0 = performance.now();
      const model = await new RidgeCV(options)
        .fit(x, y, { onProgress: (p) => bar.update(p.fraction, p.stage), signal: stop.signal })
        .catch((e: unknown) => {
          if (e instanceof CancelledError) throw new CancelledError(`ridge fit: interrupted (${stop.name()}) after ${seconds((performance.now() - t0) / 1000)}; no model written to ${out}`, { cause: stop.signal.reason });
          // The engine's refusal names no file: name it, and the first bad element, as the reader would have.
          if (e instanceof NonFiniteError) {
            for (const [m, name, path] of [[x, 'X', flags.x], [y, 'Y', flags.y]] as const) {
              assertFinite(m.data, `${name} (${path})`, { shape: [m.rows, m.cols], axes: ['row', 'column'] });
            }
          }
          // the engine names the library option; here the budget is --memory (GiB, the unit of its message)
          if (e instanceof OutOfMemoryError) throw new OutOfMemoryError(e.message.replace(/\bmemoryBudget\b/g, '--memory'), e.reason);
          throw e;
        });
      stop.dispose();
      const secs = (performance.now() - t0) / 1000;
      bar.done();
      // The model goes to disk (written, flushed, renamed into place) while the summary prints. Its file is opened
      // first (folder, stale temporaries, the temporary: ~1 ms with the event loop free) and its bytes are handed to
      // the engine's writer before the summary's first line (writeSafetensorsTo starts it synchronously): the
      // summary's ~50 ms of JavaScript held back each of those steps, and the write began 95 ms after the fit.
      const tWrite = performance.now();
      const file = await prepareAtomicFile(out);
      const { tensors, metadata } = ridgeModelFile(model);
      const saved = writeSafetensorsTo(file, tensors, metadata);
      const info = model.info;
      console.log(`chosen alphas (targets per alpha):\n${alphaHistogram(alphas, model.bestAlphas)}`);
      console.log(`mean CV ${flags.score} at the chosen alphas: ${mean(model.bestScores).toFixed(4)}`);
      if (info) {
        console.log(
          `route ${info.solver} on ${info.backend}, eig ${info.eigPrecision}; ${info.nBatches} target batch(es) of ${info.targetBatch}; ` +
            `${(info.gemmFlops / 1e9).toFixed(1)} GFLOP at ${(info.gemmFlops / 1e9 / secs).toFixed(1)} GFLOP/s`,
        );
        const gib = (b: number) => `${(b / 2 ** 30).toFixed(3)} GiB`;
        console.log(
          // (the plan is an upper bound with some slack: the peak in use can sit below its fixed part)
          `work buffers: peak ${gib(info.peakBytes)} in use of a ${gib(info.budgetBytes)} budget (planned at most: fixed ${gib(info.fixedBytes)} + ${gib(info.batchBytes)} per batch)`,
        );
        if (info.unresolvedAlphas > 0) {
          console.log(
            `warning: ${info.unresolvedAlphas} alpha(s) below ${info.alphaResolution.toExponential(2)} are below the float32 resolution of this ` +
              `(near-singular) problem and were not considered; their CV scores are NaN in the model`,
          );
        }
      }
      // the edge rule counts only targets that are not constant (those score 0 at every alpha and tie to the largest),
      // as reconstruct's decoders do
      const diag = alphaDiagnostics(alphas, model.bestAlphas, model.cvScores, flags.score);
      if (diag.constantTargets > 0) {
        const all = diag.constantTargets === y.cols;
        console.log(
          `note: ${all ? `all ${y.cols}` : `${diag.constantTargets} of ${y.cols}`} targets are constant over the samples (every alpha scores 0)` +
            (all ? '; nothing to fit, so the chosen alphas mean nothing' : '; they are left out of the alpha-edge check'),
        );
      }
      // targets that score <= 0 at every alpha are left out too: the most shrinkage is their best, whatever the grid
      // (counted in the table above, so the note says how many, or the table and the warning would disagree unexplained)
      if (diag.unpredictableTargets > 0 && alphas.length > 1) {
        console.log(
          `note: ${diag.unpredictableTargets} of ${y.cols} targets score <= 0 at every alpha (the features predict nothing there, so their chosen alpha means nothing); ` +
            'they are in the table above but left out of the alpha-edge check',
        );
      }
      const what = diag.constantTargets || diag.unpredictableTargets ? 'targets with a positive CV score' : 'targets';
      // (a one-alpha grid has no edge: nothing to warn)
      const edge = alphas.length > 1 ? alphaEdgeWarning(diag.edgeLow, diag.edgeHigh, undefined, what) : null;
      if (edge) console.log(`warning: ${edge}`);
      await saved;
      const writeSecs = (performance.now() - tWrite) / 1000;
      console.log(`fitted in ${seconds(secs)}; inputs read in ${seconds(readSecs)}; model written to ${out} in ${seconds(writeSecs)}`);
    });

  const predict = ridge
    .command('predict')
    .description('predict with a saved ridge model')
    .requiredOption('--model <file>', 'model (.safetensors) from `ridge fit`')
    .requiredOption('--x <file>', 'X as .npy (samples × features)')
    .requiredOption('--out <file>', 'predictions .npy (float32, samples × targets; .npy added to a name without an extension), checked before the model is read: not a folder, not an input, its parent an existing writable folder')
    .action(async (flags: { model: string; x: string; out: string }) => {
      checkInputFile('--model', flags.model, '.safetensors', "'ridge fit --out'");
      checkInputFile('--x', flags.x, '.npy');
      const out = await checkOutputFile('--out', flags.out, {
        ext: '.npy',
        what: 'the predictions (.npy)',
        writes: 'ridge predict writes .npy predictions',
        inputs: [['--model', flags.model], ['--x', flags.x]],
      });
      const t0 = performance.now();
      useEngineArrayAllocator();
      useEngineFileMapping();
      useEngineFileWriter();
      // each file's refusal named by its flag, as ridge fit's are ("--model: m.safetensors: file not found"), both
      // listed when both are refused, in the flags' order
      const read = await Promise.allSettled([RidgeModel.load(flags.model), readMatrixNpy(flags.x, 'X')]);
      const problems = new FlagProblems();
      const value = <T>(r: PromiseSettledResult<T>): T => {
        if (r.status === 'rejected') throw r.reason;
        return r.value;
      };
      const model = problems.take(() => value(read[0]), '--model');
      const x = problems.take(() => value(read[1]), '--x');
      problems.throwIfAny('ridge predict');
      if (!model || !x) throw new Error('ridge predict: unreachable (no model or X, and no problem kept)');
      if (x.cols !== model.nFeatures) {
        throw new InvalidArgumentError(`--x ${flags.x}: X has ${x.cols} features (columns) but --model ${flags.model} was fitted on ${model.nFeatures}`);
      }
      const bar = progressBar('predict');
      bar.update(0, 'predict');
      const pred = await model.predictAsync(x, { label: `${flags.x}: X` });
      bar.done();
      await writeNpy(out, pred.data, [pred.rows, pred.cols]);
      console.log(`predicted ${pred.rows}×${pred.cols} in ${seconds((performance.now() - t0) / 1000)}; written to ${out}`);
    });
  exitWhenDone(fit);
  exitWhenDone(predict);
}
