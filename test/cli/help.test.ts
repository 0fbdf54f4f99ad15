/**
 * Help routing (dist/cli/main.js, as `brainlatent` runs it): `help ridge fit` prints fit's help as `ridge fit --help`
 * does (it printed the ridge group's), and an unknown command is an error with --help too (`report --help` printed
 * the program's help and exited 0 while `report` said "unknown command" and exited 1).
 */
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';

import { registerRidgeCommand } from '../../ts/cli/commands/ridge.js';
import { helpArgs, unknownCommandArgs } from '../../ts/cli/setup.js';
import { distModule } from '../helpers/dist.js';
import { runCommand } from '../helpers/nodeChild.js';

const cli = distModule('cli/main');

async function brainlatent(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const r = await runCommand(process.execPath, [cli, ...args], { env: { ...process.env, NO_COLOR: '1' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('help routing', () => {
  it('help <command> <subcommand> prints that subcommand alone, as <command> <subcommand> --help does', async () => {
    const viaHelp = await brainlatent('help', 'ridge', 'fit');
    const viaFlag = await brainlatent('ridge', 'fit', '--help');
    expect(viaHelp.status).toBe(0);
    expect(viaHelp.stdout).toMatch(/^Usage: brainlatent ridge fit \[options\]/);
    expect(viaHelp.stdout).toBe(viaFlag.stdout);
    expect((await brainlatent('ridge', 'help', 'fit')).stdout).toBe(viaFlag.stdout);
    const group = await brainlatent('help', 'ridge');
    expect(group.status).toBe(0);
    expect(group.stdout).toMatch(/^Usage: brainlatent ridge \[options\] \[command\]/);
    // the program's help command says what it takes
    expect((await brainlatent('--help')).stdout).toMatch(/\n {2}help \[command\.\.\.\] +display help for a command \(help ridge fit\)/);
  });

  it('an unknown command is an error with exit 1, with --help, -h or through help, with the suggestion commander has and a pointer to the help that lists the commands', async () => {
    for (const args of [['report'], ['report', '--help'], ['help', 'report'], ['report', '-h']]) {
      const r = await brainlatent(...args);
      expect(r.status, args.join(' ')).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(`brainlatent: error: unknown command '${args[0] === 'help' ? args[1] : args[0]}'\n(see 'brainlatent --help')\n`);
    }
    const typo = await brainlatent('ridge', 'fitt', '--help');
    expect(typo.status).toBe(1);
    expect(typo.stdout).toBe('');
    expect(typo.stderr).toBe("brainlatent: error: unknown command 'fitt'\n(Did you mean brainlatent ridge fit?)\n(see 'brainlatent ridge --help')\n");
    // a command's own errors keep their hint
    expect((await brainlatent('ridge', 'fit', '--bogus')).stderr).toBe("brainlatent: error: unknown option '--bogus'\n(add --help for usage)\n");
    // a group's subcommand typed alone is named by its full path (test/cli/commandGuesses.test.ts), --help or not
    for (const args of [['fit', '--help'], ['help', 'fit'], ['fit']]) {
      const r = await brainlatent(...args);
      expect([r.status, r.stdout, r.stderr], args.join(' ')).toEqual([1, '', "brainlatent: error: unknown command 'fit'\n(Did you mean brainlatent ridge fit?)\n(see 'brainlatent --help')\n"]);
    }
    const top = await brainlatent('demoo', '--help');
    expect(top.status).toBe(1);
    expect(top.stderr).toContain("unknown command 'demoo'\n(Did you mean demo?)");
  });

  it('helpArgs and unknownCommandArgs leave every other command line as it is', () => {
    expect(helpArgs(['help', 'ridge', 'fit'])).toEqual(['ridge', 'fit', '--help']);
    expect(helpArgs(['help'])).toEqual(['help']);
    expect(helpArgs(['help', '--help'])).toEqual(['help', '--help']);
    expect(helpArgs(['ridge', 'help', 'fit'])).toEqual(['ridge', 'help', 'fit']);
    const program = new Command();
    registerRidgeCommand(program);
    for (const args of [['ridge', 'fit', '--help'], ['ridge', '--help'], ['--help'], ['ridge', 'help', 'fit'], ['ridge', 'fit', '--x', 'a', '-h']]) {
      expect(unknownCommandArgs(program, args)).toEqual(args);
    }
    expect(unknownCommandArgs(program, ['ridge', 'fitt', '--help', '-h'])).toEqual(['ridge', 'fitt']);
    expect(unknownCommandArgs(program, ['report', '--help'])).toEqual(['report']);
  });
});

describe('the help of --steps and --rule warns about few steps with the compvis rule', () => {
  // (CompVis' rule noises one DDIM step above the first step: at 4 steps the demo's final PixCorr was 0.29, at 8 0.87)
  const squash = (s: string) => s.replace(/\s+/g, ' ');
  it('reconstruct --help: --steps, --rule and img2img.rule say to use the diffusers rule for few steps, by the flag reconstruct has', async () => {
    const help = squash((await brainlatent('reconstruct', '--help')).stdout);
    // (it said "set img2img.rule to 'diffusers'", a field the flags-only form cannot set; --rule is sd img2img's flag)
    expect(help).toMatch(/--steps <n> DDIM steps \(img2img\.steps; default 50\)\. With the default --rule compvis .* fewer than about 8 steps give poor images .*: use --rule diffusers for few steps/);
    expect(help).toMatch(/--rule <rule> img2img noise rule \(img2img\.rule\): 'compvis' \(the default: .* with fewer than about 8 steps the images keep noise and come out poor\) or 'diffusers' \(.*; use it for few steps\)/);
    for (const flag of ['--strength <s>', '--scheduler <name>', '--eta <eta>']) expect(help).toContain(flag);
    expect(help).not.toMatch(/set img2img\.rule/);
    expect(help).toMatch(/img2img\.rule 'compvis' .* with fewer than about 8 steps 'compvis' leaves noise in the images .*: use 'diffusers' there/);
  });
  it('reconstruct --help: --sessions, its values and its field', async () => {
    expect(squash((await brainlatent('reconstruct', '--help')).stdout)).toContain(
      '--sessions <list> sessions of betas to read, such as 1-37 or 1-10,12 (nsd.sessions; default: every session with betas among 1-37)',
    );
  });
  it('sd img2img --help: --rule says so too', async () => {
    expect(squash((await brainlatent('sd', 'img2img', '--help')).stdout)).toMatch(/--rule <rule> img2img noise rule: .*'compvis' .* with fewer than about 8 steps the images keep noise .*use 'diffusers' for few steps/);
  });
});
