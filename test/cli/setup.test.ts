/** CLI-wide option errors (issue #11): a mistyped option is reported as unknown, a missing one by name alone. */
import { Command, CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';

import { registerNsdCommand } from '../../ts/cli/commands/nsd.js';
import { registerRidgeCommand } from '../../ts/cli/commands/ridge.js';
import { checkRequiredOptionsLast, configureProgram } from '../../ts/cli/setup.js';

async function run(...args: string[]): Promise<{ err: string; code?: string }> {
  const program = new Command().name('brainlatent');
  configureProgram(program);
  let err = '';
  program.exitOverride().configureOutput({ writeErr: (s) => (err += s), writeOut: () => undefined });
  registerRidgeCommand(program);
  registerNsdCommand(program);
  checkRequiredOptionsLast(program);
  try {
    await program.parseAsync(['node', 'brainlatent', ...args]);
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    return { err, code: e.code };
  }
  return { err };
}

describe('CLI option errors', () => {
  it("'--xx' is an unknown option, not a missing '--x'", async () => {
    const r = await run('ridge', 'fit', '--xx', 'a.npy', '--y', 'b.npy', '--out', 'm.safetensors');
    expect(r.code).toBe('commander.unknownOption');
    expect(r.err).toBe("brainlatent: error: unknown option '--xx'\n(add --help for usage)\n");
  });

  it('a missing required option is named, without the whole help', async () => {
    const r = await run('ridge', 'fit', '--x', 'a.npy', '--out', 'm.safetensors');
    expect(r.code).toBe('commander.missingMandatoryOptionValue');
    expect(r.err).toBe("brainlatent: error: required option '--y <file>' not specified\n(add --help for usage)\n");
    const n = await run('nsd', 'extract', '--root', '/data/nsd', '--subject', '1', '--out', 'x');
    expect(n.err).toBe("brainlatent: error: required option '--roi <spec>' not specified\n(add --help for usage)\n");
  });

  it('every missing required option is named in one error, the same for every command (review: ridge fit with none took four runs)', async () => {
    const r = await run('ridge', 'fit');
    expect(r.code).toBe('commander.missingMandatoryOptionValue');
    expect(r.err).toBe('brainlatent: error: required options not specified:\n  --x <file>\n  --y <file>\n  --out <file>\n(add --help for usage)\n');
    expect((await run('ridge', 'fit', '--y', 'b.npy')).err).toBe('brainlatent: error: required options not specified:\n  --x <file>\n  --out <file>\n(add --help for usage)\n');
    expect((await run('ridge', 'predict', '--x', 'a.npy')).err).toBe('brainlatent: error: required options not specified:\n  --model <file>\n  --out <file>\n(add --help for usage)\n');
    // --root too (the nsd commands' --nsd gives it)
    const n = await run('nsd', 'extract');
    expect(n.code).toBe('commander.missingMandatoryOptionValue');
    expect(n.err).toBe('brainlatent: error: required options not specified:\n  --root <dir>\n  --subject <n>\n  --roi <spec>\n  --out <dir>\n(add --help for usage)\n');
    expect((await run('nsd', 'extract', '--nsd', '/data/nsd', '--roi', 'nsdgeneral')).err).toBe(
      'brainlatent: error: required options not specified:\n  --subject <n>\n  --out <dir>\n(add --help for usage)\n',
    );
    expect((await run('nsd', 'image', '--id', '3')).err).toBe('brainlatent: error: required options not specified:\n  --root <dir>\n  --out <file>\n(add --help for usage)\n');
    // an unknown option is still reported first
    expect((await run('nsd', 'extract', '--rot', '/data/nsd')).code).toBe('commander.unknownOption');
  });

  it('words no command takes are refused, not dropped (review s35-r5: --alphas 1 10 100 fitted alpha 1 alone)', async () => {
    const r = await run('ridge', 'fit', '--x', 'a.npy', '--y', 'b.npy', '--alphas', '1', '10', '100', '--out', 'm', '--dry-run');
    expect(r.code).toBe('commander.excessArguments');
    expect(r.err).toBe("brainlatent: error: too many arguments for 'fit'. Expected 0 arguments but got 2.\n(add --help for usage)\n");
    const n = await run('nsd', 'extract', '--root', '/data/nsd', '--subject', '1', '--roi', 'nsdgeneral', '--sessions', '1', '2', '--out', 'x');
    expect(n.code).toBe('commander.excessArguments');
  });
});
