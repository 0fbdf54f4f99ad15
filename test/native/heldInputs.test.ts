/**
 * An array an async engine job reads in place survives a transfer of its buffer mid-job. The engine held the JS
 * object but read a pointer taken at the call: structuredClone(buf, { transfer: [buf] }) detached and freed the
 * memory under the engine's thread (SIGSEGV on 3 runs of 3, reviewer s24-R5's uaf.mjs / uaf2.mjs). Each scenario runs
 * in a child process, which prints what the transfer did and whether the result equals the undisturbed call's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InvalidArgumentError } from '../../ts/errors.js';
import { engineOutput, holdInputs } from '../../ts/native/heldInputs.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import { distModule } from '../helpers/dist.js';
import { type ChildResult, runModule } from '../helpers/nodeChild.js';

const url = (rel: string): string => JSON.stringify(pathToFileURL(distModule(rel)).href);

/**
 * Child helpers: drop(buffer) transfers `buffer` away, drops the copy and allocates 400 MiB that may reuse its memory
 * (what a freed input turned into); it returns 'copied' (Node 20 copies a buffer marked untransferable), 'refused'
 * (Node ≥ 21 throws DataCloneError) or 'detached' (the unmarked buffer was moved away: the crash before the fix).
 */
const head = `
  const drop = (buf) => {
    let how;
    try {
      structuredClone(buf, { transfer: [buf] });
      how = buf.byteLength > 0 ? 'copied' : 'detached';
    } catch (e) {
      how = e.name === 'DataCloneError' ? 'refused' : 'threw ' + e.name;
    }
    for (let i = 0; i < 400; i++) new Uint8Array(1 << 20).fill(0xaa);
    return how;
  };
  const same = (a, b) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
  let s = 5;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
  const matrix = (rows, cols) => ({ data: Float32Array.from({ length: rows * cols }, rand), rows, cols });
`;

