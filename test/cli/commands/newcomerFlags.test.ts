/**
 * What a newcomer learning the CLI from --help and its errors met (review s45): `batch watch --interval 0` read Redis
 * 10,000 times a second and one past a timer's range refreshed every 1 ms; `batch cancel --wait` without --purge did
 * nothing, unsaid; `worker --queues ,` took nothing, forever; `encode --config <json>` suggested inline JSON;
 * `reconstruct --help` called only --subject required without --config.
 */
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';

import { registerBatchCommand } from '../../../ts/cli/commands/batch.js';
import { registerEncodeCommand } from '../../../ts/cli/commands/encode.js';
import { registerReconstructCommand } from '../../../ts/cli/commands/reconstruct.js';
import { registerWorkerCommand } from '../../../ts/cli/commands/worker.js';

function program(register: (p: Command) => void, out = { text: '' }): Command {
  const p = new Command('brainlatent').exitOverride();
  p.configureOutput({ writeOut: (s) => (out.text += s), writeErr: (s) => (out.text += s) });
  register(p);
  return p;
}

const squash = (s: string) => s.replace(/\s+/g, ' ');
// (nothing listens there: each refusal comes before Redis is asked anything)
const REDIS = 'redis://127.0.0.1:1';

describe('flags a newcomer got wrong without being told', () => {
  it('batch watch --interval is 100 ms to 1 h', async () => {
    for (const v of ['0', '99', '3000000000']) {
      await expect(program(registerBatchCommand).parseAsync(['batch', 'watch', 'b', '--redis', REDIS, '--interval', v], { from: 'user' })).rejects.toThrow(/^--interval: expected an integer from 100 to 3600000/);
    }
  });

  it('batch cancel --wait without --purge is refused, saying why', async () => {
    await expect(program(registerBatchCommand).parseAsync(['batch', 'cancel', 'b', '--redis', REDIS, '--wait', '5'], { from: 'user' })).rejects.toThrow(
      '--wait: only with --purge (a cancel without it does not wait: running jobs stop at their next progress report)',
    );
  });

  it('worker --queues with no queue in it is refused', async () => {
    await expect(program(registerWorkerCommand).parseAsync(['worker', '--redis', REDIS, '--queues', ','], { from: 'user' })).rejects.toThrow(
      "--queues: expected at least one of data, compute, sample, control, got ','",
    );
  });

  it('encode --config takes a file, and reconstruct --help says which flags stand in for --config', async () => {
    const enc = { text: '' };
    await expect(program(registerEncodeCommand, enc).parseAsync(['encode', '--help'], { from: 'user' })).rejects.toMatchObject({ code: 'commander.helpDisplayed' });
    expect(enc.text).toContain('--config <file>');
    const rec = { text: '' };
    await expect(program(registerReconstructCommand, rec).parseAsync(['reconstruct', '--help'], { from: 'user' })).rejects.toMatchObject({ code: 'commander.helpDisplayed' });
    for (const flag of ['--nsd <dir>', '--subject <n>', '--model <dir>', '--out <dir>']) expect(squash(rec.text)).toMatch(new RegExp(`${flag} [^-]*required without --config`));
  });
});
