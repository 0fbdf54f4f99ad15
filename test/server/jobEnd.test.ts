/**
 * How a job reads once it has ended: no rate and no ETA in its progress (any end state: a client showed "ETA 2 min"
 * on a cancelled job), and a running job cancelled by the shutdown's deadline says the service shut down, as a
 * queued one does, rather than the job's own "batch … cancelled" that a user's cancel also gives.
 */
import { describe, expect, it } from 'vitest';

import { CancelledError } from '../../ts/errors.js';
import type { JobSpec } from '../../ts/server/jobs/JobRunner.js';
import { LocalJobRunner } from '../../ts/server/jobs/LocalJobRunner.js';
import type { JobControl } from '../../ts/server/jobs/types.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A batch job that reports progress at a steady pace (so its rate and ETA are known), then waits to be cancelled. */
async function steadyJob(control: JobControl, finishDone = false): Promise<Record<string, unknown>> {
  for (const fraction of [0.1, 0.2, 0.3]) {
    control.progress({ stage: 'batch', index: 1, stages: 1, fraction });
    await sleep(30);
    if (control.signal.aborted) break;
  }
  if (finishDone) return { ok: true };
  // (as the batch layer: a cancel that came while it reported stops it at its next check)
  if (!control.signal.aborted) await new Promise((ok) => control.signal.addEventListener('abort', ok, { once: true }));
  throw new CancelledError('batch b-1 cancelled');
  return {};
}

const spec = (id: string): JobSpec => ({ id, kind: 'batch', out: `/tmp/bl-job-end/${id}`, outShown: id, input: { kind: 'batch' } as never });

async function runningWithRate(runner: LocalJobRunner, id: string): Promise<void> {
  await runner.submit(spec(id));
  for (let i = 0; i < 200 && !(runner.board.get(id)?.progress?.etaSeconds != null); i++) await sleep(10);
  const p = runner.board.get(id)!.progress!;
  expect(p.rate).toBeGreaterThan(0);
  expect(p.etaSeconds).toBeGreaterThan(0);
}

describe("an ended job", { timeout: 10_000 }, () => {
  it('cancelled by a user: no rate, no ETA, and the job\'s own words', async () => {
    const runner = new LocalJobRunner({ concurrency: 1, execute: (_s, control) => steadyJob(control) });
    try {
      await runningWithRate(runner, 'batch-user');
      await runner.cancel('batch-user');
      for (let i = 0; i < 200 && runner.board.get('batch-user')!.state === 'running'; i++) await sleep(5);
      const view = runner.board.get('batch-user')!;
      expect(view.state).toBe('cancelled');
      expect(view.progress).toMatchObject({ stage: 'batch', rate: null, etaSeconds: null });
      expect(view.error).toMatchObject({ code: 'Cancelled', message: 'batch b-1 cancelled' });
    } finally {
      await runner.close(0);
    }
  });

  it('done: fraction 1, no rate, no ETA', async () => {
    const runner = new LocalJobRunner({ concurrency: 1, execute: (_s, control) => steadyJob(control, true) });
    try {
      await runner.submit(spec('batch-done'));
      for (let i = 0; i < 200 && runner.board.get('batch-done')!.state !== 'done'; i++) await sleep(10);
      expect(runner.board.get('batch-done')!.progress).toMatchObject({ fraction: 1, rate: null, etaSeconds: null });
    } finally {
      await runner.close(0);
    }
  });

  it("cancelled by the shutdown's deadline: says the service shut down, with no rate or ETA", async () => {
    const runner = new LocalJobRunner({ concurrency: 1, execute: (_s, control) => steadyJob(control) });
    await runningWithRate(runner, 'batch-shutdown');
    await runner.close(0);
    const view = runner.board.get('batch-shutdown')!;
    expect(view.state).toBe('cancelled');
    expect(view.progress).toMatchObject({ rate: null, etaSeconds: null });
    expect(view.error).toMatchObject({ code: 'Cancelled', message: 'the service shut down while the job ran (its shutdown deadline passed): batch b-1 cancelled' });
  });
});
