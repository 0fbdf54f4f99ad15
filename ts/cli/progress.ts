/**
 * Progress on stderr: a redrawn bar on a terminal, a line every few seconds otherwise (logs, CI). Every bar
 * shows the elapsed time, the rate (items per second when the caller counts items) and an ETA estimated
 * from the recent rate, so a long stage says when it will end.
 */

/** Items done so far, for a rate in the caller's unit ("images", "targets", …). */
export interface ProgressCount {
  done: number;
  total: number;
  unit: string;
  /**
   * Of `done`, the items an earlier run made and this one reused (a resumed img2img): they count toward the
   * fraction and the count shown, not toward the rate or the ETA, which measure this run's work only.
   */
  reused?: number;
}

export interface ProgressBar {
  update(fraction: number, message?: string, count?: ProgressCount): void;
  done(message?: string): void;
}

/**
 * Rate and ETA from (time, fraction) samples over a sliding window, so the estimate follows the current pace
 * rather than a start-up phase (loading a model, the first batch). The time up to the first progress of this run's
 * own work is all start-up (a model loaded, the first batch's encoding, an earlier run's items skipped through):
 * the rate is measured from that first progress on, so there is none (and no ETA) until a second one. Likewise after
 * a stall longer than the window: the rate starts again from the first update after it.
 */
export class RateEstimator {
  // f, n: progress as shown; rf, rn: the part of it reused from an earlier run (not work of this run)
  private samples: { t: number; f: number; n: number; rf: number; rn: number }[] = [];
  // whether this run's own work has progressed since the phase began (the rate's base is then its first progress)
  private working = false;

  /** @param windowSeconds how far back the rate looks. */
  constructor(readonly windowSeconds = 20) {}

  /**
   * @param done items done (shown), when the caller counts items
   * @param reused of `done`, items reused from an earlier run; with `total`, their share of the fraction too
   */
  add(t: number, fraction: number, done = NaN, reused = 0, total = NaN): void {
    const rn = reused > 0 ? reused : 0;
    const rf = rn > 0 && total > 0 ? rn / total : 0;
    let last = this.samples[this.samples.length - 1] as (typeof this.samples)[number] | undefined;
    // a fraction that goes back means a new phase (an encode stage starting at 0): start the rate afresh
    if (last && fraction < last.f - 1e-9) {
      this.samples = [];
      this.working = false;
      last = undefined;
    }
    if (last && t <= last.t) {
      Object.assign(last, { f: fraction, n: done, rf, rn });
      return;
    }
    const sample = { t, f: fraction, n: done, rf, rn };
    // an update after a stall longer than the window (a killed worker restarted): the gap is not the pace, and a base
    // from before it would give a huge ETA for a while; this update is the new base, as a phase's first progress is
    if (last && this.working && t - last.t > this.windowSeconds) {
      this.samples = [sample];
      return;
    }
    this.samples.push(sample);
    // this run's first own progress since the phase began: what came before it was start-up, not its pace
    const start = this.samples[0];
    if (!this.working && sample.f - sample.rf > start.f - start.rf + 1e-12) {
      this.working = true;
      this.samples = [sample];
      return;
    }
    // keep one sample older than the window as the rate's base
    while (this.samples.length > 2 && this.samples[1].t <= t - this.windowSeconds) this.samples.shift();
  }

  /** Fraction per second of this run's own work over the window (NaN until two samples with progress). */
  fractionRate(): number {
    const a = this.samples[0], b = this.samples[this.samples.length - 1];
    if (!a || b.t <= a.t) return NaN;
    const df = b.f - b.rf - (a.f - a.rf);
    return df > 0 ? df / (b.t - a.t) : NaN;
  }

  /** Items per second of this run's own work over the window (NaN without counts). */
  itemRate(): number {
    // the oldest sample that carries a count (an update without one, at a stage's start, carries none)
    const a = this.samples.find((s) => Number.isFinite(s.n)), b = this.samples[this.samples.length - 1];
    if (!a || b.t <= a.t) return NaN;
    const dn = b.n - b.rn - (a.n - a.rn);
    return dn > 0 ? dn / (b.t - a.t) : NaN;
  }

  /** Seconds left at the window's rate (NaN when unknown). */
  eta(): number {
    const b = this.samples[this.samples.length - 1];
    const r = this.fractionRate();
    if (!b || !(r > 0)) return NaN;
    return Math.max(0, (1 - b.f) / r);
  }
}

/** 12s, 3:07, 1:02:03. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(r).padStart(2, '0')}` : `${m}:${String(r).padStart(2, '0')}`;
}

/** "3.1 images/s", or "4.2 s/image" below one item per second. */
export function formatRate(perSecond: number, unit: string): string {
  if (!(perSecond > 0)) return '';
  if (perSecond >= 1) return `${perSecond >= 100 ? Math.round(perSecond) : perSecond.toPrecision(2)} ${unit}/s`;
  const one = unit.endsWith('s') ? unit.slice(0, -1) : unit;
  return `${(1 / perSecond).toPrecision(2)} s/${one}`;
}

/** The text after the bar: percent, count, rate, ETA, message, elapsed. */
export function progressText(fraction: number, elapsed: number, rate: RateEstimator, message?: string, count?: ProgressCount): string {
  const pct = Math.floor(Math.max(0, Math.min(1, fraction)) * 100);
  const parts = [`${String(pct).padStart(3)}%`];
  if (count) parts.push(`${count.done}/${count.total} ${count.unit}`);
  const itemRate = count ? formatRate(rate.itemRate(), count.unit) : '';
  if (itemRate) parts.push(itemRate);
  const eta = rate.eta();
  // an ETA needs a second of history; before that it would only echo the start-up
  if (pct < 100) parts.push(elapsed >= 1 && Number.isFinite(eta) ? `ETA ${formatDuration(eta)}` : 'ETA …');
  if (message) parts.push(message);
  parts.push(`${formatDuration(elapsed)} elapsed`);
  return parts.join(' · ');
}

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr, clock: () => number = () => performance.now() / 1000): ProgressBar {
  const tty = stream.isTTY === true;
  const t0 = clock();
  const rate = new RateEstimator();
  rate.add(0, 0, 0);
  let lastDraw = -Infinity;
  let lastLine = -Infinity;
  let lastPct = -1;
  return {
    update(fraction, message, count) {
      const t = clock();
      rate.add(t - t0, fraction, count?.done, count?.reused, count?.total);
      const pct = Math.floor(Math.max(0, Math.min(1, fraction)) * 100);
      const text = () => progressText(fraction, t - t0, rate, message, count);
      if (tty) {
        // redraw on a new percent, or every half second so the ETA and the elapsed time move
        if (pct === lastPct && t - lastDraw < 0.5) return;
        const width = 24;
        const fill = Math.round((pct / 100) * width);
        const line = `${label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${text()}`;
        const cols = stream.columns ?? 120;
        stream.write(`\r\x1b[K${line.length > cols - 1 ? line.slice(0, cols - 2) + '…' : line}`);
        lastDraw = t;
      } else if ((t - lastLine >= 2 && pct !== lastPct) || (pct === 100 && lastPct !== 100)) {
        stream.write(`${label}: ${text()}\n`);
        lastLine = t;
      } else {
        return;
      }
      lastPct = pct;
    },
    done(message) {
      if (tty) stream.write('\r\x1b[K');
      if (message) stream.write(`${message}\n`);
    },
  };
}
