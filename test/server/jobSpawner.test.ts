/**
 * The job spawner: the service's jobs run in processes that a small spawner process forks (never the service),
 * report progress through it, are cancelled through it, and a job's process or the spawner itself dying fails the
 * jobs concerned and nothing else.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { RidgeFitConfig } from '../../ts/config/ridgeFit.js';
import { CancelledError } from '../../ts/errors.js';
import { writeNpy } from '../../ts/io/npy.js';
import { RidgeModel } from '../../ts/ridge/RidgeModel.js';
import type { JobControl, StageUpdate } from '../../ts/server/jobs/executeJob.js';
import { newJobId, type JobSpec } from '../../ts/server/jobs/JobRunner.js';
import { JobFailedError } from '../../ts/server/jobs/jobProcess.js';
import { JobSpawner } from '../../ts/server/jobs/jobSpawner.js';
import { autogroupNice, JOB_NICENESS } from '../../ts/server/jobs/jobPriority.js';
import { rng } from '../helpers/random.js';
import { until } from './helpers.js';

let root: string;

async function writeProblem(name: string, n: number, p: number, t: number): Promise<void> {
  const g = rng(11);
  await writeNpy(join(root, `${name}-x.npy`), new Float32Array(n * p).map(() => g()), [n, p]);
  await writeNpy(join(root, `${name}-y.npy`), new Float32Array(n * t).map(() => g()), [n, t]);
}

/**
 * A ridge-fit job on the problem `name`; `long`: ~90 target batches of 50 alphas each (~4 s), long enough to be
 * interrupted in its fit whatever the load (as in jobs.test.ts).
 */
function fitSpec(name: string, out: string, long = false): JobSpec {
  const config: RidgeFitConfig = {
    out: join(root, out),
    x: join(root, `${name}-x.npy`),
    y: join(root, `${name}-y.npy`),
    groups: null,
    alphas: (long ? Array.from({ length: 50 }, (_, i) => 10 ** (1 + (4 * i) / 49)) : [10, 100, 1000, 1e4, 1e5]) as unknown as RidgeFitConfig['alphas'],
    folds: 3,
    score: 'r2',
    fitIntercept: true,
    standardize: false,
    route: long ? 'primal' : 'auto',
    cvMethod: long ? 'per-fold' : 'auto',
    eigPrecision: 'auto',
    memoryGiB: long ? 0.0026 : 1,
  };
  return { id: newJobId('ridge-fit'), kind: 'ridge-fit', out: config.out, outShown: out, input: { kind: 'ridge-fit', config } };
}

/** A job's control that records its progress and can call `onProgress` on each report. */
function control(onProgress?: (p: StageUpdate) => void) {
  const controller = new AbortController();
  const seen: StageUpdate[] = [];
  const c: JobControl = {
    signal: controller.signal,
    progress: (p) => {
      seen.push(p);
      onProgress?.(p);
    },
  };
  return { control: c, controller, seen };
}

const inFit = (p: StageUpdate) => p.stage === 'fit' && p.fraction > 0;

/** The parent's pid of a process (Linux's /proc), or undefined where there is no /proc. */
function parentOf(pid: number): number | undefined {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return undefined;
  // "pid (comm) state ppid ...": comm may hold spaces, so read after its closing parenthesis
  const text = readFileSync(stat, 'utf8');
  return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1]);
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

