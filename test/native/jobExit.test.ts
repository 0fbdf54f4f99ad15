/**
 * A process exits promptly, with the code it asked for, however it ends while engine jobs compute on the engine's
 * own threads. The process.exit() of a kit whose job threads were detached hung for ever: exit() ran the libraries'
 * exit handlers, and OpenBLAS's joined its worker threads while a job thread still computed in them (gdb: the main
 * thread in blas_thread_shutdown_ ← _dl_fini). Each scenario runs in a child process, killed after a generous limit
 * that only a hang reaches.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { GraphBuilder, model, rng, valueInfo, writeSdFixture } from '../../ts/sd/fixture.js';
import { distModule } from '../helpers/dist.js';
import { type ChildResult, runCommand, runModule } from '../helpers/nodeChild.js';
import { writeSlowTextEncoder } from '../helpers/slowTextEncoder.js';

const ridgeUrl = (): string => pathToFileURL(distModule('ridge/RidgeCV')).href;

/**
 * A child's module head. fit(onComputing) starts a fit that computes for a second or more and calls onComputing once,
 * at its first progress event (its work then runs on an engine thread). busy(onComputing) starts a fit and three
 * predictAsync calls and calls onComputing once all four compute — the fit decomposing, each prediction between two
 * of its GEMMs —, every engine thread inside OpenBLAS: a process.exit() there made the kit with detached threads hang
 * or crash on 9 runs of 10 on a 2-core machine (a single fit: on a few runs of 10).
 */
const fitHead = (): string => `
  const { RidgeCV } = await import(${JSON.stringify(ridgeUrl())});
  let s = 3;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
  const matrix = (rows, cols) => ({ data: Float32Array.from({ length: rows * cols }, rand), rows, cols });
  const x = matrix(2000, 1600), y = matrix(2000, 20);
  const fit = (onComputing = () => {}, stage = undefined) => {
    let first = true;
    const onProgress = (q) => { if (first && (!stage || q.stage === stage)) { first = false; onComputing(); } };
    return new RidgeCV({ alphas: [1, 10, 100], solver: 'per-fold-primal' }).fit(x, y, { onProgress });
  };
  const model = await new RidgeCV({ alphas: [1, 10, 100] }).fit(matrix(200, 1500), matrix(200, 1500));
  const xs = matrix(8000, 1500);
  const busy = (onComputing) => {
    const computing = new Set();
    const mark = (job) => { computing.add(job); if (computing.size === 4) { computing.add('reported'); onComputing(); } };
    const jobs = [fit(() => mark('fit'), 'decompose')];
    for (let i = 0; i < 3; i++) jobs.push(model.predictAsync(xs, { onProgress: () => mark(i) }));
    return jobs;
  };
`;

/**
 * Logs 'engine threads stopped' to stderr when a hook of the engine's stops its job threads (the hooks call the
 * binding's stopJobThreads, looked up at each call, which this wraps): a process that only the kit's exit() backstop
 * ended logs nothing.
 */
const stopLog = (): string => `
  const { writeSync } = await import('node:fs');
  const { binding } = await import(${JSON.stringify(pathToFileURL(distModule('native/binding')).href)});
  const engine = binding();
  const stopJobThreads = engine.stopJobThreads;
  engine.stopJobThreads = () => { writeSync(2, 'engine threads stopped\\n'); stopJobThreads.call(engine); };
`;

/** The worker's module for the worker_thread scenarios: posts 'computing' once its fit computes, 'fit done' after. */
const fitWorker = (): string => `
  (async () => {
    const { parentPort } = await import('node:worker_threads');
    ${fitHead()}
    await fit(() => parentPort.postMessage('computing'));
    parentPort.postMessage('fit done');
  })();
`;

