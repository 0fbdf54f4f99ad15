/**
 * `batch run --concurrency`: its help said "with --redis, jobs per queue of the workers started here; default half
 * the cores", but with --redis the default is 1 and one worker is started whose job processes serve all queues
 * together; and without --redis `--concurrency 0` was silently the default (half the cores). Now the help says
 * what the code does, 0 without --redis is refused (by the CLI and by runBatch), and 0 with --redis still means
 * "no worker here".
 */
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';

import { runBatch } from '../../../ts/batch/runBatch.js';
import { registerBatchCommand } from '../../../ts/cli/commands/batch.js';
import { InvalidArgumentError } from '../../../ts/errors.js';

function program(out: { text: string }): Command {
  const p = new Command('brainlatent').exitOverride();
  p.configureOutput({ writeOut: (s) => (out.text += s), writeErr: (s) => (out.text += s) });
  registerBatchCommand(p);
  return p;
}

const squash = (s: string) => s.replace(/\s+/g, ' ');

describe('batch run --concurrency', () => {
  it('the help gives each default: half the cores here, 1 worker process with --redis, one worker over all queues', async () => {
    const out = { text: '' };
    await expect(program(out).parseAsync(['batch', 'run', '--help'], { from: 'user' })).rejects.toMatchObject({ code: 'commander.helpDisplayed' });
    const help = squash(out.text);
    expect(help).toContain('--concurrency <n> jobs at once, each in a process of its own (at most 256): here, the pool of job processes (default half the cores); with --redis, the job processes of the one worker started here, serving all queues together (default 1; 0: start no worker here)');
    expect(help).toContain('start one worker here (--concurrency jobs at once, any queue; 0: none)');
    expect(help).not.toContain('per queue');
  });

  it('--concurrency 0 without --redis is refused before the manifest is read', async () => {
    const run = program({ text: '' }).parseAsync(['batch', 'run', '/nonexistent/manifest.json', '--concurrency', '0'], { from: 'user' });
    await expect(run).rejects.toThrow(
      new InvalidArgumentError('--concurrency 0 runs no job here: give 1 or more (0 is for --redis: start no worker here, the workers elsewhere take the jobs)'),
    );
  });

  it('runBatch refuses a local pool of 0 processes (it would wait for ever), before the manifest is read', async () => {
    await expect(runBatch('/nonexistent/manifest.json', { concurrency: 0 })).rejects.toThrow('runBatch options.concurrency: expected an integer in 1..256, got 0');
    await expect(runBatch('/nonexistent/manifest.json', { concurrency: 1.5 })).rejects.toThrow(InvalidArgumentError);
  });
});
