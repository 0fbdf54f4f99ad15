/** `brainlatent reconstruct --config recon.json` (or flags for the common case): calls reconstruct(), shows a bar per stage. */
import { resolve } from 'node:path';

import type { Command } from 'commander';

import { ConfigError } from '../../config/errors.js';
import { schemaHelpText } from '../../config/help.js';
import { ReconstructConfigSchema } from '../../config/reconstruct.js';
import { InvalidArgumentError } from '../../errors.js';
import { reconstruct, type ReconstructResult } from '../../pipeline/reconstruct.js';
import type { StageProgress, StageReport } from '../../pipeline/stageRunner.js';
import { cacheUpkeepLines } from '../../nsd/cache.js';
import type { KeptCacheEntry, RemovedCacheEntry } from '../../nsd/output.js';
import { resolveConfig, type ReconstructConfig } from '../../pipeline/config.js';
import { readConfigFile } from '../configFile.js';
import type { FieldFlags } from '../../config/fieldNames.js';
import { checkImg2imgRule, checkSchedulerName } from '../../sd/samplingOptions.js';
import { SCHEDULERS } from '../../sd/schedulerConfig.js';
import { fieldSchema, numberFlag } from '../flagValue.js';
import { parseSessionSpec } from '../../config/sessions.js';
import { runFolderInputs } from '../../pipeline/runFolderInputs.js';
import { checkCacheFolderApart, checkOutputPath, checkRunFolderApart } from '../outputPath.js';
import { leftOutNote, metricsText } from '../../eval/table.js';
import { progressBar, type ProgressBar } from '../progress.js';
import { stopOnSignals } from '../stopSignals.js';

interface Flags {
  config?: string;
  nsd?: string;
  subject?: string;
  model?: string;
  out?: string;
  testImages?: string;
  sessions?: string;
  seeds?: string;
  steps?: string;
  size?: string;
  strength?: string;
  eta?: string;
  scheduler?: string;
  rule?: string;
  force?: boolean;
  dryRun?: boolean;
}

/**
 * The config field each flag sets, by its key in Flags: the flag's name and the field's. The messages of a run name a
 * field by its flag where the flag gave it, or where there is no config file (fieldFlags).
 */
const FIELD_FLAGS = [
  ['out', '--out', 'out'],
  ['nsd', '--nsd', 'nsd.root'],
  ['subject', '--subject', 'nsd.subject'],
  ['testImages', '--test-images', 'nsd.testImages'],
  ['sessions', '--sessions', 'nsd.sessions'],
  ['model', '--model', 'model.dir'],
  ['seeds', '--seeds', 'img2img.seeds'],
  ['steps', '--steps', 'img2img.steps'],
  ['size', '--size', 'img2img.size'],
  ['strength', '--strength', 'img2img.strength'],
  ['eta', '--eta', 'img2img.eta'],
  ['scheduler', '--scheduler', 'img2img.scheduler'],
  ['rule', '--rule', 'img2img.rule'],
] as const satisfies readonly (readonly [keyof Flags, string, string])[];

/** This command line as the library's messages take it: each flag's field, those the flags gave, the config file. */
export function fieldFlags(f: Flags): FieldFlags {
  return {
    flags: Object.fromEntries(FIELD_FLAGS.map(([, flag, field]) => [field, flag])),
    given: FIELD_FLAGS.filter(([key]) => f[key] !== undefined).map(([, , field]) => field),
    config: f.config,
  };
}

/**
 * A flag's value, checked by `check` (against the config field it sets): a problem names the flag, not the config
 * file, and is collected (in `problems`) to be listed with the file's.
 */
function checked<T>(v: string | undefined, check: (v: string) => T, problems: string[]): T | undefined {
  if (v === undefined) return undefined;
  try {
    return check(v);
  } catch (e) {
    if (!(e instanceof InvalidArgumentError)) throw e;
    problems.push(e.message);
    return undefined;
  }
}

/**
 * --sessions: a spec as nsd.sessions takes one ("1-37", "1-10,12"), checked by the field's own grammar and kept as
 * given (the field holds the spec). Whether the sessions have betas is the preflight's question, which names the flag.
 */
function sessionsFlag(text: string): string {
  const { problems } = parseSessionSpec(text);
  if (problems.length) throw new InvalidArgumentError(`--sessions: ${problems.join('; ')}`);
  return text;
}

