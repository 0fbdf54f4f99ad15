/**
 * A worker's job lock has a floor: with --lock-ms 0 (accepted before) every job it fetched stalled at once, in a
 * loop, and it ran nothing, silently (its fetch swallowed every error). Review s34-d.
 */
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { createWorker } from '../../ts/batch/worker.js';
import { runCommand } from '../helpers/nodeChild.js';

const cli = join(process.cwd(), 'dist', 'cli', 'main.js');

describe("a worker's job lock", () => {
  it('is refused below 1000 ms, by createWorker and by worker --lock-ms, before Redis is looked at', async () => {
    for (const lockMs of [0, 999, 1500.5]) {
      await expect(createWorker({ redis: 'redis://127.0.0.1:1', lockMs })).rejects.toThrow(
        `createWorker: lockMs must be an integer of at least 1000 ms (the lock keeper renews it every lockMs/4), got ${lockMs}`,
      );
    }
    const r = await runCommand(cli, ['worker', '--redis', 'redis://127.0.0.1:1', '--lock-ms', '0']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('InvalidArgumentError: --lock-ms: expected an integer >= 1000, got 0');
  });
});
