/**
 * Lowers a job process's CPU priority below the service's, so that requests stay prompt while jobs compute.
 *
 * A process's nice value alone is not enough on Linux: with autogroup scheduling (the default on desktop and most
 * server kernels, /proc/sys/kernel/sched_autogroup_enabled), the CPU is first shared between sessions' autogroups
 * and nice only orders processes within one. The spawner runs in a session of its own (so that a terminal's Ctrl-C
 * reaches the service alone), and a job there at nice +10 still got as much CPU as the whole service: the service's
 * event loop then waited 30–70 ms for a core now and then while a job ran. So each job also runs in a session of
 * its own (forked detached) whose autogroup is lowered by the same steps through /proc/PID/autogroup. Kernels
 * without autogroups have no such file: the nice value is what counts there.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { getPriority, setPriority } from 'node:os';

/** How much lower than the service's a job's CPU priority is (nice steps). */
export const JOB_NICENESS = 10;

const clampNice = (n: number) => Math.max(-20, Math.min(19, n));

/**
 * Lowers `pid`'s nice value at once (before the first await) and, where the kernel has autogroups, its autogroup's (the process
 * must lead a session of its own, or the spawner's autogroup would be lowered with it). Never rejects: a system that
 * does not allow it runs the job at the service's priority.
 */
export async function lowerJobPriority(pid: number, steps = JOB_NICENESS): Promise<void> {
  try {
    setPriority(pid, clampNice(getPriority(pid) + steps));
  } catch {
    // not permitted: the nice value stays
  }
  await lowerAutogroup(pid, steps);
}

/** The autogroup's nice value from /proc/PID/autogroup ("/autogroup-45 nice 0"), or null. */
export async function autogroupNice(pid: number): Promise<number | null> {
  try {
    const m = /nice\s+(-?\d+)/.exec(await readFile(`/proc/${pid}/autogroup`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

async function lowerAutogroup(pid: number, steps: number): Promise<void> {
  const before = await autogroupNice(pid);
  if (before === null) return;
  // The kernel allows an unprivileged change once per 100 ms machine-wide (EAGAIN otherwise): a few tries.
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await writeFile(`/proc/${pid}/autogroup`, String(clampNice(before + steps)));
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return;
      await new Promise((r) => setTimeout(r, 110));
    }
  }
}
