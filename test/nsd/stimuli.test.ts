import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormatError, InvalidArgumentError, LimitError, MissingFileError, ShapeError } from '../../ts/errors.js';
import { writeHdf5 } from '../../ts/io/hdf5.js';
import { resizeRgb } from '../../ts/io/resize.js';
import { loadNsdCaptions } from '../../ts/nsd/captions.js';
import { formatNsdInfo, nsdInfo } from '../../ts/nsd/info.js';
import { betasPath } from '../../ts/nsd/paths.js';
import { NsdStimuli, readNsdImage } from '../../ts/nsd/stimuli.js';
import { renderScene, type Scene } from '../../ts/synth/scenes.js';
import { makeMiniNsd } from './mini.js';

let mini: Awaited<ReturnType<typeof makeMiniNsd>>;
let truth: { images: { id73k: number; caption: string; scene: Omit<Scene, 'caption'> }[] };
beforeAll(async () => {
  mini = await makeMiniNsd({ formats: ['nifti'], imageSize: 32 });
  truth = JSON.parse(readFileSync(mini.truthPath, 'utf8'));
});
afterAll(() => mini?.cleanup());

describe('NSD stimuli', () => {
  it('reads an image by 73k id, and resizes it', async () => {
    using s = await NsdStimuli.open(mini.root);
    expect([s.count, s.height, s.width]).toEqual([mini.stimuli, 32, 32]);
    for (const id of [1, 17, mini.stimuli]) {
      const t = truth.images[id - 1];
      expect(t.id73k).toBe(id);
      const drawn = renderScene({ ...t.scene, caption: t.caption }, 32);
      expect(s.image(id).data).toEqual(drawn.data);
    }
    const big = s.image(5, 48);
    expect([big.width, big.height, big.data.length]).toEqual([48, 48, 48 * 48 * 3]);
    // (resized by the engine: the bytes of the TypeScript resize, as the pipeline's features had them)
    expect(big.data).toEqual(resizeRgb(s.image(5), 48, 48).data);
    const wide = s.image(6, { width: 40, height: 20 });
    expect(wide.data).toEqual(resizeRgb(s.image(6), 40, 20).data);
    // into a batch's place, every size (the same size copied), nothing past it touched
    const batch = new Uint8Array(3 * 48 * 48 * 3 + 1).fill(7);
    s.imageInto(5, 48, batch.subarray(48 * 48 * 3, 2 * 48 * 48 * 3));
    expect(batch.subarray(48 * 48 * 3, 2 * 48 * 48 * 3)).toEqual(big.data);
    expect(batch.subarray(0, 48 * 48 * 3).every((v) => v === 7) && batch.subarray(2 * 48 * 48 * 3).every((v) => v === 7)).toBe(true);
    const same = new Uint8Array(32 * 32 * 3);
    s.imageInto(17, 32, same);
    expect(same).toEqual(s.image(17).data);
    const down = new Uint8Array(8 * 8 * 3);
    s.imageInto(17, { width: 8, height: 8 }, down);
    expect(down).toEqual(resizeRgb(s.image(17), 8, 8).data);
    expect(() => s.imageInto(17, 8, new Uint8Array(10))).toThrow(/dst has 10 elements, expected 192/);
    expect(() => s.imageInto(17, 32, new Uint8Array(32 * 32 * 3 + 1))).toThrow(new InvalidArgumentError('imageInto: dst has 3073 elements, expected 3072'));
    const small = await readNsdImage(mini.root, 5, 8);
    expect(small.data.length).toBe(8 * 8 * 3);
  });

  it('an id out of range, a brick of the wrong shape', async () => {
    using s = await NsdStimuli.open(mini.root);
    expect(() => s.image(0)).toThrow(InvalidArgumentError);
    expect(() => s.image(mini.stimuli + 1)).toThrow(new RegExp(`image id ${mini.stimuli + 1} is out of range: .*nsd_stimuli\\.hdf5 holds ${mini.stimuli} images`));
    const bad = join(mini.tmp, 'bad_stimuli.hdf5');
    await writeHdf5(bad, [{ name: 'imgBrick', data: new Uint8Array(2 * 4 * 4), shape: [2, 4, 4] }]);
    await expect(NsdStimuli.open(mini.root, bad)).rejects.toThrow(ShapeError);
  });
});

