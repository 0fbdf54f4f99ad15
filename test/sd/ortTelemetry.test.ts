/**
 * ONNX Runtime's telemetry leaves nothing behind: a process that runs an ONNX model through the engine
 * and through onnxruntime-node writes nothing to its temp folder or its cache folder. ONNX Runtime 1.30's
 * uploader (1DS) wrote $TMPDIR/.ses, $TMPDIR/mat-debug-<pid>.log and
 * $XDG_CACHE_HOME/Microsoft/DeveloperTools/.onnxruntime/ in every such process until the library set
 * ORT_DISABLE_TELEMETRY=1 by default (ts/native/ortTelemetry.ts); a user's ORT_DISABLE_TELEMETRY=0 keeps it.
 * In a worker thread the variable set in process.env (the thread's own copy, which native code does not see) did
 * not reach onnxruntime-node's ONNX Runtime: its first session there still wrote the files.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { GraphBuilder, model, rng, valueInfo } from '../../ts/sd/fixture.js';
import { distModule } from '../helpers/dist.js';
import { commandOutput } from '../helpers/nodeChild.js';

const FLOAT = 1;

// Runs y = tanh(x) through the engine (OnnxModel), onnxruntime-node (onnxruntimeNode()) or both, in this order, on
// the main thread or in a worker thread (created before anything of brainlatent is loaded).
const RUN = `
const [onnxModelJs, ortNodeJs, modelPath, which] = args;
const x = new Float32Array([0.5, 1]);
if (which !== 'node') {
  const { OnnxModel } = await import(onnxModelJs);
  const m = await OnnxModel.load(modelPath, { intraOpThreads: 1 });
  const out = await m.run({ x: { data: x, shape: [2] } }, ['y']);
  if (Math.abs(out.y.data[1] - Math.tanh(1)) > 1e-6) throw new Error('engine: wrong output');
  m.dispose();
}
if (which !== 'engine') {
  const { onnxruntimeNode } = await import(ortNodeJs);
  const ort = await onnxruntimeNode('the telemetry test');
  const s = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1 });
  const out = await s.run({ x: new ort.Tensor('float32', x, [2]) });
  if (Math.abs(out.y.data[1] - Math.tanh(1)) > 1e-6) throw new Error('onnxruntime-node: wrong output');
  await s.release();
}
`;
const CHILD = `
const [where, ...args] = process.argv.slice(1);
if (where === 'main') {
  ${RUN}
} else {
  const { Worker } = await import('node:worker_threads');
  // (an ES module, as the worker takes this process's --input-type=module)
  const body = 'const { workerData: args } = await import("node:worker_threads");' + ${JSON.stringify(RUN)};
  await new Promise((resolve, reject) => {
    const w = new Worker(body, { eval: true, workerData: args });
    w.on('error', reject);
    w.on('exit', (code) => (code === 0 ? resolve() : reject(new Error('worker exited with ' + code))));
  });
}
`;

// ONNX Runtime turns its telemetry off by itself under these (telemetry_environment.h): the child runs without them,
// so that the test sees what a user's machine does.
const CI_VARIABLES = [
  'CI',
  'TF_BUILD',
  'GITHUB_ACTIONS',
  'GITLAB_CI',
  'CIRCLECI',
  'TRAVIS',
  'JENKINS_URL',
  'CODEBUILD_BUILD_ID',
  'BUILDKITE',
  'TEAMCITY_VERSION',
  'APPVEYOR',
  'BITBUCKET_BUILD_NUMBER',
  'SYSTEM_TEAMFOUNDATIONCOLLECTIONURI',
  'ORT_RUNNING_UNIT_TESTS',
];

let work = '';
let modelPath = '';

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'brainlatent-telemetry-'));
  const g = new GraphBuilder(rng(1));
  g.op('Tanh', ['x'], [], 'y');
  modelPath = join(work, 'tanh.onnx');
  writeFileSync(modelPath, model(g, 'tanh', [valueInfo('x', FLOAT, [2])], [valueInfo('y', FLOAT, [2])]));
});
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

/** Everything (recursively) that a child running `which` left in its own empty TMPDIR, HOME and XDG_CACHE_HOME. */
async function leftBehind(which: 'engine' | 'node' | 'both', telemetryVariable?: string, where: 'main' | 'thread' = 'main'): Promise<string[]> {
  const folder = mkdtempSync(join(work, `${which}-${where}-`));
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: folder, HOME: folder, XDG_CACHE_HOME: folder };
  for (const name of [...CI_VARIABLES, 'ORT_DISABLE_TELEMETRY']) delete env[name];
  if (telemetryVariable !== undefined) env.ORT_DISABLE_TELEMETRY = telemetryVariable;
  await commandOutput(process.execPath, ['--input-type=module', '-e', CHILD, where, distModule('sd/OnnxModel'), distModule('native/onnxruntimeNode'), modelPath, which], { env });
  return readdirSync(folder, { recursive: true, encoding: 'utf8' }).sort();
}

describe('ONNX Runtime telemetry', () => {
  it('the engine running a model leaves nothing in TMPDIR or the cache folder', async () => {
    expect(await leftBehind('engine')).toEqual([]);
  });

  it('onnxruntime-node running a model (through onnxruntimeNode) leaves nothing', async () => {
    expect(await leftBehind('node')).toEqual([]);
  });

  it('both in one process leave nothing', async () => {
    expect(await leftBehind('both')).toEqual([]);
  });

  it('in a worker thread, onnxruntime-node running a model leaves nothing, and the engine neither', async () => {
    expect(await leftBehind('node', undefined, 'thread')).toEqual([]);
    expect(await leftBehind('engine', undefined, 'thread')).toEqual([]);
  });

  it("a user's ORT_DISABLE_TELEMETRY=0 is obeyed: ONNX Runtime's uploader runs and writes its files (what the tests above would see without the default)", async () => {
    const files = await leftBehind('engine', '0');
    expect(files).toContain('.ses');
    expect(files.some((f) => /^mat-debug-\d+\.log$/.test(f))).toBe(true);
  });
});
