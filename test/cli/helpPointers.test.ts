/**
 * Each command's help says where to read next (only reconstruct, encode and batch pointed to a doc), sd img2img's
 * shows examples (27 options and none shown), and a required option says so (`encode --config` looked optional:
 * commander's help does not mark required options, and checkRequiredOptionsLast now does).
 */
import { existsSync } from 'node:fs';

import { Command } from 'commander';
import { describe, expect, it } from 'vitest';

import { registerEncodeCommand } from '../../ts/cli/commands/encode.js';
import { checkRequiredOptionsLast } from '../../ts/cli/setup.js';
import { commandNamed } from '../helpers/program.js';

/** A command's help as `--help` prints it, with the text it adds after the options (addHelpText). */
function printedHelp(c: Command): string {
  let out = '';
  c.configureOutput({ writeOut: (s) => (out += s) });
  c.outputHelp();
  return out;
}

describe('help texts say where to read next', () => {
  it.each([
    ['serve', 'docs/server.md'],
    ['sd img2img', 'docs/sampler.md'],
    ['nsd extract', 'docs/data.md'],
    ['worker', 'docs/batch.md'],
    ['demo', 'docs/pipeline.md'],
    ['reconstruct', 'docs/pipeline.md'],
    ['evaluate', 'docs/pipeline.md'],
    ['encode', 'docs/encoding.md'],
    ['batch', 'docs/batch.md'],
  ])('%s points to %s, a file that exists', (name, doc) => {
    expect(printedHelp(commandNamed(name))).toContain(`See ${doc}`);
    expect(existsSync(doc)).toBe(true);
  });

  it('sd img2img shows examples', () => {
    const help = printedHelp(commandNamed('sd img2img'));
    expect(help).toContain('Examples:\n  brainlatent sd img2img --model models/sd-v1-4-onnx --image in.png --prompt "a cat on a sofa" --out out.png\n');
    expect(help).toContain('--provider cuda --provider-option use_tf32=0');
  });
});

describe('required options say so in the help', () => {
  it('encode --config, once the CLI-wide settings are applied', () => {
    const program = new Command('brainlatent');
    registerEncodeCommand(program);
    checkRequiredOptionsLast(program);
    const encode = program.commands.find((c) => c.name() === 'encode')!;
    const text = encode.createHelp().optionDescription(encode.options.find((o) => o.long === '--config')!);
    expect(text).toBe('the encoding config, a JSON file: see docs/encoding.md (required)');
    expect(encode.createHelp().optionDescription(encode.options.find((o) => o.long === '--out')!)).toBe('run folder (overrides the config)');
  });
});