describe('NSD captions', () => {
  it('from the COCO caption files via the stim-info table', async () => {
    const caps = await loadNsdCaptions(mini.root);
    expect(caps.size).toBe(mini.stimuli);
    for (const id of [1, 2, 5, 40]) {
      expect(caps.get(id)[0]).toBe(truth.images[id - 1].caption);
      expect(caps.get(id)).toHaveLength(2);
    }
    expect(caps.get(999999)).toEqual([]);
  });

  it('from a user CSV or JSON', async () => {
    const csv = join(mini.tmp, 'caps.csv');
    writeFileSync(csv, 'nsdId,caption\n0,"a cat, sleeping"\n0,another\n4,"a ""quoted"" dog"\n');
    const c = await loadNsdCaptions(mini.root, csv);
    expect(c.get(1)).toEqual(['a cat, sleeping', 'another']);
    expect(c.get(5)).toEqual(['a "quoted" dog']);
    const json = join(mini.tmp, 'caps.json');
    writeFileSync(json, JSON.stringify({ 3: 'three', 7: ['seven', 'sept'] }));
    const j = await loadNsdCaptions(mini.root, json);
    expect(j.get(7)).toEqual(['seven', 'sept']);
    writeFileSync(json, JSON.stringify([{ id73k: 9, caption: 'nine' }]));
    expect((await loadNsdCaptions(mini.root, json)).get(9)).toEqual(['nine']);
    writeFileSync(csv, 'image,text\n1,x\n');
    await expect(loadNsdCaptions(mini.root, csv)).rejects.toThrow(/caps\.csv: CSV header must have caption and id73k/);
    await expect(loadNsdCaptions(mini.root, join(mini.tmp, 'none.json'))).rejects.toThrow(MissingFileError);
  });

  // review C #9 and its cosmetic list: 'caps.json: not valid JSON (Unexpected end of JSON input)', and
  // --captions /dev/zero read until Node's 'Invalid string length'
  it('a JSON syntax error names the line and column; a file without end is read up to the limit only', async () => {
    const json = join(mini.tmp, 'broken.json');
    writeFileSync(json, '{"1": "a cat",\n "2": ');
    const e = (await loadNsdCaptions(mini.root, json).catch((x: unknown) => x)) as Error;
    expect(e).toBeInstanceOf(FormatError);
    expect(e.message).toBe(`${json}:2:7: not valid JSON: value expected at the end of the file`);
    const before = process.env.BRAINLATENT_MAX_JSON_BYTES;
    process.env.BRAINLATENT_MAX_JSON_BYTES = String(1 << 20);
    try {
      const z = (await loadNsdCaptions(mini.root, '/dev/zero').catch((x: unknown) => x)) as Error;
      expect(z).toBeInstanceOf(LimitError);
      expect(z.message).toBe(`/dev/zero: not a regular file, and it holds more than the 1048576-byte limit for captions files (raise it with BRAINLATENT_MAX_JSON_BYTES)`);
      writeFileSync(json, JSON.stringify({ 3: 'x'.repeat(1 << 20) }));
      await expect(loadNsdCaptions(mini.root, json)).rejects.toThrow(`${json}: 1048584 bytes is more than the 1048576-byte limit for captions files (raise it with BRAINLATENT_MAX_JSON_BYTES)`);
    } finally {
      if (before === undefined) delete process.env.BRAINLATENT_MAX_JSON_BYTES;
      else process.env.BRAINLATENT_MAX_JSON_BYTES = before;
    }
  });
});

describe('nsd info', () => {
  it('says what is there and what is missing', async () => {
    const info = await nsdInfo(mini.root);
    expect(info.expdesign && info.stimuli && info.stimInfo).toBe(true);
    expect(info.subjects).toHaveLength(1);
    expect(info.subjects[0]).toMatchObject({ subject: 1, niftiSessions: [1, 2, 3], hdf5Sessions: [], brainmask: true, missing: [] });
    expect(info.subjects[0].rois).toEqual(['nsdgeneral', 'prf-visualrois', 'streams']);
    rmSync(betasPath(mini.root, 1, 2, 'nifti'));
    const after = await nsdInfo(mini.root);
    expect(after.subjects[0].niftiSessions).toEqual([1, 3]);
    // absent in both formats: both files are named (either would do)
    expect(after.subjects[0].missing).toEqual([`${betasPath(mini.root, 1, 2, 'nifti')} or ${betasPath(mini.root, 1, 2, 'hdf5')}`]);
    const text = formatNsdInfo(after);
    expect(text).toMatch(/subject 1: betas \.nii\.gz sessions 1,3; \.hdf5 sessions none \(NSD has 40\)/);
    expect(text).toMatch(/missing: .*betas_session02\.nii\.gz or .*betas_session02\.hdf5$/m);
    await expect(nsdInfo(join(mini.tmp, 'nowhere'))).rejects.toThrow(MissingFileError);
  });
});
