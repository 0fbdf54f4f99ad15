/** Whether a process of this host is still running, for telling a live lock or temporary from a stale one. */
import { readFileSync } from 'node:fs';

/** True when a process with this id exists (ours included); EPERM means it exists but belongs to another user. */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The kernel's start time of a process (Linux: field 22 of /proc/<pid>/stat, in clock ticks since boot), so a
 * recycled process id is not mistaken for the original process; null where /proc is not available.
 */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}
