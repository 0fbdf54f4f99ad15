/**
 * The example manifest that `brainlatent batch --help` prints, and the one in docs/batch.md, are valid manifests:
 * the help's lacked the feature sets' required `name` (8 ManifestErrors when copied). Both are parsed here with the
 * real validator, so that neither can drift from the schema again.
 */
import { readFileSync } from 'node:fs';

import { Command } from 'commander';
import { describe, expect, it } from 'vitest';

import { resolveManifest } from '../../../ts/batch/manifest.js';
import { registerBatchCommand } from '../../../ts/cli/commands/batch.js';

/** `batch --help` as the command prints it. */
function batchHelp(): string {
  let out = '';
  const program = new Command('brainlatent').exitOverride();
  program.configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
  registerBatchCommand(program);
  try {
    program.parse(['batch', '--help'], { from: 'user' });
  } catch (e) {
    if ((e as { code?: string }).code !== 'commander.helpDisplayed') throw e;
  }
  return out;
}

/** The indented JSON block of the help: its lines from the first that opens an object to the blank line after it. */
function helpExample(help: string): unknown {
  const lines = help.split('\n');
  const start = lines.findIndex((l) => /^\s+\{ "name":/.test(l));
  expect(start, help).toBeGreaterThan(0);
  const end = lines.findIndex((l, i) => i > start && l.trim() === '');
  return JSON.parse(lines.slice(start, end).join('\n'));
}

describe('the example manifests', () => {
  it("batch --help's example is a valid manifest", () => {
    const example = helpExample(batchHelp());
    const r = resolveManifest(example, { source: 'batch --help', baseDir: '/tmp' });
    expect(r.subjects.map((s) => s.name)).toEqual(['subj01', 'subj02', 'subj05', 'subj07']);
    expect(r.subjects[0].analyses.map((a) => `${a.name} ${a.kind}`)).toEqual(['recon reconstruct', 'enc encode']);
    expect((r.subjects[0].analyses[1].config as { featureSets: { name: string }[] }).featureSets.map((f) => f.name)).toEqual(['z', 'c']);
  });

  it("docs/batch.md's manifest is a valid manifest", () => {
    const doc = readFileSync('docs/batch.md', 'utf8');
    const block = /## The manifest\n\n```json\n([\s\S]*?)\n```/.exec(doc);
    expect(block).not.toBeNull();
    const r = resolveManifest(JSON.parse(block![1]), { source: 'docs/batch.md', baseDir: '/tmp' });
    expect(r.subjects).toHaveLength(4);
  });
});