let spawner: JobSpawner;
beforeAll(async () => {
  root = realpathSync(mkdtempSync(join(tmpdir(), 'bl-spawner-')));
  await writeProblem('small', 120, 20, 30);
  await writeProblem('long', 300, 150, 6000);
  spawner = new JobSpawner({ killAfterMs: 60_000 });
  spawner.start();
});
afterAll(async () => {
  await spawner?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('JobSpawner', () => {
  it("runs a job in a process forked by the spawner, not by the service, and relays its progress and result", async () => {
    let parent: number | undefined;
    const c = control(() => {
      if (parent === undefined && spawner.jobPids().length === 1) parent = parentOf(spawner.jobPids()[0]) ?? -1;
    });
    const result = await spawner.run(fitSpec('small', 'fits/small'), c.control, { cwd: root });
    expect(result).toMatchObject({ model: 'model.safetensors', samples: 120, features: 20, targets: 30 });
    expect((await RidgeModel.load(join(root, 'fits', 'small', 'model.safetensors'))).nTargets).toBe(30);
    // every stage reported, in order
    expect([...new Set(c.seen.map((p) => p.stage))]).toEqual(['load', 'fit', 'save']);
    if (parent !== -1) {
      expect(parent).toBe(spawner.pid);
      expect(parent).not.toBe(process.pid);
    }
    expect(spawner.jobPids()).toEqual([]);
  });

  it("runs a job below the service's CPU priority: its nice value and, where the kernel has autogroups, an autogroup of its own", async () => {
    // The job's process is stopped (SIGSTOP) in the handler of its fit's first progress, and continued once looked at,
    // as it is cancelled: the looks find a process that exists and has not finished (they came after polls every 50 ms,
    // and a fit that ended first, 1.5–3.5 s on CI, left a pid that getPriority could not find, or a job that resolved
    // instead of being cancelled). A stopped process's nice value and autogroup read as a running one's; the spawner,
    // not stopped, lowers the autogroup meanwhile.
    let job = 0;
    const c = control((p) => {
      if (!job && inFit(p)) {
        job = spawner.jobPids()[0];
        process.kill(job, 'SIGSTOP');
      }
    });
    const running = spawner.run(fitSpec('long', 'fits/priority', true), c.control, { cwd: root }).catch((x: unknown) => x);
    await until(() => (job ? true : undefined), 120_000, "the job's fit");
    try {
      const lowered = (n: number) => Math.min(19, n + JOB_NICENESS);
      expect(getPriority(job)).toBe(lowered(getPriority(spawner.pid!)));
      // the spawner's own autogroup is not lowered with it (it relays progress and cancellation at the service's priority)
      const spawnerGroup = await autogroupNice(spawner.pid!);
      if (spawnerGroup !== null) {
        expect(readFileSync(`/proc/${job}/autogroup`, 'utf8').split(' ')[0]).not.toBe(readFileSync(`/proc/${spawner.pid}/autogroup`, 'utf8').split(' ')[0]);
        expect(await until(async () => ((await autogroupNice(job)) === lowered(spawnerGroup) ? true : undefined), 10_000, "the job's autogroup lowered")).toBe(true);
        expect(await autogroupNice(spawner.pid!)).toBe(spawnerGroup);
      }
    } finally {
      // (the cancellation reaches the stopped process's channel; it reads it once continued)
      c.controller.abort(new CancelledError('done looking'));
      process.kill(job, 'SIGCONT');
    }
    expect(await running).toBeInstanceOf(CancelledError);
  });

  it('cancels a running job within its fit: the job ends cancelled and writes no model', async () => {
    const c = control((p) => {
      if (inFit(p)) c.controller.abort(new CancelledError('cancelled by the test'));
    });
    const e = await spawner.run(fitSpec('long', 'fits/cancelled', true), c.control, { cwd: root }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CancelledError);
    expect(Math.max(...c.seen.filter((p) => p.stage === 'fit').map((p) => p.fraction))).toBeLessThan(1);
    expect(c.seen.some((p) => p.stage === 'save')).toBe(false);
    expect(existsSync(join(root, 'fits', 'cancelled', 'model.safetensors'))).toBe(false);
  });

  it("fails a job whose process is killed, naming the signal; the spawner runs the next job", async () => {
    const before = spawner.pid;
    let killed = 0;
    const c = control((p) => {
      if (!killed && inFit(p)) {
        killed = spawner.jobPids()[0];
        process.kill(killed, 'SIGKILL');
      }
    });
    const e = await spawner.run(fitSpec('long', 'fits/killed', true), c.control, { cwd: root }).catch((x: unknown) => x);
    expect(killed).toBeGreaterThan(0);
    expect(e).toBeInstanceOf(JobFailedError);
    expect((e as Error).message).toBe("the job's process died (exit code null, signal SIGKILL)");
    expect(spawner.pid).toBe(before);
    const next = control();
    expect(await spawner.run(fitSpec('small', 'fits/after-kill'), next.control, { cwd: root })).toMatchObject({ targets: 30 });
  });

  it("fails the running job when the spawner dies (its process stops by itself), then starts a new spawner for the next job", async () => {
    const first = spawner.pid!;
    let job = 0;
    // as its fit starts: the whole fit is left, which its process must give up once its channel is gone
    const c = control((p) => {
      if (!job && p.stage === 'fit') {
        job = spawner.jobPids()[0];
        process.kill(first, 'SIGKILL');
      }
    });
    const e = await spawner.run(fitSpec('long', 'fits/orphan', true), c.control, { cwd: root }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(JobFailedError);
    expect((e as Error).message).toBe("the service's job spawner ended (signal SIGKILL); the job's process was told to stop");
    // the job's process lost its channel: it cancels itself at its next step and exits, writing no model
    await until(() => (alive(job) ? undefined : true), 120_000, "the orphaned job's exit");
    expect(existsSync(join(root, 'fits', 'orphan', 'model.safetensors'))).toBe(false);
    const next = control();
    expect(await spawner.run(fitSpec('small', 'fits/after-spawner'), next.control, { cwd: root })).toMatchObject({ targets: 30 });
    expect(spawner.pid).not.toBe(first);
  });

  it('close() cancels a job still running and resolves once the spawner has exited', async () => {
    const own = new JobSpawner({ killAfterMs: 60_000 });
    own.start();
    const pid = own.pid!;
    let closing: Promise<void> | undefined;
    const c = control((p) => {
      if (!closing && inFit(p)) closing = own.close();
    });
    const e = await own.run(fitSpec('long', 'fits/closed', true), c.control, { cwd: root }).catch((x: unknown) => x);
    await closing;
    expect(e).toBeInstanceOf(CancelledError);
    expect(own.pid).toBeUndefined();
    expect(alive(pid)).toBe(false);
    expect(readdirSync(join(root, 'fits')).includes('closed') ? readdirSync(join(root, 'fits', 'closed')).filter((f) => f.endsWith('.safetensors')) : []).toEqual([]);
    await expect(own.run(fitSpec('small', 'fits/after-close'), control().control)).rejects.toThrow('shutting down');
  });
});
