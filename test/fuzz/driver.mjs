// Fuzz driver for one reader, run in its own process by test/fuzz/readers.test.ts (so a hang can be killed and the
// process's peak RSS measured): node test/fuzz/driver.mjs <target> <runs> <seed> <workdir>
//
// Starting from valid seed files it applies fast-check-generated mutations (bit flips, integers written over header
// fields, truncation, appended and spliced bytes; for compressed formats also mutations of the decompressed bytes,
// recompressed) and calls the reader on each. A case passes when the reader returns, or throws a BrainlatentError
// whose message names the file. Progress lines go to stdout; the last line is a JSON summary.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { deflateSync, gzipSync, gunzipSync } from 'node:zlib';

import fc from 'fast-check';

const [target, runsArg, seedArg, workArg] = process.argv.slice(2);
const runs = Number(runsArg);
const seed = Number(seedArg);
const work = resolve(workArg);
mkdirSync(work, { recursive: true });
const dist = (m) => import(resolve('dist', `${m}.js`));

const { BrainlatentError } = await dist('errors');

// ---- mutations -------------------------------------------------------------------------------------------------
const INTERESTING = [0, 1, 2, 7, 8, 255, 256, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 2 ** 32, 2 ** 40, 2 ** 53, -1, -2, -0x80000000];
const position = fc.double({ min: 0, max: 1, noNaN: true });
const op = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('flip'), at: position, head: fc.boolean(), bit: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('int'), at: position, head: fc.boolean(), width: fc.constantFrom(1, 2, 4, 8), le: fc.boolean(), value: fc.oneof(fc.constantFrom(...INTERESTING), fc.integer()) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate'), at: position }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('append'), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('splice'), at: position, head: fc.boolean(), remove: fc.integer({ min: 0, max: 16 }), insert: fc.uint8Array({ maxLength: 16 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('fill'), at: position, head: fc.boolean(), len: fc.integer({ min: 1, max: 64 }), byte: fc.constantFrom(0, 0xff, 0x20, 0x7f) }) },
);
const mutation = fc.record({ seedIndex: fc.nat(), inner: fc.boolean(), ops: fc.array(op, { minLength: 1, maxLength: 4 }) });

/** Applies ops; `head` positions fall in the first `headLen` bytes (where the header fields are). */
function mutate(src, ops, headLen) {
  let b = Buffer.from(src);
  for (const o of ops) {
    const span = o.head ? Math.min(headLen, b.length) : b.length;
    const at = Math.min(Math.floor(o.at * span), Math.max(0, b.length - 1));
    switch (o.kind) {
      case 'flip':
        if (b.length) b[at] ^= 1 << o.bit;
        break;
      case 'int': {
        if (at + o.width > b.length) break;
        const v = BigInt.asUintN(o.width * 8, BigInt(Math.trunc(o.value)));
        for (let k = 0; k < o.width; k++) b[o.le ? at + k : at + o.width - 1 - k] = Number((v >> BigInt(8 * k)) & 0xffn);
        break;
      }
      case 'truncate':
        b = b.subarray(0, Math.floor(o.at * b.length));
        break;
      case 'append':
        b = Buffer.concat([b, o.bytes]);
        break;
      case 'splice':
        b = Buffer.concat([b.subarray(0, at), Buffer.from(o.insert), b.subarray(Math.min(b.length, at + o.remove))]);
        break;
      case 'fill':
        b.fill(o.byte, at, Math.min(b.length, at + o.len));
        break;
    }
  }
  return b;
}

