import { describe, expect, it } from 'vitest';

import { BackendUnavailableError, CancelledError, InvalidArgumentError, NonFiniteError, OutOfMemoryError, ShapeError } from '../../ts/errors.js';
import { binding } from '../../ts/native/binding.js';
import type { Matrix } from '../../ts/matrix.js';
import { RidgeCV, type RidgeCVOptions, type RidgeProblem } from '../../ts/ridge/RidgeCV.js';
import type { RidgeModel } from '../../ts/ridge/RidgeModel.js';
import { planted } from '../helpers/random.js';

const ALPHAS = [0.1, 1, 10, 100, 1000];

/** Problems of different shapes and options: primal and kernel routes, groups, standardisation, Pearson, no intercept. */
function problems(): RidgeProblem[] {
  const a = planted(90, 12, 7, 1);
  const b = planted(40, 70, 5, 2);
  const c = planted(64, 20, 33, 3);
  const d = planted(50, 8, 3, 4);
  return [
    { ...a, options: { alphas: ALPHAS, folds: 4, backend: 'cpu' } },
    { ...b, options: { alphas: ALPHAS, folds: 3, standardize: true, cvMethod: 'exact', backend: 'cpu' } },
    { ...c, options: { alphas: [1, 10], groups: Array.from({ length: 64 }, (_, i) => i % 16), score: 'pearson', backend: 'cpu' } },
    { ...d, options: { alphas: ALPHAS, fitIntercept: false, solver: 'per-fold-kernel', backend: 'cpu' } },
  ];
}

/** Every array and setting of a model, for exact comparison. */
function parts(m: RidgeModel) {
  return {
    coef: Array.from(m.coef.data),
    intercept: Array.from(m.intercept),
    xMean: Array.from(m.xMean),
    xScale: Array.from(m.xScale),
    bestAlphas: Array.from(m.bestAlphas),
    bestScores: Array.from(m.bestScores),
    cvScores: Array.from(m.cvScores.data),
    settings: m.settings,
    solver: m.info?.solver,
  };
}

const copy = (m: Matrix): Matrix => ({ ...m, data: Float32Array.from(m.data) });

