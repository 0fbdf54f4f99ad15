/**
 * SD folders whose files are links, as downloads keep them: a Hugging Face cache snapshot (every file a relative
 * link to blobs/<sha256>), a `--local-dir` download with links (huggingface_hub before 0.23: model.onnx a real
 * file, its large external data a link into the cache's blobs/), and a cache whose blobs lie in subfolders (blobs/<2 hex>/<sha256>). ONNX Runtime
 * 1.30 refuses external data whose real path leaves the model file's real folder ("External data path escapes
 * model directory"): the last two did not load at all, and the U-Net with layers exposed failed on all three.
 * Each component of the tiny fixture has its weights in an external file (weights.pb for the U-Net, as float32 SD
 * exports do, model.onnx_data for the others); every layout must give the plain folder's outputs to the bit.
 */
import { cp, mkdir, mkdtemp, readFile, realpath, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { exposeUnetLayers, listUnetLayers, withExposedUnet } from '../../ts/encoding/unetLayers.js';
import { InvalidArgumentError } from '../../ts/errors.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { SD_FIXTURE_VARIANTS, writeSdFixture } from '../../ts/sd/fixture.js';
import { modelSource } from '../../ts/sd/modelSource.js';
import { OnnxModel, unetFeatures } from '../../ts/sd/OnnxModel.js';
import { onnx } from '../helpers/onnx.js';
import { readOnnxSignature } from '../../ts/sd/onnxSignature.js';
import { externalize } from '../helpers/externalData.js';
import { linkIntoBlobs } from '../helpers/linkedModels.js';
import { patternImages } from './fixtures.js';

const COMPONENTS = ['text_encoder', 'unet', 'vae_encoder', 'vae_decoder'];
const DATA_FILE: Record<string, string> = { unet: 'weights.pb', text_encoder: 'model.onnx_data', vae_encoder: 'model.onnx_data', vae_decoder: 'model.onnx_data' };

let tmp = '';
let plain = '';

/** A copy of the plain folder under `name`/snapshots/<rev>, with the files `pick` chooses linked into `name`/blobs. */
async function linkedCopy(name: string, pick: (rel: string) => boolean, sharded = false): Promise<string> {
  const snapshot = join(tmp, name, 'snapshots', '0123abcd');
  await cp(plain, snapshot, { recursive: true });
  await linkIntoBlobs(snapshot, join(tmp, name, 'blobs'), pick, sharded);
  return snapshot;
}

const isData = (rel: string) => /(weights\.pb|model\.onnx_data)$/.test(rel);

interface Outputs {
  text: Float32Array;
  latents: Float32Array;
  sampled: Float32Array;
  rgb: Uint8Array;
}

/** Everything the four models compute, on one thread: text, image latents, a few img2img steps, the decoded images. */
async function outputsOf(dir: string): Promise<Outputs> {
  const sd = await Diffusion.load(dir, { intraOpThreads: 1 });
  try {
    const c = await sd.encodeText(['a photo of the cat', '']);
    const z = await sd.encodeImages(patternImages(2, 32, 32));
    const sampled = (await sd.img2img({ z, c: await sd.encodeText(['a photo of the cat', 'a dog']), steps: 4, strength: 0.75, seeds: 7 })).latents;
    const img = await sd.decode(sampled);
    return { text: c.data, latents: z.data, sampled: sampled.data, rgb: img.data };
  } finally {
    sd.dispose();
  }
}

let ref: Outputs;

beforeAll(async () => {
  tmp = await realpath(await mkdtemp(join(tmpdir(), 'bl-linked-sd-')));
  plain = join(tmp, 'plain');
  await writeSdFixture(plain, SD_FIXTURE_VARIANTS['optimum-1.24']);
  for (const c of COMPONENTS) await externalize(join(plain, c, 'model.onnx'), DATA_FILE[c]);
  ref = await outputsOf(plain);
}, 120_000);
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('an SD folder whose files are links into a cache', () => {
  it('the plain folder has its weights external (the case under test) and computes something', async () => {
    for (const c of COMPONENTS) expect((await readFile(join(plain, c, DATA_FILE[c]))).length).toBeGreaterThanOrEqual(96);
    expect(Math.max(...Array.from(ref.sampled, Math.abs))).toBeGreaterThan(1e-3);
    // every component loads by path: nothing of an ordinary folder is read to decide
    for (const c of COMPONENTS) expect(await modelSource(join(plain, c, 'model.onnx'))).toEqual({ path: join(plain, c, 'model.onnx') });
  });

  it('a Hugging Face cache snapshot (every file a link to blobs/<sha256>) loads by path and gives the same outputs', async () => {
    const dir = await linkedCopy('hub', () => true);
    for (const c of COMPONENTS) expect((await modelSource(join(dir, c, 'model.onnx'))).bytes).toBeUndefined();
    const out = await outputsOf(dir);
    expect(out).toEqual(ref);
  });

  it('a download with its weights linked into the cache (model.onnx a real file) loads, from memory, and gives the same outputs', async () => {
    // failed before: "External data path escapes model directory. External data path: "weights.pb" resolved path: .../blobs/<hash>"
    const dir = await linkedCopy('local-dir', isData);
    const out = await outputsOf(dir);
    expect(out).toEqual(ref);
    // the U-Net's graph names weights.pb's blob, in blobs/
    const src = await modelSource(join(dir, 'unet', 'model.onnx'), 'unet');
    expect(src.externalDataFolder).toBe(join(tmp, 'local-dir', 'blobs'));
    const locations = new Set(onnx.ModelProto.decode(src.bytes!).graph!.initializer!.flatMap((t) => (t.externalData ?? []).filter((e) => e.key === 'location').map((e) => e.value)));
    const blob = relative(join(tmp, 'local-dir', 'blobs'), await realpath(join(dir, 'unet', 'weights.pb')));
    expect([...locations]).toEqual([blob]);
  });

  it('a cache with its blobs in subfolders (model.onnx and its data in different folders) loads and gives the same outputs', async () => {
    const dir = await linkedCopy('sharded', () => true, true);
    const out = await outputsOf(dir);
    expect(out).toEqual(ref);
  });

  it('OnnxModel.load and the U-Net with layers exposed follow the links too, to the bit', async () => {
    const sample = { data: Float32Array.from({ length: 2 * 4 * 8 * 8 }, (_, i) => Math.sin(i * 0.37)), shape: [2, 4, 8, 8] };
    const cond = { data: Float32Array.from({ length: 2 * 77 * 32 }, (_, i) => Math.cos(i * 0.11)), shape: [2, 77, 32] };
    const inputs = { sample, timestep: 321, cond };
    const run = async (path: string) => {
      const m = await OnnxModel.load(path, { intraOpThreads: 1 });
      try {
        return (await unetFeatures(m, inputs, ['out_sample'])).out_sample.data;
      } finally {
        m.dispose();
      }
    };
    const want = await run(join(plain, 'unet', 'model.onnx'));
    const convs = (await listUnetLayers(plain)).filter((l) => l.opType === 'Conv');
    const last = convs[convs.length - 1].name;
    for (const name of ['hub', 'local-dir', 'sharded']) {
      const dir = join(tmp, name, 'snapshots', '0123abcd');
      expect(await run(join(dir, 'unet', 'model.onnx'))).toEqual(want);
      // the exposed U-Net named weights.pb in the snapshot's unet/, a link ONNX Runtime refused
      const out = await withExposedUnet(dir, [last], (m) => unetFeatures(m, inputs, [last, 'out_sample']), { intraOpThreads: 1 });
      expect(out.out_sample.data).toEqual(want);
      expect((await exposeUnetLayers(dir, [last])).weightsFolder).not.toBe(join(dir, 'unet'));
    }
  });

  it('signatures are read through the links', async () => {
    for (const c of COMPONENTS) {
      expect(await readOnnxSignature(join(tmp, 'hub', 'snapshots', '0123abcd', c, 'model.onnx'))).toEqual(await readOnnxSignature(join(plain, c, 'model.onnx')));
    }
  });

  it('external data files whose links lead to different folders are an error naming them and the fix', async () => {
    const dir = join(tmp, 'split', 'unet');
    await mkdir(join(tmp, 'split', 'a'), { recursive: true });
    await mkdir(join(tmp, 'split', 'b'), { recursive: true });
    await cp(join(plain, 'unet'), dir, { recursive: true });
    // half of the initializers in a second file, each file linked from a folder of its own
    const path = join(dir, 'model.onnx');
    const m = onnx.ModelProto.decode(await readFile(path));
    const weights = await readFile(join(dir, 'weights.pb'));
    const moved = m.graph!.initializer!.filter((t) => t.externalData?.length).filter((_, k) => k % 2 === 1);
    let at = 0;
    const chunks: Buffer[] = [];
    for (const t of moved) {
      const entry = (k: string) => Number(t.externalData!.find((e) => e.key === k)!.value);
      const raw = weights.subarray(entry('offset'), entry('offset') + entry('length'));
      chunks.push(raw);
      t.externalData = [
        { key: 'location', value: 'more.bin' },
        { key: 'offset', value: String(at) },
        { key: 'length', value: String(raw.length) },
      ];
      at += raw.length;
    }
    await writeFile(path, onnx.ModelProto.encode(m).finish());
    await writeFile(join(tmp, 'split', 'b', 'more.bin'), Buffer.concat(chunks));
    await rename(join(dir, 'weights.pb'), join(tmp, 'split', 'a', 'weights.pb'));
    await symlink(join('..', 'a', 'weights.pb'), join(dir, 'weights.pb'));
    await symlink(join('..', 'b', 'more.bin'), join(dir, 'more.bin'));
    const err = await OnnxModel.load(path).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err!.message).toContain(`${path}: its external data files lie in different folders once their links are followed`);
    expect(err!.message).toContain(`weights.pb -> ${join(tmp, 'split', 'a', 'weights.pb')}`);
    expect(err!.message).toContain(`more.bin -> ${join(tmp, 'split', 'b', 'more.bin')}`);
    expect(err!.message).toContain('copy them into one folder');
  });
});
