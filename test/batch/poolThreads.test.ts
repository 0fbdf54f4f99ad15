/**
 * A worker's --threads reaches its job processes as BRAINLATENT_THREADS (jobThreads.ts). A count the engine refuses
 * (above MAX_ENGINE_THREADS) fails each job with an error that names the variable and the worker's --threads, in a
 * process that stays up; before, the refusal was an unhandled rejection that ended the process before any job ran,
 * and every job failed with only "the job's process died (exit code 1…)".
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import type { BatchNode } from '../../ts/batch/graph.js';
import { THREADS_ENV } from '../../ts/batch/jobThreads.js';
import { poolWorkerPath, ProcessPool, type PoolReply } from '../../ts/batch/pool.js';

const dir = mkdtempSync(join(tmpdir(), 'pool-threads-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const probe = (id: string): BatchNode => ({ id, batch: 'b', subject: 'subj01', analysis: null, stage: 'probe', queue: 'control', deps: [], work: { kind: 'probe', out: join(dir, id), ms: 0 } });
const noDeps = { depsRan: false, ranDeps: [] };

describe('job processes and the engine thread count', () => {
  it('a count above the engine cap fails each job with an input error naming it; the process stays up', async () => {
    const pool = new ProcessPool(1, { ...process.env, [THREADS_ENV]: '5000' });
    try {
      for (const id of ['p1', 'p2']) {
        const e = await pool.run(probe(id), noDeps, () => {}).then(() => null, (err: unknown) => err as Error & { input: boolean });
        expect(e?.message).toMatch(/^BRAINLATENT_THREADS=5000 \(the worker's --threads, engine threads per job\): setThreads threads: expected an integer in 0\.\.4096, got 5000$/);
        expect(e?.name).toBe('InvalidArgumentError');
        // an input error: not retried
        expect(e?.input).toBe(true);
      }
      // the same process answered both jobs
      expect(pool.pids).toHaveLength(1);
    } finally {
      await pool.close();
    }
  });

  it('the refusal does not end a job process that has no job yet: its first job, sent later, gets the error', async () => {
    const child = fork(poolWorkerPath(), [], { env: { ...process.env, [THREADS_ENV]: '5000' }, stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
    try {
      // the thread count is applied (and refused) as the process starts; before, nothing handled the refusal until a
      // job came, and the process exited (code 1) first
      const exited = new Promise<string>((r) => child.once('exit', (code, sig) => r(`exit ${code} ${sig}`)));
      const idle = new Promise<string>((r) => setTimeout(() => r('up'), 1500));
      expect(await Promise.race([exited, idle])).toBe('up');
      const reply = new Promise<PoolReply | string>((r) => {
        child.once('message', (m: PoolReply) => r(m));
        void exited.then(r);
      });
      child.send({ type: 'run', node: probe('p0'), ...noDeps });
      expect(await reply).toMatchObject({ type: 'error', error: { name: 'InvalidArgumentError', input: true, message: expect.stringMatching(/^BRAINLATENT_THREADS=5000 /) } });
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a count within the cap runs the job', async () => {
    const pool = new ProcessPool(1, { ...process.env, [THREADS_ENV]: '2' });
    try {
      await expect(pool.run(probe('p3'), noDeps, () => {})).resolves.toMatchObject({ status: 'done' });
    } finally {
      await pool.close();
    }
  });
});
