/** `brainlatent batch run|plan MANIFEST`: every subject × analysis of a manifest, here or through BullMQ. */
import type { Command } from 'commander';

import { InvalidArgumentError } from '../../errors.js';
import { planBatch, planNodes, widenedShards } from '../../batch/graph.js';
import { BatchClaimedError, cancelBatch, claimWords, getBatchStatus, listBatches, listClaims, retryBatch, watchBatch, type CancelResult } from '../../batch/inspect.js';
import { loadManifest, type ResolvedBatch } from '../../batch/manifest.js';
import { MAX_JOB_PROCESSES } from '../../batch/pool.js';
import { BatchPreflightError, checkBatch, forcedReplacements, formatProblems, formatWarnings, requirePreflight, type BatchCommand, type BatchProblem } from '../../batch/preflight.js';
import { parseJobTimeout } from '../../batch/jobTimeout.js';
import { redisConnection, shownRedisUrl } from '../../batch/redis.js';
import { runBatch, type BatchReport } from '../../batch/runBatch.js';
import { formatSummary, type BatchEvent } from '../../batch/status.js';
import { submitBatch, type ExistingState, type SubmitResult } from '../../batch/submit.js';
import { renderTable } from '../../batch/table.js';
import { counted } from '../../plural.js';
import { integerFlag } from '../flagValue.js';
import { formatDuration } from '../progress.js';
import { endWhenStdoutCloses } from '../setup.js';
import { stopOnSignals } from '../stopSignals.js';

/** A non-negative integer flag, or undefined when not given. */
export function nonNegativeInt(v: string | undefined, name: string): number | undefined {
  return v === undefined ? undefined : integerFlag(v, `--${name}`, 0);
}

/**
 * A running job's progress line comes this long after its start or its last one: every 10 s in its first minute,
 * then every minute (a 30 min decoders job logs ~30 lines, not one per report).
 */
function progressLineEveryMs(elapsedMs: number): number {
  return elapsedMs < 60_000 ? 10_000 : 60_000;
}

/**
 * One line per job that changes state (logs), on stderr: "started" once per attempt (a job's progress reports,
 * at fraction 0 or not, are not new starts), "(attempt N)" when it is retried; and while it runs, its progress now
 * and then (progressLineEveryMs), with the time left at its pace since its first report: `batch run` without Redis
 * has no `batch watch`, and a job of half an hour printed nothing between "started" and "done" (review s44).
 */
export function eventLogger(write: (line: string) => void = (l) => process.stderr.write(l)): (e: BatchEvent) => void {
  // per job: the attempt whose start was logged while it is active, else undefined
  const started = new Map<string, number | undefined>();
  // per active job: when its attempt started, when its last line was written (the events' clock), and its first
  // progress report (the pace is measured from there: not the start-up before it, nor samples an earlier run made,
  // which a resumed shard reports at once)
  const shown = new Map<string, { since: number; last: number; from?: { at: number; f: number } }>();
  const clock = (at: number) => new Date(at).toISOString().slice(11, 19);
  return (e) => {
    // (batch run --redis) a stall or outage while waiting for the batch: said once, and once when Redis answers again
    if (e.type === 'redis' && e.redis) {
      write(`batch ${e.batch}: ${e.redis.message}${e.redis.answering ? '' : ': still watching, trying again every 1 s'}\n`);
      return;
    }
    if (e.type !== 'job' || !e.job) return;
    const j = e.job;
    if (j.state === 'active') {
      if (started.get(j.id) === j.attempts) {
        const t = shown.get(j.id);
        if (!t) return;
        // (a fraction that goes back: the job started over, e.g. taken by another worker)
        if (j.fraction > 0 && (!t.from || j.fraction < t.from.f)) t.from = { at: e.at, f: j.fraction };
        if (j.fraction > 0 && e.at - t.last >= progressLineEveryMs(e.at - t.since)) {
          t.last = e.at;
          const f = Math.min(1, j.fraction);
          const rate = t.from && e.at > t.from.at ? (f - t.from.f) / (e.at - t.from.at) : 0;
          const left = rate > 0 ? `~${formatDuration((1 - f) / rate / 1000)} left` : 'time left not known yet';
          write(`${clock(e.at)} ${j.id} ${(100 * f).toFixed(0)}%${j.message ? ` ${j.message}` : ''} · ${formatDuration((e.at - t.since) / 1000)} elapsed, ${left}\n`);
        }
        return;
      }
      started.set(j.id, j.attempts);
      shown.set(j.id, { since: e.at, last: e.at });
    } else {
      started.delete(j.id);
      shown.delete(j.id);
    }
    const what = j.state === 'active' ? `started${j.attempts > 1 ? ` (attempt ${j.attempts})` : ''}` : j.state;
    const secs = j.seconds !== undefined && j.state === 'done' ? ` in ${j.seconds.toFixed(1)} s` : '';
    write(`${clock(e.at)} ${j.id} ${what}${secs}${j.reason ? `: ${j.reason}` : ''}\n`);
  };
}