// ---- targets ---------------------------------------------------------------------------------------------------
// Each: seeds() → [{ bytes, headLen, ext, wrap? (inner mutations: unwrap → mutate → wrap) }], read(path).
const targets = {
  async npy() {
    const { writeNpy, readNpy } = await dist('io/npy');
    const seeds = [];
    const p = join(work, 'seed.npy');
    await writeNpy(p, Float32Array.from({ length: 24 }, (_, i) => i / 3), [4, 6]);
    seeds.push(readFileSync(p));
    await writeNpy(p, Int32Array.from([1, 2, 3, 4, 5]), [5]);
    seeds.push(readFileSync(p));
    const big = Buffer.from(seeds[0]); // a version 2 header of the same array
    const dict = big.subarray(10, big.readUInt16LE(8) + 10);
    const v2 = Buffer.alloc(12);
    Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0]).copy(v2);
    v2.writeUInt32LE(dict.length, 8);
    seeds.push(Buffer.concat([v2, dict, big.subarray(10 + dict.length)]));
    return { seeds: seeds.map((bytes) => ({ bytes, headLen: 128, ext: '.npy' })), read: (f) => readNpy(f) };
  },
  async safetensors() {
    const { writeSafetensors, readSafetensors } = await dist('io/safetensors');
    const p = join(work, 'seed.safetensors');
    await writeSafetensors(p, { coef: { data: Float32Array.from({ length: 12 }, (_, i) => i), shape: [3, 4] }, ids: { data: Int32Array.from([1, 2, 3]), shape: [3] } }, { k: 'v' });
    return { seeds: [{ bytes: readFileSync(p), headLen: 200, ext: '.safetensors' }], read: (f) => readSafetensors(f) };
  },
  async ridgemodel() {
    // RidgeModel.load: safetensors plus the model's metadata (JSON strings) and tensor shapes.
    const { RidgeCV } = await dist('ridge/RidgeCV');
    const { RidgeModel } = await dist('ridge/RidgeModel');
    const x = { data: Float32Array.from({ length: 40 * 5 }, (_, i) => Math.sin(i * 1.3)), rows: 40, cols: 5 };
    const y = { data: Float32Array.from({ length: 40 * 2 }, (_, i) => Math.cos(i * 0.7)), rows: 40, cols: 2 };
    const model = await new RidgeCV({ alphas: [0.1, 1, 10], folds: 4 }).fit(x, y);
    const p = join(work, 'seed-model.safetensors');
    await model.save(p);
    const bytes = readFileSync(p);
    return { seeds: [{ bytes, headLen: Number(bytes.readBigUInt64LE(0)) + 8, ext: '.safetensors' }], read: async (f) => (await RidgeModel.load(f)).dispose?.() };
  },
  async nifti() {
    const { writeNifti, readNifti } = await dist('io/nifti');
    const seeds = [];
    for (const version of [1, 2]) {
      const p = join(work, `seed${version}.nii`);
      await writeNifti(p, { dims: [5, 4, 3, 2], datatype: 'int16', version, description: 'fuzz seed' }, Int16Array.from({ length: 120 }, (_, i) => i - 60));
      const bytes = readFileSync(p);
      const headLen = version === 1 ? 352 : 544;
      seeds.push({ bytes, headLen, ext: '.nii' });
      seeds.push({ bytes: gzipSync(bytes), headLen: 64, ext: '.nii.gz', wrap: { unwrap: (b) => gunzipSync(b), wrap: (b) => gzipSync(b), headLen } });
    }
    const f = join(work, 'seedf.nii.gz');
    await writeNifti(f, { dims: [3, 3, 2], datatype: 'float32' }, Float32Array.from({ length: 18 }, (_, i) => i / 7));
    const fb = readFileSync(f);
    seeds.push({ bytes: fb, headLen: 64, ext: '.nii.gz', wrap: { unwrap: (b) => gunzipSync(b), wrap: (b) => gzipSync(b), headLen: 352 } });
    return { seeds, read: (path) => readNifti(path) };
  },
  async png() {
    const { writePng, readPng } = await dist('sd/png');
    const p = join(work, 'seed.png');
    await writePng(p, { data: Uint8Array.from({ length: 12 * 9 * 3 }, (_, i) => (i * 37) & 0xff), count: 1, height: 9, width: 12 });
    return { seeds: [{ bytes: readFileSync(p), headLen: 64, ext: '.png' }], read: (f) => readPng(f) };
  },
  async mat() {
    const { writeMat, readMat } = await dist('io/mat');
    const vars = {
      masterordering: { dims: [1, 6], data: Float64Array.from([3, 1, 2, 5, 4, 1]) },
      subjectim: { dims: [2, 3], data: Int32Array.from([1, 2, 3, 4, 5, 6]) },
    };
    const p = join(work, 'seed.mat');
    await writeMat(p, vars);
    const plain = readFileSync(p);
    await writeMat(p, vars, { compress: true });
    const compressed = readFileSync(p);
    // inner mutations of the compressed file: mutate the plain elements, then compress them as one element
    const wrap = {
      unwrap: () => plain.subarray(128),
      wrap: (elements) => {
        const z = deflateSync(elements);
        const tag = Buffer.alloc(8);
        tag.writeUInt32LE(15, 0);
        tag.writeUInt32LE(z.length, 4);
        return Buffer.concat([plain.subarray(0, 128), tag, z]);
      },
      headLen: 96,
    };
    return {
      seeds: [
        { bytes: plain, headLen: 256, ext: '.mat' },
        { bytes: compressed, headLen: 160, ext: '.mat', wrap },
      ],
      read: (f) => readMat(f),
    };
  },
  async hdf5() {
    const { writeHdf5, Hdf5Reader } = await dist('io/hdf5');
    const p = join(work, 'seed.h5');
    await writeHdf5(p, [
      { name: 'betas', data: Int16Array.from({ length: 6 * 4 * 3 * 2 }, (_, i) => i), shape: [6, 4, 3, 2], chunks: [6, 1, 1, 1] },
      { name: 'imgBrick', data: Uint8Array.from({ length: 2 * 4 * 4 * 3 }, (_, i) => i), shape: [2, 4, 4, 3], chunks: [1, 4, 4, 3], compression: 4 },
    ]);
    return {
      seeds: [{ bytes: readFileSync(p), headLen: 2048, ext: '.h5' }],
      read: async (f) => {
        const r = await Hdf5Reader.open(f);
        try {
          for (const d of r.datasets()) r.readSlab(d.path, [], 64 << 20);
        } finally {
          r.close();
        }
      },
    };
  },
  async json() {
    const { readConfigFile } = await dist('cli/configFile');
    const { ReconstructConfigSchema } = await dist('config/reconstruct');
    const { resolveConfig } = await dist('pipeline/config');
    const config = {
      out: 'run',
      nsd: { root: '/data/nsd', subject: 1, sessions: '1-37' },
      model: { dir: 'sd' },
      decoders: { z: { roi: 'streams:early', alphas: '1e1:1e5:5' }, c: { roi: 'streams:ventral' } },
      img2img: { strength: 0.8, steps: 50, guidance: 5, seeds: 2 },
    };
    const bytes = Buffer.from(JSON.stringify(config, null, 2));
    // inner mutations: a value somewhere in the document replaced by one of the wrong kind
    const ODD = [null, -1, 0, 1e308, -1e308, '', 'x'.repeat(300), [], {}, true, [1, 'a'], { nested: { deep: [] } }, '../../etc', 2 ** 53];
    const structured = {
      unwrap: (b) => b,
      wrap: (b) => {
        const doc = JSON.parse(bytes.toString());
        let h = 0;
        for (const x of b.subarray(0, 16)) h = (h * 31 + x) >>> 0;
        const paths = [];
        const walk = (v, at) => {
          paths.push(at);
          if (v && typeof v === 'object') for (const k of Object.keys(v)) walk(v[k], [...at, k]);
        };
        walk(doc, []);
        const at = paths[1 + (h % (paths.length - 1))];
        let o = doc;
        for (const k of at.slice(0, -1)) o = o[k];
        if (h & 0x100) delete o[at[at.length - 1]];
        else o[at[at.length - 1]] = ODD[(h >>> 9) % ODD.length];
        if (h & 0x200) o[`unknown_${h % 7}`] = 1;
        return Buffer.from(JSON.stringify(doc));
      },
      headLen: 16,
    };
    return {
      seeds: [{ bytes, headLen: bytes.length, ext: '.json', wrap: structured }],
      read: async (f) => resolveConfig(await readConfigFile(f, ReconstructConfigSchema), f),
    };
  },
};

