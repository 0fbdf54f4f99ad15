/**
 * run.json's rewrites after a run has started: what computed each finished stage (`stageVersions`, from the stages'
 * markers), and, when a stage fails, that the run failed there and with which error (`failed`).
 *
 * Several processes may rewrite one run.json (a batch's jobs of one analysis that end side by side, in the local
 * runner's pool or in workers sharing the folder). Each rewrite reads run.json and the markers and writes the result
 * under a temporary name renamed into place (writeJsonAtomic), all under a lock file beside it (`.run.json.lock`):
 * without it, a job that read the markers before another job's marker was written could rename its account over the
 * other's, and that stage was gone from run.json until some later job rewrote it (the last job of a failed batch may
 * never come). The lock is held for a read and a write; one whose holder died is taken over (on this host at once, on
 * another once it is older than STALE_MS).
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { LockedError } from '../errors.js';
import { writeJsonAtomic } from '../io/atomicWrite.js';
import { lockPath, type FolderLock } from '../io/folderLock.js';
import { configHash } from './config.js';
import { RUN_JSON_LOCK } from './runFiles.js';
import { paths, readManifest, type RunFailure, type RunManifest } from './runFolder.js';
import { stageVersionsSummary } from './stageVersions.js';

export { RUN_JSON_LOCK };

/** How often a rewrite waiting for another's lock looks again, and how long it waits before giving up. */
const POLL_MS = 10;
const GIVE_UP_MS = 120_000;
/** A lock of another host (whose process cannot be looked at from here) this much older than now is a dead holder's: a rewrite takes milliseconds. */
const STALE_MS = 30_000;

async function lockRunJson(out: string): Promise<FolderLock> {
  const path = join(out, RUN_JSON_LOCK);
  const stale = () => {
    try {
      return Date.now() - statSync(path).mtimeMs > STALE_MS;
    } catch {
      return true;
    }
  };
  const t0 = Date.now();
  for (;;) {
    try {
      return await lockPath(path, `run.json of ${out}`, undefined, { supersedes: stale });
    } catch (e) {
      if (!(e instanceof LockedError) || Date.now() - t0 > GIVE_UP_MS) throw e;
      await sleep(POLL_MS);
    }
  }
}

/**
 * Rewrites run.json of `config`'s run folder as `change` makes it from what it holds now, under the folder's run.json
 * lock (what `change` reads, the stage markers, is read under it too). Nothing when run.json is not this config's run
 * (none yet, another config's, a clearing), or when `change` returns null.
 */
export async function updateRunJson(config: { out: string }, change: (m: RunManifest<unknown>) => Promise<RunManifest<unknown> | null>): Promise<void> {
  if ((await readManifest(config.out)) === null) return;
  const lock = await lockRunJson(config.out);
  try {
    const m = await readManifest(config.out);
    if (m === null || m.configHash !== configHash(config)) return;
    const next = await change(m);
    if (next !== null) await writeJsonAtomic(paths(config.out).run, next);
  } finally {
    await lock.release();
  }
}

/**
 * Rewrites run.json's `stageVersions` from the markers as they are now, the rest of it as it is (a batch's jobs:
 * each after its stage, the last one of the analysis after all). `done`: the stage (id) a job has just finished — a
 * `failed` record of that stage (or of one of its parts: `img2img[<shard>]`) is dropped, the stage being done now.
 */
export async function recordStageVersions(config: { out: string }, stages: readonly string[], done?: string): Promise<void> {
  await updateRunJson(config, async (m) => {
    const { failed, ...rest } = m;
    const cleared = failed !== undefined && done !== undefined && (failed.stage === done || failed.stage.startsWith(`${done}[`));
    return { ...rest, ...(failed && !cleared ? { failed } : {}), stageVersions: await stageVersionsSummary(config, stages) };
  });
}

/** The error as run.json's `failed` records it: its class and message ('ShapeError: features/z.npy: …'). */
export function failureMessage(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}

/**
 * Records in run.json that the run failed in stage `stage` (or a part of one: `img2img[<shard>]`) with `error`:
 * `failed` (the stage, the error's class and message, when), `stageVersions` from the markers of `finished` (the
 * stages that finished: a single run's, those before the one that failed; a stage's marker from an earlier run is no
 * record of this one), and, where given, `versions` (the failed process's, with the ONNX Runtime its stages ran on so
 * far). Never throws: the run's own error is what its caller reports.
 */
export async function recordRunFailure(
  config: { out: string },
  finished: readonly string[],
  stage: string,
  error: unknown,
  versions?: Record<string, string>,
): Promise<void> {
  const failed: RunFailure = { stage, error: failureMessage(error), at: new Date().toISOString() };
  await updateRunJson(config, async (m) => ({ ...m, ...(versions ? { versions } : {}), stageVersions: await stageVersionsSummary(config, finished), failed })).catch(() => undefined);
}
