import { Option, type Command } from 'commander';

import { BrainlatentError, CancelledError, FormatError, InvalidArgumentError, LimitError, MissingFileError } from '../../errors.js';
import { cacheUpkeepLines } from '../../nsd/cache.js';
import { loadNsdCaptions } from '../../nsd/captions.js';
import { extractionProblems, extractNsd, type ZscoreDdof, type ZscoreMode } from '../../nsd/extract.js';
import { formatNsdInfo, nsdInfo } from '../../nsd/info.js';
import { assertExtractionReplaceable, writeNsdExtraction } from '../../nsd/output.js';
import { folderInputOverlap, outputFoldersOverlap, type NamedInput } from '../../io/outputProblem.js';
import { extractionInputs } from '../../nsd/cacheApart.js';
import { expdesignPath } from '../../nsd/paths.js';
import { NsdStimuli } from '../../nsd/stimuli.js';
import { formatSessionList, type BetasFormatChoice } from '../../nsd/betas.js';
import { extractionGapWarning } from '../../nsd/sessionPlan.js';
import { seconds } from '../format.js';
import { defaultNsdCacheDir, defaultNsdCacheLabel } from '../nsdCacheDir.js';
import { FlagProblems } from '../problems.js';
import { progressBar } from '../progress.js';
import { writePng } from '../../sd/png.js';
import { checkCacheFolderApart, checkCacheFolderPath, checkOutputFile, checkOutputPath } from '../outputPath.js';
import { choiceFlag, decimalFlag, integerFlag } from '../flagValue.js';
import { stopOnSignals } from '../stopSignals.js';

interface ExtractFlags {
  root: string;
  subject: string;
  roi: string;
  sessions?: string;
  out: string;
  zscore: ZscoreMode;
  ddof?: string;
  averageTrain?: boolean;
  averageTest: boolean;
  format: BetasFormatChoice;
  divisor: string;
  cache: string | false;
}

/** Names where the cache path came from: --cache as given, or its default from an environment variable. */
function cacheOptionLabel(cmd: Command): string {
  return cmd.getOptionValueSource('cache') !== 'default' ? '--cache' : defaultNsdCacheLabel();
}

/**
 * extractNsd's errors about its cache folder (an entry it cannot read, a damaged one it cannot replace) name its
 * option, 'extractNsd cacheDir: …'; here they name the flag: '--cache: …'.
 */
function byCacheFlag(e: unknown, cmd: Command): unknown {
  const option = 'extractNsd cacheDir: ';
  if (e instanceof BrainlatentError && e.message.startsWith(option)) e.message = `${cacheOptionLabel(cmd)}: ${e.message.slice(option.length)}`;
  return e;
}

function ddofFlag(text: string | undefined): ZscoreDdof | undefined {
  if (text === undefined) return undefined;
  if (text !== '0' && text !== '1') throw new InvalidArgumentError(`--ddof: expected 0 or 1, got '${text}'`);
  return Number(text) as ZscoreDdof;
}

function subjectFlag(text: string): number {
  const subject = integerFlag(text, '--subject', 1);
  if (subject > 8) throw new InvalidArgumentError(`--subject: expected an NSD subject 1..8, got '${text}'`);
  return subject;
}

/**
 * Every flag, the output folders and the inputs (root, region, sessions, design: what extractNsd would refuse
 * before reading betas), checked before any work; a command line with several mistakes is refused once, listing them.
 */
