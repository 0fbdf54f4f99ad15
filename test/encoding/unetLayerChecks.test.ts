/**
 * Which U-Net tensors can be features, on a tiny fixture U-Net with side branches none of which can be
 * (./unetSideBranches.ts). Such layers were exposed as float32 outputs (the model failed to load) or cut into rows
 * of garbage; now the features stage and `sd layers` name them. The U-Net with layers exposed is made and loaded in
 * memory: nothing is written to the temp folder, and a copy an older version's killed run left there is removed.
 */
import { existsSync, lutimesSync, mkdirSync, readdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

import { Command } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

import { registerSdCommand } from '../../ts/cli/commands/sd.js';
import { unetLayerFeatures, type Embeddings } from '../../ts/encoding/features.js';
import { checkUnetLayers, exposeUnetLayers, listUnetLayers, withExposedUnet } from '../../ts/encoding/unetLayers.js';
import { CancelledError } from '../../ts/errors.js';
import { HOST_TAG } from '../../ts/io/atomicWrite.js';
import { OnnxModel } from '../../ts/sd/OnnxModel.js';
import { onnx } from '../helpers/onnx.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import { addSideBranches, HALF_BRANCH, SIDE_BRANCHES } from './unetSideBranches.js';
import { osTmp as osTmpIn, restoreTmpdir } from '../helpers/osTmp.js';
import { pidTaggedCopies } from '../helpers/pidTaggedCopies.js';

let tmp = '';
let model = '';
/** A Tanh of the fixture: a [B, C, h, w] tensor, usable. */
let tanh = '';
const TEXT_DIM = 16;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'bl-unet-checks-'));
  model = join(tmp, 'sd');
  await writeSdFixture(model, { unetChannels: 8, unetLayers: 1, textDim: TEXT_DIM });
  tanh = (await listUnetLayers(model)).find((l) => l.opType === 'Tanh')!.name;
  await addSideBranches(model, tanh);
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});
afterEach(restoreTmpdir);

const osTmp = (name: string) => osTmpIn(tmp, name);

/** z and c of `n` made-up images: 4×4×4 latents (32-pixel images), 77×TEXT_DIM conditioning. */
function embeddings(n: number): Embeddings {
  const fill = (len: number, seed: number) => Float32Array.from({ length: len }, (_, i) => Math.sin(seed + i * 0.37) * 0.8);
  return {
    ids: Int32Array.from({ length: n }, (_, i) => 10 + i),
    z: { data: fill(n * 64, 1), rows: n, cols: 64 },
    c: { data: fill(n * 77 * TEXT_DIM, 2), rows: n, cols: 77 * TEXT_DIM },
    zShape: [4, 4, 4],
    cShape: [77, TEXT_DIM],
  };
}

const unetSpec = (layers: string[]) => ({ name: 'u', kind: 'unet' as const, layers, timesteps: [201], pool: 2, seed: 0 });

describe('U-Net features read only tensors with a row per image', () => {
  it('a tensor whose first dimension is not the batch is refused, naming the layer and its shape (it was cut into rows)', async () => {
    osTmp('features-unbatched');
    // [1, B·C·h·w] whatever the batch: 4 images in batches of 2 made tables of 2 distinct rows
    await expect(unetLayerFeatures(model, unetSpec(['tanh_one_row']), embeddings(4), { batch: 2 })).rejects.toThrow(
      /feature set 'u': layer 'tanh_one_row' \(Reshape\) has shape \[1, [^\]]+\] whatever the batch .*its first dimension is not the batch/,
    );
    // a scalar (ONNX Runtime cannot tell it from an unknown shape before the run): refused on the first batch
    await expect(unetLayerFeatures(model, unetSpec(['tanh_mean']), embeddings(4), { batch: 2 })).rejects.toThrow(
      /feature set 'u': layer 'tanh_mean' \(ReduceMean\) has shape \[\] on a batch of 2 images: its first dimension is not the batch/,
    );
  });

  it('a tensor that is not float32 is refused, naming the layer and its type', async () => {
    osTmp('features-int');
    await expect(unetLayerFeatures(model, unetSpec(['sample_shape', 'tanh_int']), embeddings(2), { batch: 2 })).rejects.toThrow(
      /feature set 'u': layer 'sample_shape' \(Shape\) is int64: features are read from float32 and float16 tensors only; layer 'tanh_int' \(Cast\) is int64/,
    );
  });

  it('a layer with a row per image gives one table row per image', async () => {
    osTmp('features-good');
    const [t] = await unetLayerFeatures(model, unetSpec([tanh]), embeddings(3), { batch: 2 });
    expect(t.x.rows).toBe(3);
    expect(t.x.cols).toBe(8 * 2 * 2);
  });
});

