/**
 * Defaults in --help, across the whole command tree: no option states its default twice (`bench ridge --cv-method`
 * printed "(default: auto) (default: "auto")": one in its text, one from commander), and the defaults that live in
 * the code, not in commander, are stated (demo's world and run sizes, bench samplers' caches, sd img2img --memory).
 */
import type { Command, Option } from 'commander';
import { describe, expect, it } from 'vitest';

import { allCommands, commandNamed, wholeProgram } from '../helpers/program.js';

const optionHelp = (c: Command, o: Option) => c.createHelp().optionDescription(o).replace(/\s+/g, ' ');
const helpOf = (c: Command) => c.helpInformation().replace(/\s+/g, ' ');
const find = commandNamed;

describe('defaults in --help', () => {
  it('no option of any command states its default twice', () => {
    const twice: string[] = [];
    const commands = allCommands(wholeProgram());
    expect(commands.length).toBeGreaterThan(30);
    for (const { name, command } of commands) {
      for (const o of command.options) {
        // (commander appends "(default: …)" for a default it holds; the text must not state one as well. A text
        // may state two, one per mode, as batch run --concurrency does: here and with --redis)
        const text = optionHelp(command, o);
        const appended = text.slice(o.description.replace(/\s+/g, ' ').length).includes('(default');
        if (appended && /[(;] ?default\b/.test(o.description)) twice.push(`${name} ${o.flags}: ${text}`);
      }
    }
    expect(twice).toEqual([]);
  });

  it('bench ridge --cv-method states auto once', () => {
    const c = find('bench ridge');
    expect(optionHelp(c, c.options.find((o) => o.long === '--cv-method')!)).toBe(`'auto', or force 'per-fold' or 'exact' (default: "auto")`);
  });

  it('demo states the sizes of its world and run', () => {
    const help = helpOf(find('demo'));
    expect(help).toMatch(/--image-size <n> stimulus side in pixels: a multiple of 8 from \d+ to \d+ \(default 128\)/);
    expect(help).toContain('(the rest train the decoders; default 24)');
    expect(help).toContain('--seeds <n> samples per image (default 5)');
    expect(help).toContain('--steps <n> DDIM steps (default 50)');
  });

  it("bench samplers states both caches and the sd1 fixture's size; sd img2img --memory its default", () => {
    const help = helpOf(find('bench samplers'));
    expect(help).toContain("--cache <dir> where the model is built once (default $TMPDIR/brainlatent-bench-world, a demo world; with --arch sd1 ~/.cache/brainlatent/sd1-fixture, SD 1.x's U-Net fixture: a 3.4 GB build)");
    expect(helpOf(find('sd img2img'))).toContain("--memory <mode> ONNX Runtime's memory: 'default' (the default: ");
  });
});
