/**
 * An external data file shorter than its tensors need (`head -c`, or `cp other.bin weights.pb` before the load) is a
 * FormatError naming the model, the tensor, the bytes it needs and the file, with and without a service's model
 * roots; before, ONNX Runtime's "External initializer: w offset: … given file_length: … are out of bounds" came
 * through as an OrtFailure (a service's 500). Read here first (onnxWeightRefs.ts), and under roots checked again
 * by the engine against the file it maps (which may have been cut since it was read here).
 */
import { mkdir, mkdtemp, readFile, realpath, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { FormatError } from '../../ts/errors.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { SD_FIXTURE_VARIANTS, writeSdFixture } from '../../ts/sd/fixture.js';
import { confineModelsTo } from '../../ts/sd/modelRoots.js';
import { OnnxModel } from '../../ts/sd/OnnxModel.js';
import { onnx } from '../helpers/onnx.js';
import { readModelWithWeightRefs } from '../../ts/sd/onnxWeightRefs.js';
import { externalize } from '../helpers/externalData.js';

let tmp = '';

const floats = (v: number[]) => Buffer.from(Float32Array.from(v).buffer);

/** y = x + w, w float [4] in `location` at `offset`; `length` absent: ONNX Runtime takes dims × 4 bytes. */
function addModel(location: string, entries: Record<string, string> = { length: '16' }): Buffer {
  const vec = (name: string) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 4 }] } } } });
  const externalData = [{ key: 'location', value: location }, ...Object.entries(entries).map(([key, value]) => ({ key, value }))];
  const init = { name: 'w', dims: [4], dataType: 1, dataLocation: 1, externalData };
  const model = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: { name: 'g', node: [{ input: ['x', 'w'], output: ['y'], opType: 'Add', name: 'add' }], initializer: [init], input: [vec('x')], output: [vec('y')] },
  };
  return Buffer.from(onnx.ModelProto.encode(model).finish());
}

/**
 * y = x + w, w the unnamed tensor of Constant node 'c''s `value`, float [4] at bytes 0..16 of `location`: what
 * onnx's convert_model_to_external_data(convert_attribute=True) makes of a Constant whose tensor has no name.
 */
function constantModel(location: string): Buffer {
  const vec = (name: string) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 4 }] } } } });
  const externalData = [{ key: 'location', value: location }, { key: 'offset', value: '0' }, { key: 'length', value: '16' }];
  const value = { dims: [4], dataType: 1, dataLocation: 1, externalData };
  const constant = { output: ['w'], opType: 'Constant', name: 'c', attribute: [{ name: 'value', type: 4, t: value }] };
  const model = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: { name: 'g', node: [constant, { input: ['x', 'w'], output: ['y'], opType: 'Add', name: 'add' }], input: [vec('x')], output: [vec('y')] },
  };
  return Buffer.from(onnx.ModelProto.encode(model).finish());
}

const errorOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as Error,
  );

async function loadAndRun(path: string): Promise<number[]> {
  const m = await OnnxModel.load(path, { intraOpThreads: 1 });
  try {
    return [...(await m.run({ x: { data: Float32Array.of(1, 2, 3, 4), shape: [4] } }, ['y'])).y.data];
  } finally {
    m.dispose();
  }
}