describe('RidgeCV.fitMany', () => {
  it('gives the models of one-by-one fits bit for bit, in order, at concurrency 1 and 2', async () => {
    const list = problems();
    const alone = await Promise.all(list.map((p) => new RidgeCV(p.options).fit(p.x, p.y)));
    for (const concurrency of [1, 2]) {
      const many = await RidgeCV.fitMany(list, { concurrency });
      expect(many.length).toBe(list.length);
      for (let i = 0; i < list.length; i++) expect(parts(many[i]), `problem ${i} at concurrency ${concurrency}`).toEqual(parts(alone[i]));
    }
    // the default (1 on the CPU) and a concurrency above the problems' number
    for (const control of [{}, { concurrency: 9 }]) {
      const many = await RidgeCV.fitMany(list, control);
      for (let i = 0; i < list.length; i++) expect(parts(many[i])).toEqual(parts(alone[i]));
    }
    expect(alone[1].info?.cvMethod).toBe('exact');
    expect(alone[2].settings.foldKind).toBe('groups');
  });

  it('reports the mean progress over the problems, rising to 1, every event before it resolves', async () => {
    const list = problems();
    const seen: { fraction: number; stage: string }[] = [];
    let resolved = false;
    let late = 0;
    await RidgeCV.fitMany(list, {
      concurrency: 2,
      onProgress: (p) => {
        if (resolved) late++;
        seen.push(p);
      },
    });
    resolved = true;
    await new Promise((r) => setTimeout(r, 20));
    expect(late).toBe(0);
    for (let i = 1; i < seen.length; i++) expect(seen[i].fraction).toBeGreaterThanOrEqual(seen[i - 1].fraction);
    expect(seen[seen.length - 1]).toEqual({ fraction: 1, stage: 'done' });
    // each problem's own end moves the mean by a quarter: 'fit done' until the last, whose end is the job's 'done'
    expect(seen.filter((p) => p.stage === 'done').length).toBe(1);
    expect(seen.filter((p) => p.stage === 'fit done').length).toBe(3);
    expect(seen.find((p) => p.stage === 'fit done')!.fraction).toBeLessThan(1);
  });

  it('refuses bad input before any fit, naming the problem and the field', async () => {
    const list = problems();
    const fitMany = (ps: unknown, control?: unknown) => RidgeCV.fitMany(ps as RidgeProblem[], control as object);
    await expect(fitMany([])).rejects.toThrow(/^RidgeCV\.fitMany: problems: expected a non-empty array of \{ x, y, options\? \}, got an array of 0$/);
    await expect(fitMany(undefined)).rejects.toThrow(InvalidArgumentError);
    await expect(fitMany([list[0], null])).rejects.toThrow(/^RidgeCV\.fitMany problem 1: expected an object \{ x, y, options\? \}, got null$/);

    const rows = [list[0], { x: list[1].x, y: planted(39, 1, 5, 1).y }, list[2]];
    await expect(fitMany(rows)).rejects.toThrow(ShapeError);
    await expect(fitMany(rows)).rejects.toThrow(/^RidgeCV\.fitMany problem 1: X has 40 samples \(rows\) but Y has 39; they must match$/);

    const option = [list[0], list[1], { ...list[2], options: { alphas: [1, -1] } as RidgeCVOptions }];
    await expect(fitMany(option)).rejects.toThrow(InvalidArgumentError);
    await expect(fitMany(option)).rejects.toThrow(/^RidgeCV\.fitMany problem 2 alphas: /);
    const typo = [list[0], list[1], { ...list[2], options: { alpha: [1] } }];
    await expect(fitMany(typo)).rejects.toThrow(/^RidgeCV\.fitMany problem 2: unknown option 'alpha' \(did you mean 'alphas'\?\)/);
    const field = [list[0], { ...list[1], ys: list[1].y }];
    await expect(fitMany(field)).rejects.toThrow(/^RidgeCV\.fitMany problem 1: unknown field 'ys'/);
    const folds = [list[0], list[1], { ...list[2], options: { folds: 100 } }];
    await expect(fitMany(folds)).rejects.toThrow(/^RidgeCV\.fitMany problem 2: 100 folds but only 64 samples$/);
    await expect(fitMany([list[0], { ...list[1], options: null }])).rejects.toThrow(/^RidgeCV\.fitMany problem 1: options must be an object, got null$/);

    await expect(fitMany(list, { concurrency: 0 })).rejects.toThrow(/^RidgeCV\.fitMany concurrency: expected an integer in 1\.\.2147483647, got 0$/);
    await expect(fitMany(list, { concurrency: 2 ** 53 })).rejects.toThrow(/^RidgeCV\.fitMany concurrency: expected an integer in 1\.\.2147483647/);
    await expect(fitMany(list, { concurency: 2 })).rejects.toThrow(/^RidgeCV\.fitMany: unknown option 'concurency' \(did you mean 'concurrency'\?\)/);
    await expect(fitMany(list, { signal: {} })).rejects.toThrow(/^RidgeCV\.fitMany signal: expected an AbortSignal/);
  });

  it("an engine error names its problem: the first that failed, in the problems' order", async () => {
    const list = problems();
    const bad = copy(list[1].y);
    bad.data[5 * 5 + 3] = NaN; // (5 targets: row 5, column 3)
    const worse = copy(list[3].x);
    worse.data[2] = Infinity;
    for (const concurrency of [1, 2]) {
      const one = [list[0], { ...list[1], y: bad }, list[2]];
      const failure = await RidgeCV.fitMany(one, { concurrency }).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(NonFiniteError);
      expect((failure as Error).message).toMatch(/^RidgeCV\.fitMany problem 1 \(of 3\): Y contains NaN at row 5, column 3: inputs must be finite$/);
      const two = [list[0], list[1], list[2], { ...list[3], x: worse }, { ...list[1], y: bad }];
      const first = await RidgeCV.fitMany(two, { concurrency }).catch((e: unknown) => e);
      expect((first as Error).message).toMatch(/^RidgeCV\.fitMany problem 3 \(of 5\): X contains Inf at row 0, column 2: inputs must be finite$/);
    }
  });

  it("keeps the kind of the engine's error: an OutOfMemory's reason, a backend that cannot be had named by its problem", async () => {
    const list = problems();
    const budget = [list[0], list[1], { ...list[2], options: { ...list[2].options, memoryBudget: 1000 } }];
    const oom = await RidgeCV.fitMany(budget, { concurrency: 2 }).catch((e: unknown) => e);
    expect(oom).toBeInstanceOf(OutOfMemoryError);
    expect((oom as OutOfMemoryError).reason).toBe('budget');
    expect((oom as Error).message).toMatch(/^RidgeCV\.fitMany problem 2 \(of 3\): /);
    if (binding().buildInfo().backends.includes('cuda')) return;
    const cuda = [list[0], { ...list[1], options: { ...list[1].options, backend: 'cuda' as const } }];
    const unavailable = await RidgeCV.fitMany(cuda).catch((e: unknown) => e);
    expect(unavailable).toBeInstanceOf(BackendUnavailableError);
    expect((unavailable as Error).message).toMatch(/^RidgeCV\.fitMany problem 1 \(of 2\): /);
  });

  it("the binding names the problem whose arrays or options do not fit (a caller that skips RidgeCV's checks)", () => {
    const options = { alphas: Float64Array.of(1), folds: Int32Array.of(0, 0, 1, 1), nFolds: 2 };
    const good = { x: new Float32Array(8), n: 4, p: 2, y: new Float32Array(4), t: 1, options };
    const call = (ps: unknown[], concurrency = 1) => (binding().ridgeFitMany as (...a: unknown[]) => Promise<unknown>)(ps, concurrency);
    expect(() => call([good, { ...good, y: new Float32Array(3) }])).toThrow(/^ridgeFitMany problem 1: 'y' has 3 elements, expected 4$/);
    expect(() => call([good, good, { ...good, options: { ...options, score: 'r3' } }])).toThrow(/^ridgeFitMany problem 2: score must be 'r2' or 'pearson', got 'r3'$/);
    expect(() => call([{ ...good, t: undefined }])).toThrow(/^ridgeFitMany problem 0: 't' is missing$/);
    expect(() => call([7])).toThrow(/^ridgeFitMany problem 0: must be an object/);
    expect(() => call([good], 0)).toThrow(/^ridgeFitMany: concurrency must be at least 1$/);
  });

  it('a failed problem stops the later problems still running, and is the one named', async () => {
    const big = planted(1500, 1200, 16, 4);
    const list: RidgeProblem[] = [
      { ...big, options: { alphas: [1, 10, 100], memoryBudget: 1000 } },
      { ...big, options: { alphas: [1, 10, 100], solver: 'per-fold-primal' } },
    ];
    const seen: string[] = [];
    const failure = await RidgeCV.fitMany(list, { concurrency: 2, onProgress: (p) => seen.push(p.stage) }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(OutOfMemoryError);
    expect((failure as Error).message).toMatch(/problem 0 \(of 2\)/);
    // problem 1 (seconds of work) was stopped, not run to its end and thrown away
    expect(seen).not.toContain('fit done');
    expect(seen).not.toContain('done');
  });

  it('an abort stops every problem: while they run, and before they start', async () => {
    const big = planted(1500, 1200, 16, 4);
    const list: RidgeProblem[] = [0, 1, 2].map(() => ({ ...big, options: { alphas: [1, 10, 100], solver: 'per-fold-primal' } }));
    for (const concurrency of [1, 2]) {
      const ac = new AbortController();
      const seen: string[] = [];
      const fit = RidgeCV.fitMany(list, {
        concurrency,
        signal: ac.signal,
        onProgress: (p) => {
          seen.push(p.stage);
          if (p.fraction > 0 && !ac.signal.aborted) ac.abort('stop');
        },
      });
      const failure = await fit.catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(CancelledError);
      expect((failure as Error & { cause?: unknown }).cause).toBe('stop');
      expect(seen).not.toContain('done');
      expect(seen).not.toContain('fit done');
    }
    const aborted = new AbortController();
    aborted.abort();
    await expect(RidgeCV.fitMany(list, { signal: aborted.signal })).rejects.toThrow(/^RidgeCV\.fitMany: aborted before it started$/);
  });

  it('holds the inputs it reads in place (untransferable), as fit does', async () => {
    const { x, y } = planted(30, 4, 2, 7);
    await RidgeCV.fitMany([{ x, y, options: { alphas: [1] } }]);
    for (const b of [x.data.buffer, y.data.buffer] as ArrayBuffer[]) {
      structuredClone(b, { transfer: [b] });
      expect(b.byteLength).toBeGreaterThan(0);
    }
  });
});