/** `batch plan`'s last line: "13 jobs, 1 subject; preflight: 1 problem, 2 warnings" (null: the preflight was skipped). */
export function planSummaryLine(jobs: number, subjects: number, preflight: { problems: number; warnings: number } | null): string {
  const head = `${counted(jobs, 'job')}, ${counted(subjects, 'subject')}`;
  if (!preflight) return `${head}; preflight skipped`;
  const warned = preflight.warnings ? `, ${counted(preflight.warnings, 'warning')}` : '';
  return `${head}; preflight: ${preflight.problems ? counted(preflight.problems, 'problem') : 'no problems'}${warned}`;
}

/**
 * What `batch cancel` did, on one line: a batch that had already finished says so, and that nothing was cancelled; a
 * purge whose running jobs did not stop in time says that it purged nothing (the caller exits non-zero).
 */
export function cancelLine(id: string, r: CancelResult, purge: boolean, subjects?: string[]): string {
  if (subjects?.length) {
    const which = `${subjects.length > 1 ? 'subjects' : 'subject'} ${subjects.join(', ')}`;
    if (r.finished) {
      const counts = Object.entries(r.finished.counts).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`).join(', ');
      return `batch ${id}: ${which} had already finished (${r.finished.state}: ${counts || 'no jobs'}); nothing was cancelled`;
    }
    const running = r.running ? `, ${r.running} running (they stop at their next progress report)` : '';
    return `batch ${id}: ${which} cancelled; ${counted(r.removed, 'job')} removed${running}; the other subjects go on`;
  }
  if (r.claim) {
    const held = r.claimHolders?.length ? ` held by ${r.claimHolders.length > 1 ? 'jobs' : 'job'} ${r.claimHolders.join(', ')} of the service that accepted it` : '';
    return `batch ${id}: not submitted yet; purged: a service's claim on the name (plan ${r.claim}${held}) removed`;
  }
  if (r.notPurged?.length) {
    const n = r.notPurged.length;
    return (
      `batch ${id}: cancelled; ${counted(r.removed, 'job')} removed; not purged: ${counted(n, 'job')} still running (${r.notPurged.join(', ')}); ` +
      `the batch's record stays (its name is still taken): run the purge again when ${n > 1 ? 'they stop' : 'it stops'}`
    );
  }
  if (!r.finished && purge) return `batch ${id}: cancelled and purged; ${counted(r.removed, 'job')} removed${r.running ? ` (${r.running} of them once ${r.running > 1 ? 'they' : 'it'} had stopped running)` : ''}`;
  const running = r.running ? `, ${r.running} running (they stop at their next progress report)` : '';
  if (!r.finished) return `batch ${id}: cancelled; ${counted(r.removed, 'job')} removed${running}`;
  const counts = Object.entries(r.finished.counts).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`).join(', ');
  const had = `batch ${id}: had already finished (${r.finished.state}: ${counts || 'no jobs'})`;
  return purge ? `${had}; purged: ${counted(r.removed, 'job')} removed${running}` : `${had}; nothing was cancelled`;
}

/**
 * What `batch submit` did: the subjects added, those already submitted by the state they are in (done, failed,
 * running, queued), and what to follow it with: a watch while anything is to run, else its status (and for failed
 * subjects, retry). `redis` is the URL as shown (without its password).
 */
export function submitLines(r: SubmitResult & { plan: { subjects: unknown[] } }, redis: string): string {
  const states: ExistingState[] = ['running', 'queued', 'done', 'failed'];
  const by = (st: ExistingState) => r.existing.filter((s) => (r.existingStates[s] ?? 'queued') === st);
  const already = states.filter((st) => by(st).length).map((st) => `${st}: ${by(st).join(', ')}`);
  const head =
    `batch ${r.batch}: ${counted(r.jobs, 'job')} for ${counted(r.plan.subjects.length, 'subject')}; added ${r.added.join(', ') || 'nothing'}` +
    `${already.length ? `; already submitted (${already.join('; ')})` : ''}` +
    `${r.busy.length ? `; a cancelled job still runs, submit again later: ${r.busy.join(', ')}` : ''}`;
  const toRun = r.added.length + by('running').length + by('queued').length;
  const lines = [head];
  if (toRun) lines.push(`follow it with: brainlatent batch watch ${r.batch} --redis ${redis}`);
  else if (!r.busy.length) lines.push(`nothing is left to run; its summary: brainlatent batch status ${r.batch} --redis ${redis}`);
  if (by('failed').length) lines.push(`to run the failed subjects again: brainlatent batch retry ${r.batch} --redis ${redis}`);
  return lines.join('\n');
}

export function printReport(r: BatchReport, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify({ batch: r.batch, state: r.state, counts: r.counts, summary: r.summary }, null, 2)}\n`);
    return;
  }
  const warnings = new Set(r.summary.flatMap((c) => c.warnings ?? [])).size;
  const warned = warnings ? `; ${counted(warnings, 'warning')} (above)` : '';
  process.stdout.write(`${formatSummary(r.summary)}\n\nbatch ${r.batch}: ${r.state} (${Object.entries(r.counts).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`).join(', ')})${warned}\n`);
}

const NO_PREFLIGHT = 'skip the preflight of each subject × analysis here (for data and models that exist only where the workers run)';

const FORCE =
  "replace a run folder whose run is of another config (an analysis's config edited in the manifest): its run's outputs go, " +
  'files of yours there stay; folders of this config resume as always';

const JOB_TIMEOUT =
  "time limit of each job (not the joins), as sbatch's --time: Slurm's MM:SS, HH:MM:SS, D-HH[:MM[:SS]], or 90s, 45m, 2h, 1h30m; " +
  'past it the job\'s process is killed and the attempt fails (retried as any transient failure); default none';

/** --job-timeout's value in ms, checked here (an error naming the flag), or undefined when not given. */
const jobTimeoutFlag = (v: string | undefined): number | undefined => (v === undefined ? undefined : parseJobTimeout(v, '--job-timeout'));

const RETRY_FORCE =
  "as 'batch submit --force', for the subjects it resubmits: replace a run folder whose run is of another config " +
  "(the batch's config edited since that folder was written): its run's outputs go, files of yours there stay; folders of this config resume as always";

/** The preflight's warnings on stderr, one line each (a session missing between sessions with betas). */
function printBatchWarnings(warnings: BatchProblem[]): void {
  for (const w of formatWarnings(warnings)) process.stderr.write(`warning: ${w}\n`);
}

/**
 * The manifest, validated, with each subject × analysis's preflight passed on this machine unless skipped; its
 * warnings printed, and with --force the run folders it will replace.
 */
async function checkedManifest(file: string, preflight: boolean, refused: string, command: BatchCommand, force = false): Promise<ResolvedBatch> {
  const batch = await loadManifest(file);
  if (preflight) printBatchWarnings(await requirePreflight(batch, { refused, skip: '--no-preflight' }, { force, command }));
  if (force) for (const line of await forcedReplacements(batch)) process.stderr.write(`--force: ${line}\n`);
  return batch;
}

const MANIFEST_HELP = `
The manifest (JSON) lists subjects and analyses; each analysis is a reconstruct or encode config used as a
template ({subject}, {subj}, {name} are substituted; out, nsd.root and nsd.subject are filled in):

  { "name": "nsd4", "out": "runs/nsd4", "nsd": { "root": "/data/nsd" },
    "subjects": [1, 2, 5, { "subject": 7, "overrides": { "recon": { "img2img": { "seeds": 1 } } } }],
    "analyses": [
      { "name": "recon", "kind": "reconstruct", "config": { "model": { "dir": "models/sd-v1-4-onnx" } },
        "shards": { "images": 64, "seeds": 1 } },
      { "name": "enc", "kind": "encode", "config": { "model": "models/sd-v1-4-onnx",
        "featureSets": [{ "name": "z", "kind": "z" }, { "name": "c", "kind": "c" }] } } ] }

