import { describe, expect, it } from 'vitest';

import { BatchPreflightError, formatProblems, formatWarnings, type BatchProblem } from '../../ts/batch/preflight.js';

// A problem that several subject × analysis pairs share (a model folder all of them use) is one problem: listed
// once naming the pairs it concerns, and counted once in the error's header.

const at = (subject: string, analysis: string, problem: string, missingHere = false): BatchProblem => ({ subject, analysis, problem, missingHere });
const batch = { id: 'b', subjects: [{ analyses: ['recon', 'enc'] }, { analyses: ['recon', 'enc'] }, { analyses: ['recon', 'enc'] }] };

describe('batch preflight problems', () => {
  it('lists a problem shared by several pairs once, the analyses of the same subjects together', () => {
    const model = 'model folder /m does not exist on this machine';
    const problems = [
      at('subj01', 'recon', model, true),
      at('subj01', 'enc', model, true),
      at('subj02', 'recon', model, true),
      at('subj02', 'enc', model, true),
      at('subj02', 'recon', 'subject 2 has no betas'),
      at('subj03', 'recon', model, true),
    ];
    expect(formatProblems(problems)).toEqual([`subj01, subj02, subj03 × recon; subj01, subj02 × enc: ${model}`, 'subj02 × recon: subject 2 has no betas']);
    const message = new BatchPreflightError(batch, problems, { refused: 'nothing was run', skip: '--no-preflight' }).message;
    expect(message.split('\n').slice(0, 3)).toEqual([
      'batch b: the preflight found 2 problems in 5 of 6 subject × analysis pairs; nothing was run:',
      `  - subj01, subj02, subj03 × recon; subj01, subj02 × enc: ${model}`,
      '  - subj02 × recon: subject 2 has no betas',
    ]);
  });

  it('counts one problem in every pair once', () => {
    const root = 'NSD root /n does not exist on this machine';
    const problems = ['subj01', 'subj02', 'subj03'].flatMap((s) => [at(s, 'recon', root, true), at(s, 'enc', root, true)]);
    const message = new BatchPreflightError(batch, problems, { refused: 'nothing was submitted', skip: '--no-preflight' }).message;
    expect(message).toMatch(/^batch b: the preflight found 1 problem in 6 of 6 subject × analysis pairs; nothing was submitted:\n {2}- subj01, subj02, subj03 × recon, enc: NSD root \/n does not exist on this machine\n/);
  });

  it('names the pairs a warning concerns, not every subject × every analysis', () => {
    const gap = 'subject 2: session 2 has no betas between sessions that have';
    expect(formatWarnings([at('subj02', 'recon', gap), at('subj03', 'enc', gap)])).toEqual([`subj02 × recon; subj03 × enc: ${gap}`]);
  });
});