function expectSurvived(r: ChildResult, inputs: number): void {
  expect({ hung: r.hung, signal: r.signal, status: r.status }, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toEqual({ hung: false, signal: null, status: 0 });
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { how: string[]; same: boolean; attached: boolean };
  expect(out.how).toHaveLength(inputs);
  for (const how of out.how) expect(['copied', 'refused']).toContain(how);
  expect(out.same).toBe(true);
  expect(out.attached).toBe(true);
}

describe('an input transferred while the engine reads it in place', () => {
  it('RidgeCV.fit: X and Y transferred at its first progress event', async () => {
    const r = await runModule(`${head}
      const { RidgeCV } = await import(${url('ridge/RidgeCV')});
      const x = matrix(1500, 800), y = matrix(1500, 100);
      const fit = (onProgress) => new RidgeCV({ alphas: [1, 10, 100], solver: 'per-fold-primal' }).fit(x, y, { onProgress });
      const bytes = [x.data.byteLength, y.data.byteLength];
      const expected = await fit(() => {});
      const before = { x: x.data.slice(), y: y.data.slice() };
      let how;
      const m = await fit(() => { how ??= [drop(x.data.buffer), drop(y.data.buffer)]; });
      console.log(JSON.stringify({ how, same: same(m.coef.data, expected.coef.data) && same(x.data, before.x) && same(y.data, before.y),
        attached: x.data.byteLength === bytes[0] && y.data.byteLength === bytes[1] }));
    `);
    expectSurvived(r, 2);
  });

  it("predictAsync: X and the model's coefficients transferred at its first progress event", async () => {
    const r = await runModule(`${head}
      const { RidgeCV } = await import(${url('ridge/RidgeCV')});
      const m = await new RidgeCV({ alphas: [1, 10] }).fit(matrix(200, 600), matrix(200, 400));
      const x = matrix(40000, 600);
      const expected = m.predict(x);
      const bytes = [x.data.byteLength, m.coef.data.byteLength];
      let how;
      const p = await m.predictAsync(x, { onProgress: () => { how ??= [drop(x.data.buffer), drop(m.coef.data.buffer)]; } });
      console.log(JSON.stringify({ how, same: same(p.data, expected.data), attached: x.data.byteLength === bytes[0] && m.coef.data.byteLength === bytes[1] }));
      // the prediction the engine filled is the caller's to move
      structuredClone(p.data.buffer, { transfer: [p.data.buffer] });
      if (p.data.byteLength !== 0) throw new Error('the prediction could not be transferred');
    `);
    expectSurvived(r, 2);
  });

  describe('Diffusion.encodeImages', () => {
    let dir = '';
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'bl-held-'));
      await writeSdFixture(join(dir, 'model'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it("its pixels transferred 20 ms into the job (the reviewer's uaf.mjs)", async () => {
      const r = await runModule(`${head}
        const { Diffusion } = await import(${url('sd/Diffusion')});
        const sd = await Diffusion.load(${JSON.stringify(join(dir, 'model'))});
        const count = 256, side = 128;
        const data = Uint8Array.from({ length: count * side * side * 3 }, (_, i) => (i * 37) % 251);
        const images = { data, count, height: side, width: side };
        const expected = await sd.encodeImages({ ...images, data: data.slice() });
        const p = sd.encodeImages(images);
        await new Promise((r) => setTimeout(r, 20));
        const how = [drop(data.buffer)];
        const z = await p;
        console.log(JSON.stringify({ how, same: same(z.data, expected.data), attached: data.byteLength === count * side * side * 3 }));
      `);
      expectSurvived(r, 1);
    });
  });
});

describe('what a public call leaves transferable (marking is for good: only what an async job reads in place)', () => {
  const transferable = `
    const transferable = (a) => {
      try {
        structuredClone(a.buffer, { transfer: [a.buffer] });
      } catch {
        return false;
      }
      return a.byteLength === 0;
    };
  `;

  it("model.save and writeNpy through the engine's large-file writer leave the model's and the caller's arrays transferable", async () => {
    // (before: the writer's chunks were marked, so the model's coef and the caller's 16-MiB array could not be moved again)
    const dir = mkdtempSync(join(tmpdir(), 'bl-held-save-'));
    try {
      const r = await runModule(`${head}${transferable}
        const { RidgeCV } = await import(${url('ridge/RidgeCV')});
        const { useEngineFileWriter } = await import(${url('native/call')});
        const { writeNpy, readNpy } = await import(${url('io/npy')});
        if (!useEngineFileWriter()) throw new Error('no engine file writer here');
        const alphas = Float64Array.of(1, 10);
        const x = matrix(32, 1024), y = matrix(32, 4096);
        const m = await new RidgeCV({ alphas }).fit(x, y);
        const sync = matrix(8, 1024);
        const predicted = m.predict(sync);
        await m.save(${JSON.stringify(join(dir, 'model.safetensors'))});
        const user = Float32Array.from({ length: 1 << 22 }, (_, i) => i % 977);
        await writeNpy(${JSON.stringify(join(dir, 'user.npy'))}, user, [user.length]);
        const back = await readNpy(${JSON.stringify(join(dir, 'user.npy'))});
        const coefBytes = m.coef.data.byteLength;
        console.log(JSON.stringify({
          coefBytes, written: back.data.length === user.length && back.data[976] === 976,
          xScale: transferable(m.xScale), intercept: transferable(m.intercept), user: transferable(user),
          alphas: transferable(alphas), syncX: transferable(sync.data), predicted: transferable(predicted.data),
          x: transferable(x.data), y: transferable(y.data),
        }));
      `);
      expect({ signal: r.signal, status: r.status }, r.stderr).toEqual({ signal: null, status: 0 });
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
      // coef's 16 MiB take the save through the large-file writer, with the model's other arrays in the same write. (coef
      // itself is not asserted: a result over 1 MiB is the engine's memory, an external ArrayBuffer, which Node never
      // transfers, native/addon/kit.h to_typed; the model's smaller arrays are V8's own.)
      expect(out).toEqual({
        coefBytes: 16 << 20, written: true,
        xScale: true, intercept: true, user: true, alphas: true, syncX: true, predicted: true,
        // (the fit read X and Y in place: those stay marked)
        x: false, y: false,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a Buffer over a resizable ArrayBuffer is handed over as a copy without DEP0005 (the Buffer constructor)', async () => {
    // (before: the copy was made with the view's constructor, new Buffer(...): --throw-deprecation ended the process)
    const r = await runModule(`${head}
        const { pixCorr } = await import(${url('eval/pixel')});
        const side = 8, bytes = 2 * side * side * 3;
        const data = Buffer.from(new ArrayBuffer(bytes, { maxByteLength: 2 * bytes }));
        for (let i = 0; i < bytes; i++) data[i] = (i * 37) % 251;
        const images = { data, count: 2, height: side, width: side };
        const plain = { ...images, data: Uint8Array.from(data) };
        const got = await pixCorr(images, plain, { size: side });
        console.log(JSON.stringify({ values: Array.from(got.values), resizable: data.buffer.resizable }));
      `, 60_000, { ...process.env, NODE_OPTIONS: '--throw-deprecation' });
    expect({ signal: r.signal, status: r.status }, r.stderr).toEqual({ signal: null, status: 0 });
    expect(r.stderr).not.toMatch(/DEP0005|DeprecationWarning/);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { values: number[]; resizable: boolean };
    expect(out.values.map((v) => Math.round(v * 1e6) / 1e6)).toEqual([1, 1]);
    expect(out.resizable).toBe(true);
  });
});

describe('holdInputs', () => {
  const transferred = (b: ArrayBuffer): boolean => {
    try {
      structuredClone(b, { transfer: [b] });
    } catch {
      return false;
    }
    return b.byteLength === 0;
  };

  it("marks what each job reads in place (its paths), leaves the arguments it copies, shared and engine-output ones alone", () => {
    const x = new Float32Array(4);
    const y = new Float32Array(4);
    const alphas = Float64Array.of(1, 10);
    const folds = new Int32Array(2);
    const fit = ['ridgeFit', [x, 2, 2, y, 2, { alphas, folds, nFolds: 2 }, undefined, undefined]] as const;
    const h = holdInputs(fit[0], [...fit[1]]);
    expect(h.args).toEqual(fit[1]);
    expect(h.args[5]).toBe(fit[1][5]);
    expect([x, y, alphas, folds].map((a) => transferred(a.buffer as ArrayBuffer))).toEqual([false, false, true, true]);

    const z = new Float32Array(8);
    const cond = new Float32Array(8);
    const shared = new Float32Array(new SharedArrayBuffer(32));
    const out = engineOutput(new Float32Array(5));
    const seeds = new Float64Array(1);
    holdInputs('sdImg2Img', [{}, { z, cond, uncond: shared, noise: undefined, seeds }, undefined, undefined]);
    expect([z, cond, seeds].map((a) => transferred(a.buffer as ArrayBuffer))).toEqual([false, false, true]);
    expect(shared.buffer).toBeInstanceOf(SharedArrayBuffer);

    const data = new Float32Array(2);
    const bytes = new Uint8Array(3);
    holdInputs('onnxRun', [{}, [{ name: 'a', data, shape: [2] }], ['o'], undefined]);
    holdInputs('sdLoad', [{ dir: '', fromMemory: { unet: { bytes, externalDataFolder: '' } } }]);
    holdInputs('ridgePredictAsync', [new Float32Array(2), 1, 2, new Float32Array(2), 1, new Float32Array(1), new Float32Array(2), new Float32Array(2), out]);
    const ids = new Int32Array(4);
    holdInputs('sdEncodeText', [{}, ids, 1, 4]);
    expect([data, bytes].map((a) => transferred(a.buffer as ArrayBuffer))).toEqual([false, false]);
    expect([out, ids].map((a) => transferred(a.buffer))).toEqual([true, true]);
  });

  it("checks the large-file writer's chunks without marking them; refuses a method it has no entry for", () => {
    const chunk = new Uint8Array(16);
    const h = holdInputs('writeThrough', [3, [chunk]]);
    expect(h.args[1]).toEqual([chunk]);
    expect(() => h.checkAttached('write')).not.toThrow();
    expect(transferred(chunk.buffer)).toBe(true);
    expect(() => h.checkAttached('write')).toThrow(/^write: an input array's ArrayBuffer \(16 bytes\) was detached/);
    expect(() => holdInputs('somethingNew', [new Float32Array(1)])).toThrow(/binding method 'somethingNew' has no entry in IN_PLACE/);
  });

  it('hands the engine a fixed-length copy of an array over a resizable ArrayBuffer, which resize() cannot shrink', () => {
    // (ES2024's resizable ArrayBuffer, which this project's TypeScript lib does not declare)
    const Resizable = ArrayBuffer as unknown as new (bytes: number, o: { maxByteLength: number }) => ArrayBuffer & { resize(n: number): void };
    const rab = new Resizable(16, { maxByteLength: 64 });
    const a = new Float32Array(rab);
    a.set([1, 2, 3, 4]);
    const h = holdInputs('sdImg2Img', [{}, { z: a, k: 2 }]);
    const held = (h.args[1] as { z: Float32Array; k: number }).z;
    expect(held).not.toBe(a);
    expect(held).toBeInstanceOf(Float32Array);
    expect(Array.from(held)).toEqual([1, 2, 3, 4]);
    expect((held.buffer as ArrayBuffer & { resizable: boolean }).resizable).toBe(false);
    expect((h.args[1] as { k: number }).k).toBe(2);
    rab.resize(0);
    expect(Array.from(held)).toEqual([1, 2, 3, 4]);
  });

  it('fails the call when an input was detached all the same (a WebAssembly memory grown under it)', () => {
    // (the DOM's WebAssembly types are not in this project's lib: Node's global, typed here)
    const Memory = (globalThis as unknown as { WebAssembly: { Memory: new (o: { initial: number; maximum: number }) => { buffer: ArrayBuffer; grow(pages: number): void } } })
      .WebAssembly.Memory;
    const memory = new Memory({ initial: 1, maximum: 2 });
    const h = holdInputs('metricsCorrelation', [new Float32Array(memory.buffer, 0, 16), 1, new Float32Array(16), 1, 16]);
    expect(() => h.checkAttached('metrics')).not.toThrow();
    memory.grow(1);
    expect(() => h.checkAttached('metrics')).toThrow(InvalidArgumentError);
    expect(() => h.checkAttached('metrics')).toThrow(/^metrics: an input array's ArrayBuffer \(64 bytes\) was detached while the engine read it in place/);
  });
});