/** A numeric flag, checked against the schema of the config field it sets. */
const num = (v: string | undefined, flag: string, field: string[], problems: string[]) =>
  checked(v, (t) => numberFlag(t, flag, fieldSchema(ReconstructConfigSchema, field)), problems);

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The config file (paths relative to it) with the flags on top, validated: the flags first, each error naming its
 * flag, then the merged config, every problem listed naming the file.
 */
async function configFrom(f: Flags): Promise<ReconstructConfig> {
  const flagProblems: string[] = [];
  const flagged = {
    subject: num(f.subject, '--subject', ['nsd', 'subject'], flagProblems),
    testImages: num(f.testImages, '--test-images', ['nsd', 'testImages'], flagProblems),
    sessions: checked(f.sessions, sessionsFlag, flagProblems),
    seeds: num(f.seeds, '--seeds', ['img2img', 'seeds'], flagProblems),
    steps: num(f.steps, '--steps', ['img2img', 'steps'], flagProblems),
    size: num(f.size, '--size', ['img2img', 'size'], flagProblems),
    strength: num(f.strength, '--strength', ['img2img', 'strength'], flagProblems),
    // (the choices and their checks are sd img2img's)
    scheduler: checked(f.scheduler, (t) => checkSchedulerName(t, '--scheduler'), flagProblems),
    eta: num(f.eta, '--eta', ['img2img', 'eta'], flagProblems),
    rule: checked(f.rule, (t) => checkImg2imgRule(t, '--rule'), flagProblems),
  };
  // an empty path would resolve to the working folder
  for (const [flag, v] of [['--nsd', f.nsd], ['--model', f.model], ['--config', f.config]] as const) {
    if (v !== undefined && v.trim() === '') throw new InvalidArgumentError(`${flag}: got an empty path; expected a ${flag === '--config' ? 'file' : 'folder'}`);
  }
  let base: unknown = {};
  if (f.config) base = await readConfigFile(f.config, ReconstructConfigSchema, 'reconstruct');
  else {
    // without a config every field a run needs comes from a flag; the subject too, as in encode and nsd extract
    const missing = (
      [['--nsd DIR', f.nsd], ['--subject N', f.subject], ['--model DIR', f.model], ['--out DIR', f.out]] as const
    ).filter(([, v]) => v === undefined).map(([flag]) => flag);
    // (no file: a flag's bad value is the problem, not the field it left unset)
    if (flagProblems.length) throw new InvalidArgumentError(flagProblems.join('; '));
    if (missing.length) throw new InvalidArgumentError(`give --config recon.json, or --nsd DIR --subject N --model DIR --out DIR (missing: ${missing.join(', ')})`);
  }
  const source = f.config ?? 'command line';
  // a file that holds no object is reported as such by the validator, flags or not
  if (!isPlainObject(base)) return resolveConfig(base, source);
  const file = base;
  const merged: Record<string, unknown> = { ...file };
  if (f.out !== undefined) merged.out = resolve(f.out);
  // flags go into their section, unless the file's section is not an object (the validator then reports it)
  const section = (key: string, set: (s: Record<string, unknown>) => void) => {
    const v = file[key];
    if (v !== undefined && !isPlainObject(v)) return;
    const s = { ...(v ?? {}) };
    set(s);
    if (v !== undefined || Object.keys(s).length) merged[key] = s;
  };
  section('nsd', (s) => {
    if (f.nsd) s.root = resolve(f.nsd);
    if (flagged.subject !== undefined) s.subject = flagged.subject;
    if (flagged.testImages !== undefined) s.testImages = flagged.testImages;
    if (flagged.sessions !== undefined) s.sessions = flagged.sessions;
  });
  section('model', (s) => {
    if (f.model) s.dir = resolve(f.model);
  });
  section('img2img', (s) => {
    if (flagged.seeds !== undefined) s.seeds = flagged.seeds;
    if (flagged.steps !== undefined) s.steps = flagged.steps;
    if (flagged.size !== undefined) s.size = flagged.size;
    if (flagged.strength !== undefined) s.strength = flagged.strength;
    if (flagged.eta !== undefined) s.eta = flagged.eta;
    if (flagged.scheduler !== undefined) s.scheduler = flagged.scheduler;
    if (flagged.rule !== undefined) s.rule = flagged.rule;
  });
  // every problem at once: the file's (with the flags that were valid merged in), then the flags'
  let fileError: ConfigError | null = null;
  let config: ReconstructConfig | null = null;
  try {
    config = resolveConfig(merged, source, fieldFlags(f));
  } catch (e) {
    if (!(e instanceof ConfigError) || flagProblems.length === 0) throw e;
    fileError = e;
  }
  if (fileError) throw new ConfigError(`${source} with these flags`, [...fileError.problems, ...flagProblems]);
  // (flags alone: the file is not to blame)
  if (flagProblems.length) throw new InvalidArgumentError(flagProblems.join('; '));
  return config!;
}

