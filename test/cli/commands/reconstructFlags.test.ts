/**
 * `reconstruct` flags that set a config field are checked against that field's schema at the command line: a bad
 * value is reported against the flag, not against the config file that does not hold it (`--seeds 0` with a
 * run.json of seeds: 2 said "run.json: img2img.seeds: expected an integer >= 1, got number 0").
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { registerEncodeCommand } from '../../../ts/cli/commands/encode.js';
import { registerReconstructCommand } from '../../../ts/cli/commands/reconstruct.js';
import { FormatError, InvalidArgumentError } from '../../../ts/errors.js';
import { runCommands } from '../../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-cli-recflags-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const f = (name: string) => join(tmp, name);

const run = (...args: string[]) => runCommands([registerReconstructCommand, registerEncodeCommand], args);

describe('reconstruct flags are checked as flags', () => {
  writeFileSync(f('run.json'), JSON.stringify({ out: 'run', nsd: { root: 'no-nsd', subject: 1 }, model: { dir: 'no-model' }, img2img: { seeds: 2 } }));

  it('a bad --seeds, --subject, --steps or --test-images names the flag and the value as typed, not run.json', async () => {
    const cases: [string, string, string][] = [
      ['--seeds', '0', '--seeds: expected an integer >= 1, got 0'],
      ['--seeds', '2.5', '--seeds: expected an integer >= 1, got 2.5'],
      ['--seeds', 'abc', "--seeds: expected an integer >= 1, got 'abc'"],
      ['--seeds', '', "--seeds: expected an integer >= 1, got ''"],
      ['--subject', '9', '--subject: expected an integer from 1 to 8, got 9'],
      ['--steps', '-3', '--steps: expected an integer from 1 to 1000, got -3'],
      ['--test-images', '1', '--test-images: expected an integer >= 2, got 1'],
      ['--test-images', '0x10', "--test-images: expected an integer >= 2, got '0x10'"],
    ];
    for (const [flag, value, message] of cases) {
      await expect(run('reconstruct', '--config', f('run.json'), flag, value, '--out', f('x1'))).rejects.toThrow(new InvalidArgumentError(message));
      // also without a config file
      await expect(run('reconstruct', '--nsd', f('no-nsd'), '--model', f('no-model'), flag, value, '--out', f('x1'))).rejects.toThrow(new InvalidArgumentError(message));
    }
    expect(readdirSync(tmp)).toEqual(['run.json']);
  });

  it('without --config, --subject is required like --nsd, --model and --out (it ran subject 1 in silence)', async () => {
    await expect(run('reconstruct', '--nsd', f('no-nsd'), '--model', f('no-model'), '--out', f('x1'))).rejects.toThrow(
      new InvalidArgumentError('give --config recon.json, or --nsd DIR --subject N --model DIR --out DIR (missing: --subject N)'),
    );
    await expect(run('reconstruct', '--nsd', f('no-nsd'))).rejects.toThrow('(missing: --subject N, --model DIR, --out DIR)');
    // with --subject, the run gets as far as the NSD root
    await expect(run('reconstruct', '--nsd', f('no-nsd'), '--subject', '2', '--model', f('no-model'), '--out', f('x1'))).rejects.toThrow(/NSD root .*no-nsd does not exist/);
    expect(readdirSync(tmp)).toEqual(['run.json']);
  });

  it('an empty --nsd, --model or --config path is refused naming the flag (it would resolve to the working folder)', async () => {
    await expect(run('reconstruct', '--nsd', '', '--model', f('no-model'), '--out', f('x1'))).rejects.toThrow(new InvalidArgumentError("--nsd: got an empty path; expected a folder"));
    await expect(run('reconstruct', '--config', f('run.json'), '--model', ' ')).rejects.toThrow(new InvalidArgumentError("--model: got an empty path; expected a folder"));
  });

  it('a problem of the file itself is still reported against the file', async () => {
    writeFileSync(f('bad.json'), JSON.stringify({ out: 'run', nsd: { root: 'no-nsd', subject: 9 }, model: { dir: 'no-model' } }));
    await expect(run('reconstruct', '--config', f('bad.json'), '--seeds', '3')).rejects.toThrow(`${f('bad.json')}: nsd.subject: expected an integer from 1 to 8, got number 9`);
    // a valid flag overrides the file's bad value
    await expect(run('reconstruct', '--config', f('bad.json'), '--subject', '2', '--out', f('run.json'))).rejects.toThrow(
      new InvalidArgumentError(`--out ${f('run.json')}: is an existing file; expected a folder for the run`),
    );
  });
});

// review C #10: a run folder's own run.json given as --config got nine unrelated problems ("out: required, …,
// version: unknown key, config: unknown key"), and the help's examples named their configs run.json too
describe("a run folder's run.json given as --config", () => {
  const record = (config: object) => ({ format: 'brainlatent-run', version: 1, configHash: '1a384a87380aea18', createdAt: '2026-01-01T00:00:00.000Z', config, versions: {} });
  const recon = f('recon-run.json');
  const enc = f('enc-run.json');

  it('is refused as a run record, naming where its config is and how to run it again', async () => {
    writeFileSync(recon, JSON.stringify(record({ out: '/data/runs/subj01', nsd: { root: '/data/nsd', subject: 1 }, model: { dir: '/models/sd' } })));
    writeFileSync(enc, JSON.stringify(record({ out: '/data/runs/enc01', nsd: { root: '/data/nsd', subject: 1 }, featureSets: [] })));
    const e = (await run('reconstruct', '--config', recon, '--dry-run').catch((x: unknown) => x)) as Error;
    expect(e).toBeInstanceOf(FormatError);
    expect(e.message).toBe(
      `${recon} is a run record (format "brainlatent-run", written by reconstruct into its run folder), not a config; its config is under .config, resolved. ` +
        `To run that config again, save it as a config file: jq .config ${recon} > recon.json, then brainlatent reconstruct --config recon.json ` +
        '(its out is /data/runs/subj01, the folder of that run, which resumes there unless --out names another)',
    );
    // an encode's record, to encode and to reconstruct
    await expect(run('encode', '--config', enc, '--dry-run')).rejects.toThrow(
      `${enc} is a run record (format "brainlatent-run", written by encode into its run folder), not a config; its config is under .config, resolved. ` +
        `To run that config again, save it as a config file: jq .config ${enc} > enc.json, then brainlatent encode --config enc.json (its out is /data/runs/enc01, the folder of that run, which resumes there unless --out names another)`,
    );
    await expect(run('reconstruct', '--config', enc, '--dry-run')).rejects.toThrow(
      `${enc} is a run record (format "brainlatent-run", written by encode into its run folder), not a config; its config is under .config, resolved, to be run with brainlatent encode, not reconstruct. `,
    );
    // run.json while --force clears a folder holds no config
    const clearing = f('clearing-run.json');
    writeFileSync(clearing, JSON.stringify({ format: 'brainlatent-run', clearing: true, previousConfigHash: null, startedAt: '2026-01-01T00:00:00.000Z' }));
    await expect(run('reconstruct', '--config', clearing)).rejects.toThrow(
      `${clearing} is a run record (format "brainlatent-run") that holds no config (the marker of a run folder being cleared); expected a reconstruct config`,
    );
  });
});
