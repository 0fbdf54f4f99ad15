/**
 * The service's job spawner (see jobSpawner.ts): a small process that forks each job's process (jobChild.ts) when
 * the service asks and relays between them: the job's progress and outcome up, cancellation down. A job that has
 * not exited `killAfterMs` after its cancellation is killed here.
 *
 * Each job's process gets a lower CPU priority as soon as it exists (and BLAS's and ONNX Runtime's threads in it
 * inherit it), so requests to the service stay prompt while jobs compute: a nice value and, being forked into a
 * session of its own, a lowered autogroup (jobPriority.ts says why both). The spawner itself keeps the service's
 * priority, so that progress and cancellation pass through it promptly on a loaded machine. Its life is its channel to the
 * service: when the service goes away (or closes it), it cancels its jobs, waits for them to end, and exits.
 */
import { fork, type ChildProcess } from 'node:child_process';

import type { ChildReply, ChildRequest, SpawnerReply, SpawnerRequest } from './jobProcess.js';
import { jobsEntry, whenGone } from './jobProcess.js';
import { lowerJobPriority } from './jobPriority.js';
import { withoutServiceFlags } from '../serviceFlags.js';


interface Job {
  child: ChildProcess;
  killAfterMs: number;
  killer?: NodeJS.Timeout;
}

const jobs = new Map<number, Job>();
const send = (m: SpawnerReply) => {
  if (process.connected) process.send!(m);
};

function start(m: Extract<SpawnerRequest, { type: 'start' }>): void {
  let child: ChildProcess;
  try {
    // detached: a session, and so an autogroup, of its own, whose priority can be lowered without the spawner's
    // a job runs with Node's own flags, as from the CLI, not the service's (serviceFlags.ts)
    child = fork(jobsEntry('jobChild'), [], { detached: true, execArgv: withoutServiceFlags(process.execArgv), cwd: m.cwd, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
  } catch (e) {
    send({ type: 'exit', id: m.id, code: null, signal: null, spawnError: (e as Error).message });
    return;
  }
  const job: Job = { child, killAfterMs: m.killAfterMs };
  jobs.set(m.id, job);
  let ended = false;
  const end = (code: number | null, signal: NodeJS.Signals | null, spawnError?: string) => {
    if (ended) return;
    ended = true;
    clearTimeout(job.killer);
    jobs.delete(m.id);
    send({ type: 'exit', id: m.id, code, signal, ...(spawnError ? { spawnError } : {}) });
  };
  child.on('message', (reply: ChildReply) => send({ type: 'child', id: m.id, reply }));
  whenGone(child, end);
  // a process that could not be started has no pid (later 'error's are failed sends or kills: 'close' follows)
  child.on('error', (e) => {
    if (child.pid === undefined) end(null, null, e.message);
  });
  if (child.pid === undefined) return;
  // the nice value is lowered before this returns, the autogroup's a moment later (the job is still loading)
  void lowerJobPriority(child.pid);
  send({ type: 'spawned', id: m.id, pid: child.pid });
  child.send({ type: 'run', spec: m.spec } satisfies ChildRequest);
}

function abort(id: number, reason: string): void {
  const job = jobs.get(id);
  if (!job || job.killer) return;
  if (job.child.connected) job.child.send({ type: 'abort', reason } satisfies ChildRequest);
  job.killer = setTimeout(() => job.child.kill('SIGKILL'), job.killAfterMs);
}

process.on('message', (m: SpawnerRequest) => {
  if (m.type === 'start') start(m);
  else abort(m.id, m.reason);
});
// The service went away or closed this channel: its jobs are cancelled; the process ends when they have.
process.on('disconnect', () => {
  for (const id of jobs.keys()) abort(id, 'the service went away');
});
