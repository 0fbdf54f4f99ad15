import { FormatError, InvalidArgumentError } from '../errors.js';
import { matNumeric, readMat } from '../io/mat.js';
import { expdesignPath } from './paths.js';

/** NSD's design (nsd_expdesign.mat), every index 1-based as in the file. */
export interface NsdDesign {
  path: string;
  /** For each trial of the full experiment, the subjectim column shown. */
  masterordering: Int32Array;
  /** subjectim is rows (subjects) × cols (images); value = 73k id. */
  subjectimRows: number;
  subjectimCols: number;
  /** Column-major as in MATLAB: subjectim(s, c) = subjectim[(c-1) * rows + (s-1)]. */
  subjectim: Int32Array;
  /** 73k ids of the shared images. */
  sharedix: Int32Array;
}

export async function readNsdDesign(root: string, path = expdesignPath(root)): Promise<NsdDesign> {
  const mat = await readMat(path, { variables: ['masterordering', 'subjectim', 'sharedix'] });
  const mo = matNumeric(mat, 'masterordering');
  const si = matNumeric(mat, 'subjectim');
  const sh = matNumeric(mat, 'sharedix');
  if (si.dims.length !== 2) throw new FormatError(`${path}: subjectim is ${si.dims.join('×')}, expected subjects × images`);
  const ints = (name: string, a: Float64Array) => {
    const out = new Int32Array(a.length);
    for (let i = 0; i < a.length; i++) {
      if (!Number.isInteger(a[i]) || a[i] < 1) throw new FormatError(`${path}: ${name} holds ${a[i]} at index ${i}, expected positive integers (1-based)`);
      out[i] = a[i];
    }
    return out;
  };
  const design = {
    path,
    masterordering: ints('masterordering', mo.data),
    subjectimRows: si.dims[0],
    subjectimCols: si.dims[1],
    subjectim: ints('subjectim', si.data),
    sharedix: ints('sharedix', sh.data),
  };
  for (let t = 0; t < design.masterordering.length; t++) {
    if (design.masterordering[t] > design.subjectimCols) {
      throw new FormatError(`${path}: masterordering[${t}] = ${design.masterordering[t]} exceeds subjectim's ${design.subjectimCols} columns`);
    }
  }
  return design;
}

/** One row per trial of the chosen sessions, in session then trial order. */
export interface NsdTrialTable {
  session: Int32Array;
  /** Index along the session file's 4th axis (0-based). */
  position: Int32Array;
  /** NSD 73k id, 1-based. */
  imageId: Int32Array;
  /** 1 when the image is one of the shared images (masterordering <= sharedix count): the test set. */
  test: Uint8Array;
}

/**
 * The trial table (BD's convention): trial t of the experiment shows subjectim(subject, masterordering(t)),
 * sits in session ⌊t / T⌋ + 1 at position t mod T, and is a test trial when masterordering(t) <= the number of
 * shared images (the first subjectim columns are the shared images).
 */
export function nsdTrialTable(design: NsdDesign, subject: number, sessions: number[], trialsPerSession: number, betasFile?: string): NsdTrialTable {
  if (!(Number.isInteger(subject) && subject >= 1 && subject <= design.subjectimRows)) {
    throw new InvalidArgumentError(`subject ${subject} is out of range: ${design.path} has subjects 1..${design.subjectimRows}`);
  }
  // Betas of another session length than the design's would read every session past the first as trials of other
  // images (a 74-trial file against 75-trial sessions: session k's rows k − 1 trials off), with no error.
  const total = design.masterordering.length;
  if (!(Number.isInteger(trialsPerSession) && trialsPerSession >= 1) || total % trialsPerSession !== 0) {
    throw new FormatError(
      `${betasFile ?? 'the betas files'} ${betasFile ? 'has' : 'have'} ${trialsPerSession} trials per session, but ${design.path} lists ${total} trials, ` +
        `not a whole number of sessions of ${trialsPerSession} (NSD's: 30000 = 40 sessions of 750): the betas do not match the design`,
    );
  }
  const designSessions = Math.floor(design.masterordering.length / trialsPerSession);
  const n = sessions.length * trialsPerSession;
  const table: NsdTrialTable = {
    session: new Int32Array(n),
    position: new Int32Array(n),
    imageId: new Int32Array(n),
    test: new Uint8Array(n),
  };
  const nShared = design.sharedix.length;
  let k = 0;
  for (const s of sessions) {
    if (s < 1 || s > designSessions) {
      throw new InvalidArgumentError(
        `session ${s} is beyond the design: ${design.path} lists ${design.masterordering.length} trials = ${designSessions} sessions of ${trialsPerSession}`,
      );
    }
    for (let p = 0; p < trialsPerSession; p++, k++) {
      const col = design.masterordering[(s - 1) * trialsPerSession + p];
      table.session[k] = s;
      table.position[k] = p;
      table.imageId[k] = design.subjectim[(col - 1) * design.subjectimRows + (subject - 1)];
      table.test[k] = col <= nShared ? 1 : 0;
    }
  }
  return table;
}
