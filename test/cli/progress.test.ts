import { describe, expect, it } from 'vitest';

import { formatDuration, formatRate, progressBar, progressText, RateEstimator } from '../../ts/cli/progress.js';

describe('progress: rate and ETA', () => {
  it('estimates the ETA from the recent rate, not from a slow start', () => {
    const r = new RateEstimator(10);
    r.add(0, 0, 0);
    r.add(20, 0.1, 10); // slow start-up: 0.5%/s
    for (let t = 21; t <= 40; t++) r.add(t, 0.1 + 0.02 * (t - 20), 10 + 2 * (t - 20)); // then 2%/s, 2 items/s
    // at t = 40: fraction 0.5, the window holds the last 10 s at 2%/s → 25 s left
    expect(r.fractionRate()).toBeCloseTo(0.02, 10);
    expect(r.eta()).toBeCloseTo(25, 6);
    expect(r.itemRate()).toBeCloseTo(2, 10);
  });

  it('starts afresh when the fraction goes back (a new phase)', () => {
    const r = new RateEstimator(60);
    r.add(0, 0);
    r.add(10, 0.9);
    r.add(11, 0); // next phase
    expect(Number.isNaN(r.eta())).toBe(true);
    r.add(15, 0.2); // its first progress: the time before it was its start-up
    expect(Number.isNaN(r.eta())).toBe(true);
    r.add(19, 0.4);
    expect(r.eta()).toBeCloseTo(12, 6);
  });

  // a worker killed at 50% and restarted 60 s later: the first updates' ETA was 2236 s, then 880, 601 … (the base was the
  // sample before the gap); it is now unknown at the first update after the gap, then that of the pace since it
  it('starts the window afresh after a stall longer than it', () => {
    const r = new RateEstimator(20);
    for (let t = 0; t <= 25; t++) r.add(t, 0.02 * t, t); // 2%/s up to 50%
    expect(r.eta()).toBeCloseTo(25, 6);
    r.add(85, 0.51, 26); // 60 s of nothing, then the restarted worker's first progress
    expect(r.eta()).toBeNaN();
    expect(r.itemRate()).toBeNaN();
    r.add(86, 0.53, 27);
    expect(r.fractionRate()).toBeCloseTo(0.02, 10);
    expect(r.eta()).toBeCloseTo(23.5, 6);
    expect(r.itemRate()).toBeCloseTo(1, 10);
  });

  it('formats durations, rates and the status text', () => {
    expect(formatDuration(7.4)).toBe('7s');
    expect(formatDuration(187)).toBe('3:07');
    expect(formatDuration(3723)).toBe('1:02:03');
    expect(formatRate(3.14159, 'images')).toBe('3.1 images/s');
    expect(formatRate(0.25, 'images')).toBe('4.0 s/image');
    expect(formatRate(250, 'targets')).toBe('250 targets/s');
    const r = new RateEstimator();
    r.add(0, 0, 0);
    r.add(2, 0.2, 4);
    r.add(4, 0.4, 8);
    expect(progressText(0.4, 4, r, 'seed 1', { done: 8, total: 20, unit: 'images' })).toBe(' 40% · 8/20 images · 2.0 images/s · ETA 6s · seed 1 · 4s elapsed');
  });

  it('writes a line with rate and ETA when not on a terminal', () => {
    const lines: string[] = [];
    const stream = { isTTY: false, write: (s: string) => lines.push(s) } as unknown as NodeJS.WriteStream;
    let now = 0;
    const bar = progressBar('img2img', stream, () => now);
    for (let k = 1; k <= 10; k++) {
      now = 3 * k;
      bar.update(k / 10, undefined, { done: k, total: 10, unit: 'images' });
    }
    bar.done('img2img: done');
    // (the first item's time holds the start-up: no rate or ETA from it alone)
    expect(lines[0]).toBe('img2img:  10% · 1/10 images · ETA … · 3s elapsed\n');
    expect(lines[1]).toBe('img2img:  20% · 2/10 images · 3.0 s/image · ETA 24s · 6s elapsed\n');
    expect(lines).toContain('img2img:  50% · 5/10 images · 3.0 s/image · ETA 15s · 15s elapsed\n');
    expect(lines[lines.length - 2]).toBe('img2img: 100% · 10/10 images · 3.0 s/image · 30s elapsed\n');
    expect(lines[lines.length - 1]).toBe('img2img: done\n');
  });
});

