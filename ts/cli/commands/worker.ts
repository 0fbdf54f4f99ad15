/** `brainlatent worker --redis URL`: takes batch jobs from the queues until stopped (SIGTERM/SIGINT: finish or return the running jobs, exit). */
import type { Command } from 'commander';

import { InvalidArgumentError } from '../../errors.js';
import { QUEUES, type QueueClass } from '../../batch/graph.js';
import { MAX_JOB_PROCESSES } from '../../batch/pool.js';
import { createWorker, MAX_STALLED_COUNT, MIN_LOCK_MS } from '../../batch/worker.js';
import { MAX_ENGINE_THREADS } from '../../ridge/RidgeCV.js';
import { MAX_TIMER_MS } from '../../ridge/options.js';
import { integerFlag } from '../flagValue.js';

interface Flags {
  redis: string;
  concurrency: string;
  queues?: string;
  lockMs: string;
  stallMs: string;
  maxStalled: string;
  grace: string;
  name?: string;
  threads?: string;
  poll?: string;
}

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description('take batch jobs (brainlatent batch submit) from the queues on Redis and run them, until stopped')
    .requiredOption('--redis <url>', 'Redis of the queues, redis://host:port/db')
    .option('--concurrency <n>', `jobs at once in this worker, whatever their queue (job processes, at most ${MAX_JOB_PROCESSES}; joins run beside them)`, '1')
    .option('--queues <list>', `queues to take jobs from, of ${QUEUES.join(', ')} (default all)`)
    .option('--lock-ms <ms>', "a job's lock, renewed every quarter of it by a thread of its own; a killed worker's job returns after about this plus two stall intervals (at least 1000)", '6000')
    .option('--stall-ms <ms>', 'how often stalled jobs are looked for', '2000')
    .option('--max-stalled <n>', `a job that stalls (its worker died or hung) more often than this fails, whatever its attempts: the guard against a job that kills every worker (at most ${MAX_STALLED_COUNT})`, '20')
    .option('--grace <s>', 'on SIGTERM, seconds the running jobs may take to finish before they are returned to the queue', '30')
    .option('--name <name>', 'worker name in `batch status` (default host:pid)')
    .option('--poll <ms>', 'longest wait between two looks at empty queues', '1000')
    .option('--threads <n>', `engine threads (BLAS) per job, at most ${MAX_ENGINE_THREADS}; ONNX Runtime's are the config's model.threads (default, and 0: all cores)`)
    .addHelpText(
      'after',
      `
Queues: data (NSD extraction), compute (decoders, evaluation, reports, encode), sample (the diffusion
model: z and c features, z-only decode, img2img shards; give GPU machines --queues sample), control (joins).
Every worker must see the NSD data, the models and the output folders at the same paths.

Examples:
  brainlatent worker --redis redis://queue-host:6379                       # everything
  brainlatent worker --redis redis://queue-host:6379 --queues sample       # a GPU node
  brainlatent worker --redis redis://queue-host:6379 --queues data,compute,control --concurrency 4

See docs/batch.md (queues, locks and stalled jobs, workers under Slurm or Kubernetes).`,
    )
    .action(async (f: Flags) => {
      const queues = f.queues?.split(',').map((q) => q.trim()).filter(Boolean) as QueueClass[] | undefined;
      for (const q of queues ?? []) if (!QUEUES.includes(q)) throw new InvalidArgumentError(`--queues: '${q}' is not a queue (queues: ${QUEUES.join(', ')})`);
      // (an empty list left a worker that took nothing, forever; review s45)
      if (queues && !queues.length) throw new InvalidArgumentError(`--queues: expected at least one of ${QUEUES.join(', ')}, got '${f.queues}'`);
      const log = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
      // The signal handlers come first: until a handler is installed, SIGTERM ends the process at once (exit by
      // signal), and a supervisor may send it as soon as it reads the ready line below, or while Redis is awaited
      let worker: Awaited<ReturnType<typeof createWorker>> | undefined;
      let stopping = false;
      const close = (w: NonNullable<typeof worker>) =>
        w.close().then(
          () => {
            log('closed');
            process.exit(0);
          },
          (e: unknown) => {
            log(`close failed: ${(e as Error).message}`);
            process.exit(1);
          },
        );
      const stop = (sig: string) => {
        if (stopping) {
          log(`${sig} again: exiting now`);
          process.exit(1);
        }
        stopping = true;
        // while starting (waiting for Redis, say), it has taken no job: nothing to finish
        if (!worker) {
          log(`${sig} before the worker started: exiting`);
          process.exit(0);
        }
        log(`${sig}: finishing the running job(s), then exiting`);
        void close(worker);
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      worker = await createWorker({
        redis: f.redis,
        // a worker with no slots would take nothing: 0 is refused, not read as 1
        concurrency: integerFlag(f.concurrency, '--concurrency', 1, MAX_JOB_PROCESSES),
        queues,
        // (times within setTimeout's range, named by their flags: --grace is in seconds, createWorker's graceMs in ms)
        lockMs: f.lockMs === undefined ? undefined : integerFlag(f.lockMs, '--lock-ms', MIN_LOCK_MS, MAX_TIMER_MS),
        stallMs: integerFlag(f.stallMs, '--stall-ms', 1, MAX_TIMER_MS),
        maxStalledCount: integerFlag(f.maxStalled, '--max-stalled', 0, MAX_STALLED_COUNT),
        graceMs: integerFlag(f.grace, '--grace', 0, Math.floor(MAX_TIMER_MS / 1000)) * 1000,
        name: f.name,
        // checked here, against the engine's cap: a count it refuses would fail every job in its process
        threads: f.threads === undefined ? undefined : integerFlag(f.threads, '--threads', 0, MAX_ENGINE_THREADS),
        pollMs: f.poll === undefined ? undefined : integerFlag(f.poll, '--poll', 0, MAX_TIMER_MS),
        // a worker may start before its Redis (a cluster's jobs start in any order): it says so once and waits
        waitForRedis: true,
        onLog: log,
      });
      log(`worker ${worker.name} ready on ${(queues ?? QUEUES).join(', ')}`);
      await new Promise(() => {});
    });
}
