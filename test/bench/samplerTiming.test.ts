/**
 * `bench samplers`' cost columns took the best of two single runs of a few milliseconds: lms and dpmpp2m at 40 steps
 * (both 40 U-Net calls, 1–2% loop overhead) came out at 106.8 and 277.9 images/s in one record. samplerTiming.ts
 * repeats each configuration to a minimum count and time, in interleaved rounds, and reports the median with its
 * interquartile range and the count. Everything here runs on scripted (fake) clocks: no real time is measured.
 */
import { describe, expect, it } from 'vitest';

import { costEntry, costText, timeInterleaved, timingStats, TIMING_RULE } from '../../ts/bench/samplerTiming.js';

describe('timingStats', () => {
  it('gives the median, the quartiles (linear, as numpy) and the range of unsorted values', () => {
    expect(timingStats([5, 1, 4, 2, 3])).toEqual({ median: 3, q1: 2, q3: 4, min: 1, max: 5, repeats: 5 });
    expect(timingStats([4, 1, 3, 2])).toEqual({ median: 2.5, q1: 1.75, q3: 3.25, min: 1, max: 4, repeats: 4 });
    expect(timingStats([7])).toEqual({ median: 7, q1: 7, q3: 7, min: 7, max: 7, repeats: 1 });
    expect(() => timingStats([])).toThrow('no values');
  });

  it('is not moved by one slow run (the best of two was moved by any)', () => {
    const s = timingStats([0.01, 0.01, 0.01, 0.5, 0.01, 0.01]);
    expect(s.median).toBe(0.01);
    expect(s.max).toBe(0.5);
  });
});

describe('timeInterleaved', () => {
  it('repeats each key until it has both the minimum runs and the minimum time, and no more', async () => {
    // a: 10 ms a run → 20 runs for 0.2 s; b: 100 ms → 5 runs (the count, then 0.5 s); c: 1 s → 5 runs (the count)
    const clock: Record<string, number> = { a: 0.01, b: 0.1, c: 1 };
    const got = await timeInterleaved(['a', 'b', 'c'], async (k) => ({ seconds: clock[k] }), { minSeconds: 0.2, minRepeats: 5, maxRepeats: 100 });
    expect([got.get('a')?.length, got.get('b')?.length, got.get('c')?.length]).toEqual([20, 5, 5]);
    // capped
    const capped = await timeInterleaved(['a'], async () => ({ seconds: 1e-6 }), { minSeconds: 0.2, minRepeats: 5, maxRepeats: 50 });
    expect(capped.get('a')?.length).toBe(50);
  });

  it('interleaves the keys, one run each per round, starting one key later each round (a slow spell hits every key)', async () => {
    const order: string[] = [];
    await timeInterleaved(['a', 'b', 'c'], async (k) => (order.push(k), { seconds: 0 }), { minSeconds: 0, minRepeats: 3, maxRepeats: 10 });
    expect(order.join('')).toBe('abcbcacab');
    // a slow spell of three runs (a scripted clock) lands on each key once, not on one key three times
    const spell = new Set([3, 4, 5]);
    let n = 0;
    const got = await timeInterleaved(['x', 'y', 'z'], async () => ({ seconds: spell.has(n++) ? 1 : 0.001 }), { minSeconds: 0, minRepeats: 5, maxRepeats: 5 });
    for (const k of ['x', 'y', 'z']) {
      expect(got.get(k)?.filter((s) => s.seconds === 1)).toHaveLength(1);
      expect(timingStats((got.get(k) ?? []).map((s) => s.seconds)).median).toBe(0.001);
    }
  });

  it('in lockstep runs every key in every round until all meet the rule (bench sampler pairs native and TS runs so)', async () => {
    // fast: 2 ms a run, 100 runs for 0.2 s; slow: 15 ms, 14 runs. Apart, slow stops at 14 and fast runs on alone.
    const clock: Record<string, number> = { fast: 0.002, slow: 0.015 };
    const rule = { minSeconds: 0.2, minRepeats: 5, maxRepeats: 200 };
    const apart = await timeInterleaved(['fast', 'slow'], async (k) => ({ seconds: clock[k] }), rule);
    expect([apart.get('fast')?.length, apart.get('slow')?.length]).toEqual([100, 14]);
    const order: string[] = [];
    const paired = await timeInterleaved(['fast', 'slow'], async (k) => (order.push(k), { seconds: clock[k] }), rule, true);
    expect([paired.get('fast')?.length, paired.get('slow')?.length]).toEqual([100, 100]);
    // which goes first alternates round by round
    expect(order.slice(0, 6)).toEqual(['fast', 'slow', 'slow', 'fast', 'fast', 'slow']);
    // the cap still holds
    const capped = await timeInterleaved(['fast', 'slow'], async () => ({ seconds: 1e-6 }), { ...rule, maxRepeats: 7 }, true);
    expect([capped.get('fast')?.length, capped.get('slow')?.length]).toEqual([7, 7]);
  });

  it('has the documented default rule', () => {
    expect(TIMING_RULE).toEqual({ minSeconds: 0.2, minRepeats: 5, maxRepeats: 200 });
  });
});

describe('costEntry', () => {
  it('reports images/s at the median loop time, its interquartile range, the runs and the median overhead', () => {
    const runs = [0.02, 0.01, 0.04, 0.01, 0.02].map((s) => ({ seconds: s, unetSeconds: s / 1.05 }));
    const c = costEntry(4, runs);
    expect(c.batch).toBe(4);
    expect(c.imagesPerSecond).toBeCloseTo(4 / 0.02, 10);
    expect(c.imagesPerSecondIqr[0]).toBeCloseTo(4 / 0.02, 10); // q3 of the times: 0.02
    expect(c.imagesPerSecondIqr[1]).toBeCloseTo(4 / 0.01, 10); // q1: 0.01
    expect(c.overhead).toBeCloseTo(1.05, 10);
    expect(c.repeats).toBe(5);
    expect(c.loopSeconds).toEqual({ median: 0.02, q1: 0.01, q3: 0.02, min: 0.01, max: 0.04, repeats: 5 });
    expect(costText(c)).toBe('200.0 img/s (IQR 200.0–400.0, 5 runs)');
    // a record from before the spread: the figure alone
    expect(costText({ imagesPerSecond: 106.8 })).toBe('106.8 img/s');
  });
});