async function checkExtractFlags(flags: ExtractFlags, cmd: Command) {
  const p = new FlagProblems();
  const subject = p.take(() => subjectFlag(flags.subject));
  // what the extraction reads (the NSD root, the subject's betas folder, a mask file): neither output folder may
  // overlap it (--out is replaced whole; the cache gets entries and loses stale ones), as a run folder may not
  const inputs = extractionInputs({ root: flags.root, subject, roi: flags.roi }, { root: '--root', roi: '--roi' });
  let outOk = (await p.takeAsync(async () => (await checkOutputPath('--out', flags.out, 'folder', 'the extracted betas', { replaced: true }), true))) === true;
  if (outOk) outOk = (await p.takeAsync(async () => (await checkExtractionFolderApart(flags.out, inputs), true))) === true;
  // the cache entry is written after the extraction: a cache path that can never be a folder is refused now (a
  // read-only one is read, and what it lacks not cached)
  if (flags.cache !== false) {
    const label = cacheOptionLabel(cmd);
    const cacheOk = (await p.takeAsync(async () => (await checkCacheFolderPath(label, flags.cache as string), true))) === true;
    if (cacheOk) await p.takeAsync(() => checkCacheFolderApart(label, flags.cache as string, inputs));
    // (--out is replaced whole once the extraction is done: a cache there lost its new entry, or made --out a folder
    // of other files, refused only after the extraction)
    const overlap = cacheOk ? await outputFoldersOverlap(flags.cache as string, ['--out', flags.out]) : null;
    if (overlap) p.add(new InvalidArgumentError(`${label} ${flags.cache}: ${overlap}, which the extraction replaces whole; expected a cache folder apart from --out`), label);
  }
  // the folder is replaced whole: one holding other files is refused now, not after minutes of extraction
  if (outOk) await p.takeAsync(() => assertExtractionReplaceable(flags.out), '--out');
  const zscore = p.take(() => choiceFlag<ZscoreMode>(flags.zscore, '--zscore', ['none', 'session', 'train']));
  const ddof = p.take(() => ddofFlag(flags.ddof));
  // (the z-score's ddof does nothing to betas left as they are: refused rather than silently dropped)
  if (zscore === 'none' && flags.ddof !== undefined) {
    const given = cmd.getOptionValueSource('zscore') === 'default' ? '--zscore none (the default)' : '--zscore none';
    p.add(new InvalidArgumentError(`--ddof ${flags.ddof} has no use with ${given}: the betas are not z-scored; give --zscore train or session, or leave --ddof out`));
  }
  const format = p.take(() => choiceFlag<BetasFormatChoice>(flags.format, '--format', ['auto', 'nifti', 'hdf5']));
  const divisor = p.take(() => decimalFlag(flags.divisor, '--divisor', 0));
  if (subject !== undefined && format !== undefined) {
    const inputs = await extractionProblems({ root: flags.root, subject, roi: flags.roi, sessions: flags.sessions, format });
    // a file's own defect (a truncated session, a corrupt mask) names the file; the flag only when its value is wrong
    for (const { option, error } of inputs) p.add(error, isFileDefect(error) ? undefined : `--${option}`);
  }
  p.throwIfAny('nsd extract');
  return { subject: subject!, zscore: zscore!, ddof, format: format!, divisor: divisor! };
}

/** A refusal of what a file holds (its format, a limit it exceeds), which the file's name says best. */
function isFileDefect(e: Error): boolean {
  return e instanceof FormatError || e instanceof LimitError;
}

/** Refuses an --out that is an input, lies inside one or holds one: the extraction is written there, replacing the folder whole. */
async function checkExtractionFolderApart(out: string, inputs: readonly NamedInput[]): Promise<void> {
  const overlap = await folderInputOverlap(out, inputs);
  if (overlap === null) return;
  throw new InvalidArgumentError(
    `--out ${out}: ${overlap}, an input; the extraction is written into it, replacing the folder whole, so it could overwrite or delete what it reads; ` +
      'expected a folder apart from the inputs (none of them, inside none, holding none)',
  );
}

/**
 * --root, required, and --nsd, another name for it: `reconstruct` and configs name the NSD root `--nsd` / `nsd.root`,
 * and `nsd info --nsd DIR` was an unknown option. --nsd fills in --root as commander reads it, so that the required
 * options, checked together before the action (checkRequiredOptionsLast), see it; two different roots are refused.
 */
function rootOptions(cmd: Command, description: string): Command {
  cmd
    .requiredOption('--root <dir>', description)
    .addOption(new Option('--nsd <dir>', "the same as --root (reconstruct's name for it)"))
    .on('option:nsd', (dir: string) => {
      if (cmd.getOptionValue('root') === undefined) cmd.setOptionValueWithSource('root', dir, 'cli');
    })
    .hook('preAction', () => {
      const { root, nsd } = cmd.opts<{ root?: string; nsd?: string }>();
      if (nsd !== undefined && nsd !== root) {
        cmd.error(`error: --root ${root} and --nsd ${nsd} name two NSD roots; give one (--nsd is another name for --root)`);
      }
    });
  return cmd;
}