/** Prints one bar per stage on stderr. */
export function stageProgress(): (p: StageProgress) => void {
  let bar: ProgressBar | null = null;
  let current = '';
  return (p) => {
    const label = `[${p.index}/${p.stages}] ${p.stage}`;
    if (p.status === 'skipped') {
      process.stderr.write(`${label}: skipped (outputs exist)\n`);
      return;
    }
    // a stage whose record no longer holds (an output truncated or overwritten, an input file changed) says why
    if (p.again) process.stderr.write(`${label}: ${p.again}; rerunning ${p.stage}\n`);
    if (current !== p.stage) {
      bar?.done();
      bar = progressBar(label);
      current = p.stage;
    }
    bar?.update(p.fraction, p.message, p.count);
    if (p.status === 'done') {
      bar?.done(`${label}: done`);
      bar = null;
      current = '';
    }
  };
}

/**
 * The extraction cache entries a run's extract stage removed (replaced ones, or ones its own cache no longer needs),
 * and those it left (held by a load, or this user cannot delete them), one line each on stderr: GBs of a user's disk
 * do not go, or stay, unsaid. Stages skipped on resume removed nothing now.
 */
export function printCacheRemovals(stages: readonly StageReport[]): void {
  for (const s of stages) {
    if (s.status !== 'ran') continue;
    const { cacheRemoved: removed, cacheKept: kept, cacheNotWritten: notCached } = s.summary ?? {};
    const list = <T>(v: unknown) => (Array.isArray(v) ? (v as T[]) : []);
    const lines = cacheUpkeepLines(list<RemovedCacheEntry>(removed), list<KeptCacheEntry>(kept), list<string>(notCached));
    for (const line of lines) process.stderr.write(`${s.stage}: ${line}\n`);
  }
}

/** Warnings go to stderr as they come (a decoder's alphas on an edge of the grid, …). */
export function printWarnings(message: string): void {
  process.stderr.write(`warning: ${message}\n`);
}

export function printResult(r: ReconstructResult): void {
  if (r.plan) {
    process.stdout.write(`${r.plan.join('\n')}\n`);
    return;
  }
  for (const s of r.stages) process.stdout.write(`${s.stage.padEnd(9)} ${s.status.padEnd(8)} ${s.seconds.toFixed(1)} s\n`);
  printCacheRemovals(r.stages);
  if (r.metrics) {
    const better = r.metrics.better ?? {};
    const rows = [
      { method: 'z-only', values: r.metrics.zonly },
      { method: 'final', values: r.metrics.final },
    ];
    process.stdout.write(`\n${metricsText(rows, better)}\n(2WI: two-way identification in %, chance 50%)\n`);
    const { leftOut, comparisonsLeftOut: c, images } = r.metrics;
    const sets = leftOut ? [{ label: 'z-only', leftOut: leftOut.zonly, comparisons: c?.zonly }, { label: 'final', leftOut: leftOut.final, comparisons: c?.final, summed: true }] : [];
    const note = images !== undefined ? leftOutNote(sets, images) : '';
    if (note) process.stdout.write(`${note}\n`);
  }
  process.stdout.write(`\nrun folder: ${r.out} (report.html, metrics.csv)\n`);
}

