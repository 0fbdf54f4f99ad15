/**
 * The encoding tests' world: a miniature NSD subject (ts/synth) big enough for held-out accuracy per voxel,
 * and a tiny SD 1.x ONNX folder whose VAE sees the 8×8 colour grid the early voxels were planted on and
 * whose text encoder is a bag of words (mean token embedding at every position, like pooled attention),
 * so z carries the "latent" space and c the "semantic" one.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { wordVocabulary } from '../../ts/sd/clipTokenizer.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import { onnx } from '../helpers/onnx.js';
import { builtOncePerRun } from '../helpers/runOnce.js';
import { synthNsd, type SynthNsdResult } from '../../ts/synth/nsd.js';
import type { PlantedVoxel } from '../../ts/synth/nsd.js';

export const TEXT_DIM = 72;
const WORDS = [
  'a', 'an', 'and', 'on', 'the', 'at', 'in', 'of', 'against', 'picture', 'small', 'large',
  'circle', 'square', 'triangle', 'cross', 'ring', 'red', 'green', 'blue', 'yellow', 'purple', 'orange', 'white', 'black',
  'top', 'left', 'right', 'bottom', 'centre', 'grey', 'background', 'sky', 'grass', 'sand', 'night',
];

export interface World {
  tmp: string;
  nsd: SynthNsdResult;
  model: string;
  truth: { voxels: PlantedVoxel[]; noiseSd: number; grid: [number, number, number] };
  cleanup(): void;
}

/**
 * A copy of the run's encoding world (built once per test run: test/helpers/runOnce.ts), in a temporary folder of the
 * caller's own.
 */
export async function makeWorld(): Promise<World> {
  const built = await builtOncePerRun('encoding-world', buildWorld);
  const tmp = mkdtempSync(join(tmpdir(), 'bl-encoding-'));
  cpSync(built, tmp, { recursive: true });
  const made = JSON.parse(await readFile(join(tmp, MADE), 'utf8')) as SynthNsdResult;
  // (the paths in it are relative to the folder it was built in)
  const nsd = { ...made, root: join(tmp, made.root), truthPath: join(tmp, made.truthPath) };
  const t = JSON.parse(await readFile(nsd.truthPath, 'utf8'));
  return {
    tmp,
    nsd,
    model: join(tmp, 'sd'),
    truth: { voxels: t.subjects['1'].voxels, noiseSd: t.noiseSd, grid: t.grid },
    cleanup: () => rmSync(tmp, { recursive: true, force: true }),
  };
}

/** What synthNsd returned, its paths relative to the world's folder. */
const MADE = 'synth-nsd.json';

async function buildWorld(dir: string): Promise<void> {
  const nsd = await synthNsd({
    out: join(dir, 'nsd'),
    grid: [16, 20, 12],
    designSessions: 6,
    sessions: 6,
    trialsPerSession: 120,
    sharedImages: 40,
    noiseSd: 1.5,
    formats: ['nifti'],
    seed: 3,
  });
  const model = join(dir, 'sd');
  await writeSdFixture(model, { textDim: TEXT_DIM, unetChannels: 8, unetLayers: 2 });
  await writeBagOfWordsText(model);
  await writeFile(join(dir, MADE), JSON.stringify({ ...nsd, root: relative(dir, nsd.root), truthPath: relative(dir, nsd.truthPath) }));
}

async function writeBagOfWordsText(dir: string): Promise<void> {
  const { vocab, merges, size: V } = wordVocabulary(WORDS);
  await writeFile(join(dir, 'tokenizer', 'vocab.json'), JSON.stringify(vocab));
  await writeFile(join(dir, 'tokenizer', 'merges.txt'), `#version: 0.2\n${merges.join('\n')}\n`);
  // Embeddings: whole-word tokens get orthogonal-ish rows, byte tokens small random ones.
  let s = 12345;
  const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) / 4294967296) * 2 - 1;
  const emb = new Float32Array(V * TEXT_DIM).map(() => 0.05 * rand());
  WORDS.forEach((w, k) => {
    const tok = vocab[[...w].length === 1 ? `${w}</w>` : `${w}</w>`] ?? vocab[w + '</w>'];
    if (tok !== undefined) emb[tok * TEXT_DIM + (k % TEXT_DIM)] += 1;
  });
  const T = onnx.TensorProto.DataType;
  const init = (name: string, dims: number[], data: Float32Array | BigInt64Array, dataType: number) => ({ name, dims, dataType, rawData: new Uint8Array(data.buffer) });
  const pos = new Float32Array(77 * TEXT_DIM).map(() => 0.02 * rand());
  const m = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 14 }],
    graph: {
      name: 'text_encoder',
      node: [
        { opType: 'Gather', input: ['emb', 'input_ids'], output: ['tok'], attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }] },
        { opType: 'ReduceMean', input: ['tok'], output: ['bag'], attribute: [{ name: 'axes', type: onnx.AttributeProto.AttributeType.INTS, ints: [1] }, { name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 1 }] },
        { opType: 'Add', input: ['bag', 'pos'], output: ['last_hidden_state'] },
        { opType: 'ReduceMean', input: ['last_hidden_state'], output: ['pooler_output'], attribute: [{ name: 'axes', type: onnx.AttributeProto.AttributeType.INTS, ints: [1] }, { name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 }] },
      ],
      initializer: [init('emb', [V, TEXT_DIM], emb, T.FLOAT), init('pos', [77, TEXT_DIM], pos, T.FLOAT)],
      input: [{ name: 'input_ids', type: { tensorType: { elemType: T.INT64, shape: { dim: [{ dimParam: 'batch_size' }, { dimParam: 'sequence_length' }] } } } }],
      output: [
        { name: 'last_hidden_state', type: { tensorType: { elemType: T.FLOAT, shape: { dim: [{ dimParam: 'batch_size' }, { dimParam: 'sequence_length' }, { dimValue: TEXT_DIM }] } } } },
        { name: 'pooler_output', type: { tensorType: { elemType: T.FLOAT, shape: { dim: [{ dimParam: 'batch_size' }, { dimValue: TEXT_DIM }] } } } },
      ],
    },
  });
  await writeFile(join(dir, 'text_encoder', 'model.onnx'), onnx.ModelProto.encode(m).finish());
}
