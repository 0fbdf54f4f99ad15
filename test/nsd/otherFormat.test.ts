import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MissingFileError } from '../../ts/errors.js';
import { readNsdDesign } from '../../ts/nsd/expdesign.js';
import { extractNsd } from '../../ts/nsd/extract.js';
import { betasPath } from '../../ts/nsd/paths.js';
import { planNsdSessions } from '../../ts/nsd/sessionPlan.js';
import { makeMiniNsd } from './mini.js';

// a root whose betas are .hdf5 only (subjects 1 and 2, sessions 1-2), and one .nii.gz session of subject 1
let mini: Awaited<ReturnType<typeof makeMiniNsd>>;
let root: string;
beforeAll(async () => {
  mini = await makeMiniNsd({ subjects: [1, 2], sessions: 2, designSessions: 3, trialsPerSession: 30, sharedImages: 5, imageSize: 8 });
  root = mini.root;
  for (const s of [1, 2]) rmSync(betasPath(root, 2, s, 'nifti'));
  rmSync(betasPath(root, 1, 2, 'nifti'));
});
afterAll(() => mini?.cleanup());

const unexpected = (): never => {
  throw new Error('expected a refusal');
};
const note = (list: string, option: string, lead = 'the root has ') => `${lead}.hdf5 betas for ${list}: ${option} 'hdf5' reads them (or 'auto', either format)`;

describe('betas only in the format not chosen', () => {
  it("extractNsd says so, naming the subjects and sessions, and how to read them", async () => {
    const looked = betasPath(root, 2, 1, 'nifti');
    // (the subject's betas are there in the other format: the format is the problem, and the error says which)
    const e = await extractNsd({ root, subject: 2, roi: 'nsdgeneral', format: 'nifti' }).then(unexpected, (x: unknown) => x as MissingFileError);
    expect(e).toBeInstanceOf(MissingFileError);
    expect([e.name, e.message]).toEqual([
      'BetasInOtherFormatError',
      `subject 2 has no betas in ${root} (format 'nifti': looked for ${looked} and the other sessions 1-37); the root has 'nifti' betas for subject 1, and ` +
        note('subject 1 (sessions 1-2) and subject 2 (sessions 1-2)', 'format', ''),
    ]);
    const s = await extractNsd({ root, subject: 1, roi: 'nsdgeneral', format: 'nifti', sessions: '1-2' }).then(unexpected, (x: unknown) => x as MissingFileError);
    expect(s.name).toBe('BetasInOtherFormatError');
    expect(s.message.endsWith(`; of the sessions asked for (1-2), 2 has no betas (format 'nifti'); sessions with betas for subject 1: 1; ${note('subject 1 (session 2)', 'format')}`)).toBe(true);
    // a subject with no betas in either format is still the subject's problem, told where the others are
    const none = await extractNsd({ root, subject: 3, roi: 'nsdgeneral', format: 'nifti' }).then(unexpected, (x: unknown) => x as MissingFileError);
    expect(none.name).toBe('SubjectWithoutBetasError');
    expect(none.message).toMatch(new RegExp(`the root has 'nifti' betas for subject 1, and \\.hdf5 betas for subject 1 \\(sessions 1-2\\) and subject 2 \\(sessions 1-2\\): format 'hdf5' reads them`));
  });

  it("a config's preflight (planNsdSessions) says so under nsd.format", async () => {
    const design = await readNsdDesign(root);
    const all = await planNsdSessions({ root, subject: 2, sessions: null, format: 'nifti' }, design);
    expect(all.problems).toEqual([
      `subject 2 has no betas in ${root} (nsd.format 'nifti': looked for ${betasPath(root, 2, 1, 'nifti')} and the other sessions 1-37); ` +
        note('subject 2 (sessions 1-2)', 'nsd.format'),
    ]);
    const some = await planNsdSessions({ root, subject: 1, sessions: '1-2', format: 'nifti' }, design);
    expect(some.problems).toEqual([
      `nsd.sessions: session 2 of subject 1 has no betas (.nii.gz) in ${root} (looked for ${betasPath(root, 1, 2, 'nifti')}); sessions with betas: 1; ` +
        note('subject 1 (session 2)', 'nsd.format'),
    ]);
    // 'auto' reads either: nothing to say; the format that has them plans
    expect((await planNsdSessions({ root, subject: 2, sessions: null, format: 'hdf5' }, design)).problems).toEqual([]);
  });
});
