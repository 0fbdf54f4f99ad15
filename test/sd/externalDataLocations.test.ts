/**
 * External data locations that leave the model's folder — an absolute path, or one that climbs out with '..' — are
 * refused wherever the tensor is (a graph initializer, a Constant node's value, an If branch's initializer, a
 * Constant in a Loop body), with an error naming the model file, the tensor and the location. ONNX Runtime refuses
 * them when it loads a model by its path, but a model read here first (behind links: loaded from memory; the U-Net
 * with layers exposed, always) had such a location rewritten to the file's basename in the file's real folder, and
 * ONNX Runtime then read the file from there: any file a model named could be read. And ONNX Runtime's own refusal
 * of a node's or subgraph's tensor came as an invalid model ("the file is truncated, corrupt or of another format").
 */
import { copyFile, cp, mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { exposeUnetLayers, listUnetLayers } from '../../ts/encoding/unetLayers.js';
import { FormatError } from '../../ts/errors.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { SD_FIXTURE_VARIANTS, writeSdFixture } from '../../ts/sd/fixture.js';
import { OnnxModel } from '../../ts/sd/OnnxModel.js';
import { externalDataRefusal } from '../../ts/sd/onnxWeightRefs.js';
import { eachTensor, externalize, relocate } from '../helpers/externalData.js';
import { nestWeights, type NestedWeights } from '../helpers/nestedWeights.js';

let tmp = '';
let base = '';
let nested: NestedWeights;

beforeAll(async () => {
  tmp = await realpath(await mkdtemp(join(tmpdir(), 'bl-ext-locations-')));
  base = join(tmp, 'base');
  await writeSdFixture(base, { ...SD_FIXTURE_VARIANTS['optimum-1.24'], unetLayers: 3 });
  nested = await nestWeights(join(base, 'unet', 'model.onnx'));
  await externalize(join(base, 'unet', 'model.onnx'), 'weights.pb', eachTensor);
}, 120_000);
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Which tensor gets the location, by eachTensor's `where`. */
const PLACES: Record<string, (where: string) => boolean> = {
  'a graph initializer': (w) => w === 'graph initializer',
  "a Constant node's value": (w) => w === "graph node 'nested_constant' attribute 'value'",
  "an If branch's initializer": (w) => w.startsWith(`graph node '${nested.ifThen}_if' attribute 'then_branch'`),
  'a Constant in a Loop body': (w) => w.includes("node 'loop_constant'"),
};
/** What the error says of where the tensor is. */
const SAYS: Record<string, () => string> = {
  'a graph initializer': () => '(a graph initializer)',
  "a Constant node's value": () => "(the 'value' attribute of Constant node 'nested_constant')",
  "an If branch's initializer": () => `(an initializer in the 'then_branch' graph of If node '${nested.ifThen}_if')`,
  'a Constant in a Loop body': () => "(the 'value' attribute of Constant node 'loop_constant' in the 'body' graph of Loop node 'nested_loop')",
};

/**
 * A copy of the fixture named `name` whose U-Net names its data at `kind` ('..' or absolute) for the tensors at
 * `place`; the file the location names exists, outside the model's folder, with the data (so that nothing but the
 * refusal stops it being read). `linked`: a file beside model.onnx is a link into a blobs/ folder (a download).
 */
async function withLocation(name: string, place: string, kind: 'dotdot' | 'absolute', linked: boolean): Promise<{ dir: string; unet: string; tensors: string[]; location: string }> {
  const dir = join(tmp, name);
  await cp(base, dir, { recursive: true });
  const unet = join(dir, 'unet', 'model.onnx');
  await mkdir(join(dir, 'outside'));
  await copyFile(join(dir, 'unet', 'weights.pb'), join(dir, 'outside', 'w.bin'));
  const location = kind === 'dotdot' ? '../outside/w.bin' : join(dir, 'outside', 'w.bin');
  const tensors = await relocate(unet, (_, where) => PLACES[place](where), location);
  expect(tensors.length).toBeGreaterThan(0);
  if (linked) {
    await mkdir(join(dir, 'blobs'));
    await writeFile(join(dir, 'blobs', 'cafe'), '{}');
    await symlink(join('..', 'blobs', 'cafe'), join(dir, 'unet', 'config.json'));
  }
  return { dir, unet, tensors, location };
}

const failure = (p: Promise<unknown>) =>
  p.then(
    () => null,
    (e: unknown) => e as Error,
  );

function expectRefusal(e: Error | null, unet: string, tensor: string, location: string, place: string): void {
  expect(e).toBeInstanceOf(FormatError);
  expect(e!.message).toContain(`${unet}: tensor '${tensor}' ${SAYS[place]()} keeps its data in '${location}'`);
  expect(e!.message).toMatch(location.startsWith('..') ? /climbs out of the model's folder with '\.\.'/ : /an absolute path/);
  expect(e!.message).not.toContain('truncated, corrupt');
}

describe('external data locations outside the model folder', () => {
  let k = 0;
  for (const place of Object.keys(PLACES)) {
    for (const kind of ['dotdot', 'absolute'] as const) {
      const id = k++;
      it(`${place}, ${kind === 'dotdot' ? "'..'" : 'an absolute path'}: refused by OnnxModel.load (plain and behind links), Diffusion.load and the exposed U-Net`, async () => {
        // behind links (loaded from memory): the location used to be rewritten to 'w.bin' in outside/ and read
        const linked = await withLocation(`linked-${id}`, place, kind, true);
        expectRefusal(await failure(OnnxModel.load(linked.unet)), linked.unet, linked.tensors[0], linked.location, place);
        expectRefusal(await failure(Diffusion.load(linked.dir)), linked.unet, linked.tensors[0], linked.location, place);
        // a plain folder: ONNX Runtime refuses it; the message is ours, naming the tensor
        const plain = await withLocation(`plain-${id}`, place, kind, false);
        expectRefusal(await failure(OnnxModel.load(plain.unet)), plain.unet, plain.tensors[0], plain.location, place);
        expectRefusal(await failure(Diffusion.load(plain.dir)), plain.unet, plain.tensors[0], plain.location, place);
        expectRefusal(await externalDataRefusal(plain.unet), plain.unet, plain.tensors[0], plain.location, place);
        // the U-Net with layers exposed is always read first, and was loaded with outside/ as its data folder
        expectRefusal(await failure(exposeUnetLayers(plain.dir, ['out_sample'])), plain.unet, plain.tensors[0], plain.location, place);
        await expect(listUnetLayers(plain.dir)).rejects.toThrow(FormatError);
      });
    }
  }

  it('a model whose every location names one file outside its folder is refused, not read from that folder', async () => {
    for (const kind of ['dotdot', 'absolute'] as const) {
      const dir = join(tmp, `all-${kind}`);
      await cp(base, dir, { recursive: true });
      const unet = join(dir, 'unet', 'model.onnx');
      await mkdir(join(dir, 'outside'));
      await copyFile(join(dir, 'unet', 'weights.pb'), join(dir, 'outside', 'w.bin'));
      const location = kind === 'dotdot' ? '../outside/w.bin' : join(dir, 'outside', 'w.bin');
      expect((await relocate(unet, () => true, location)).length).toBeGreaterThan(4);
      const refused = (e: Error | null) => {
        expect(e).toBeInstanceOf(FormatError);
        expect(e!.message).toMatch(new RegExp(`^${unet}: tensor '\\w+' \\(.*\\) keeps its data in '${location.replace(/\./g, '\\.')}'`));
      };
      // failed before: the U-Net with layers exposed was loaded with outside/ as its data folder, 'w.bin' read there
      refused(await failure(exposeUnetLayers(dir, ['out_sample'])));
      // and behind a link, OnnxModel.load loaded it from memory the same way
      await symlink(join('..', 'outside', 'w.bin'), join(dir, 'unet', 'weights.pb.link'));
      refused(await failure(OnnxModel.load(unet)));
    }
  });

  // (before: the engine reported onnx's checker's refusal, an invalid graph, as "the file is truncated, corrupt or of another format")
  it("a subgraph's tensor whose data file is missing is said to be missing, not a corrupt file", async () => {
    const dir = join(tmp, 'nested-missing');
    await cp(base, dir, { recursive: true });
    const unet = join(dir, 'unet', 'model.onnx');
    expect((await relocate(unet, (_, where) => PLACES['a Constant in a Loop body'](where), 'nope.bin')).length).toBeGreaterThan(0);
    const e = await failure(OnnxModel.load(unet));
    expect(e).toBeInstanceOf(FormatError);
    expect(e!.message).toContain(`cannot load ${unet}: a tensor's external data file is missing (or is not a regular file)`);
    expect(e!.message).toContain('nope.bin');
    expect(e!.message).not.toContain('truncated, corrupt');
  });

  it('a location in a subfolder of the model folder is not refused', async () => {
    const dir = join(tmp, 'subfolder');
    await cp(base, dir, { recursive: true });
    await mkdir(join(dir, 'unet', 'data'));
    await copyFile(join(dir, 'unet', 'weights.pb'), join(dir, 'unet', 'data', 'w.bin'));
    await relocate(join(dir, 'unet', 'model.onnx'), () => true, 'data/w.bin');
    expect(await externalDataRefusal(join(dir, 'unet', 'model.onnx'))).toBeNull();
    const m = await OnnxModel.load(join(dir, 'unet', 'model.onnx'));
    m.dispose();
    expect((await exposeUnetLayers(dir, ['out_sample'])).weightsFolder).toBe(join(dir, 'unet'));
  });
});
