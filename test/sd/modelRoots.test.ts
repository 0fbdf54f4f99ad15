/**
 * Links in a model folder under a service's model roots (serve --root): a model file, its external data and its
 * tokenizer's and scheduler's files must lie inside a root, or inside the model's Hugging Face cache folder
 * (models--*), once links are followed; from the CLI and the library (no roots) links are followed wherever they
 * lead. Before, a folder under the root whose weights.pb, model.onnx, unet/ or vocab.json linked to any file of the
 * machine was read from there. Also: a tensor naming two 'location' entries (ONNX Runtime 1.30 refuses it, earlier
 * versions read the last, the check read the first) and a drive-relative 'C:w.bin' location are refused.
 */
import { cp, mkdir, mkdtemp, readFile, realpath, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { exposeUnetLayers } from '../../ts/encoding/unetLayers.js';
import { FormatError } from '../../ts/errors.js';
import { ClipTokenizer } from '../../ts/sd/clipTokenizer.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { SD_FIXTURE_VARIANTS, writeSdFixture } from '../../ts/sd/fixture.js';
import { checkedModelFile, checkModelFile, confineModelsTo, isInside, MODEL_ROOTS_ENV, setModelFileOpenHook, verifyUnchanged, modelsConfined, SERVICE_MODEL_ROOTS_ENV, serviceModelRoots, withModelRoots, withoutServiceRoots } from '../../ts/sd/modelRoots.js';
import { OnnxModel } from '../../ts/sd/OnnxModel.js';
import { onnx } from '../helpers/onnx.js';
import { externalDataRefusal, readModelWithWeightRefs } from '../../ts/sd/onnxWeightRefs.js';
import { externalize } from '../helpers/externalData.js';
import { linkIntoBlobs } from '../helpers/linkedModels.js';

let tmp = '';
let plain = '';
let root = '';
let outside = '';

beforeAll(async () => {
  tmp = await realpath(await mkdtemp(join(tmpdir(), 'bl-model-roots-')));
  plain = join(tmp, 'plain');
  await writeSdFixture(plain, SD_FIXTURE_VARIANTS['optimum-1.24']);
  await externalize(join(plain, 'unet', 'model.onnx'), 'weights.pb');
  root = join(tmp, 'root');
  outside = join(tmp, 'outside');
  await mkdir(root);
  await mkdir(outside);
}, 120_000);
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const failure = (p: Promise<unknown>) =>
  p.then(
    () => null,
    (e: unknown) => e as Error,
  );

const load = async (path: string) => (await OnnxModel.load(path, { intraOpThreads: 1 })).dispose();

/** A copy of the plain folder at `dir`. */
async function copy(dir: string): Promise<string> {
  await cp(plain, dir, { recursive: true });
  return dir;
}

describe('under model roots (a service)', () => {
  let undo: () => void;
  beforeEach(() => {
    undo = confineModelsTo(root);
  });
  afterEach(() => undo());

  it("refuses external data linked to a file outside the root, naming the model, the tensor and the location", async () => {
    // (failed before: loaded from memory, its weights read from outside/)
    const dir = await copy(join(root, 'weights-out'));
    const unet = join(dir, 'unet', 'model.onnx');
    await rename(join(dir, 'unet', 'weights.pb'), join(outside, 'weights-out.pb'));
    await symlink(join(outside, 'weights-out.pb'), join(dir, 'unet', 'weights.pb'));
    for (const e of [await failure(load(unet)), await failure(Diffusion.load(dir)), await failure(exposeUnetLayers(dir, ['out_sample']))]) {
      expect(e).toBeInstanceOf(FormatError);
      expect(e!.message).toMatch(new RegExp(`^${unet}: tensor '[^']+' \\(a graph initializer\\) keeps its data in 'weights\\.pb', which leads, through a symbolic link, outside the service's root folder`));
      // (the link's target is not named: the client is not told where the server's files are)
      expect(e!.message).not.toContain(outside);
    }
  });

  it('refuses a model.onnx that links outside the root, and a component folder that does', async () => {
    const dir = await copy(join(root, 'model-out'));
    const unet = join(dir, 'unet', 'model.onnx');
    await rename(join(dir, 'unet'), join(outside, 'unet-a'));
    await mkdir(join(dir, 'unet'));
    await symlink(join(outside, 'unet-a', 'model.onnx'), unet);
    await symlink(join(outside, 'unet-a', 'weights.pb'), join(dir, 'unet', 'weights.pb'));
    let e = await failure(load(unet));
    expect(e).toBeInstanceOf(FormatError);
    expect(e!.message).toMatch(new RegExp(`^${unet}: the model file leads, through a symbolic link, outside the service's root folder`));
    // a folder with no link in it but itself a link (failed before: loaded by its path, ONNX Runtime read outside/)
    const dir2 = await copy(join(root, 'folder-out'));
    await rename(join(dir2, 'unet'), join(outside, 'unet-b'));
    await symlink(join(outside, 'unet-b'), join(dir2, 'unet'));
    e = await failure(Diffusion.load(dir2));
    expect(e).toBeInstanceOf(FormatError);
    expect(e!.message).toMatch(new RegExp(`^${join(dir2, 'unet', 'model.onnx')}: the model file leads`));
  });

  it("refuses a tokenizer file or a scheduler config that links outside the root", async () => {
    const secret = join(outside, 'secret.json');
    await writeFile(secret, '{"password": "hunter2"}');
    for (const file of ['tokenizer/vocab.json', 'scheduler/scheduler_config.json', 'vae_decoder/config.json']) {
      const dir = await copy(join(root, `file-out-${file.split('/')[0]}`));
      await rm(join(dir, file), { force: true });
      await symlink(secret, join(dir, file));
      const e = await failure(Diffusion.load(dir));
      expect(e, file).toBeInstanceOf(FormatError);
      expect(e!.message).toBe(
        `${join(dir, file)}: the file leads, through a symbolic link, outside the service's root folder (and outside the model's Hugging Face cache folder): ` +
          'a service reads model files only inside its root. Copy the file into the model\'s folder (`cp -L`)',
      );
    }
  });

  it("loads a Hugging Face snapshot served as the root itself: its blobs lie in the model's models--* folder", async () => {
    const hub = join(tmp, 'hub', 'models--org--sd');
    const snapshot = join(hub, 'snapshots', '0123abcd');
    await cp(plain, snapshot, { recursive: true });
    await linkIntoBlobs(snapshot, join(hub, 'blobs'), () => true);
    undo();
    const undoSnapshot = confineModelsTo(snapshot);
    try {
      expect(serviceModelRoots()).toEqual([snapshot]);
      (await Diffusion.load(snapshot, { intraOpThreads: 1 })).dispose();
      // a link inside the models--* folder that leaves it is still refused
      await rm(join(snapshot, 'unet', 'weights.pb'));
      await writeFile(join(outside, 'w2.pb'), await readFile(join(plain, 'unet', 'weights.pb')));
      await symlink(join(outside, 'w2.pb'), join(snapshot, 'unet', 'weights.pb'));
      const e = await failure(load(join(snapshot, 'unet', 'model.onnx')));
      expect(e).toBeInstanceOf(FormatError);
      expect(e!.message).toContain("keeps its data in 'weights.pb', which leads, through a symbolic link, outside");
    } finally {
      undoSnapshot();
      undo = confineModelsTo(root);
    }
  });

  it("takes a file whose name starts with '..' directly in the root as inside it (before: refused as climbing out)", async () => {
    await writeFile(join(root, '..vocab.json'), '{}');
    await mkdir(join(root, 'dots'));
    await symlink('../..vocab.json', join(root, 'dots', 'vocab.json'));
    await checkModelFile(join(root, '..vocab.json'), 'the file');
    await checkModelFile(join(root, 'dots', 'vocab.json'), 'the file');
    expect(isInside(root, join(root, '..x'))).toBe(true);
    expect(isInside(root, join(root, '..'))).toBe(false);
    expect(isInside(root, join(tmp, 'rootx'))).toBe(false);
  });

  it("does not count a Hugging Face cache reached through a link in a parent folder (before: its blobs passed as the model's cache)", async () => {
    // another user's hub, with a link to it under the root: root/a -> victim's ~/.cache/huggingface/hub
    const hub = join(tmp, 'victim-hub');
    const snapshot = join(hub, 'models--org--v', 'snapshots', 'abc');
    await cp(plain, snapshot, { recursive: true });
    await linkIntoBlobs(snapshot, join(hub, 'models--org--v', 'blobs'), () => true);
    await symlink(hub, join(root, 'a'));
    const unet = join(root, 'a', 'models--org--v', 'snapshots', 'abc', 'unet', 'model.onnx');
    const e = await failure(load(unet));
    expect(e).toBeInstanceOf(FormatError);
    expect(e!.message).toMatch(new RegExp(`^${unet}: the model file leads, through a symbolic link, outside the service's root folder`));
    expect(e!.message).not.toContain(hub);
  });

  it('loads a genuine Hugging Face cache under the root (snapshots/ linked into ../../blobs)', async () => {
    const cache = join(root, 'hub', 'models--org--g');
    const snapshot = join(cache, 'snapshots', 'r1');
    await cp(plain, snapshot, { recursive: true });
    await linkIntoBlobs(snapshot, join(cache, 'blobs'), () => true);
    (await Diffusion.load(snapshot, { intraOpThreads: 1 })).dispose();
  });

  it('refuses a link out of the root alike whether its target exists or not, without looking at it (before: a missing target passed)', async () => {
    await writeFile(join(outside, 'there.json'), '{}');
    await mkdir(join(root, 'oracle'));
    await symlink(join(outside, 'there.json'), join(root, 'oracle', 'there.json'));
    await symlink(join(outside, 'gone', 'no-such.json'), join(root, 'oracle', 'gone.json'));
    // (a relative link that climbs out and back in: followed as the kernel does, component by component)
    await symlink('../../outside/there.json', join(root, 'oracle', 'climb.json'));
    const messages = [];
    for (const f of ['there.json', 'gone.json', 'climb.json']) {
      const e = await failure(checkModelFile(join(root, 'oracle', f), 'the file', join(root, 'oracle', 'x')));
      expect(e, f).toBeInstanceOf(FormatError);
      messages.push(e!.message);
    }
    expect(new Set(messages).size).toBe(1);
    // a file missing inside the root passes (its reader names it), and a link to a missing file inside it
    await symlink('nothing-here.json', join(root, 'oracle', 'dangling.json'));
    expect(await checkedModelFile(join(root, 'oracle', 'none.json'), 'the file')).toBe('missing');
    expect(await checkedModelFile(join(root, 'oracle', 'dangling.json'), 'the file')).toBe('missing');
  });

  it('reads a tokenizer file from the very file checked: a link flipped between the check and the opening is refused, not read', async () => {
    const dir = await copy(join(root, 'flip'));
    const vocab = join(dir, 'tokenizer', 'vocab.json');
    await rename(vocab, join(dir, 'tokenizer', 'vocab.real.json'));
    await symlink('vocab.real.json', vocab);
    await writeFile(join(outside, 'flip-secret.json'), '{"password": 1}');
    // the swap a racing client would make, here made at the one moment that matters
    setModelFileOpenHook(async (named) => {
      if (named !== vocab) return;
      await unlink(vocab);
      await symlink(join(outside, 'flip-secret.json'), vocab);
    });
    try {
      const e = await failure(ClipTokenizer.fromFolder(dir));
      expect(e).toBeInstanceOf(FormatError);
      expect(e!.message).toMatch(new RegExp(`^${vocab}: the file changed between its check and its reading`));
      expect(e!.message).not.toContain(outside);
    } finally {
      setModelFileOpenHook(null);
    }
    // and a model file ONNX Runtime opens by path: what was checked is verified after the load
    const weights = join(dir, 'unet', 'weights.pb');
    const checked = await checkedModelFile(weights, 'the file');
    expect(checked).not.toBeNull();
    await rename(weights, join(dir, 'unet', 'weights.real.pb'));
    await writeFile(weights, await readFile(join(dir, 'unet', 'weights.real.pb')));
    const e = await failure(verifyUnchanged([{ named: weights, what: 'the file', model: weights, checked: checked! }]));
    expect(e).toBeInstanceOf(FormatError);
    expect(e!.message).toContain('changed between its check and its reading');
  });

  it('loads a folder whose links stay inside the root', async () => {
    const dir = join(root, 'cache', 'snapshots', 'r1');
    await cp(plain, dir, { recursive: true });
    await linkIntoBlobs(dir, join(root, 'cache', 'blobs'), () => true);
    (await Diffusion.load(dir, { intraOpThreads: 1 })).dispose();
  });
});

describe('without model roots (the CLI, the library)', () => {
  it('follows a link wherever it leads', async () => {
    expect(modelsConfined()).toBe(false);
    const dir = await copy(join(tmp, 'cli'));
    await rename(join(dir, 'unet', 'weights.pb'), join(outside, 'cli.pb'));
    await symlink(join(outside, 'cli.pb'), join(dir, 'unet', 'weights.pb'));
    await load(join(dir, 'unet', 'model.onnx'));
  });
});

describe('confineModelsTo', () => {
  it("adds the root to the service's roots once per root, takes it out when the last service using it undoes, and leaves the operator's alone", () => {
    const before = { op: process.env[MODEL_ROOTS_ENV], svc: process.env[SERVICE_MODEL_ROOTS_ENV] };
    process.env[MODEL_ROOTS_ENV] = '/op/models';
    delete process.env[SERVICE_MODEL_ROOTS_ENV];
    try {
      const a = confineModelsTo('/srv/a');
      const a2 = confineModelsTo('/srv/a');
      const b = confineModelsTo('/srv/b');
      expect(process.env[SERVICE_MODEL_ROOTS_ENV]).toBe(['/srv/a', '/srv/b'].join(delimiter));
      a();
      a();
      expect(serviceModelRoots()).toEqual(['/srv/a', '/srv/b']);
      // (a worker's job processes, which take other services' jobs too, are started without them)
      expect(withoutServiceRoots(process.env)[SERVICE_MODEL_ROOTS_ENV]).toBeUndefined();
      expect(withoutServiceRoots(process.env)[MODEL_ROOTS_ENV]).toBe('/op/models');
      a2();
      b();
      expect(process.env[SERVICE_MODEL_ROOTS_ENV]).toBeUndefined();
      expect(process.env[MODEL_ROOTS_ENV]).toBe('/op/models');
    } finally {
      for (const [k, v] of [[MODEL_ROOTS_ENV, before.op], [SERVICE_MODEL_ROOTS_ENV, before.svc]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});

describe("a job's own roots (withModelRoots: a worker running several services' jobs)", () => {
  /** A folder under `dir` whose weights.pb links to a file outside every root. */
  async function linkedOut(dir: string): Promise<string> {
    await copy(dir);
    await rename(join(dir, 'unet', 'weights.pb'), join(outside, `${dir.split('/').join('_')}.pb`));
    await symlink(join(outside, `${dir.split('/').join('_')}.pb`), join(dir, 'unet', 'weights.pb'));
    return join(dir, 'unet', 'model.onnx');
  }

  it("holds each job to its own root, side by side in one process, and nothing to them outside the jobs", async () => {
    const a = join(tmp, 'svc-a');
    const b = join(tmp, 'svc-b');
    await mkdir(a);
    await mkdir(b);
    const inB = join(await copy(join(b, 'm')), 'unet', 'model.onnx');
    const evil = await linkedOut(join(b, 'evil'));
    const [ofA, ofB, evilOfB] = await Promise.all([
      withModelRoots([a], () => failure(load(inB))),
      withModelRoots([b], () => failure(load(inB))),
      withModelRoots([b], () => failure(load(evil))),
    ]);
    // service a's job may not read service b's model; b's may, but not b's link out of b
    expect(ofA).toBeInstanceOf(FormatError);
    expect(ofA!.message).toMatch(new RegExp(`^${inB}: the model file leads, through a symbolic link, outside the service's root folder`));
    expect(ofB).toBeNull();
    expect(evilOfB).toBeInstanceOf(FormatError);
    expect(evilOfB!.message).not.toContain(outside);
    // the scopes ended with their jobs
    expect(modelsConfined()).toBe(false);
    await load(evil);
  });

  it("a job without roots (a batch of the CLI) is not held to the roots of the service process that runs it", async () => {
    const evil = await linkedOut(join(root, 'cli-job'));
    const undo = confineModelsTo(root);
    try {
      expect(await failure(load(evil))).toBeInstanceOf(FormatError);
      expect(await withModelRoots([], () => failure(load(evil)))).toBeNull();
    } finally {
      undo();
    }
  });

  it("BRAINLATENT_MODEL_ROOTS, the operator's, applies as well: a file must lie inside the job's root and inside one of them", async () => {
    const allowed = join(root, 'allowed');
    const inRoot = join(await copy(join(root, 'op-elsewhere')), 'unet', 'model.onnx');
    const inAllowed = join(await copy(join(allowed, 'm')), 'unet', 'model.onnx');
    const evil = await linkedOut(join(allowed, 'evil'));
    const before = process.env[MODEL_ROOTS_ENV];
    process.env[MODEL_ROOTS_ENV] = allowed;
    try {
      // (failed before: the operator's roots and the service's were one list, a file inside either passed)
      const e = await withModelRoots([root], () => failure(load(inRoot)));
      expect(e).toBeInstanceOf(FormatError);
      expect(e!.message).toMatch(new RegExp(`^${inRoot}: the model file lies, links followed, outside the folders BRAINLATENT_MODEL_ROOTS allows on this machine`));
      expect(await withModelRoots([root], () => failure(load(inAllowed)))).toBeNull();
      // a models--* folder outside the operator's folders is not a cache of theirs (before: any models--* folder passed)
      const snapshot = join(tmp, 'elsewhere', 'models--org--e', 'snapshots', 'abc');
      await cp(plain, snapshot, { recursive: true });
      await linkIntoBlobs(snapshot, join(tmp, 'elsewhere', 'models--org--e', 'blobs'), () => true);
      const unrelated = await failure(load(join(snapshot, 'unet', 'model.onnx')));
      expect(unrelated).toBeInstanceOf(FormatError);
      expect(unrelated!.message).toContain('lies, links followed, outside the folders BRAINLATENT_MODEL_ROOTS allows');
      // with no service's roots (a worker's batch of the CLI) the operator's alone
      expect(await failure(load(inAllowed))).toBeNull();
      expect(await failure(load(evil))).toBeInstanceOf(FormatError);
      expect(await withModelRoots([root], () => failure(load(evil)))).toBeInstanceOf(FormatError);
    } finally {
      if (before === undefined) delete process.env[MODEL_ROOTS_ENV];
      else process.env[MODEL_ROOTS_ENV] = before;
    }
  });
});

type Entry = import('onnx-proto').onnx.IStringStringEntryProto;

describe('external data locations ONNX Runtime would read elsewhere', () => {
  /** A copy of the plain U-Net whose external initializers' entries are `edit`ed. */
  async function edited(name: string, edit: (entries: Entry[]) => Entry[]): Promise<string> {
    const dir = await copy(join(tmp, name));
    const path = join(dir, 'unet', 'model.onnx');
    const m = onnx.ModelProto.decode(await readFile(path));
    for (const t of m.graph!.initializer!) if (t.externalData?.length) t.externalData = edit(t.externalData);
    await writeFile(path, onnx.ModelProto.encode(m).finish());
    return path;
  }

  it("refuses a tensor with two 'location' entries (earlier ONNX Runtimes read the last; before, the first was checked)", async () => {
    const path = await edited('two-locations', (e) => [...e, { key: 'location', value: '../../outside/w.bin' }]);
    const e = await failure(readModelWithWeightRefs(path));
    expect(e).toBeInstanceOf(FormatError);
    expect(e!.message).toMatch(new RegExp(`^${path}: tensor '[^']+' \\(a graph initializer\\) names 2 locations for its external data \\('weights\\.pb', '\\.\\./\\.\\./outside/w\\.bin'\\)`));
    expect(await externalDataRefusal(path)).toBeInstanceOf(FormatError);
  });

  it("refuses a drive-relative location 'C:w.bin' as an absolute path (before: taken as a file in the model's folder)", async () => {
    for (const location of ['C:w.bin', 'c:\\w.bin']) {
      const path = await edited(`drive-${location.length}`, (e) => e.map((x) => (x.key === 'location' ? { key: 'location', value: location } : x)));
      const e = await externalDataRefusal(path);
      expect(e, location).toBeInstanceOf(FormatError);
      expect(e!.message).toContain(`keeps its data in '${location}', an absolute path`);
    }
  });
});