export function registerNsdCommand(program: Command): void {
  const nsd = program.command('nsd').description('Natural Scenes Dataset: extract region betas and the split, inspect a download');

  rootOptions(
    nsd.command('extract').description('write trials × voxels betas for a region, the 73k image id of every row, and the shared-image test split'),
    'NSD root folder (holding nsddata/, nsddata_betas/, ...)',
  )
    .requiredOption('--subject <n>', 'subject 1..8')
    .requiredOption('--roi <spec>', "region: nsdgeneral, streams:early, streams:1,5, prf-visualrois:V1, or a mask .nii.gz")
    .option('--sessions <list>', 'sessions such as 1-37 or 1-10,12 (default: those present among 1-37)')
    .requiredOption('--out <dir>', 'output folder')
    .option('--zscore <mode>', "'session' (per voxel within each session), 'train' (training mean/SD, applied to test too) or 'none'", 'none')
    .option('--ddof <0|1>', "the z-score SD's delta degrees of freedom: 1 = Brain-Diffuser (np.std ddof=1), 0 = scikit-learn's StandardScaler (Takagi & Nishimoto) and scipy.stats.zscore (MindEye); default 1 for train, 0 for session; refused with --zscore none")
    .option('--average-train', 'average repetitions of each training image (default: single trials)')
    .option('--no-average-test', 'keep single test trials (default: average repetitions)')
    .option('--format <f>', "betas files to read: 'auto' (.hdf5 if present), 'nifti' or 'hdf5'", 'auto')
    .option('--divisor <d>', 'divide raw betas by this (NSD stores percent signal change × 300)', '300')
    .option('--cache <dir>', 'cache folder for completed extractions', defaultNsdCacheDir())
    .option('--no-cache', 'neither read nor write the cache (not with --cache)')
    .addHelpText(
      'after',
      `
Writes train_betas.npy and test_betas.npy (float32, rows × voxels), train_image_ids.npy and
test_image_ids.npy (int32 NSD 73k ids, 1-based, one per row; the train ids are the groups for
'ridge fit --groups'), voxels.npy (int32 voxels × 3: x, y, z grid index of each column) and
manifest.json (inputs, options, counts, source file sizes and times).

Example (Takagi & Nishimoto: single training trials, averaged test trials):
  brainlatent nsd extract --root /data/nsd --subject 1 --roi streams:early --sessions 1-37 --out early/

z-scoring conventions ('--zscore train' standardises test rows with the training statistics):
  Takagi & Nishimoto (scikit-learn StandardScaler):  --zscore train --ddof 0
  Brain-Diffuser (np.std(..., ddof=1)):              --zscore train --ddof 1   (the default for train)
  MindEye (scipy.stats.zscore per session):          --zscore session          (ddof 0)
See docs/data.md.`,
    )
    .action(async (flags: ExtractFlags, cmd: Command) => {
      const { subject, zscore, ddof, format, divisor } = await checkExtractFlags(flags, cmd);
      // a session missing between sessions with betas, when every session with betas is read (the preflights' warning)
      const gap = await extractionGapWarning({ root: flags.root, subject, sessions: flags.sessions, format }, '--sessions');
      if (gap) process.stderr.write(`warning: ${gap}\n`);
      const bar = progressBar('nsd extract');
      const t0 = performance.now();
      // Ctrl-C or SIGTERM stops the extraction between sessions (or while one is read), says so, and writes nothing:
      // --out is written after the extraction, the cache only gets completed ones (a second one ends the process at once)
      const ac = stopOnSignals();
      const interrupted = (cached = false) =>
        new CancelledError(
          `nsd extract: interrupted (${ac.name()}) after ${seconds((performance.now() - t0) / 1000)}; nothing written to ${flags.out}` +
            (flags.cache === false ? '' : cached ? ' (the completed extraction is in the cache)' : ' nor to the cache'),
          { cause: ac.signal.reason },
        );
      const ex = await extractNsd({
        root: flags.root,
        subject,
        roi: flags.roi,
        sessions: flags.sessions,
        zscore,
        ddof,
        averageTrain: flags.averageTrain ?? false,
        averageTest: flags.averageTest,
        format,
        divisor,
        cacheDir: flags.cache === false ? undefined : flags.cache,
        cacheLabel: '--cache',
        onProgress: (e) => bar.update(e.done / e.total, `session ${e.session}`, { done: e.done, total: e.total, unit: 'sessions' }),
        signal: ac.signal,
      }).catch((e: unknown) => {
        bar.done(); // (a terminal's bar line is cleared: the error is printed on a line of its own)
        throw e instanceof CancelledError && ac.signal.aborted ? interrupted() : byCacheFlag(e, cmd);
      });
      bar.done();
      // (an interrupt after the last session, during a cache load or the cache's write: --out is not written either)
      if (ac.signal.aborted) throw interrupted(flags.cache !== false);
      // cache entries of earlier versions of the files just read go, and are named (those that had to stay too)
      for (const line of cacheUpkeepLines(ex.removedFromCache ?? [], ex.keptInCache, ex.notCached ? [ex.notCached] : [])) process.stderr.write(`${line}\n`);
      // (an interrupt while --out is written lets the write finish: the folder appears whole)
      await writeNsdExtraction(flags.out, ex);
      ac.dispose();
      const c = ex.manifest.counts;
      console.log(
        `subject ${ex.manifest.inputs.subject}, ${ex.manifest.inputs.roi}: ${c.voxels} voxels, sessions ${formatSessionList(ex.manifest.inputs.sessions)}\n` +
          `train ${ex.train.rows} rows (${c.trainTrials} trials, ${c.trainImages} images), ` +
          `test ${ex.test.rows} rows (${c.testTrials} trials, ${c.testImages} images)\n` +
          `${ex.fromCache ? 'loaded from cache' : 'extracted'} in ${seconds((performance.now() - t0) / 1000)}; wrote ${flags.out}`,
      );
    });

  rootOptions(nsd.command('info').description('say which subjects, sessions, ROIs, design and stimulus files an NSD folder holds, and what is missing'), 'NSD root folder')
    .option('--json', 'print JSON instead of text')
    .action(async (flags: { root: string; json?: boolean }) => {
      const info = await nsdInfo(flags.root);
      console.log(flags.json ? JSON.stringify(info, null, 2) : formatNsdInfo(info));
      // the report lists what is there; without the design nothing can be extracted, so the check fails (exit 1)
      if (!info.expdesign) {
        throw new MissingFileError(`--root ${flags.root}: no NSD design file (${expdesignPath(flags.root)} not found); not an NSD root, or an incomplete download`);
      }
    });

  rootOptions(nsd.command('image').description('write the stimulus with a given 73k id as PNG, and print its captions'), 'NSD root folder')
    .requiredOption('--id <n>', 'NSD 73k id (1-based)')
    .option('--size <px>', 'resize to size × size (1 to 4096)')
    .requiredOption('--out <file>', 'PNG to write (8-bit RGB; .png added to a name without an extension), in an existing folder')
    .option('--captions <file>', 'captions CSV/JSON instead of the COCO files')
    .action(async (flags: { root: string; id: string; size?: string; out: string; captions?: string }) => {
      const out = await checkOutputFile('--out', flags.out, { ext: '.png', what: 'the PNG', writes: 'nsd image writes PNG images', inputs: [['--captions', flags.captions]] });
      const id = integerFlag(flags.id, '--id', 1);
      const size = flags.size !== undefined ? integerFlag(flags.size, '--size', 1, 4096) : undefined;
      // captions given with --captions must load (a missing or malformed file was passed over in silence); the
      // COCO ones looked up by default are shown when there
      const caps = flags.captions !== undefined ? await loadNsdCaptions(flags.root, flags.captions) : await loadNsdCaptions(flags.root).catch(() => null);
      const stimuli = await NsdStimuli.open(flags.root);
      let img;
      try {
        img = stimuli.image(id, size);
      } finally {
        stimuli.close();
      }
      await writePng(out, { data: img.data, count: 1, height: img.height, width: img.width });
      console.log(`wrote ${out} (${img.width}×${img.height})`);
      for (const c of caps?.get(id) ?? []) console.log(`  ${c}`);
    });
}
