/**
 * Under a service's model roots ONNX Runtime loads the bytes that were checked, never a path it reopens. Before,
 * the model file (and its external data) were checked, then ONNX Runtime opened them again by path, then a
 * recheck compared them: a link flipped outside the root while ONNX Runtime read, and flipped back before the
 * recheck, was not seen (docs/server.md named the gap). The flip is the engine's test hook
 * (BRAINLATENT_TEST_FLIP_LINK/_TO: the link leads to the target while ONNX Runtime creates the session, and back
 * right after); the result must be the inside file's weights, never the outside ones. A file truncated while ONNX
 * Runtime copies it (the hook BRAINLATENT_TEST_TRUNCATE) is refused, not a SIGBUS that ends the process. The hooks
 * act only with BRAINLATENT_TEST_HOOKS=1 set too, which these tests set around each use.
 */
import { mkdir, mkdtemp, readdir, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { FormatError } from '../../ts/errors.js';
import { FeatureNetwork, NO_FILES_PREFIX } from '../../ts/eval/featureNetwork.js';
import { HOST_TAG } from '../../ts/io/atomicWrite.js';
import { buildInfo } from '../../ts/native/buildInfo.js';
import { confineModelsTo } from '../../ts/sd/modelRoots.js';
import { OnnxModel } from '../../ts/sd/OnnxModel.js';
import { onnx } from '../helpers/onnx.js';
import { osTmp, restoreTmpdir } from '../helpers/osTmp.js';
import { deadPid } from '../helpers/deadPid.js';

let tmp = '';
let root = '';
let outside = '';

const floats = (v: number[]) => Buffer.from(Float32Array.from(v).buffer);

/** y = x + w, w float [4]: inline (raw_data) or external data in `location`. */
function addModel(w: { inline: number[] } | { location: string }): Buffer {
  const vec = (name: string) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 4 }] } } } });
  const init =
    'inline' in w
      ? { name: 'w', dims: [4], dataType: 1, rawData: floats(w.inline) }
      : { name: 'w', dims: [4], dataType: 1, dataLocation: 1, externalData: [{ key: 'location', value: w.location }, { key: 'length', value: '16' }] };
  const model = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: { name: 'g', node: [{ input: ['x', 'w'], output: ['y'], opType: 'Add', name: 'add' }], initializer: [init], input: [vec('x')], output: [vec('y')] },
  };
  return Buffer.from(onnx.ModelProto.encode(model).finish());
}

/** The engine's test hooks are compiled into the checkout's cmake build only (not node-gyp's, nor a package's). */
const HOOKS = buildInfo().testHooks;

const INSIDE = [11, 22, 33, 44];
const OUTSIDE = [1001, 2002, 3003, 4004];

async function runAdd(path: string): Promise<number[]> {
  const m = await OnnxModel.load(path, { intraOpThreads: 1 });
  try {
    const out = await m.run({ x: { data: Float32Array.of(1, 2, 3, 4), shape: [4] } }, ['y']);
    return [...out.y.data];
  } finally {
    m.dispose();
  }
}

/**
 * Sets the engine's test-hook variables for the calls of `fn`, with BRAINLATENT_TEST_HOOKS=1 (the hooks act only
 * with it: a checkout's build deployed as a service ignores a stray hook variable) unless `optIn` is false.
 */
async function withHookVariables<T>(vars: Record<string, string>, fn: () => Promise<T>, { optIn = true } = {}): Promise<T> {
  const all: Record<string, string> = optIn ? { ...vars, BRAINLATENT_TEST_HOOKS: '1' } : vars;
  Object.assign(process.env, all);
  try {
    return await fn();
  } finally {
    for (const name of Object.keys(all)) delete process.env[name];
  }
}

/** Flips `link` to `to` around ONNX Runtime's session creation (the engine's test hook), for the calls of `fn`. */
function flippedDuringLoad<T>(link: string, to: string, fn: () => Promise<T>): Promise<T> {
  return withHookVariables({ BRAINLATENT_TEST_FLIP_LINK: link, BRAINLATENT_TEST_FLIP_TO: to }, fn);
}

