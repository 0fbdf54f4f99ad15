/**
 * An empty --redis is refused, naming the flag (review C #8): `worker --redis ''` waited for ever on "Redis at redis:/
 * is not reachable", the URL '' read as redis:// (127.0.0.1), and `batch run m.json --redis ''` ran the batch here, ''
 * being no Redis. A bare host name (`--redis queue-host`) stays accepted.
 */
import { describe, expect, it } from 'vitest';

import { redisConnection } from '../../ts/batch/redis.js';
import { registerBatchCommand } from '../../ts/cli/commands/batch.js';
import { registerServeCommand } from '../../ts/cli/commands/serve.js';
import { registerWorkerCommand } from '../../ts/cli/commands/worker.js';
import { InvalidArgumentError } from '../../ts/errors.js';
import { runCommands } from '../helpers/cli.js';
import { distModule } from '../helpers/dist.js';
import { runCommand } from '../helpers/nodeChild.js';

const refusal = (url: string) => new InvalidArgumentError(`--redis: expected a URL like redis://127.0.0.1:6379/0 or a host name, got '${url}'`);

describe('--redis', () => {
  it('an empty or blank URL is refused; a host name is not', () => {
    for (const url of ['', ' ', '\t']) expect(() => redisConnection(url)).toThrow(refusal(url));
    expect(redisConnection('queue-host')).toEqual(expect.objectContaining({ host: 'queue-host', port: 6379, db: 0 }));
  });

  it.each([
    [['worker', '--redis', '']],
    [['worker', '--redis', ' ']],
    // (before anything else: the manifest is not read)
    [['batch', 'run', 'no-such-manifest.json', '--redis', '']],
    [['batch', 'status', '--redis', '']],
    [['serve', '--root', '.', '--redis', ' ']],
  ])('brainlatent %j is refused, naming --redis', async (args) => {
    await expect(runCommands([registerBatchCommand, registerServeCommand, registerWorkerCommand], args)).rejects.toThrow(refusal(args[args.length - 1]));
  }, 15_000); // (a worker that waits for a Redis at '' would wait for ever)

  it("worker --redis '' exits 1 at once instead of waiting for a Redis", async () => {
    const r = await runCommand(process.execPath, [distModule('cli/main'), 'worker', '--redis', ''], { hangLimitMs: 30_000 });
    expect(r.stderr).toBe("brainlatent: InvalidArgumentError: --redis: expected a URL like redis://127.0.0.1:6379/0 or a host name, got ''\n");
    expect(r.status).toBe(1);
  });
});
