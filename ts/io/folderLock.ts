/**
 * A lock on an output folder (a run folder) while one process works in it.
 *
 * `const lock = await lockFolder(dir, 'reconstruct')` creates `<dir>/.brainlatent.lock` holding the holder's pid,
 * host, command and start time; `await lock.release()` (or process exit) removes it. A second process asking for
 * the same folder gets a `LockedError` naming the holder. A lock left by a process that died (SIGKILL, a crash,
 * a power cut) is recognised on this host — its pid is gone, or now belongs to a process started later — and is
 * taken over. A lock held from another host is never broken automatically: the error says which file to delete
 * once that run is known to be gone.
 *
 * The lock file is written under a private name and hard-linked into place, so it is never seen half-written and
 * only one of two racing processes can create it.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { link, mkdir, readFile, rename, rm, rmdir, stat, unlink, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { LockedError } from '../errors.js';
import { checkInteger, MAX_TIMER_MS } from '../ridge/options.js';
import { createOnce } from './createOnce.js';
import { PID_NAMESPACE } from './pidNamespace.js';
import { processAlive, processStartTime } from './processAlive.js';

export const LOCK_FILE = '.brainlatent.lock';

export interface LockHolder {
  pid: number;
  host: string;
  /**
   * The holder's PID namespace (Linux; absent in locks written before it was kept): two containers can share a host
   * name and a folder but not their pids, so a live holder in another one looked dead and its lock was taken over,
   * two runs then writing one folder (review s44).
   */
  pidNamespace?: string;
  /** What the holder is doing, e.g. "brainlatent reconstruct --config run.json". */
  command: string;
  startedAt: string;
  /** The holder's kernel start time (Linux), to tell a recycled pid from the holder. */
  processStart: string | null;
  /** Unique per acquisition: a lock is only ever removed by the process that created it. */
  token: string;
}

export class FolderLock {
  private released = false;
  private readonly onExit: () => void;
  private lease: NodeJS.Timeout | undefined;

  constructor(
    readonly dir: string,
    readonly path: string,
    readonly holder: LockHolder,
    /** The folder did not exist before the lock: release removes it again if nothing was written there. */
    private readonly createdDir = false,
  ) {
    // If the process exits without releasing (process.exit after an error), the lock goes with it.
    this.onExit = () => {
      if (!this.released && ownedBy(this.path, this.holder.token)) {
        try {
          unlinkSync(this.path);
        } catch {
          // already gone
        }
      }
    };
    process.once('exit', this.onExit);
  }