Outputs: <out>/<subject>/<analysis>/ (a run folder each), <out>/<subject>/cache (the subject's
extraction, shared by its analyses), <out>/batch.json (the job graph), and from 'batch run' (with or without
--redis) <out>/summary.json; a submitted batch's summary is 'batch status BATCH --redis URL --json'.
See docs/batch.md.`;

export function registerBatchCommand(program: Command): void {
  const batch = program
    .command('batch')
    .description('many subjects × analyses: the whole job graph here (default) or spread over workers through BullMQ and Redis')
    .addHelpText('after', MANIFEST_HELP);

  batch
    .command('run <manifest>')
    .description('run every job of the manifest: here with a pool of worker processes (default), or through BullMQ with --redis; prints the summary per subject × stage')
    .option('--concurrency <n>', `jobs at once, each in a process of its own (at most ${MAX_JOB_PROCESSES}): here, the pool of job processes (default half the cores); with --redis, the job processes of the one worker started here, serving all queues together (default 1; 0: start no worker here)`)
    .option('--redis <url>', 'go through BullMQ on this Redis (redis://host:port/db): submit, start one worker here (--concurrency jobs at once, any queue; 0: none) and wait until the batch is done, by it and the workers elsewhere')
    .option('--json', 'print the summary as JSON')
    .option('--no-preflight', NO_PREFLIGHT)
    .option('--force', FORCE)
    .option('--job-timeout <duration>', JOB_TIMEOUT)
    .addHelpText(
      'after',
      `