export function registerReconstructCommand(program: Command): void {
  program
    .command('reconstruct')
    .description('fMRI → images with Stable Diffusion img2img (Takagi & Nishimoto 2023), evaluated with the NSD metrics; resumable')
    .option('--config <file>', 'run config (JSON); flags below override it')
    .option('--nsd <dir>', 'NSD root; required without --config')
    .option('--subject <n>', 'NSD subject (1..8); required without --config')
    .option('--model <dir>', 'SD 1.x ONNX model folder; required without --config')
    .option('--out <dir>', 'run folder; required without --config')
    .option('--test-images <n>', 'reconstruct only the first n test images in id order (the n smallest 73k ids; nsd.testImages)')
    .option('--sessions <list>', 'sessions of betas to read, such as 1-37 or 1-10,12 (nsd.sessions; default: every session with betas among 1-37)')
    .option('--seeds <n>', 'samples per image (img2img.seeds; default 5)')
    .option('--size <px>', 'side of the img2img images in pixels, a multiple of 8 (img2img.size; default 512). A U-Net exported at a fixed latent size takes 8× that size only')
    .option('--steps <n>', "DDIM steps (img2img.steps; default 50). With the default --rule compvis (noise one DDIM step above the first step, as TN) fewer than about 8 steps give poor images (demo PixCorr 0.29 at 4, 0.87 at 8): use --rule diffusers for few steps")
    .option('--strength <s>', 'img2img strength in (0, 1]: the fraction of the schedule run (img2img.strength; default 0.8)')
    .option('--scheduler <name>', `one of ${SCHEDULERS.join(', ')} (img2img.scheduler; default ddim, as TN: the model folder's scheduler_config.json gives the schedule, not the class). The default --rule compvis and an --eta above 0 are ddim's only: use --rule diffusers with another`)
    .option('--eta <eta>', "DDIM eta, >= 0: 0 deterministic, 1 as DDPM; at most the schedule's maxEta (img2img.eta; default 0)")
    .option(
      '--rule <rule>',
      "img2img noise rule (img2img.rule): 'compvis' (the default: one DDIM step above the first step that runs, as CompVis and TN; ddim only: that step is 1000/steps timesteps, so with fewer than about 8 steps the images keep noise and come out poor) or 'diffusers' (noise at the first step that runs; use it for few steps)",
    )
    .option('--force', 'redo every stage, replacing another run in --out (only the files a run writes go; yours stay)')
    .option('--dry-run', 'print the plan and each stage\'s estimated time from short measured probes; writes nothing')
    .addHelpText(
      'after',
      `
Defaults follow Takagi & Nishimoto: z (VAE latent, 320 px → 4×40×40) decoded from streams:early and
c (CLIP text embedding averaged over captions) from streams:ventral by RidgeCV with folds grouped by
image; z-only decode; img2img from the decoded z with the decoded c at strength 0.8, 50 DDIM steps,
guidance 5, 5 seeds; PixCorr, SSIM and two-way identification on the test images (NSD's shared 1,000).

Examples:
  brainlatent reconstruct --nsd /data/nsd --subject 1 --model models/sd-v1-4-onnx --out runs/subj01
  brainlatent reconstruct --config recon.json --dry-run    # the plan, each stage timed by a short probe
  brainlatent reconstruct --config recon.json              # resumes: finished stages are skipped

The run folder holds run.json (the run's record, not a config), decoders/*.safetensors,
images/<imgidx>_{org,z,000..}.png, metrics.csv (with the published numbers for comparison) and report.html.
See docs/pipeline.md.

${schemaHelpText(ReconstructConfigSchema, 'recon.json')}`,
    )
    .action(async (f: Flags) => {
      // the run folder is checked before any work: a flag's value as typed, else the config file's
      if (f.out !== undefined) await checkOutputPath('--out', f.out, 'folder', 'the run');
      const config = await configFrom(f);
      const outLabel = f.out !== undefined ? '--out' : `${f.config}: out`;
      if (f.out === undefined) await checkOutputPath(outLabel, config.out, 'folder', 'the run');
      // nor one that overlaps what the run reads (the NSD root, the model folder, …): dry runs too; a flag's input is named by its flag
      const given = fieldFlags(f);
      const inputs = runFolderInputs(ReconstructConfigSchema, config, Object.fromEntries(given.given.map((field) => [field, given.flags[field]])));
      await checkRunFolderApart(outLabel, f.out ?? config.out, inputs);
      // and an extraction cache the config names (it writes entries there and removes stale ones)
      if (config.nsd.cacheDir !== null) await checkCacheFolderApart(`${f.config ?? 'config'}: nsd.cacheDir`, config.nsd.cacheDir, inputs);
      // Ctrl-C or SIGTERM stops the run at its next step; finished stages stay, and the same command resumes
      const ac = stopOnSignals();
      const r = await reconstruct(config, { force: f.force, dryRun: f.dryRun, signal: ac.signal, onProgress: f.dryRun ? undefined : stageProgress(), onWarning: printWarnings, fieldFlags: fieldFlags(f) }).finally(() => ac.dispose());
      printResult(r);
    });
}
