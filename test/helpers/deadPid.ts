/**
 * A process id that no process has: the clean-up tests name "a dead process's folder" with it. A child that has
 * just exited gave one before, but on a busy machine its pid can be reused before the clean-up runs (the folder is
 * then, rightly, kept and the test fails). Linux hands out pids below /proc/sys/kernel/pid_max; elsewhere the
 * largest pid_max Linux allows (2^22) is beyond what macOS uses (99,998).
 */
import { readFileSync } from 'node:fs';

import { processAlive } from '../../ts/io/processAlive.js';

export function deadPid(): number {
  let pid = 2 ** 22;
  try {
    pid = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim());
  } catch {
    // not Linux
  }
  if (!Number.isInteger(pid) || pid <= 1 || processAlive(pid)) throw new Error(`deadPid: ${pid} is not a pid free of any process`);
  return pid;
}