// ONNX model folders: one member file of an SD fixture folder is mutated per case; the reader is Diffusion.load.
async function onnxFolderTarget() {
  const { writeSdFixture } = await dist('sd/fixture');
  const { Diffusion } = await dist('sd/Diffusion');
  const dir = join(work, 'model');
  await writeSdFixture(dir);
  const members = ['tokenizer/vocab.json', 'tokenizer/merges.txt', 'scheduler/scheduler_config.json', 'text_encoder/model.onnx', 'vae_decoder/model.onnx', 'model_index.json'];
  const originals = members.map((m) => readFileSync(join(dir, m)));
  return {
    seeds: originals.map((bytes, i) => ({ bytes, headLen: Math.min(bytes.length, 256), ext: '', member: members[i] })),
    dir,
    members,
    originals,
    read: async () => (await Diffusion.load(dir)).dispose(),
  };
}

// ---- run -------------------------------------------------------------------------------------------------------
const t = target === 'onnx' ? await onnxFolderTarget() : await targets[target]();
const stats = { target, cases: 0, accepted: 0, rejected: {}, inner: 0, slowestMs: 0, slowestCase: -1 };
let failure = null;
const t0 = performance.now();
await fc.assert(
  fc.asyncProperty(mutation, async (m) => {
    const s = t.seeds[m.seedIndex % t.seeds.length];
    let bytes;
    if (m.inner && s.wrap) {
      bytes = s.wrap.wrap(mutate(s.wrap.unwrap(s.bytes), m.ops, s.wrap.headLen));
      stats.inner++;
    } else bytes = mutate(s.bytes, m.ops, s.headLen);
    let path;
    if (target === 'onnx') {
      t.members.forEach((mem, i) => writeFileSync(join(t.dir, mem), t.originals[i]));
      path = join(t.dir, s.member);
      writeFileSync(path, bytes);
    } else {
      path = join(work, `case${s.ext}`);
      writeFileSync(path, bytes);
    }
    const c0 = performance.now();
    try {
      await t.read(path);
      stats.accepted++;
    } catch (e) {
      const named = e instanceof BrainlatentError && (e.message.includes(path) || (target === 'onnx' && e.message.includes(t.dir)));
      if (!named) {
        failure = { case: stats.cases, error: `${e?.constructor?.name}: ${e?.message}`.slice(0, 2000), stack: String(e?.stack).slice(0, 2000), ops: m.ops, seedIndex: m.seedIndex % t.seeds.length, inner: m.inner };
        writeFileSync(join(work, `failing${s.ext || '-' + s.member.replace(/\//g, '_')}`), bytes);
        return false;
      }
      stats.rejected[e.name] = (stats.rejected[e.name] ?? 0) + 1;
    } finally {
      const ms = performance.now() - c0;
      if (ms > stats.slowestMs) {
        stats.slowestMs = Math.round(ms);
        stats.slowestCase = stats.cases;
      }
      stats.cases++;
      if (stats.cases % 25 === 0) process.stdout.write(`progress ${stats.cases}\n`);
    }
    return true;
  }),
  { numRuns: runs, seed, endOnFailure: true },
).catch(() => undefined);
if (target === 'onnx') t.members.forEach((mem, i) => writeFileSync(join(t.dir, mem), t.originals[i]));
stats.seconds = Math.round((performance.now() - t0) / 100) / 10;
stats.maxRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
stats.failure = failure;
process.stdout.write(`${JSON.stringify(stats)}\n`);
rmSync(join(work, 'model'), { recursive: true, force: true });
process.exit(0);