  /** Renews the lock file's modification time every `ms` until release (LockOptions.leaseMs). */
  renewEvery(ms: number): void {
    if (this.released || this.lease) return;
    this.lease = setInterval(() => {
      const now = new Date();
      utimes(this.path, now, now).catch(() => undefined);
    }, ms);
    this.lease.unref();
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.lease);
    process.removeListener('exit', this.onExit);
    if (ownedBy(this.path, this.holder.token)) await unlink(this.path).catch(() => undefined);
    if (this.createdDir) await rmdir(this.dir).catch(() => undefined);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

/** The command line of this process, for the lock's `command` field. */
export function currentCommand(): string {
  const args = process.argv.slice(2).join(' ');
  return `${process.argv[1]?.endsWith('main.js') ? 'brainlatent' : process.argv[1] ?? 'node'}${args ? ` ${args}` : ''}`;
}

export interface LockOptions {
  /**
   * A holder on another host that this acquisition replaces, though it cannot be seen to have died: a batch job's
   * earlier attempt, whose worker the queue has taken the job from (its lease expired). A live holder on this host
   * is never replaced.
   */
  supersedes?: (holder: LockHolder) => boolean;
  /**
   * Renew the lock file's modification time every this many ms while the lock is held: a lease, by which a process
   * on another host, which cannot see whether the holder is alive, can tell a holder that died (no renewal) from one
   * at work (lockPath's callers decide from it, with `supersedes`).
   */
  leaseMs?: number;
}

/** Locks `dir` (created if missing) for this process, or throws LockedError naming the live holder. */
export async function lockFolder(dir: string, command = currentCommand(), options: LockOptions = {}): Promise<FolderLock> {
  // (a timer's: NaN or 0 renewed every 1 ms, 2^31 overflowed to 1 ms)
  if (options.leaseMs !== undefined) checkInteger(options.leaseMs, 'leaseMs', 'lockFolder', 1, MAX_TIMER_MS);
  const created = (await mkdir(dir, { recursive: true })) !== undefined;
  return acquire(dir, join(dir, LOCK_FILE), dir, command, created, options);
}

/**
 * Throws the LockedError lockFolder would, without taking the lock: for work that shares a folder with work of its
 * own kind (a batch's img2img shards) but not with a run that holds the folder. A lock left by a dead process of
 * this host is no conflict.
 */
export async function checkFolderFree(dir: string): Promise<void> {
  const path = join(dir, LOCK_FILE);
  const current = await readHolder(path);
  if (typeof current === 'string') return;
  if (!onThisMachine(current) || holderAlive(current)) throw heldError(dir, path, current);
}

/** The error for `what` (lock file `path`) held by `holder`: on another host, how to free it if that run is gone. */
function heldError(what: string, path: string, holder: LockHolder): LockedError {
  const remedy = !onThisMachine(holder) ? `; if that run is gone, delete ${path}` : '';
  return new LockedError(`${what} is in use by ${describe(holder)}${remedy}`, holder);
}

/**
 * Locks one thing in a folder rather than the folder (an entry of a shared cache) with the lock file `path`, as
 * lockFolder locks a folder: LockedError naming a live holder, a dead holder's lock on this host taken over. `what`
 * names the thing in the errors. The folder is created if missing and stays.
 */
export async function lockPath(path: string, what: string, command = currentCommand(), options: LockOptions = {}): Promise<FolderLock> {
  await mkdir(dirname(path), { recursive: true });
  const lock = await acquire(dirname(path), path, what, command, false, options);
  if (options.leaseMs) lock.renewEvery(options.leaseMs);
  return lock;
}

async function acquire(dir: string, path: string, what: string, command: string, created: boolean, options: LockOptions = {}): Promise<FolderLock> {
  const holder: LockHolder = {
    pid: process.pid,
    host: hostname(),
    ...(PID_NAMESPACE ? { pidNamespace: PID_NAMESPACE } : {}),
    command,
    startedAt: new Date().toISOString(),
    processStart: processStartTime(process.pid),
    token: randomBytes(8).toString('hex'),
  };
  const body = `${JSON.stringify(holder, null, 2)}\n`;
  for (let attempt = 0; attempt < 50; attempt++) {
    if (await createOnce(path, body)) return new FolderLock(dir, path, holder, created);
    const current = await readHolder(path);
    if (current === 'gone') continue;
    if (current === 'unreadable') {
      // Being written by a filesystem without hard links, or corrupt: wait a little, then treat as stale.
      if (await olderThan(path, 10_000)) await takeOver(path, null);
      else await sleep(50);
      continue;
    }
    if (!onThisMachine(current)) {
      if (options.supersedes?.(current)) {
        await takeOver(path, current.token);
        continue;
      }
      throw heldError(what, path, current);
    }
    if (holderAlive(current)) throw heldError(what, path, current);
    await takeOver(path, current.token);
  }
  throw new LockedError(`${what}: could not take the lock ${path} (it keeps changing hands)`, null);
}

/** The current holder of `dir`'s lock, or null when it is not locked (a stale lock is reported as held). */
export async function readLockHolder(dir: string): Promise<LockHolder | null> {
  const h = await readHolder(join(dir, LOCK_FILE));
  return typeof h === 'string' ? null : h;
}

function describe(h: LockHolder): string {
  const elsewhere = h.host === hostname() && !onThisMachine(h) ? ` (in another PID namespace: another container)` : '';
  return `pid ${h.pid} on ${h.host}${elsewhere} ("${h.command}", since ${h.startedAt})`;
}

/**
 * Whether the holder's pid can be looked at here: the same host name and, where both recorded one, the same PID
 * namespace. A holder elsewhere is never judged dead from here.
 */
export function onThisMachine(h: Pick<LockHolder, 'host' | 'pidNamespace'>): boolean {
  return h.host === hostname() && (h.pidNamespace === undefined || h.pidNamespace === PID_NAMESPACE);
}

function holderAlive(h: LockHolder): boolean {
  if (!processAlive(h.pid)) return false;
  if (h.processStart === null) return true;
  const now = processStartTime(h.pid);
  return now === null || now === h.processStart;
}

async function readHolder(path: string): Promise<LockHolder | 'gone' | 'unreadable'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw e;
  }
  try {
    const h = JSON.parse(text) as LockHolder;
    if (typeof h.pid !== 'number' || typeof h.host !== 'string' || typeof h.token !== 'string') return 'unreadable';
    return { ...h, command: String(h.command ?? ''), processStart: h.processStart ?? null };
  } catch {
    return 'unreadable';
  }
}

/**
 * Removes a stale lock. Renaming it away first makes the removal exclusive; if what was renamed turns out to be a
 * fresh lock that another process created meanwhile (a different token), it is put back.
 */
async function takeOver(path: string, staleToken: string | null): Promise<void> {
  const tomb = `${path}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await rename(path, tomb);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  const taken = await readHolder(tomb);
  const wasStale = staleToken === null ? typeof taken === 'string' || !holderAlive(taken) : typeof taken !== 'string' && taken.token === staleToken;
  if (!wasStale) await link(tomb, path).catch(() => undefined);
  await rm(tomb, { force: true });
}

function ownedBy(path: string, token: string): boolean {
  try {
    return (JSON.parse(readFileSync(path, 'utf8')) as LockHolder).token === token;
  } catch {
    return false;
  }
}

async function olderThan(path: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs > ms;
  } catch {
    return true;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