beforeAll(async () => {
  tmp = await realpath(await mkdtemp(join(tmpdir(), 'bl-short-data-')));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A test's model folder, and a call run under model roots (a service's) or without them, as `roots` says. */
function rootsSetting(roots: boolean) {
  const folder = (name: string) => join(tmp, roots ? 'root' : 'plain', name);
  const withRoots = async <T>(fn: () => Promise<T>): Promise<T> => {
    const undo = roots ? confineModelsTo(join(tmp, 'root')) : () => undefined;
    try {
      return await fn();
    } finally {
      undo();
    }
  };
  return { folder, withRoots };
}

describe.each([
  ['without model roots', false],
  ['under model roots', true],
])('an external data file too short for its tensor, %s', (_, roots) => {
  const { folder, withRoots } = rootsSetting(roots);

  it('is a FormatError naming the tensor, the bytes and the file (before: an OrtFailure, "… are out of bounds")', async () => {
    const dir = folder('short');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'model.onnx'), addModel('w.bin'));
    await writeFile(join(dir, 'w.bin'), floats([10, 20]));
    const e = await withRoots(() => errorOf(loadAndRun(join(dir, 'model.onnx'))));
    expect(e).toBeInstanceOf(FormatError);
    expect(e!.message).toContain(`${join(dir, 'model.onnx')}: tensor 'w' needs bytes 0..16 of 'w.bin', which has 8 bytes (truncated or the wrong file)`);
    // whole, it loads
    await writeFile(join(dir, 'w.bin'), floats([10, 20, 30, 40]));
    expect(await withRoots(() => loadAndRun(join(dir, 'model.onnx')))).toEqual([11, 22, 33, 44]);
  });

  it('an offset past the end, and a tensor without a length (dims × element size): refused alike', async () => {
    const dir = folder('offset');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'w.bin'), floats([10, 20, 30, 40]));
    await writeFile(join(dir, 'model.onnx'), addModel('w.bin', { offset: '4096', length: '16' }));
    const e = await withRoots(() => errorOf(loadAndRun(join(dir, 'model.onnx'))));
    expect(e).toBeInstanceOf(FormatError);
    expect(e!.message).toContain("tensor 'w' needs bytes 4096..4112 of 'w.bin', which has 16 bytes");
    await writeFile(join(dir, 'model.onnx'), addModel('w.bin', { offset: '8' }));
    const noLength = await withRoots(() => errorOf(loadAndRun(join(dir, 'model.onnx'))));
    expect(noLength).toBeInstanceOf(FormatError);
    expect(noLength!.message).toContain("tensor 'w' needs bytes 8..24 of 'w.bin', which has 16 bytes");
  });
});

describe.each([
  ['without model roots', false],
  ['under model roots', true],
])('an unnamed external tensor (a Constant node\'s value), %s', (_, roots) => {
  const { folder, withRoots } = rootsSetting(roots);

  it('loads whole (before, under roots: a TypeError, "files[0].furthest needs a tensor…"); short, it is named by where it is', async () => {
    const dir = folder('unnamed');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'model.onnx'), constantModel('w.bin'));
    await writeFile(join(dir, 'w.bin'), floats([10, 20, 30, 40]));
    expect(await withRoots(() => loadAndRun(join(dir, 'model.onnx')))).toEqual([11, 22, 33, 44]);
    await writeFile(join(dir, 'w.bin'), floats([10, 20]));
    const e = await withRoots(() => errorOf(loadAndRun(join(dir, 'model.onnx'))));
    expect(e).toBeInstanceOf(FormatError);
    expect(e!.message).toContain("an unnamed tensor (the 'value' attribute of Constant node 'c') needs bytes 0..16 of 'w.bin', which has 8 bytes");
  });
});