beforeAll(async () => {
  tmp = await realpath(await mkdtemp(join(tmpdir(), 'bl-roots-ort-load-')));
  root = join(tmp, 'root');
  outside = join(tmp, 'outside');
  await mkdir(outside, { recursive: true });
  await writeFile(join(outside, 'model.onnx'), addModel({ inline: [1000, 2000, 3000, 4000] }));
  await writeFile(join(outside, 'w.bin'), floats([1000, 2000, 3000, 4000]));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('under model roots, a link flipped outside and back while ONNX Runtime loads', () => {
  let undo: () => void;
  beforeEach(() => {
    undo = confineModelsTo(root);
  });
  afterEach(() => undo());

  it.skipIf(!HOOKS)('a model.onnx that links inside the root: the checked model is loaded, not the outside one (before: 1001, 2002, …)', async () => {
    const dir = join(root, 'linked-model');
    await mkdir(join(dir, 'blobs'), { recursive: true });
    await writeFile(join(dir, 'blobs', 'model-in.onnx'), addModel({ inline: [10, 20, 30, 40] }));
    await symlink(join(dir, 'blobs', 'model-in.onnx'), join(dir, 'model.onnx'));
    expect(await runAdd(join(dir, 'model.onnx'))).toEqual(INSIDE);
    const y = await flippedDuringLoad(join(dir, 'model.onnx'), join(outside, 'model.onnx'), () => runAdd(join(dir, 'model.onnx')));
    expect(y).toEqual(INSIDE);
  });

  it.skipIf(!HOOKS)('external data that links inside the root: the checked file is read, whatever the link leads to during the load', async () => {
    const dir = join(root, 'linked-data');
    await mkdir(join(dir, 'blobs'), { recursive: true });
    await writeFile(join(dir, 'model.onnx'), addModel({ location: 'w.bin' }));
    await writeFile(join(dir, 'blobs', 'w-in.bin'), floats([10, 20, 30, 40]));
    await symlink(join(dir, 'blobs', 'w-in.bin'), join(dir, 'w.bin'));
    expect(await runAdd(join(dir, 'model.onnx'))).toEqual(INSIDE);
    const y = await flippedDuringLoad(join(dir, 'w.bin'), join(outside, 'w.bin'), () => runAdd(join(dir, 'model.onnx')));
    expect(y).toEqual(INSIDE);
  });

  it.skipIf(!HOOKS)('external data truncated while ONNX Runtime copies it: a FormatError naming the file, and the process lives (before: SIGBUS)', async () => {
    const dir = join(root, 'cut-data');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'model.onnx'), addModel({ location: 'w.bin' }));
    await writeFile(join(dir, 'w.bin'), floats([10, 20, 30, 40]));
    // the engine's test hook truncates the file after the engine mapped it, right before ONNX Runtime reads it
    const err = await withHookVariables({ BRAINLATENT_TEST_TRUNCATE: join(dir, 'w.bin') }, () => runAdd(join(dir, 'model.onnx'))).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toContain('changed while it was being loaded (truncated); the model was not loaded');
    expect((err as Error).message).toContain(join(dir, 'w.bin'));
    // whole again, it loads
    await writeFile(join(dir, 'w.bin'), floats([10, 20, 30, 40]));
    expect(await runAdd(join(dir, 'model.onnx'))).toEqual(INSIDE);
  });

  it.skipIf(!HOOKS)("the hooks' variables without BRAINLATENT_TEST_HOOKS=1 do nothing (before: the file was truncated, the load refused)", async () => {
    const dir = join(root, 'no-opt-in');
    await mkdir(join(dir, 'blobs'), { recursive: true });
    await writeFile(join(dir, 'model.onnx'), addModel({ location: 'w.bin' }));
    await writeFile(join(dir, 'blobs', 'w-in.bin'), floats([10, 20, 30, 40]));
    await symlink(join(dir, 'blobs', 'w-in.bin'), join(dir, 'w.bin'));
    const vars = { BRAINLATENT_TEST_TRUNCATE: join(dir, 'blobs', 'w-in.bin'), BRAINLATENT_TEST_FLIP_LINK: join(dir, 'w.bin'), BRAINLATENT_TEST_FLIP_TO: join(outside, 'w.bin') };
    expect(await withHookVariables(vars, () => runAdd(join(dir, 'model.onnx')), { optIn: false })).toEqual(INSIDE);
    expect((await stat(join(dir, 'blobs', 'w-in.bin'))).size).toBe(16); // not truncated
  });

  it('a feature network (onnxruntime-node) is handed the checked bytes too', async () => {
    const dir = join(root, 'feature');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'model.onnx'), addModel({ location: 'w.bin' }));
    await writeFile(join(dir, 'w.bin'), floats([10, 20, 30, 40]));
    // (opened, not run: its input is no image; the load reads the weights from the files checked, no path)
    const spec = { name: 'add', path: join(dir, 'model.onnx'), inputSize: 8, metric: 'distance' as const };
    const net = await FeatureNetwork.open(spec);
    expect(net.spec.name).toBe('add');
  });

  it("a feature network's empty folder for ONNX Runtime is removed, and one a killed process left is removed by the next open (before: left)", async () => {
    const dir = join(root, 'feature-temp');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'model.onnx'), addModel({ location: 'w.bin' }));
    await writeFile(join(dir, 'w.bin'), floats([10, 20, 30, 40]));
    const os = osTmp(tmp, 'os-tmp');
    try {
      // a process killed during the session create (it has exited), and one still creating its session (this one)
      const dead = deadPid();
      const killed = `${NO_FILES_PREFIX}-${HOST_TAG}-${dead}-aB3xYz`;
      const live = `${NO_FILES_PREFIX}-${HOST_TAG}-${process.pid}-aB3xYz`;
      await mkdir(join(os, killed));
      await mkdir(join(os, live));
      await FeatureNetwork.open({ name: 'add', path: join(dir, 'model.onnx'), inputSize: 8, metric: 'distance' });
      expect(await readdir(os)).toEqual([live]);
    } finally {
      restoreTmpdir();
    }
  });
});

describe('without model roots', () => {
  it.skipIf(!HOOKS)('loads by path as before (the hook flips the link: ONNX Runtime reads what it leads to)', async () => {
    const dir = join(tmp, 'cli');
    await mkdir(join(dir, 'blobs'), { recursive: true });
    await writeFile(join(dir, 'blobs', 'model-in.onnx'), addModel({ inline: [10, 20, 30, 40] }));
    await symlink(join(dir, 'blobs', 'model-in.onnx'), join(dir, 'model.onnx'));
    const y = await flippedDuringLoad(join(dir, 'model.onnx'), join(outside, 'model.onnx'), () => runAdd(join(dir, 'model.onnx')));
    expect(y).toEqual(OUTSIDE);
  });
});
