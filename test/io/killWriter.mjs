// Child process of test/io/kill.test.ts: writes one kind of output over and over, alternating two versions (or
// always the same one), until it is killed: node test/io/killWriter.mjs <kind> <path> <a|b|alt|prep> [count]
// Prints "ready" once its modules are loaded, then "wrote <n> <ms>" after each complete write. 'prep' writes the
// reference copies <dir>/ref-a/<name> and <dir>/ref-b/<name>, then version a at <path>.
import { basename, dirname, join, resolve } from 'node:path';

const [kind, target, which, countArg] = process.argv.slice(2);
let path = target;
const count = countArg ? Number(countArg) : Infinity;
const dist = (m) => import(resolve('dist', `${m}.js`));

/** Deterministic contents of version v (0 = a, 1 = b); sizes make one write take a few milliseconds or more. */
const fill = (Ctor, n, v) => Ctor.from({ length: n }, (_, i) => ((i * 7 + v * 13) % 251) - (Ctor === Uint8Array ? 0 : 100));

const writers = {
  async npy() {
    const { writeNpy } = await dist('io/npy');
    return (v) => writeNpy(path, fill(Float32Array, 128 * 1024 + v * 1024, v), [128 + v, 1024]);
  },
  async safetensors() {
    const { writeSafetensors } = await dist('io/safetensors');
    return (v) => writeSafetensors(path, { coef: { data: fill(Float32Array, 100_000 + v * 1000, v), shape: [100 + v, 1000] }, intercept: { data: fill(Float32Array, 1000, v), shape: [1000] } }, { version: String(v) });
  },
  async nifti() {
    const { writeNifti } = await dist('io/nifti');
    return (v) => writeNifti(path, { dims: [40, 48, 32, 2 + v], datatype: 'int16' }, fill(Int16Array, 40 * 48 * 32 * (2 + v), v));
  },
  async png() {
    const { writePng } = await dist('sd/png');
    return (v) => writePng(path, { data: fill(Uint8Array, 160 * 160 * 3, v), count: 1, height: 160, width: 160 });
  },
  async json() {
    const { writeJsonAtomic } = await dist('io/atomicWrite');
    return (v) => writeJsonAtomic(path, { version: v, rows: Array.from({ length: 10_000 + v * 100 }, (_, i) => ({ i, x: (i * 7 + v) % 13 })) });
  },
  async mat() {
    const { writeMat } = await dist('io/mat');
    return (v) => writeMat(path, { subjectim: { dims: [8, 20_000 + v], data: fill(Float64Array, 8 * (20_000 + v), v) } }, { compress: v === 1 });
  },
  async hdf5() {
    const { writeHdf5 } = await dist('io/hdf5');
    return (v) => writeHdf5(path, [{ name: 'betas', data: fill(Int16Array, 30 * 20 * 24 * 16, v), shape: [30, 16, 24, 20], chunks: [30, 1, 1, 1] }, { name: 'v', data: Int32Array.from([v]), shape: [1] }]);
  },
  async extraction() {
    // `nsd extract --out`: betas, ids, voxels and the manifest, as one folder
    const { writeNsdExtraction } = await dist('nsd/output');
    return (v) => {
      const rows = 300 + v;
      const cols = 500;
      const manifest = { format: 'brainlatent-nsd-extraction', version: 1, key: `k${v}`, options: { zscore: v ? 'train' : 'none' } };
      return writeNsdExtraction(path, {
        train: { data: fill(Float32Array, rows * cols, v), rows, cols },
        test: { data: fill(Float32Array, 50 * cols, v), rows: 50, cols },
        trainImageIds: Int32Array.from({ length: rows }, (_, i) => i + 1),
        testImageIds: Int32Array.from({ length: 50 }, (_, i) => i + 1),
        voxels: Int32Array.from({ length: cols * 3 }, (_, i) => i % 17),
        manifest,
        fromCache: false,
      });
    };
  },
  async synth() {
    const { synthNsd } = await dist('synth/nsd');
    return (v) => synthNsd({ out: path, seed: 1 + v, grid: [10, 12, 8], designSessions: 2, sessions: 2, trialsPerSession: 30, sharedImages: 4, imageSize: 16, formats: ['nifti'] });
  },
  async runfolder() {
    // reconstruct --force with a new config over a finished run: clear, then the new run.json, then (later) outputs
    const { clearRunFolder, writeManifest } = await dist('pipeline/runFolder');
    const { writeFileAtomic } = await dist('io/atomicWrite');
    return async (v) => {
      const config = { out: path, nsd: { root: '/nsd', subject: 1 }, model: { dir: '/m' }, version: v };
      await clearRunFolder(path);
      await writeManifest(config, { brainlatent: `v${v}` });
      await writeFileAtomic(`${path}/metrics.json`, JSON.stringify({ run: v }));
      await writeFileAtomic(`${path}/report.html`, `<p>run ${v}</p>`);
    };
  },
};

const write = await writers[kind]();
process.stdout.write('ready\n');
if (which === 'prep') {
  for (const [v, where] of [[1, join(dirname(target), 'ref-b', basename(target))], [0, join(dirname(target), 'ref-a', basename(target))], [0, target]]) {
    path = where;
    const t0 = performance.now();
    await write(v);
    process.stdout.write(`wrote ${v} ${Math.round(performance.now() - t0)}\n`);
  }
} else {
  for (let n = 0; n < count; n++) {
    const v = which === 'a' ? 0 : which === 'b' ? 1 : n % 2;
    const t0 = performance.now();
    await write(v);
    process.stdout.write(`wrote ${n} ${Math.round(performance.now() - t0)}\n`);
  }
}