describe('under model roots, the furthest bytes of an external data file as read here', () => {
  it('a negative dim gives none (before: a negative length, then a TypeError from the engine)', async () => {
    const dir = join(tmp, 'root', 'negative-dim');
    await mkdir(dir, { recursive: true });
    const model = onnx.ModelProto.decode(addModel('w.bin', {}));
    model.graph!.initializer![0].dims = [-4];
    await writeFile(join(dir, 'model.onnx'), onnx.ModelProto.encode(model).finish());
    await writeFile(join(dir, 'w.bin'), floats([10, 20, 30, 40]));
    const undo = confineModelsTo(join(tmp, 'root'));
    try {
      const r = await readModelWithWeightRefs(join(dir, 'model.onnx'));
      expect(r.files?.find((f) => f.location === 'w.bin')?.furthest).toBeUndefined();
    } finally {
      undo();
    }
  });

  it('two locations linked to one file: the furthest tensor of both (before: the first location\'s)', async () => {
    const dir = join(tmp, 'root', 'two-links');
    const data = join(tmp, 'root', 'two-links-data');
    await mkdir(dir, { recursive: true });
    await mkdir(data, { recursive: true });
    await writeFile(join(data, 'w.bin'), floats([10, 20, 30, 40, 50, 60, 70, 80]));
    await symlink(join(data, 'w.bin'), join(dir, 'a.bin'));
    await symlink(join(data, 'w.bin'), join(dir, 'b.bin'));
    const model = onnx.ModelProto.decode(addModel('a.bin'));
    const second = onnx.ModelProto.decode(addModel('b.bin', { offset: '16', length: '16' })).graph!.initializer![0];
    second.name = 'v';
    model.graph!.initializer!.push(second);
    model.graph!.node!.push({ input: ['y', 'v'], output: ['z'], opType: 'Add', name: 'add2' });
    model.graph!.output![0].name = 'z';
    await writeFile(join(dir, 'model.onnx'), onnx.ModelProto.encode(model).finish());
    const undo = confineModelsTo(join(tmp, 'root'));
    try {
      const r = await readModelWithWeightRefs(join(dir, 'model.onnx'));
      expect(r.files?.filter((f) => f.path === join(data, 'w.bin')).map((f) => f.furthest)).toEqual([{ tensor: 'v', offset: 16, length: 16 }]);
    } finally {
      undo();
    }
  });
});

describe('under model roots, a file cut after it was read here and before the engine opened it', () => {
  it('the engine refuses it in the same words (before: an OrtFailure)', async () => {
    const dir = join(tmp, 'root', 'cut-between');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'model.onnx'), addModel('w.bin'));
    await writeFile(join(dir, 'w.bin'), floats([10, 20, 30, 40]));
    const undo = confineModelsTo(join(tmp, 'root'));
    try {
      const r = await readModelWithWeightRefs(join(dir, 'model.onnx'));
      expect(r.files?.find((f) => f.location === 'w.bin')?.furthest).toEqual({ tensor: 'w', offset: 0, length: 16 });
      await truncate(join(dir, 'w.bin'), 8);
      const e = await errorOf(OnnxModel.fromCheckedBytes(r.bytes, { name: 'cut-between/model.onnx', files: r.files!, intraOpThreads: 1 }));
      expect(e).toBeInstanceOf(FormatError);
      expect(e!.message).toContain("cut-between/model.onnx: tensor 'w' needs bytes 0..16 of 'w.bin', which has 8 bytes (truncated or the wrong file)");
    } finally {
      undo();
    }
  });
});

describe("an SD folder whose U-Net's weights.pb is cut short (head -c)", () => {
  let sd = '';
  beforeAll(async () => {
    sd = join(tmp, 'root', 'sd');
    await writeSdFixture(sd, SD_FIXTURE_VARIANTS['optimum-1.24']);
    await externalize(join(sd, 'unet', 'model.onnx'), 'weights.pb');
    const size = (await stat(join(sd, 'unet', 'weights.pb'))).size;
    await writeFile(join(sd, 'unet', 'weights.pb'), (await readFile(join(sd, 'unet', 'weights.pb'))).subarray(0, size >> 1));
  }, 120_000);

  it.each([
    ['without model roots', false],
    ['under model roots', true],
  ])('Diffusion.load %s: a FormatError naming unet/model.onnx and weights.pb', async (_, roots) => {
    const undo = roots ? confineModelsTo(join(tmp, 'root')) : () => undefined;
    try {
      const e = await errorOf(Diffusion.load(sd, { intraOpThreads: 1 }));
      expect(e).toBeInstanceOf(FormatError);
      expect(e!.message).toMatch(/unet\/model\.onnx: tensor '[^']+' needs bytes \d+\.\.\d+ of 'weights\.pb', which has \d+ bytes \(truncated or the wrong file\)/);
    } finally {
      undo();
    }
  });
});