describe('checkUnetLayers (the preflight and sd layers)', () => {
  it('types each layer as ONNX Runtime does and runs a batch of 2 to find the tensors with no row per image', async () => {
    osTmp('check');
    const layers = [tanh, HALF_BRANCH, ...SIDE_BRANCHES];
    const check = await checkUnetLayers(model, layers, { imageSize: 32, timestep: 500 });
    expect(check.problem).toBeNull();
    const by = new Map(check.layers.map((l) => [l.name, l]));
    expect(by.get(tanh)!.problem).toBeNull();
    expect(by.get(tanh)!.dtype).toBe('float32');
    expect(by.get('sample_shape')!.problem).toBe("layer 'sample_shape' (Shape) is int64: features are read from float32 and float16 tensors only");
    expect(by.get('tanh_int')!.problem).toMatch(/^layer 'tanh_int' \(Cast\) is int64/);
    // float16 (a float16 export's tensors): read, converted to float32 by the engine
    expect(by.get('tanh_half')!.problem).toBeNull();
    expect(by.get('tanh_half')!.dtype).toBe('float16');
    expect(by.get('tanh_one_row')!.problem).toMatch(/^layer 'tanh_one_row' \(Reshape\) has shape \[1, .*\] whatever the batch/);
    expect(by.get('tanh_mean')!.problem).toMatch(/^layer 'tanh_mean' \(ReduceMean\) has shape \[\] on a batch of 2 images/);
  });

  it("takes the cond width from the text encoder when the U-Net's encoder_hidden_states does not declare it", async () => {
    const dir = join(tmp, 'symbolic-width');
    await cp(model, dir, { recursive: true });
    const path = join(dir, 'unet', 'model.onnx');
    const m = onnx.ModelProto.decode(await readFile(path));
    m.graph!.input!.find((i) => i.name === 'encoder_hidden_states')!.type!.tensorType!.shape!.dim![2] = { dimParam: 'hidden' };
    await writeFile(path, onnx.ModelProto.encode(m).finish());
    const check = await checkUnetLayers(dir, [tanh, 'tanh_mean'], { imageSize: 32, timestep: 500 });
    expect(check.problem).toBeNull();
    expect(check.layers.map((l) => l.problem === null)).toEqual([true, false]);
  });

  it('a float16 tensor without value_info is exposed with its own type (declared float32, the model did not load)', async () => {
    await withExposedUnet(
      model,
      ['tanh_half', tanh],
      async (m) => {
        expect(m.outputs.find((o) => o.name === 'tanh_half')!.dtype).toBe('float16');
        expect(m.outputs.find((o) => o.name === 'sample_shape')).toBeUndefined();
      },
      { intraOpThreads: 1 },
    );
  });
});

