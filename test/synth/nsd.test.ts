import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../ts/errors.js';
import { Hdf5Reader } from '../../ts/io/hdf5.js';
import { matNumeric, readMat } from '../../ts/io/mat.js';
import { readNifti, readNiftiHeader } from '../../ts/io/nifti.js';
import * as P from '../../ts/nsd/paths.js';
import { synthNsd } from '../../ts/synth/nsd.js';
import { hasPython, runPython } from '../io/python.js';
import { makeMiniNsd } from '../nsd/mini.js';

let mini: Awaited<ReturnType<typeof makeMiniNsd>>;
beforeAll(async () => {
  mini = await makeMiniNsd({ subjects: [1, 2], sessions: 2, designSessions: 3, trialsPerSession: 30, sharedImages: 4, compressMat: false });
});
afterAll(() => mini?.cleanup());

describe('synthNsd', () => {
  it('writes the NSD layout with NSD shapes and conventions', async () => {
    const r = mini.root;
    for (const s of [1, 2]) {
      for (const sess of [1, 2]) {
        const h = await readNiftiHeader(P.betasPath(r, s, sess, 'nifti'));
        expect(h.dims).toEqual([20, 24, 16, 30]);
        expect(h.datatype).toBe('int16');
        using f = await Hdf5Reader.open(P.betasPath(r, s, sess, 'hdf5'));
        expect(f.shape('betas')).toEqual([30, 16, 24, 20]);
        expect(f.chunks('betas')).toEqual([30, 1, 1, 1]);
      }
      expect(existsSync(P.betasPath(r, s, 3, 'nifti'))).toBe(false);
      const streams = (await readNifti(P.roiPath(r, s, 'streams'))).data;
      const brain = (await readNifti(P.brainmaskPath(r, s))).data;
      streams.forEach((v, i) => expect(v === -1).toBe(brain[i] === 0));
      expect(new Set(streams)).toEqual(new Set([-1, 0, 1, 2, 3, 4, 5, 6, 7]));
    }
    const mat = await readMat(P.expdesignPath(r));
    expect(matNumeric(mat, 'masterordering').dims).toEqual([1, 90]);
    expect(matNumeric(mat, 'subjectim').dims).toEqual([8, 30]);
    expect(matNumeric(mat, 'sharedix').dims).toEqual([1, 4]);
    const truth = JSON.parse(readFileSync(mini.truthPath, 'utf8'));
    expect(Object.keys(truth.subjects)).toEqual(['1', '2']);
    expect(truth.images).toHaveLength(mini.stimuli);
    expect(truth.features.latent[0]).toHaveLength(192);
    const spaces = new Set(truth.subjects['1'].voxels.map((v: { stream: string; space: string }) => `${v.stream}:${v.space}`));
    expect(spaces).toEqual(new Set(['early:latent', 'ventral:semantic']));
  });

  it.skipIf(!hasPython('nibabel', 'h5py', 'scipy'))('independent readers agree: nibabel, h5py and scipy', async () => {
    const out = await runPython(
      `import sys, numpy as np, nibabel as nib, h5py, scipy.io as sio
r = sys.argv[1]
b = sys.argv[2]
a = np.asarray(nib.load(b + '/betas_session01.nii.gz').dataobj)
with h5py.File(b + '/betas_session01.hdf5', 'r') as f: h = f['betas'][:]
d = sio.loadmat(r + '/nsddata/experiments/nsd/nsd_expdesign.mat')
mo = d['masterordering'].ravel().astype(int)
print(a.dtype, a.shape, h.shape, bool((np.transpose(a, (3, 2, 1, 0)) == h).all()), np.abs(a).max() < 32767, sorted(np.bincount(mo)[1:].tolist())[0])`,
      mini.root,
      P.betasDir(mini.root, 1),
    );
    expect(out.trim()).toBe('int16 (20, 24, 16, 30) (30, 16, 24, 20) True True 3');
  });

  it('rejects impossible options', async () => {
    await expect(synthNsd({ out: mini.tmp + '/x', trialsPerSession: 31, designSessions: 1, sessions: 1 })).rejects.toThrow(InvalidArgumentError);
    await expect(synthNsd({ out: mini.tmp + '/x', sessions: 5 })).rejects.toThrow(new InvalidArgumentError('synthNsd sessions: expected an integer in 1..designSessions (4), got 5'));
    await expect(synthNsd({ out: mini.tmp + '/x', subjects: [9] })).rejects.toThrow(new InvalidArgumentError('synthNsd subjects: expected subjects from 1 to 8, got 9'));
    // (review s35-r5: a repeat was written once and printed twice; 2000-px images took 221 s and 6.7 GB, then failed)
    await expect(synthNsd({ out: mini.tmp + '/x', subjects: [1, 1] })).rejects.toThrow(new InvalidArgumentError('synthNsd subjects: expected distinct subjects, got 1,1'));
    await expect(synthNsd({ out: mini.tmp + '/x', imageSize: 2000 })).rejects.toThrow(/^synthNsd imageSize 2000 makes 6\.37 GiB of stimulus images \(570 of 2000×2000\), over the 1 GiB limit/);
    expect(existsSync(mini.tmp + '/x')).toBe(false);
  });

  it('checks seed, designSessions and noiseSd, each under its own name (2.5 ran as seed 2, a string seed built another world)', async () => {
    const refuse = async (o: object, message: string) =>
      await expect(synthNsd({ out: mini.tmp + '/x', ...o })).rejects.toThrow(new InvalidArgumentError(`synthNsd ${message}`));
    for (const [seed, got] of [[NaN, 'NaN'], [Infinity, 'Infinity'], [2.5, '2.5'], [-1, '-1'], [2 ** 31, '2147483648'], ['3', 'string "3"']] as const) {
      await refuse({ seed }, `seed: expected an integer in 0..2147483647, got ${got}`);
    }
    for (const [designSessions, got] of [[1.5, '1.5'], ['3', 'string "3"'], [-1, '-1'], [0, '0']] as const) {
      await refuse({ designSessions }, `designSessions: expected an integer >= 1, got ${got}`);
    }
    for (const [noiseSd, got] of [[Infinity, 'Infinity'], [NaN, 'NaN'], [-0.5, '-0.5'], ['3', 'string "3"']] as const) {
      await refuse({ noiseSd }, `noiseSd: expected a finite number >= 0, got ${got}`);
    }
    // an explicit null is no default: refused like any other wrong value
    const nul = null;
    await refuse({ seed: nul }, 'seed: expected an integer in 0..2147483647, got null');
    await refuse({ designSessions: nul }, 'designSessions: expected an integer >= 1, got null');
    await refuse({ sessions: nul }, 'sessions: expected an integer in 1..designSessions (4), got null');
    await refuse({ trialsPerSession: nul }, 'trialsPerSession: expected an integer >= 3, got null');
    await refuse({ sharedImages: nul }, 'sharedImages: expected an integer in 1..79 (fewer than the 80 images per subject), got null');
    await refuse({ imageSize: nul }, 'imageSize: expected an integer >= 8, got null');
    await refuse({ noiseSd: nul }, 'noiseSd: expected a finite number >= 0, got null');
    await refuse({ subjects: nul }, 'subjects: expected subjects from 1 to 8, got null');
    await refuse({ grid: nul }, 'grid: expected three integers from 8 to 32767, got null');
    await refuse({ formats: nul }, 'formats: expected at least one of nifti, hdf5, got null');
    await refuse({ compressMat: nul }, 'compressMat: expected true or false, got null');
    await refuse({ out: '' }, 'out: expected the folder to write, got string ""');
    expect(existsSync(mini.tmp + '/x')).toBe(false);
  });

  it('an abort stops the writing with a CancelledError and leaves nothing at out or beside it', async () => {
    const ac = new AbortController();
    const out = mini.tmp + '/stopped';
    const err = await synthNsd({ out, signal: ac.signal, onProgress: (p) => p.phase === 'betas' && ac.abort('stop') }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.name).toBe('CancelledError');
    expect(readdirSync(mini.tmp).filter((n) => n.includes('stopped'))).toEqual([]);
  });
});
