/**
 * The closing hint of a refused batch depends on its problems: after a run folder of another config (whose remedy
 * is --force) it said only "skip these checks with --no-preflight (the workers check again…)", which would not help:
 * the analysis's job refuses that folder too.
 */
import { describe, expect, it } from 'vitest';

import { BatchPreflightError, preflightHints, type BatchProblem } from '../../ts/batch/preflight.js';

const folder: BatchProblem = {
  subject: 'subj01',
  analysis: 'enc',
  problem: "run folder /o/subj01/enc holds another run's outputs (fits; config a, this config b); to apply this config, run the batch with --force",
  missingHere: false,
  otherRun: true,
};
const size: BatchProblem = { subject: 'subj01', analysis: 'recon', problem: 'img2img.size 32: …', missingHere: false };
const missing: BatchProblem = { subject: 'subj02', analysis: 'recon', problem: 'NSD root /x does not exist on this machine', missingHere: true };

const FOLDER_HINT = "a run folder of another config: apply the remedy it names (--force replaces its run); --no-preflight would not help, the analysis's job refuses that folder too";

describe('the hint after the preflight problems', () => {
  it('a run folder of another config alone: its remedy, and that skipping the checks would not help', () => {
    expect(preflightHints([folder], '--no-preflight')).toEqual([FOLDER_HINT]);
    const e = new BatchPreflightError({ id: 'b', subjects: [{ analyses: [1, 2] }] }, [folder], { refused: 'nothing was run', skip: '--no-preflight' });
    expect(e.message.split('\n').at(-1)).toBe(FOLDER_HINT);
    expect(e.message).not.toContain('skip these checks');
  });

  it('other problems keep their hints, each kind once', () => {
    expect(preflightHints([size], '--no-preflight')).toEqual(["fix it: the workers' jobs run the same checks and would fail on it too (--no-preflight would not help)"]);
    expect(preflightHints([size, folder], '--no-preflight')).toEqual([
      "fix the other one: the workers' jobs run the same checks and would fail on it too (--no-preflight would not help)",
      FOLDER_HINT,
    ]);
    const [first, ...rest] = preflightHints([missing, folder], '--no-preflight');
    expect(first).toMatch(/^a path that does not exist on this machine may exist where the workers run .*skip these checks with --no-preflight/);
    expect(rest).toEqual([FOLDER_HINT]);
  });

  // a config error (img2img.steps 1000 past the model's 999-step schedule) was told '--no-preflight (the workers check
  // again when they run the jobs)': the workers fail on it too. Only a path missing here is a reason to skip the checks.
  it('a config error is to be fixed, not skipped; beside a path missing here each gets its own hint', () => {
    const steps: BatchProblem = { subject: 'subj01', analysis: 'recon', problem: 'lab.json: analyses[0].config.img2img.steps: 1000 is past the schedule (999)', missingHere: false };
    expect(preflightHints([steps, size], '--no-preflight')).toEqual(["fix them: the workers' jobs run the same checks and would fail on them too (--no-preflight would not help)"]);
    const e = new BatchPreflightError({ id: 'b', subjects: [{ analyses: [1] }] }, [steps], { refused: 'nothing was submitted', skip: '--no-preflight' });
    expect(e.message).not.toContain('skip these checks');
    const [first, second] = preflightHints([missing, steps], '--no-preflight');
    expect(first).toMatch(/^a path that does not exist on this machine .*skip these checks with --no-preflight/);
    expect(second).toBe("fix the other one: the workers' jobs run the same checks and would fail on it too (--no-preflight would not help)");
  });
});
