/**
 * A prediction survives a thread that cannot be started (EAGAIN: the process's thread limit, a container's pids
 * cap): its engine loops run on the threads there are and give the same values. parallel_for's vector of threads was
 * destroyed with joinable threads in it and the process ended in std::terminate ('terminate called without an active
 * exception', exit 134: a service gone) — the reviewer's failthr.so and pf.mjs. A pthread_create shim, armed by a
 * flag file once the model is fitted, refuses every second thread start.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { distModule } from '../helpers/dist.js';
import { runCommand, runModule } from '../helpers/nodeChild.js';

let dir = '';
let shim = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bl-thread-start-'));
  const src = join(dir, 'failthr.c');
  writeFileSync(
    src,
    `#define _GNU_SOURCE
     #include <dlfcn.h>
     #include <errno.h>
     #include <pthread.h>
     #include <stdlib.h>
     #include <unistd.h>
     static int starts = 0;
     int pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg) {
       static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
       if (!real) real = dlsym(RTLD_NEXT, "pthread_create");
       const char *flag = getenv("BL_FAIL_THREAD_STARTS");
       if (flag && access(flag, F_OK) == 0 && __atomic_add_fetch(&starts, 1, __ATOMIC_SEQ_CST) % 2 == 0) return EAGAIN;
       return real(t, a, fn, arg);
     }
    `,
  );
  const out = join(dir, 'failthr.so');
  const cc = await runCommand('cc', ['-shared', '-fPIC', '-o', out, src, '-ldl']).catch(() => undefined);
  if (cc?.status === 0) shim = out;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('an engine call when a thread cannot be started', () => {
  it('predict() and predictAsync() give the values they give with every thread, and the process lives on', async (ctx) => {
    if (process.platform !== 'linux' || !shim) ctx.skip();
    const flag = join(dir, 'armed');
    const r = await runModule(
      `
      import { writeFileSync } from 'node:fs';
      const { RidgeCV } = await import(${JSON.stringify(pathToFileURL(distModule('ridge/RidgeCV')).href)});
      let s = 3;
      const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
      const matrix = (rows, cols) => ({ data: Float32Array.from({ length: rows * cols }, rand), rows, cols });
      const model = await new RidgeCV({ alphas: [1, 10] }).fit(matrix(200, 400), matrix(200, 300));
      const xs = matrix(3000, 400);
      const want = await model.predictAsync(xs);  // (the job thread and BLAS's threads exist from here)
      writeFileSync(${JSON.stringify(flag)}, '');
      const got = [await model.predictAsync(xs), model.predict(xs)];
      const worst = got.map((g) => g.data.reduce((m, v, i) => Math.max(m, Math.abs(v - want.data[i])), 0));
      console.log(JSON.stringify({ rows: got.map((g) => g.rows), worst }));
    `,
      120_000,
      { ...process.env, LD_PRELOAD: shim, BL_FAIL_THREAD_STARTS: flag },
    );
    expect({ status: r.status, signal: r.signal, hung: r.hung }, r.stderr).toEqual({ status: 0, signal: null, hung: false });
    const { rows, worst } = JSON.parse(r.stdout.trim()) as { rows: number[]; worst: number[] };
    expect(rows).toEqual([3000, 3000]);
    for (const w of worst) expect(w).toBeLessThan(1e-4);
  });
});
