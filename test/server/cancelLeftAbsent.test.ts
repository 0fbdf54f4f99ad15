/**
 * `serve --redis`: a cancelled job whose batch's cancel Redis did not answer shows `cancelPending`; when Redis answers
 * and the batch is not there (never submitted: the job's process ended first; or Redis lost it), the job's end says
 * so, instead of a plain "cancelled" that leaves the pending note unexplained (review s43).
 */
import { describe, expect, it, vi } from 'vitest';

import { BatchError, RedisUnreachableError } from '../../ts/batch/errors.js';
import { CancelledError } from '../../ts/errors.js';
import type { JobSpec } from '../../ts/server/jobs/JobRunner.js';
import type { JobControl } from '../../ts/server/jobs/types.js';

const cancelBatch = vi.fn();
vi.mock('../../ts/batch/inspect.js', async (orig) => ({ ...(await orig<object>()), cancelBatch: (...a: unknown[]) => cancelBatch(...a) }));
vi.mock('../../ts/batch/redis.js', async (orig) => ({ ...(await orig<object>()), requireRedis: async () => {} }));
vi.mock('../../ts/server/jobs/batchName.js', async (orig) => ({ ...(await orig<object>()), claimJobBatchName: async () => {}, releaseJobBatchName: async () => {} }));

const { LocalJobRunner } = await import('../../ts/server/jobs/LocalJobRunner.js');

/** A job that waits to be cancelled, then ends without having cancelled its batch in Redis. */
async function waitsForCancel(control: JobControl): Promise<Record<string, unknown>> {
  if (!control.signal.aborted) await new Promise((ok) => control.signal.addEventListener('abort', ok, { once: true }));
  throw new CancelledError('batch cancelled');
}

const spec: JobSpec = { id: 'reconstruct-left', kind: 'reconstruct', out: '/tmp/bl-cancel-left/run', outShown: 'run', input: { kind: 'reconstruct' } as never };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a pending batch cancel whose batch Redis no longer has', { timeout: 20_000 }, () => {
  it.each([
    ['Redis did not answer at first', [new RedisUnreachableError('no answer', 'redis://x'), new BatchError("no batch 'reconstruct-left' in this Redis (submitted batches: other-user)")], /^batch cancelled; Redis did not answer at first; once it did, batch reconstruct-left was not there, so nothing of it is queued$/],
    ['Redis answered at once', [new BatchError('no batch')], /^batch cancelled$/],
  ])('%s', async (_what, errors, message) => {
    cancelBatch.mockReset();
    for (const e of errors) cancelBatch.mockRejectedValueOnce(e);
    const runner = new LocalJobRunner({ concurrency: 1, execute: (_s, control) => waitsForCancel(control), queue: { redis: 'redis://127.0.0.1:1', workers: 0 } });
    try {
      await runner.submit(spec);
      for (let i = 0; i < 100 && runner.board.get(spec.id)!.state !== 'running'; i++) await sleep(5);
      await runner.cancel(spec.id);
      if (errors.length > 1) {
        for (let i = 0; i < 100 && !runner.board.get(spec.id)!.cancelPending; i++) await sleep(5);
        expect(runner.board.get(spec.id)).toMatchObject({ state: 'running', cancelPending: expect.stringMatching(/Redis did not answer; the service tries again/) });
      }
      for (let i = 0; i < 1000 && runner.board.get(spec.id)!.state === 'running'; i++) await sleep(10);
      const view = runner.board.get(spec.id)!;
      expect(view.state).toBe('cancelled');
      expect(view.cancelPending).toBeUndefined();
      expect(view.error?.message).toMatch(message);
      // (the other batches Redis lists are not the client's to read)
      expect(view.error?.message).not.toMatch(/other-user/);
      expect(cancelBatch).toHaveBeenCalledTimes(errors.length);
    } finally {
      await runner.close(0);
    }
  });
});
