/** Child process of a job pool: runs the jobs the parent sends, one at a time (see pool.ts). */
import { serializeError } from './errors.js';
import { applyThreadsFromEnv } from './jobThreads.js';
import type { PoolReply, PoolRequest } from './pool.js';
import { runNode } from './runNode.js';
import { jobCount, type JobCount } from './status.js';

/**
 * Never outlive the parent: a killed worker's job is redone elsewhere, and a second writer of the same outputs
 * (or 650 MB of a model nobody waits for) would be one too many. SIGKILL, not exit: no handler, no native
 * thread can hold the process back.
 */
const die = () => process.kill(process.pid, 'SIGKILL');
process.on('disconnect', die);
const parent = process.ppid;
setInterval(() => {
  if (!process.connected || process.ppid !== parent) die();
}, 500).unref();

// set before any job runs (the first message waits for it). A refused count fails each job with its error (the
// chain below); handled here too, or it would end the process (an unhandled rejection) before any job is sent and
// every job would fail with only "the job's process died".
const ready = applyThreadsFromEnv();
ready.catch(() => {});
let current: AbortController | null = null;
const send = (m: PoolReply) => process.send?.(m);

process.on('message', (m: PoolRequest) => {
  if (m.type === 'abort') {
    current?.abort(m.reason);
    return;
  }
  const ac = new AbortController();
  current = ac;
  let last = 0;
  const progress = (fraction: number, message?: string, count?: JobCount) => {
    // a few updates a second are enough for a table
    const now = Date.now();
    if (now - last < 250 && fraction < 1) return;
    last = now;
    // (the count as the job counts it: done, total and what it reused; not the stage's unit, which the job's stage names)
    send({ type: 'progress', fraction, message, ...(count ? { count: jobCount(count) } : {}) });
  };
  ready
    .then(() => runNode(m.node, { depsRan: m.depsRan, ranDeps: m.ranDeps, runnerLocks: m.runnerLocks, submission: m.submission, signal: ac.signal, progress }))
    .then(
      (result) => send({ type: 'result', result }),
      (e: unknown) => send({ type: 'error', error: serializeError(e) }),
    )
    .finally(() => {
      current = null;
    });
});
// A stop signal sent to the whole process group or cgroup (Ctrl-C in a terminal; Slurm's scancel and time limit and
// systemd's stop, which signal every process of the job step or unit) is the parent's to act on: a worker lets the
// running job finish within its --grace, then asks it to stop (abort, over IPC) and kills it if it does not; a local
// run cancels it at its next step. Ending here at once failed the job as "the job's process died" (an attempt used:
// three Slurm preemptions failed it for good) instead of finishing it or returning it to the queue. The parent's death
// still ends this process (above), and so does SIGKILL.
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => {});