Before anything runs, each subject × analysis gets the checks of 'reconstruct --dry-run' / 'encode --dry-run'
(model folder, NSD data, sizes, betas) on this machine; any problem is listed and nothing runs (--no-preflight
skips them). Stages whose outputs are complete are skipped, so running a finished manifest again does nothing, and an
interrupted batch resumes. A subject whose inputs are broken fails alone (with the reason); the others go on.
An analysis whose config was edited since its run folder was written is refused (its folder holds the other
config's outputs); --force replaces that run, and 'batch plan --force' lists the folders it would replace (for
the failed subjects of a batch already submitted through Redis: 'batch retry NAME --redis URL --force').
Exit status 1 when any job failed.

Examples:
  brainlatent batch run nsd.json --concurrency 2
  brainlatent batch run nsd.json --redis redis://queue-host:6379 --concurrency 0   # workers run elsewhere
  brainlatent batch run nsd.json --json > summary.json
  brainlatent batch run nsd.json --force                  # an analysis's config was edited: replace its runs`,
    )
    .action(async (file: string, f: { concurrency?: string; json?: boolean; redis?: string; preflight: boolean; force?: boolean; jobTimeout?: string }) => {
      // (an empty --redis is refused, not taken as none: the batch ran here)
      if (f.redis !== undefined) redisConnection(f.redis);
      const jobTimeoutMs = jobTimeoutFlag(f.jobTimeout);
      const concurrency = f.concurrency === undefined ? undefined : integerFlag(f.concurrency, '--concurrency', 0, MAX_JOB_PROCESSES);
      // (0 means "no worker here" through Redis; here it would run nothing)
      if (concurrency === 0 && !f.redis) throw new InvalidArgumentError('--concurrency 0 runs no job here: give 1 or more (0 is for --redis: start no worker here, the workers elsewhere take the jobs)');
      // (through Redis, a subject submitted before is not resubmitted by a run: the remedy names retry too)
      const manifest = await checkedManifest(file, f.preflight, 'nothing was run', f.redis ? 'job' : 'run', f.force);
      // Ctrl-C or SIGTERM cancels the run's jobs at their next step
      const ac = stopOnSignals();
      const r = await runBatch(manifest, { concurrency, redis: f.redis, signal: ac.signal, onEvent: eventLogger(), force: f.force, jobTimeoutMs }).finally(() => ac.dispose());
      printReport(r, !!f.json);
      if (r.state !== 'done') process.exitCode = 1;
    });

  batch
    .command('submit <manifest>')
    .description('validate the manifest, add its jobs to the queues on Redis and return (workers take them: brainlatent worker)')
    .requiredOption('--redis <url>', 'Redis of the queues, redis://host:port/db')
    .option('--no-preflight', NO_PREFLIGHT)
    .option('--force', FORCE)
    .option('--job-timeout <duration>', `${JOB_TIMEOUT}; kept with the batch (its jobs, batch.json): every worker holds each job to it`)
    .addHelpText(
      'after',
      `
Before anything is submitted, each subject × analysis gets the checks of 'reconstruct --dry-run' / 'encode
--dry-run' (model folder, NSD data, sizes, betas) on this machine; any problem is listed and nothing is
submitted. Workers may see paths this machine does not: --no-preflight skips the checks (the workers' jobs check
again when they run). --force: as 'batch run --force' (a batch submitted before keeps its subjects' jobs: retry
its failed subjects with 'batch retry NAME --redis URL --force').`,
    )
    .action(async (file: string, f: { redis: string; preflight: boolean; force?: boolean; jobTimeout?: string }) => {
      const jobTimeoutMs = jobTimeoutFlag(f.jobTimeout);
      const r = await submitBatch(await checkedManifest(file, f.preflight, 'nothing was submitted', 'submit', f.force), { redis: f.redis, force: f.force, jobTimeoutMs });
      process.stdout.write(`${submitLines(r, shownRedisUrl(f.redis))}\n`);
    });

  batch
    .command('status [batch]')
    .description("the state of a submitted batch: one line per subject × stage (no batch: list the batches, and the names a service's job claimed but has not submitted yet)")
    .requiredOption('--redis <url>', 'Redis of the queues')
    .option('--json', 'every job and the summary as JSON, for scripts')
    .action(async (id: string | undefined, f: { redis: string; json?: boolean }) => {
      if (!id) {
        const claims = await listClaims({ redis: f.redis });
        const batches = await listBatches({ redis: f.redis });
        // (--json was ignored here, and an empty Redis printed an empty line; review s45)
        if (f.json) {
          process.stdout.write(`${JSON.stringify({ batches, claimed: claims.map(({ batch, hash, jobs }) => ({ batch, hash, jobs })) }, null, 2)}\n`);
          return;
        }
        const lines = [...batches, ...claims.map((c) => `${c.batch}  (${claimWords(c)}, not submitted yet)`)];
        process.stdout.write(lines.length ? `${lines.join('\n')}\n` : `no batches in ${shownRedisUrl(f.redis)}\n`);
        return;
      }
      let r: Awaited<ReturnType<typeof getBatchStatus>>;
      try {
        r = await getBatchStatus(id, { redis: f.redis });
      } catch (e) {
        // a name a service's job holds and has not submitted yet: a state of its own, not an error
        if (!(e instanceof BatchClaimedError)) throw e;
        const { batch, hash, jobs } = e.claim;
        process.stdout.write(f.json ? `${JSON.stringify({ batch, state: 'claimed', claim: { hash, jobs } }, null, 2)}\n` : `batch ${batch}: ${claimWords(e.claim)}, not submitted yet\n`);
        return;
      }
      if (f.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      else printReport(r, false);
    });

  endWhenStdoutCloses(
    batch
      .command('watch <batch>')
      .description('a live table of a submitted batch (subjects × stages, rate, ETA) until it finishes')
      .requiredOption('--redis <url>', 'Redis of the queues')
      .option('--interval <ms>', 'refresh interval, 100 to 3,600,000', '1000')
      .addHelpText(
        'after',
        `
Exit status: 0 when the batch is done, 1 when it ended failed or cancelled (or could not be watched), 130 when
the watch was interrupted (Ctrl-C): only the watch stops, the batch goes on, and the same command resumes watching.
A Redis that stops answering once the watch has started (down, or stalled: every read waits 2 s at most) is said
once on stderr and retried at every refresh; the watch goes on when it answers again.`,
      )
      .action(async (id: string, f: { redis: string; interval: string }) => {
        const ac = new AbortController();
        process.once('SIGINT', () => ac.abort());
        const tty = process.stdout.isTTY === true;
        let lastPrint = 0;
        let state = 'running';
        // (0 read Redis 10,000 times a second; past a timer's range Node fired it every 1 ms; review s45)
        const intervalMs = integerFlag(f.interval, '--interval', 100, 3_600_000);
        for await (const e of watchBatch(id, { redis: f.redis, intervalMs, signal: ac.signal })) {
          // a stall or outage once watching: said once, retried at every refresh until Redis answers (Ctrl-C stops)
          if (e.redis) process.stderr.write(`batch ${id}: ${e.redis.message}${e.redis.answering ? '' : `: still watching, trying again every ${intervalMs / 1000} s (Ctrl-C stops the watch, not the batch)`}\n`);
          if (!e.status) continue;
          state = e.status.state;
          // redraw in place on a terminal; in a log, a table every 10 s and at the end
          if (tty) process.stdout.write(`\x1b[H\x1b[2J${renderTable(e.status)}\n`);
          else if (Date.now() - lastPrint > 10_000 || e.status.state !== 'running') {
            process.stdout.write(`${renderTable(e.status)}\n\n`);
            lastPrint = Date.now();
          }
        }
        if (ac.signal.aborted && state === 'running') {
          process.stderr.write(`\nbatch ${id}: watch interrupted; the batch goes on. Watch it again with: brainlatent batch watch ${id} --redis ${shownRedisUrl(f.redis)}\n`);
          process.exitCode = 130;
        } else if (state !== 'done') process.exitCode = 1;
      }),
  );

  batch
    .command('cancel <batch>')
    .description('cancel a submitted batch (--subject: only some of its subjects): waiting jobs are removed, running ones stop at their next progress report (a batch that already finished is left as it is; exit status 0)')
    .requiredOption('--redis <url>', 'Redis of the queues')
    .option('--purge', "also remove its finished jobs and its record (the name can be reused; outputs on disk stay), once its running jobs have stopped; a name a service's job only claimed: remove the claim")
    .option('--wait <seconds>', 'with --purge: how long to wait for running jobs to stop before giving up (exit status 1, nothing purged)', '60')
    .option(
      '--subject <names>',
      "cancel only this subject's jobs (its name in the batch: subj01, or the manifest's name for it), the others go on; repeat it, or list names with commas",
      (v: string, prev: string[] = []) => [...prev, ...v.split(',').map((s) => s.trim())],
    )
    .action(async (id: string, f: { redis: string; purge?: boolean; wait: string; subject?: string[] }, cmd: Command) => {
      // (a --wait without --purge did nothing, unsaid; review s45)
      if (cmd.getOptionValueSource('wait') === 'cli' && !f.purge) throw new InvalidArgumentError('--wait: only with --purge (a cancel without it does not wait: running jobs stop at their next progress report)');
      if (f.subject?.some((s) => s === '')) throw new InvalidArgumentError(`--subject: expected subject names (subj01, or subj01,subj02), got an empty one in '${f.subject.join(',')}'`);
      if (f.subject && f.purge) throw new InvalidArgumentError('--subject: not with --purge (a purge removes the whole batch and its record; cancel the subject, or purge the batch)');
      const subjects = f.subject ? [...new Set(f.subject)] : undefined;
      const waitMs = integerFlag(f.wait, '--wait', 0, Math.floor(2 ** 31 / 1000) - 1) * 1000;
      let told = -Infinity;
      const onWait = (running: string[], seconds: number) => {
        // a line when the wait starts, then every 10 s
        if (seconds - told < 10) return;
        told = seconds;
        process.stderr.write(`batch ${id}: waiting for ${counted(running.length, 'running job')} to stop before purging (${running.join(', ')}; ${Math.round(seconds)} s of at most ${waitMs / 1000} s)\n`);
      };
      const r = await cancelBatch(id, { redis: f.redis, purge: f.purge, waitMs, onWait, subjects });
      process.stdout.write(`${cancelLine(id, r, !!f.purge, subjects)}\n`);
      if (r.notPurged?.length) process.exitCode = 1;
    });

  batch
    .command('retry <batch>')
    .description('run the failed and cancelled subjects of a batch again (finished stages are skipped); their inputs are checked first, as by submit')
    .requiredOption('--redis <url>', 'Redis of the queues')
    .option('--no-preflight', NO_PREFLIGHT)
    .option('--force', RETRY_FORCE)
    .option('--job-timeout <duration>', "the resubmitted subjects' time limit per job, in place of the one the batch was submitted with (as batch submit's)")
    .addHelpText(
      'after',
      `
The subjects it resubmits are those whose jobs failed or were cancelled; their jobs are the batch's as submitted
(the plan saved in <out>/batch.json), so a config edited in the manifest since is not read here. A subject that
failed because its run folder holds another config's run (the batch's config changed since that folder was
written) fails again unless --force replaces that run, as 'batch submit --force' would; the folders it replaces
are listed first. Without --force the preflight refuses such a folder and names this remedy.

Examples:
  brainlatent batch retry nsd4 --redis redis://queue-host:6379
  brainlatent batch retry nsd4 --redis redis://queue-host:6379 --force   # replace runs of another config`,
    )
    .action(async (id: string, f: { redis: string; preflight: boolean; force?: boolean; jobTimeout?: string }) => {
      const r = await retryBatch(id, { redis: f.redis, preflight: f.preflight, force: f.force, jobTimeoutMs: jobTimeoutFlag(f.jobTimeout) });
      for (const line of r.replaces) process.stderr.write(`--force: ${line}\n`);
      process.stdout.write(`batch ${id}: resubmitted ${r.retried.join(', ') || 'nothing'}${r.busy.length ? `; still running, retry later: ${r.busy.join(', ')}` : ''}\n`);
    });

  batch
    .command('plan <manifest>')
    .description('validate the manifest and list the jobs it makes (ids, queues, dependencies), without running anything')
    .option('--json', 'print the plan as JSON')
    .option('--no-preflight', NO_PREFLIGHT)
    .option('--force', `check as 'batch run --force' would run: ${FORCE}; lists the run folders it would replace`)
    .addHelpText(
      'after',
      `
After the jobs, each subject × analysis's problems found by the checks of 'reconstruct --dry-run' / 'encode
--dry-run' on this machine are listed (stderr), and the exit status is 1 if there are any (--no-preflight skips
the checks). Warnings (a session missing between sessions with betas) are listed too and leave the status 0.`,
    )
    .action(async (file: string, f: { json?: boolean; preflight: boolean; force?: boolean }) => {
      const resolved = await loadManifest(file);
      const plan = await planBatch(resolved, { force: f.force });
      const { problems, warnings } = f.preflight ? await checkBatch(resolved, { force: f.force, command: 'plan' }) : { problems: [], warnings: [] };
      const replaced = f.force ? await forcedReplacements(resolved) : [];
      const nodes = planNodes(plan);
      if (f.json) {
        process.stdout.write(`${JSON.stringify(nodes.map(({ work: _w, ...n }) => n), null, 2)}\n`);
      } else {
        for (const n of nodes) process.stdout.write(`${n.id.padEnd(52)} ${n.queue.padEnd(8)} after ${n.deps.length ? n.deps.length > 2 ? `${n.deps.length} jobs` : n.deps.join(', ') : '-'}\n`);
        if (replaced.length) process.stdout.write(`\n${replaced.map((l) => `--force: ${l}`).join('\n')}\n`);
        const widened = widenedShards(resolved, plan);
        if (widened.length) process.stdout.write(`\n${widened.map((l) => `shards: ${l}`).join('\n')}\n`);
        const checked = f.preflight ? { problems: formatProblems(problems).length, warnings: formatWarnings(warnings).length } : null;
        process.stdout.write(`\n${planSummaryLine(nodes.length, plan.subjects.length, checked)}\n`);
      }
      printBatchWarnings(warnings);
      if (problems.length) throw new BatchPreflightError(resolved, problems, { refused: 'the batch cannot be submitted as it is', skip: '--no-preflight' });
    });
}
