/**
 * External data of tensors that are not graph initializers: a Constant node's `value`, the initializers of If
 * branches and of a Loop body, and a Constant inside that body (test/helpers/nestedWeights.ts). Exporters write
 * such models, and onnx's save_as_external_data moves those tensors' data out too. Behind links that leave the
 * model's folder (a Hugging Face download), the locations of graph initializers were rewritten to the files the
 * links lead to and these were left naming the old file: ONNX Runtime then found no such file in the folder it
 * read from, or (when they were the only external tensors) refused them ("External data path escapes model
 * directory"). They must work as plain initializers do: OnnxModel.load, Diffusion.load and the U-Net with layers
 * exposed give the embedded model's outputs to the bit in every layout.
 */
import { cp, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { exposeUnetLayers, listUnetLayers, withExposedUnet } from '../../ts/encoding/unetLayers.js';
import { FormatError } from '../../ts/errors.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { SD_FIXTURE_VARIANTS, writeSdFixture } from '../../ts/sd/fixture.js';
import { modelSource } from '../../ts/sd/modelSource.js';
import { OnnxModel, unetFeatures } from '../../ts/sd/OnnxModel.js';
import { onnx } from '../helpers/onnx.js';
import { readModelWithWeightRefs } from '../../ts/sd/onnxWeightRefs.js';
import { distModule } from '../helpers/dist.js';
import { eachTensor, externalize, externalLocations } from '../helpers/externalData.js';
import { runCommand } from '../helpers/nodeChild.js';
import { linkIntoBlobs } from '../helpers/linkedModels.js';
import { nestWeights } from '../helpers/nestedWeights.js';
import { patternImages } from './fixtures.js';

const COMPONENTS = ['text_encoder', 'unet', 'vae_encoder', 'vae_decoder'];

let tmp = '';
/** The fixture with the U-Net's weights nested, all inline. */
let embedded = '';
/** The same with every float tensor's data in unet/weights.pb (the others' in model.onnx_data). */
let external = '';

const sample = { data: Float32Array.from({ length: 2 * 4 * 8 * 8 }, (_, i) => Math.sin(i * 0.37)), shape: [2, 4, 8, 8] };
const cond = { data: Float32Array.from({ length: 2 * 77 * 32 }, (_, i) => Math.cos(i * 0.11)), shape: [2, 77, 32] };
const unetInputs = { sample, timestep: 321, cond };

async function unetOut(path: string): Promise<Float32Array> {
  const m = await OnnxModel.load(path, { intraOpThreads: 1 });
  try {
    return (await unetFeatures(m, unetInputs, ['out_sample'])).out_sample.data;
  } finally {
    m.dispose();
  }
}

interface Outputs {
  text: Float32Array;
  sampled: Float32Array;
  rgb: Uint8Array;
}

async function outputsOf(dir: string): Promise<Outputs> {
  const sd = await Diffusion.load(dir, { intraOpThreads: 1 });
  try {
    const c = await sd.encodeText(['a photo of the cat', 'a dog']);
    const z = await sd.encodeImages(patternImages(2, 32, 32));
    const sampled = (await sd.img2img({ z, c, steps: 3, strength: 0.75, seeds: 7 })).latents;
    return { text: c.data, sampled: sampled.data, rgb: (await sd.decode(sampled)).data };
  } finally {
    sd.dispose();
  }
}

/** A copy of `from` under `name`/snapshots/<rev>, the files `pick` chooses linked into `name`/blobs. */
async function linkedCopy(from: string, name: string, pick: (rel: string) => boolean, sharded = false): Promise<string> {
  const snapshot = join(tmp, name, 'snapshots', '0123abcd');
  await cp(from, snapshot, { recursive: true });
  await linkIntoBlobs(snapshot, join(tmp, name, 'blobs'), pick, sharded);
  return snapshot;
}
const isData = (rel: string) => /(weights\.pb|model\.onnx_data)$/.test(rel);

let refUnet: Float32Array;
let ref: Outputs;

beforeAll(async () => {
  tmp = await realpath(await mkdtemp(join(tmpdir(), 'bl-nested-ext-')));
  embedded = join(tmp, 'embedded');
  await writeSdFixture(embedded, { ...SD_FIXTURE_VARIANTS['optimum-1.24'], unetLayers: 3 });
  const plainUnet = await unetOut(join(embedded, 'unet', 'model.onnx'));
  await nestWeights(join(embedded, 'unet', 'model.onnx'));
  refUnet = await unetOut(join(embedded, 'unet', 'model.onnx'));
  // (the nesting computes the same U-Net, the weights coming out of Identity and Squeeze as they went in; not to
  // the bit, as ONNX Runtime lays out a Conv's constant weights for its kernels and takes computed ones as they are)
  expect(Math.max(...refUnet.map((v, i) => Math.abs(v - plainUnet[i])))).toBeLessThan(1e-5);
  ref = await outputsOf(embedded);
  external = join(tmp, 'external');
  await cp(embedded, external, { recursive: true });
  await externalize(join(external, 'unet', 'model.onnx'), 'weights.pb', eachTensor);
  for (const c of COMPONENTS.filter((x) => x !== 'unet')) await externalize(join(external, c, 'model.onnx'), 'model.onnx_data');
}, 120_000);
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('external data in Constant nodes and subgraphs', () => {
  it('the U-Net has external data in a Constant, in If branches, in a Loop body and its Constant, and none left inline (the case under test)', async () => {
    const m = onnx.ModelProto.decode(await readFile(join(external, 'unet', 'model.onnx')));
    const where: string[] = [];
    eachTensor(m, (t, w) => {
      if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) where.push(w.replace(/'[^']*'/g, "'…'"));
      else expect(t.rawData?.length ?? 0).toBeLessThan(64);
    });
    expect(new Set(where)).toEqual(
      new Set([
        'graph initializer', // the one weight left where it was
        "graph node '…' attribute '…'", // Constant value
        "graph node '…' attribute '…' graph initializer", // If branches, Loop body
        "graph node '…' attribute '…' graph node '…' attribute '…'", // Constant in the Loop body
      ]),
    );
    // none is a graph initializer: the U-Net's only top-level external data is the ones the fixture had left
    expect(m.graph!.initializer!.filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL).length).toBeGreaterThan(0);
  });

  it('in a plain folder it loads by path and gives the embedded outputs', async () => {
    expect(await modelSource(join(external, 'unet', 'model.onnx'))).toEqual({ path: join(external, 'unet', 'model.onnx') });
    expect(await unetOut(join(external, 'unet', 'model.onnx'))).toEqual(refUnet);
    expect(await outputsOf(external)).toEqual(ref);
  });

  it('a download with its data linked into the cache (model.onnx a real file) loads from memory, every location rewritten, and gives the same outputs', async () => {
    // failed before: the nested tensors still named weights.pb, which is not in blobs/
    const dir = await linkedCopy(external, 'local-dir', isData);
    const src = await modelSource(join(dir, 'unet', 'model.onnx'), 'unet');
    expect(src.externalDataFolder).toBe(join(tmp, 'local-dir', 'blobs'));
    const blob = relative(join(tmp, 'local-dir', 'blobs'), await realpath(join(dir, 'unet', 'weights.pb')));
    expect(externalLocations(src.bytes!)).toEqual([blob]);
    expect(await unetOut(join(dir, 'unet', 'model.onnx'))).toEqual(refUnet);
    expect(await outputsOf(dir)).toEqual(ref);
  });

  it('a Hugging Face cache snapshot and a cache with sharded blobs give the same outputs, and so does the U-Net with layers exposed', async () => {
    const hub = await linkedCopy(external, 'hub', () => true);
    const sharded = await linkedCopy(external, 'sharded', () => true, true);
    const local = join(tmp, 'local-dir', 'snapshots', '0123abcd');
    const convs = (await listUnetLayers(external)).filter((l) => l.opType === 'Conv');
    const last = convs[convs.length - 1].name;
    for (const dir of [external, hub, sharded, local]) {
      expect(await unetOut(join(dir, 'unet', 'model.onnx'))).toEqual(refUnet);
      // the exposed U-Net is loaded from memory with its folder of external data: every location must name a file there
      const out = await withExposedUnet(dir, [last], (m) => unetFeatures(m, unetInputs, [last, 'out_sample']), { intraOpThreads: 1 });
      expect(out.out_sample.data).toEqual(refUnet);
      const u = await exposeUnetLayers(dir, [last]);
      for (const l of externalLocations(u.bytes)) expect(await realpath(join(u.weightsFolder, l))).toBe(await realpath(join(dir, 'unet', 'weights.pb')));
    }
    expect(await outputsOf(sharded)).toEqual(ref);
  });

  it('the CLI: `sd layers` and `sd info` on the hub snapshot and the download with links', async () => {
    // (the same paths as above, as `brainlatent` runs them: listUnetLayers + checkUnetLayers, Diffusion.load)
    const cli = distModule('cli/main');
    for (const name of ['hub', 'local-dir']) {
      const dir = join(tmp, name, 'snapshots', '0123abcd');
      const layers = await runCommand(process.execPath, [cli, 'sd', 'layers', '--model', dir, '--json']);
      // (stderr says which block outputs are left out: the fixture's scalars and weights; a U-Net that did not load is a warning)
      expect(layers.stderr).not.toMatch(/warning|does not load|error/i);
      expect(layers.status).toBe(0);
      expect(JSON.parse(layers.stdout).length).toBeGreaterThan(0);
      const info = await runCommand(process.execPath, [cli, 'sd', 'info', '--model', dir]);
      expect(info.stderr).toBe('');
      expect(info.status).toBe(0);
      expect(JSON.parse(info.stdout).model).toBe(dir);
    }
  });

  it('a model whose only external data is in a Constant node and subgraphs loads behind links too', async () => {
    // (no graph initializer is external: the model was read as having no external data, loaded by path and refused)
    const dir = join(tmp, 'only-nested', 'unet');
    await cp(join(embedded, 'unet'), dir, { recursive: true });
    const path = join(dir, 'model.onnx');
    const m = onnx.ModelProto.decode(await readFile(path));
    // the graph initializers stay inline: externalize the nested ones only
    const inline = m.graph!.initializer!;
    m.graph!.initializer = [];
    await writeFile(path, onnx.ModelProto.encode(m).finish());
    await externalize(path, 'weights.pb', eachTensor);
    const e = onnx.ModelProto.decode(await readFile(path));
    e.graph!.initializer = inline;
    await writeFile(path, onnx.ModelProto.encode(e).finish());
    expect(e.graph!.initializer!.some((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL)).toBe(false);
    expect(externalLocations(onnx.ModelProto.encode(e).finish())).toEqual(['weights.pb']);
    expect(await unetOut(path)).toEqual(refUnet);
    await linkIntoBlobs(join(tmp, 'only-nested'), join(tmp, 'only-nested-blobs'), isData);
    expect(await unetOut(path)).toEqual(refUnet);
    const r = await readModelWithWeightRefs(path);
    expect(r.byPath).toBe(false);
    expect(r.dataFolder).toBe(join(tmp, 'only-nested-blobs'));
  });
});