function expectExited(r: ChildResult, status: number): void {
  expect({ hung: r.hung, signal: r.signal, status: r.status }, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toEqual({ hung: false, signal: null, status });
}

describe('a process that ends while engine jobs compute exits promptly with its code', () => {
  it('process.exit() during a fit (the reviewer\'s exitfit)', async () => {
    const r = await runModule(`${fitHead()}
      fit(() => { console.log('computing'); process.exit(3); }, 'decompose');
    `);
    expectExited(r, 3);
    expect(r.stdout.trim()).toBe('computing');
    expect(r.stderr).toBe('');
  });

  it('process.exit() during a fit with three predictions computing beside it and two more jobs queued', async () => {
    const r = await runModule(`${fitHead()}
      busy(() => { console.log('computing'); process.exit(3); });
      fit();
      model.predictAsync(xs);
    `);
    expectExited(r, 3);
    expect(r.stdout.trim()).toBe('computing');
    expect(r.stderr).toBe('');
  });

  it("process.exit() from an 'exit' listener of the caller's, during a fit", async () => {
    // (the caller's listener, registered before the engine loaded, exits again: the engine's runs first all the same)
    const r = await runModule(`
      process.on('exit', () => process.exit(8));
      ${fitHead()}
      busy(() => process.exit(3));
    `);
    expectExited(r, 8);
  });

  it("process.exit() with the engine's 'exit' listener removed: its process.reallyExit hook stops its threads", async () => {
    const r = await runModule(`${fitHead()}
      busy(() => { process.removeAllListeners('exit'); process.exit(3); });
    `);
    expectExited(r, 3);
  });

  it("an uncaught exception during a fit whose exit skips the engine's listener: the engine's process.emit hook stops its threads", async () => {
    // (a listener of the caller's prepended after the engine's throws: Node's uncaught-exception exit swallows that
    // and emits no further listener, and exits through exit() without process.reallyExit. Until s24 only the kit's
    // backstop met it, which found the jobs computing and ended the process at once: the log below stayed empty)
    const r = await runModule(`${fitHead()}${stopLog()}
      busy(() => {
        process.prependListener('exit', () => { throw new Error('thrown by an exit listener'); });
        setTimeout(() => { throw new Error('thrown while a fit computes'); });
      });
    `);
    expectExited(r, 1);
    expect(r.stderr).toContain('thrown while a fit computes');
    expect(r.stderr).toContain('engine threads stopped');
  });

  it("exit() called natively during a fit (process.reallyExit's original): the engine's exit() handler, its backstop, ends the process with exit()'s status", async () => {
    // (no hook of the engine's runs: the backstop finds the jobs computing and, the exit handlers registered after it —
    // ONNX Runtime's, a later static's — having run already, cancels them and ends the process at once; README)
    const r = await runModule(`
      const reallyExit = process.reallyExit;
      ${fitHead()}${stopLog()}
      busy(() => { console.log('computing'); reallyExit.call(process, 6); });
    `);
    expectExited(r, 6);
    expect(r.stdout.trim()).toBe('computing');
    expect(r.stderr).not.toContain('engine threads stopped');
  });

  it('process.exit() during a fit stops the threads through the engine\'s hooks, before its listeners', async () => {
    const r = await runModule(`${fitHead()}${stopLog()}
      process.on('exit', () => console.log('listener'));
      busy(() => process.exit(3));
    `);
    expectExited(r, 3);
    expect(r.stdout.trim()).toBe('listener');
    expect(r.stderr).toContain('engine threads stopped');
  });

  it('an uncaught exception during a fit', async () => {
    const r = await runModule(`${fitHead()}
      busy(() => setTimeout(() => { throw new Error('thrown while a fit computes'); }));
    `);
    expectExited(r, 1);
    expect(r.stderr).toContain('thrown while a fit computes');
  });

  it('a SIGTERM whose handler calls process.exit() during a fit', async () => {
    const r = await runModule(`${fitHead()}
      process.on('SIGTERM', () => { console.log('SIGTERM'); process.exit(143); });
      busy(() => process.kill(process.pid, 'SIGTERM'));
    `);
    expectExited(r, 143);
    expect(r.stdout.trim()).toBe('SIGTERM');
  });

  it('the main module returning while a fit is pending: the fit keeps the process alive to its end, as on libuv', async () => {
    const r = await runModule(`${fitHead()}
      fit().then((m) => console.log('fit done', m.nTargets));
    `);
    expectExited(r, 0);
    expect(r.stdout.trim()).toBe('fit done 20');
  });

  it("process.exit() while a worker_thread's fit computes", async () => {
    const r = await runModule(`
      import { Worker } from 'node:worker_threads';
      const w = new Worker(${JSON.stringify(fitWorker())}, { eval: true });
      w.on('message', (m) => {
        console.log(m);
        if (m === 'computing') process.exit(5);
      });
    `);
    expectExited(r, 5);
    expect(r.stdout.trim()).toBe('computing');
  });

  it('a worker_thread terminated while its fit computes, then process.exit()', async () => {
    const r = await runModule(`
      import { Worker } from 'node:worker_threads';
      const w = new Worker(${JSON.stringify(fitWorker())}, { eval: true });
      w.on('message', async (m) => {
        console.log(m);
        if (m !== 'computing') return;
        await w.terminate();
        console.log('terminated');
        process.exit(4);
      });
    `);
    expectExited(r, 4);
    expect(r.stdout.trim().split('\n')).toEqual(['computing', 'terminated']);
  });
});

describe('a worker_thread that ends inside an engine progress callback ends alone', () => {
  // (node-addon-api wrapped the failed call's pending termination, no object, and aborted the whole process: SIGABRT,
  // 'FATAL ERROR: Error::Error napi_define_properties' — the reviewer's w1b.mjs and w1c.mjs)
  const worker = (onComputing: string): string => `
    (async () => {
      const { parentPort } = await import('node:worker_threads');
      ${fitHead()}
      await fit(() => { ${onComputing} }, 'decompose');
      parentPort.postMessage('fit done');
    })();
  `;

  it('process.exit() in the worker, inside its fit\'s progress callback', async () => {
    const r = await runModule(`
      import { Worker } from 'node:worker_threads';
      const w = new Worker(${JSON.stringify(worker('process.exit(0);'))}, { eval: true });
      w.on('message', (m) => console.log(m));
      w.on('exit', (c) => console.log('worker exit', c));
    `);
    expectExited(r, 0);
    expect(r.stdout.trim()).toBe('worker exit 0');
  });

  it("worker.terminate() while the worker's progress callback runs", async () => {
    const r = await runModule(`
      import { Worker } from 'node:worker_threads';
      const busy = "parentPort.postMessage('in onProgress'); const end = Date.now() + 3000; while (Date.now() < end);";
      const w = new Worker(${JSON.stringify(worker('__BUSY__'))}.replace('__BUSY__', busy), { eval: true });
      w.on('message', async (m) => {
        console.log(m);
        if (m !== 'in onProgress') return;
        await w.terminate();
        console.log('terminated');
        // (the process goes on: a job on the main thread still runs to its end)
        const { RidgeCV } = await import(${JSON.stringify(ridgeUrl())});
        const m2 = (r, c) => ({ data: Float32Array.from({ length: r * c }, (_, i) => Math.sin(i)), rows: r, cols: c });
        const model = await new RidgeCV({ alphas: [1] }).fit(m2(50, 10), m2(50, 2));
        console.log('main fit', model.nTargets);
      });
    `);
    expectExited(r, 0);
    expect(r.stdout.trim().split('\n')).toEqual(['in onProgress', 'terminated', 'main fit 2']);
  });
});

describe('once the process is exiting the engine takes no more jobs', () => {
  it("a job started after the engine's exit hook ran is refused as cancelled", async () => {
    const r = await runModule(`
      const { binding } = await import(${JSON.stringify(pathToFileURL(distModule('native/binding')).href)});
      ${fitHead()}
      binding().stopJobThreads();  // (what the process's 'exit' event runs)
      try {
        await fit();
        console.log('fit computed');
      } catch (e) {
        console.log(e.name, e.message);
      }
    `);
    expectExited(r, 0);
    expect(r.stdout.trim()).toMatch(/^CancelledError .*the process is exiting/);
  });

  it("process.exit() during a fit, with a caller's 'exit' listener starting another fit (the reviewer's a6.mjs)", async () => {
    const r = await runModule(`${fitHead()}
      process.on('exit', () => { fit(); busy(() => {}); });
      busy(() => process.exit(3));
    `);
    expectExited(r, 3);
  });
});

describe('exit() called by a library on the thread that computes a job', () => {
  let dir = '';
  let shim = '';
  beforeAll(async () => {
    // (stands in for a library that calls exit() while it computes: setpriority() is called on the lowered thread a
    // job computes on when the job niceness is set, and nowhere else in a fit)
    dir = mkdtempSync(join(tmpdir(), 'bl-exit-shim-'));
    const src = join(dir, 'shim.c');
    shim = join(dir, 'shim.so');
    writeFileSync(
      src,
      `#define _GNU_SOURCE
       #include <stdlib.h>
       #include <sys/resource.h>
       int setpriority(__priority_which_t which, id_t who, int prio) { exit(7); }
      `,
    );
    const cc = await runCommand('cc', ['-shared', '-fPIC', '-o', shim, src]);
    if (cc.status !== 0) throw new Error(`cc could not build the exit() shim: ${cc.stderr}`);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('on the lowered thread of a job niceness: the process exits with its code (it hung for ever)', async () => {
    const r = await runModule(
      `
      const { binding } = await import(${JSON.stringify(pathToFileURL(distModule('native/binding')).href)});
      binding().setJobNiceness(10);
      ${fitHead()}
      fit();
    `,
      60_000,
      { ...process.env, LD_PRELOAD: shim },
    );
    expectExited(r, 7);
  });
});

describe('a process that ends while an ONNX Runtime job computes exits promptly with its code', () => {
  let dir = '';
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bl-job-exit-'));
    // (a U-Net heavy enough that img2img computes for seconds)
    await writeSdFixture(join(dir, 'model'), { unetChannels: 64, unetLayers: 8 });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A module that starts img2img on 4 images and, at its first step, prints 'computing' and runs `atFirstStep`. */
  const img2imgScript = (atFirstStep: string) => {
    const diffusion = pathToFileURL(distModule('sd/Diffusion')).href;
    return `
      const { Diffusion } = await import(${JSON.stringify(diffusion)});
      const sd = await Diffusion.load(${JSON.stringify(join(dir, 'model'))});
      const n = 4, side = 256;
      const data = Uint8Array.from({ length: n * side * side * 3 }, (_, i) => (i * 37) % 256);
      const z = await sd.encodeImages({ data, count: n, height: side, width: side });
      const c = await sd.encodeText(['a', 'b', 'c', 'd']);
      let first = true;
      sd.img2img({ z, c, steps: 50, strength: 1, onStep: () => {
        if (!first) return;
        first = false;
        console.log('computing');
        ${atFirstStep}
      } }).then(() => console.log('img2img finished first'));
    `;
  };

  it('process.exit() during img2img', async () => {
    const r = await runModule(img2imgScript('process.exit(6);'));
    expectExited(r, 6);
    expect(r.stdout.trim()).toBe('computing');
  });

  it("process.exit() during img2img with the 'exit' listeners removed: the U-Net stops before ONNX Runtime's statics go", async () => {
    // (only the exit() handlers stopped the job then, ONNX Runtime's already destroyed under the running U-Net: it
    // printed 'GetElementType is not implemented', or crashed — the reviewer's o2.mjs)
    const r = await runModule(img2imgScript("process.removeAllListeners('exit');\n        process.exit(3);"));
    expectExited(r, 3);
    expect(r.stdout.trim()).toBe('computing');
    expect(r.stderr).toBe('');
  });
});

describe('OnnxModel.run is interrupted when its process exits or its worker_thread is terminated', () => {
  // (the run was linked to the caller's token only, not to the job's own that the exit and the environment's end
  // cancel: process.exit() and worker.terminate() waited for the whole run — the reviewer's onnxexit.mjs and
  // onnxworker.mjs, ~5 s)
  let dir = '';
  let modelPath = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bl-onnx-exit-'));
    modelPath = join(dir, 'chain.onnx');
    // (60 MatMuls of [rows, 1024] by 1024²: a run's length is proportional to its rows, and ONNX Runtime's terminate
    // flag is read between them)
    const g = new GraphBuilder(rng(1));
    const w = g.weight([1024, 1024], 1 / 32);
    let prev = 'x';
    for (let i = 0; i < 60; i++) prev = g.op('MatMul', [prev, w]);
    g.op('Identity', [prev], [], 'y');
    writeFileSync(modelPath, model(g, 'chain', [valueInfo('x', 1, ['rows', 1024])], [valueInfo('y', 1, ['rows', 1024])]));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /**
   * Loads the model on one thread and times a 512-row run; startLong() then starts a run of ≥ 8 s on that measure (at
   * most 32,768 rows) and returns its expected length, runMs. Sized from the machine's own speed, so that a run
   * waited for is told apart from one interrupted on a loaded machine as on a fast one (2 cores, before the fix:
   * exit 6.6 s and terminate 8.4 s after the call, for runMs 8 s; after it 0.3–0.45 s and 0.08–0.33 s).
   */
  const onnxHead = (): string => `
    const { OnnxModel } = await import(${JSON.stringify(pathToFileURL(distModule('sd/OnnxModel')).href)});
    const m = await OnnxModel.load(${JSON.stringify(modelPath)}, { intraOpThreads: 1 });
    const input = (rows) => ({ x: { data: new Float32Array(rows * 1024).fill(0.01), shape: [rows, 1024] } });
    await m.run(input(16), ['y']);  // (the first run allocates)
    const t0 = performance.now();
    await m.run(input(512), ['y']);
    const msPerRow = (performance.now() - t0) / 512;
    const startLong = () => {
      const rows = Math.min(1 << 15, Math.ceil(8000 / msPerRow));
      m.run(input(rows), ['y']).then(() => console.log('run finished first'), () => {});
      return rows * msPerRow;
    };
  `;

  it('process.exit() during a run ends the process long before the run could have finished', async () => {
    const r = await runModule(`${onnxHead()}
      const runMs = startLong();
      setTimeout(() => {
        console.log(JSON.stringify({ runMs, exitAt: Date.now() }));
        process.exit(6);
      }, 300);
    `);
    const closedAt = Date.now();
    expectExited(r, 6);
    const { runMs, exitAt } = JSON.parse(r.stdout.trim()) as { runMs: number; exitAt: number };
    expect(closedAt - exitAt).toBeLessThan(runMs / 2);
  });

  it('worker.terminate() during a run resolves long before the run could have finished', async () => {
    const worker = `
      (async () => {
        const { parentPort } = await import('node:worker_threads');
        ${onnxHead()}
        const runMs = startLong();
        setTimeout(() => parentPort.postMessage(runMs), 300);
      })();
    `;
    const r = await runModule(`
      import { Worker } from 'node:worker_threads';
      const w = new Worker(${JSON.stringify(worker)}, { eval: true });
      const runMs = await new Promise((resolve) => w.once('message', resolve));
      const t = performance.now();
      await w.terminate();
      console.log(JSON.stringify({ runMs, terminateMs: performance.now() - t }));
    `);
    expectExited(r, 0);
    const { runMs, terminateMs } = JSON.parse(r.stdout.trim()) as { runMs: number; terminateMs: number };
    expect(terminateMs).toBeLessThan(runMs / 2);
  });
});

describe("Diffusion.encodeText's run is interrupted when its process exits", () => {
  // (the text encoder's run was a plain one: process.exit() waited for the whole run, as OnnxModel.run's did before)
  let dir = '';
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bl-text-exit-'));
    await writeSdFixture(join(dir, 'model'));
    writeSlowTextEncoder(join(dir, 'model'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('process.exit() during a run ends the process long before the run could have finished', async () => {
    // (a run of ≥ 8 s on the machine's own measure of 8 captions, at most 4,096 captions)
    const r = await runModule(`
      const { Diffusion } = await import(${JSON.stringify(pathToFileURL(distModule('sd/Diffusion')).href)});
      const sd = await Diffusion.load(${JSON.stringify(join(dir, 'model'))}, { components: ['text_encoder'], intraOpThreads: 1 });
      const ids = (n) => Int32Array.from({ length: n * 77 }, (_, i) => 300 + (i % 200));
      await sd.encodeText(ids(1));
      const t0 = performance.now();
      await sd.encodeText(ids(8));
      const msPerCaption = (performance.now() - t0) / 8;
      const captions = Math.min(4096, Math.ceil(8000 / msPerCaption));
      sd.encodeText(ids(captions)).then(() => console.log('run finished first'), () => {});
      setTimeout(() => {
        console.log(JSON.stringify({ runMs: captions * msPerCaption, exitAt: Date.now() }));
        process.exit(6);
      }, 300);
    `);
    const closedAt = Date.now();
    expectExited(r, 6);
    const { runMs, exitAt } = JSON.parse(r.stdout.trim()) as { runMs: number; exitAt: number };
    expect(closedAt - exitAt).toBeLessThan(runMs / 2);
  });
});
