/** Processes seen from /proc (Linux): a worker's descendants, and whether a process still runs. */
import { readdirSync, readFileSync } from 'node:fs';

/** State letter and parent pid of a process, or null when it is gone. */
function stat(pid: number): { state: string; ppid: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: f[0], ppid: Number(f[1]) };
  } catch {
    return null;
  }
}

/** Every process below `pid` (children, grandchildren, …). */
export function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const s = stat(Number(d));
    if (s) parent.set(Number(d), s.ppid);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of parent) {
      if (pp === p) {
        out.push(c);
        walk(c);
      }
    }
  };
  walk(pid);
  return out;
}

/** True while the process exists and is not a zombie (a zombie has exited; only its parent's wait is missing). */
export function running(pid: number): boolean {
  const s = stat(pid);
  return s !== null && s.state !== 'Z' && s.state !== 'X';
}
