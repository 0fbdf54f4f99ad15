/**
 * A batch's run folders and their locks (ts/io/folderLock.ts), as `reconstruct` and `encode` hold theirs:
 * - the local runner (`batch run` without Redis) locks every run folder of its plan before any job starts and holds
 *   them to the end (lockPlanFolders); its jobs, in its pool's processes, run under those locks (they are told the
 *   tokens: NodeControl.runnerLocks);
 * - a job with no runner's lock (a BullMQ worker's) locks its run folder for its own duration, except an img2img
 *   shard: the shards of a folder run in parallel by design, so a shard only checks that no other run holds it.
 * Every job of an analysis but its extract (which claims the folder) also checks that the folder still holds its
 * config's run before it writes: another batch's or run's --force may have taken it over since (runFolderTakenOver).
 */
import { checkFolderFree, readLockHolder, type FolderLock } from '../io/folderLock.js';
import { PreflightError } from '../pipeline/errors.js';
import type { BatchNode, BatchPlan } from './graph.js';
import { planNodes } from './graph.js';
import { batchFolderRemedy } from './preflight.js';

const runFolder = () => import('../pipeline/runFolder.js');

/** The config of the analysis whose run folder (its `out`) a job works in; null for a subject's jobs (betas, shared features, its join) and probes. */
export function jobConfig(node: BatchNode): { out: string } | null {
  const w = node.work;
  switch (w.kind) {
    case 'stage':
    case 'shard':
    case 'merge':
    case 'encodeStage':
      return w.config;
    case 'featuresLink':
      return w.consumer.config;
    default:
      return null;
  }
}

/** The job that claims its analysis's run folder (clears it with --force, writes run.json): the extract stage. */
const claimsFolder = (node: BatchNode) => (node.work.kind === 'stage' || node.work.kind === 'encodeStage') && node.work.stage === 'extract';

/** The run folders' locks a local runner holds: run folder → the lock's token (what its jobs are told). */
export interface PlanLocks {
  tokens: Record<string, string>;
  release(): Promise<void>;
}

/**
 * Locks every run folder of `plan` for this process, or throws the LockedError of the first one a live other
 * process holds (naming it and the folder), having released those it took.
 */
export async function lockPlanFolders(plan: BatchPlan): Promise<PlanLocks> {
  const { lockRunFolder } = await runFolder();
  const folders = [...new Set(planNodes(plan).flatMap((n) => jobConfig(n)?.out ?? []))].sort();
  const locks: FolderLock[] = [];
  const release = async () => {
    await Promise.all(locks.map((l) => l.release()));
  };
  try {
    for (const f of folders) locks.push(await lockRunFolder(f));
  } catch (e) {
    await release();
    throw e;
  }
  return { tokens: Object.fromEntries(locks.map((l) => [l.dir, l.holder.token])), release };
}

/**
 * Runs a job in its run folder as the header says: under its runner's lock when it was given that lock's token and
 * the lock is still that one; else under its own lock (a shard: after checking no other run holds the folder). A
 * folder held by a live other process fails the job with LockedError (retried, like any transient failure: the
 * other run ends); one that another config's run took over fails it with a PreflightError (not retried).
 */
export async function withJobFolder<T>(node: BatchNode, runnerLocks: Readonly<Record<string, string>> | undefined, fn: () => Promise<T>): Promise<T> {
  const config = jobConfig(node);
  if (config === null) return fn();
  const { out } = config;
  const { lockRunFolder, runFolderTakenOver } = await runFolder();
  const token = runnerLocks?.[out];
  const underRunner = token !== undefined && (await readLockHolder(out))?.token === token;
  let lock: FolderLock | null = null;
  if (!underRunner) {
    if (node.work.kind === 'shard') await checkFolderFree(out);
    else {
      // the command names the job: an earlier attempt of it on another host, which the queue took from its worker
      // (a lease that expired: a dead worker), is replaced; any other holder there is left to the user
      const command = `brainlatent batch job ${node.id}`;
      lock = await lockRunFolder(out, command, { supersedes: (h) => h.command === command });
    }
  }
  try {
    if (!claimsFolder(node)) {
      const taken = await runFolderTakenOver(config, batchFolderRemedy('job', node.batch));
      if (taken) throw new PreflightError([taken], `job ${node.id}`);
    }
    return await fn();
  } finally {
    await lock?.release();
  }
}
