import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { probePlan } from '../../ts/batch/graph.js';
import { runLocal } from '../../ts/batch/localRunner.js';
import { runBatch } from '../../ts/batch/runBatch.js';
import type { BatchEvent, JobInfo } from '../../ts/batch/status.js';
import type { DemoWorld } from '../../ts/demo/world.js';
import { batchManifest, batchWorld } from './world.js';

// The local pool and an AbortSignal: a job aborted as it starts stops (the signal had fired before the job's
// listener was added, so it never heard it), and a signal aborted before the run, or while the only job waits
// for its retry, ends the run instead of leaving it pending.

const dir = mkdtempSync(join(tmpdir(), 'bl-abort-'));
let world: DemoWorld;
beforeAll(async () => {
  world = await batchWorld(dir, [1]);
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const byId = (jobs: JobInfo[]) => Object.fromEntries(jobs.map((j) => [j.id, j]));

describe('runBatch / runLocal with an AbortSignal', () => {
  it('a job whose start aborts the batch is stopped, not run to the end', { timeout: 60_000 }, async () => {
    const out = join(dir, 'probes');
    const ac = new AbortController();
    let first: string | undefined;
    // probes of 3 s: one that ran to the end would publish its file and be 'done'
    const status = await runLocal(probePlan('ab', 3, out, 3000), {
      concurrency: 1,
      signal: ac.signal,
      onEvent: (e) => {
        if (e.job?.stage === 'probe' && e.job.state === 'active' && !first) {
          first = e.job.id;
          ac.abort();
        }
      },
    });
    expect(first).toBeDefined();
    const jobs = byId(status.jobs);
    expect(jobs[first!].state).toBe('cancelled');
    expect(status.jobs.every((j) => j.state === 'cancelled')).toBe(true);
    expect(status.state).toBe('cancelled');
    expect(existsSync(join(out, `${first}.json`))).toBe(false);
  });

  it('the reviewer\'s case: aborting on an img2img shard\'s start stops that shard (no marker)', { timeout: 300_000 }, async () => {
    const out = join(dir, 'world-run');
    const ac = new AbortController();
    let shard: JobInfo | undefined;
    const events: BatchEvent[] = [];
    const report = await runBatch(batchManifest(world, 'abw', out, [1]), {
      concurrency: 1,
      signal: ac.signal,
      onEvent: (e) => {
        events.push(e);
        if (e.job?.stage === 'img2img' && e.job.shard && e.job.state === 'active' && !shard) {
          shard = e.job;
          ac.abort();
        }
      },
    });
    expect(shard).toBeDefined();
    expect(byId(report.jobs)[shard!.id].state).toBe('cancelled');
    expect(report.state).toBe('cancelled');
    // no shard finished: none has its marker
    const markers = join(out, 'subj01', 'recon', 'stages', 'img2img.shards');
    expect(existsSync(markers) ? readdirSync(markers).filter((f) => f.endsWith('.json')) : []).toEqual([]);
  });

  it('a signal aborted before the run cancels every job and resolves', { timeout: 30_000 }, async () => {
    const status = await runLocal(probePlan('pre', 3, join(dir, 'pre'), 50), { concurrency: 1, signal: AbortSignal.abort() });
    expect(status.jobs.map((j) => j.state)).toEqual(['cancelled', 'cancelled', 'cancelled', 'cancelled']);
    expect(status.state).toBe('cancelled');
  });

  it('an abort while the only job waits for its retry ends the run', { timeout: 30_000 }, async () => {
    // a probe whose output folder cannot be made (under a file): a transient failure, retried after 60 s
    const plan = { ...probePlan('retry', 1, join('/dev/null', 'x'), 10), retry: { attempts: 3, backoffMs: 60_000 } };
    const ac = new AbortController();
    const status = await runLocal(plan, {
      concurrency: 1,
      signal: ac.signal,
      onEvent: (e) => {
        if (e.job?.state === 'waiting' && e.job.reason?.startsWith('attempt 1 failed')) ac.abort();
      },
    });
    expect(status.jobs.find((j) => j.stage === 'probe')!.state).toBe('cancelled');
    expect(status.state).toBe('cancelled');
  });
});