describe('no copy of the U-Net on disk', () => {
  it('an exposure writes nothing; the loaded model is disposed when the use ends, also when it fails', async () => {
    const dir = osTmp('exposures');
    const a = await exposeUnetLayers(model, [tanh]);
    expect(a.weightsFolder).toBe(join(model, 'unet'));
    expect(readdirSync(dir)).toEqual([]);
    let seen: OnnxModel | null = null;
    await expect(
      withExposedUnet(model, [tanh], async (m) => {
        seen = m;
        expect(m.outputs.map((o) => o.name)).toContain(tanh);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    await expect(seen!.run({}, ['out_sample'])).rejects.toThrow(/was disposed/);
    expect(readdirSync(dir)).toEqual([]);
  });

  // older versions wrote a copy there; a run of theirs killed with SIGKILL never removed it
  it("a copy an older version's dead process left is removed at the next use; a live process's copy is kept", async () => {
    const dir = osTmp('stale');
    const { dead, live, otherHost, deadAgain } = pidTaggedCopies(dir);
    await checkUnetLayers(model, [tanh], { imageSize: 32, timestep: 500 });
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(join(live, 'model.onnx'))).toBe(true);
    expect(existsSync(join(otherHost, 'model.onnx'))).toBe(true); // another machine's process: not judged from here
    expect(readdirSync(dir).sort()).toEqual([basename(live), basename(otherHost)].sort());
    // the features stage's exposure too
    const again = deadAgain();
    await unetLayerFeatures(model, unetSpec([tanh]), embeddings(2), { batch: 2 });
    expect(existsSync(again)).toBe(false);
    expect(existsSync(live)).toBe(true);
  });

  // builds before those named their copies without a pid: <tmp>/brainlatent-unet-layers-XXXXXX (mkdtemp), and before
  // that <tmp>/brainlatent-unet-layers/<16 hex>/, never removed; such a copy goes once nothing in it changed for hours
  it("copies of the earlier namings (no pid) are removed once hours old and of their exact shape; others are kept", async () => {
    const dir = osTmp('legacy');
    const weights = join(model, 'unet', 'model.onnx');
    const onnxBytes = await readFile(weights);
    const hoursAgo = (h: number) => new Date(Date.now() - h * 3600_000);
    /** A copy as those builds left it: model.onnx and a symlink to the U-Net's weights (and a folder of links), all `age` hours old. */
    const copy = (p: string, age: number, extra: (p: string) => void = () => undefined, bytes: Buffer | string = onnxBytes) => {
      mkdirSync(join(p, 'sub'), { recursive: true });
      writeFileSync(join(p, 'model.onnx'), bytes);
      symlinkSync(weights, join(p, 'weights.pb'));
      symlinkSync(weights, join(p, 'sub', 'w2.bin'));
      extra(p);
      const t = hoursAgo(age);
      for (const q of [join(p, 'weights.pb'), join(p, 'sub', 'w2.bin')]) lutimesSync(q, t, t);
      for (const q of readdirSync(p).map((n) => join(p, n)).filter((q) => !q.endsWith('weights.pb'))) utimesSync(q, t, t);
      utimesSync(p, t, t);
      return p;
    };
    const old = copy(join(dir, 'brainlatent-unet-layers-aB3xYz'), 7);
    const oldTmp = copy(join(dir, 'brainlatent-unet-layers-Qw9ErT'), 7, (p) => writeFileSync(join(p, `.model.onnx.tmp-${HOST_TAG}-123-0a1b2c3d`), 'half'));
    const fresh = copy(join(dir, 'brainlatent-unet-layers-Zx8CvB'), 1);
    const withNotes = copy(join(dir, 'brainlatent-unet-layers-Nt5NtS'), 7, (p) => writeFileSync(join(p, 'notes.txt'), 'mine'));
    const notOnnx = copy(join(dir, 'brainlatent-unet-layers-Tx7TxT'), 7, undefined, 'not a model');
    const otherName = copy(join(dir, 'brainlatent-unet-layers-toolong'), 7);
    const keyedOld = copy(join(dir, 'brainlatent-unet-layers', '0123456789abcdef'), 9);
    const keyedFresh = copy(join(dir, 'brainlatent-unet-layers', 'fedcba9876543210'), 0.5);
    utimesSync(join(dir, 'brainlatent-unet-layers'), hoursAgo(9), hoursAgo(9));

    await checkUnetLayers(model, [tanh], { imageSize: 32, timestep: 500 });
    for (const p of [old, oldTmp, keyedOld]) expect(existsSync(p), p).toBe(false);
    for (const p of [fresh, withNotes, notOnnx, otherName, keyedFresh]) expect(existsSync(join(p, 'model.onnx')), p).toBe(true);
    // the links were removed, not followed: the U-Net itself is whole
    expect((await readFile(weights)).equals(onnxBytes)).toBe(true);
    expect(readdirSync(join(dir, 'brainlatent-unet-layers'))).toEqual(['fedcba9876543210']);

    // the age is the newest change inside: the fresh copy goes once it is 6 hours old, then the emptied shared folder too
    const { removeLeftUnetCopies, LEGACY_COPY_AGE_MS } = await import('../../ts/encoding/unetCopies.js');
    expect(LEGACY_COPY_AGE_MS).toBe(6 * 3600_000);
    expect(await removeLeftUnetCopies(dir, { now: Date.now() + 4.9 * 3600_000 })).toEqual([]);
    expect((await removeLeftUnetCopies(dir, { now: Date.now() + 5.6 * 3600_000 })).sort()).toEqual([fresh, keyedFresh, join(dir, 'brainlatent-unet-layers')].sort());
    expect(readdirSync(dir).sort()).toEqual([basename(withNotes), basename(notOnnx), basename(otherName)].sort());
  });

  it('the features stage leaves nothing in the temp folder, done or aborted', async () => {
    const dir = osTmp('stage');
    await unetLayerFeatures(model, unetSpec([tanh]), embeddings(2), { batch: 2 });
    expect(readdirSync(dir)).toEqual([]);
    const ac = new AbortController();
    ac.abort();
    await expect(unetLayerFeatures(model, unetSpec([tanh]), embeddings(2), { batch: 2, signal: ac.signal })).rejects.toBeInstanceOf(CancelledError);
    expect(readdirSync(dir)).toEqual([]);
    await checkUnetLayers(model, [tanh, 'tanh_int'], { imageSize: 32, timestep: 500 });
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('brainlatent sd layers', () => {
  async function run(...args: string[]): Promise<{ out: string; err: string }> {
    const program = new Command().exitOverride();
    registerSdCommand(program);
    const out: string[] = [];
    const err: string[] = [];
    const o = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    const e = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
    try {
      await program.parseAsync(['node', 'brainlatent', 'sd', 'layers', ...args]);
    } finally {
      o.mockRestore();
      e.mockRestore();
    }
    return { out: out.join(''), err: err.join('') };
  }

  it('offers only tensors that can be features; --all marks the others, saying why', async () => {
    const dir = osTmp('sd-layers');
    const plain = await run('--model', model);
    const names = plain.out.trim().split('\n').map((l) => l.split('\t')[0]);
    expect(names).toContain(tanh);
    for (const bad of SIDE_BRANCHES) expect(names).not.toContain(bad);
    expect(names).toContain(HALF_BRANCH);
    expect(plain.err).toMatch(/block output\(s\) left out: not float32 or float16, or no row per image \(--all lists and marks them\)/);
    const all = await run('--model', model, '--all');
    expect(all.out.split('\n')).toContain(`${tanh}\tTanh\t-`);
    expect(all.out).toMatch(/^sample_shape\tShape\t-\tunusable: layer 'sample_shape' \(Shape\) is int64/m);
    expect(all.out).toMatch(/^tanh_mean\tReduceMean\t-\tunusable: layer 'tanh_mean' \(ReduceMean\) has shape \[\] on a batch of 2 images/m);
    const json = JSON.parse((await run('--model', model, '--all', '--json')).out) as { name: string; dtype: string; usable: boolean; problem?: string }[];
    expect(json.find((l) => l.name === 'tanh_half')).toMatchObject({ dtype: 'float16', usable: true });
    expect(json.find((l) => l.name === tanh)).toMatchObject({ dtype: 'float32', usable: true });
    expect(readdirSync(dir)).toEqual([]);
  });
});
