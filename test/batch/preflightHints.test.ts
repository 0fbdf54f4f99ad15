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
    expect(preflightHints([size], '--no-preflight')).toEqual(['fix them, or skip these checks with --no-preflight (the workers check again when they run the jobs)']);
    expect(preflightHints([size, folder], '--no-preflight')).toEqual([
      'fix the others, or skip these checks with --no-preflight (the workers check again when they run the jobs)',
      FOLDER_HINT,
    ]);
    const [first, ...rest] = preflightHints([missing, folder], '--no-preflight');
    expect(first).toMatch(/^a path that does not exist on this machine may exist where the workers run .*skip these checks with --no-preflight/);
    expect(rest).toEqual([FOLDER_HINT]);
  });
});
