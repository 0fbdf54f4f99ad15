/**
 * The service's engine jobs compute below its event loop's CPU priority: after setJobNiceness(n) (what startServer
 * does, n = 10 by default) an engine job's work runs on a thread of its own whose nice value is n steps above the
 * process's, and with 0 on the engine's job threads again, at the process's.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { getPriority } from 'node:os';

import { afterAll, describe, expect, it } from 'vitest';

import { nativeSync } from '../../ts/native/call.js';
import { RidgeCV } from '../../ts/ridge/RidgeCV.js';
import { rng } from '../helpers/random.js';

/** The nice values of this process's threads (Linux's /proc/self/task/TID/stat, field 19). */
function threadNiceValues(): number[] {
  const out: number[] = [];
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      out.push(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** A fit long enough to report progress a few times; returns the nice values seen while it computed. */
async function niceValuesDuringAFit(): Promise<Set<number>> {
  const g = rng(3);
  const n = 300, p = 400, t = 800;
  const x = { data: new Float32Array(n * p).map(() => g()), rows: n, cols: p };
  const y = { data: new Float32Array(n * t).map(() => g()), rows: n, cols: t };
  const seen = new Set<number>();
  await new RidgeCV({ alphas: Array.from({ length: 20 }, (_, i) => 10 ** (i / 4)), folds: 5, route: 'primal', cvMethod: 'per-fold', targetBatch: 20 }).fit(x, y, {
    onProgress: () => threadNiceValues().forEach((v) => seen.add(v)),
  });
  return seen;
}

afterAll(() => nativeSync((b) => b.setJobNiceness(0)));

describe.runIf(existsSync('/proc/self/task'))('engine jobs below the event loop', () => {
  it("compute on a thread 7 nice steps down after setJobNiceness(7), on the engine's job threads at the process priority after 0", async () => {
    const base = getPriority();
    nativeSync((b) => b.setJobNiceness(7));
    expect(await niceValuesDuringAFit()).toContain(Math.min(19, base + 7));
    nativeSync((b) => b.setJobNiceness(0));
    expect([...(await niceValuesDuringAFit())].filter((v) => v !== base)).toEqual([]);
  });
});