describe('progress: work reused from an earlier run', () => {
  it('measures the rate and ETA over this run\'s work only, not the reused jump at the start', () => {
    // a resumed img2img: 80 of 96 samples were made before (reported at t≈0), then 16 at 20 samples/s
    const lines: string[] = [];
    const stream = { isTTY: false, write: (s: string) => lines.push(s) } as unknown as NodeJS.WriteStream;
    let now = 0;
    const bar = progressBar('img2img', stream, () => now);
    now = 0.01;
    bar.update(80 / 96, 'seed 0 (done before)', { done: 80, total: 96, unit: 'samples', reused: 80 });
    for (let k = 1; k <= 16; k++) {
      now = 0.01 + k * 0.05;
      bar.update((80 + k) / 96, 'seed 1', { done: 80 + k, total: 96, unit: 'samples', reused: 80 });
    }
    // 16 samples in 0.8 s: 20/s (counting the reused ones would give 96 / 0.81 ≈ 119/s)
    expect(lines[lines.length - 1]).toBe('img2img: 100% · 96/96 samples · 20 samples/s · seed 1 · 1s elapsed\n');
  });

  it('gives the ETA from this run\'s pace when reused blocks and computed ones alternate', () => {
    const r = new RateEstimator(60);
    r.add(0, 0, 0);
    r.add(0.001, 0.25, 25, 25, 100); // block 1 reused
    r.add(2, 0.3, 30, 25, 100); // block 2's first progress, after its start-up (encoding)
    r.add(10, 0.5, 50, 25, 100); // the rest of block 2 in 8 s: 2.5 samples/s
    r.add(10.001, 0.75, 75, 50, 100); // block 3 reused
    expect(r.itemRate()).toBeCloseTo(2.5, 3);
    expect(r.fractionRate()).toBeCloseTo(0.025, 4);
    // 25 samples left at 2.5/s
    expect(r.eta()).toBeCloseTo(10, 2);
  });
});

describe('progress: the first progress of a resumed stage', () => {
  // a resumed img2img (4 seeds × 12 images, 16 samples kept): the model loads, the kept samples are reported, the first
  // sampler step of the first batch comes after the z-only images are encoded; then 1.5 samples/s (the stage took 23 s).
  // It showed "33% · 16/48 samples · ETA 10:45 · 2s elapsed": the time up to that first step counted as the pace.
  it('shows no ETA until this run has a pace of its own, then the ETA of that pace', () => {
    const r = new RateEstimator();
    r.add(0, 0, 0);
    r.add(1, 16 / 48, 16, 16, 48);
    r.add(2, 16.1 / 48, 16, 16, 48);
    expect(r.eta()).toBeNaN();
    r.add(2.1, 16.25 / 48, 16, 16, 48);
    expect(r.eta()).toBeCloseTo(31.75 / 1.5, 6);

    const lines: string[] = [];
    const stream = { isTTY: false, write: (s: string) => lines.push(s) } as unknown as NodeJS.WriteStream;
    let now = 0;
    const bar = progressBar('img2img', stream, () => now);
    bar.update(0);
    now = 1;
    bar.update(16 / 48, 'seed 0 (done before)', { done: 16, total: 48, unit: 'samples', reused: 16 });
    for (let step = 0; ; step++) {
      now = 2 + step / 10;
      const at = Math.min(48, 16.1 + 0.15 * step);
      bar.update(at / 48, 'seed 2', { done: Math.floor(at), total: 48, unit: 'samples', reused: 16 });
      if (at === 48) break;
    }
    expect(lines[1]).toBe('img2img:  33% · 16/48 samples · ETA … · seed 2 · 2s elapsed\n');
    // every ETA shown after it is this run's pace: the time left, to the second or so (both are shown in whole seconds)
    const etas = lines.slice(2).flatMap((l) => {
      const m = / (\d+)% · (\d+)\/48 samples · .*ETA (?:(\d+):)?(\d+)s? · .* (\d+)s elapsed/.exec(l);
      return m ? [{ line: l, eta: Number(m[3] ?? 0) * 60 + Number(m[4]), elapsed: Number(m[5]) }] : [];
    });
    expect(etas.length).toBeGreaterThan(5);
    // the stage ends at 2 + 31.9 / 1.5 s
    for (const e of etas) expect(Math.abs(e.eta - (2 + 31.9 / 1.5 - e.elapsed)), e.line).toBeLessThanOrEqual(1.5);
  });
});
